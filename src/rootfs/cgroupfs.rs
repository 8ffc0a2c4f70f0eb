//! `type: cgroup` mounts: the host's hierarchies as the container should see them.
//! runs in: the container init, before pivot_root.

use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::symlinkat;

use super::inroot::{Fail, Res, Root};
use super::mountapi::{clone_tree, fd_path, move_onto, setattr};
use super::options::{Attr, MountOpts};

/// One cgroup hierarchy of the host, from mountinfo.
struct Hierarchy {
    mountpoint: PathBuf,
    fstype: String,
    /// controllers (`cpu,cpuacct`) or `none,name=systemd`; empty for cgroup2
    opts: String,
}

fn host_hierarchies() -> Vec<Hierarchy> {
    let Ok(mi) = fs::read_to_string("/proc/self/mountinfo") else {
        return vec![];
    };
    let mut out = Vec::new();
    for l in mi.lines() {
        let Some((pre, post)) = l.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let fstype = post[0];
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let opts = if fstype == "cgroup" {
            post[2]
                .split(',')
                .filter(|o| {
                    !matches!(
                        *o,
                        "rw" | "ro" | "nosuid" | "nodev" | "noexec" | "relatime" | "clone_children"
                    )
                })
                .filter(|o| !o.starts_with("release_agent"))
                .collect::<Vec<_>>()
                .join(",")
        } else {
            String::new()
        };
        out.push(Hierarchy {
            mountpoint: PathBuf::from(pre[4]),
            fstype: fstype.to_string(),
            opts,
        });
    }
    out
}

/// The init's own cgroup path in a v1 hierarchy (by its mount options) or in v2.
fn own_cgroup(h: &Hierarchy) -> PathBuf {
    let cg = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in cg.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let matches = if h.fstype == "cgroup2" {
            ctrls.is_empty()
        } else {
            let want: Vec<&str> = h.opts.split(',').filter(|o| *o != "none").collect();
            let have: Vec<&str> = ctrls.split(',').collect();
            !want.is_empty() && want.iter().all(|w| have.contains(w))
        };
        if matches {
            return PathBuf::from(path.trim_start_matches('/'));
        }
    }
    PathBuf::new()
}

/// `type: cgroup` on a v1/hybrid host: a tmpfs with each hierarchy below it; on a v2 host the
/// cgroup2 fs itself. In a cgroup namespace each is a fresh mount (its root is the namespace's);
/// otherwise the host hierarchy is bound at the init's own cgroup, so nothing above it shows.
/// `in_cgns` comes from the plan: comparing with /proc/1/ns/cgroup fails where pid 1 of the host
/// cannot be inspected (then the container saw the host's root cgroup instead of its own).
pub(super) fn mount_cgroup(root: &Root, dst: &Path, o: &MountOpts, in_cgns: bool) -> Res<()> {
    let hs = host_hierarchies();
    let flags = o.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    let at = root.dir(dst)?;
    let place = |h: &Hierarchy, at: BorrowedFd| -> Res<()> {
        if in_cgns {
            let data = (h.fstype == "cgroup").then_some(h.opts.as_str());
            mount(
                Some(h.fstype.as_str()),
                &fd_path(at),
                Some(h.fstype.as_str()),
                flags,
                data,
            )?;
        } else {
            let tree = clone_tree(&h.mountpoint.join(own_cgroup(h)), true)?;
            setattr(
                tree.as_fd(),
                Attr::from_flags(flags, MsFlags::empty()),
                false,
            )?;
            move_onto(tree.as_fd(), at)?;
        }
        Ok(())
    };
    if let Some(h) = hs
        .iter()
        .find(|h| h.fstype == "cgroup2" && h.mountpoint == Path::new("/sys/fs/cgroup"))
    {
        return place(h, at.as_fd());
    }
    hierarchies_on_tmpfs(root, dst, &at, &hs, flags, &place)
}

/// v1 or hybrid: a tmpfs at `dst` (`at`) with a directory per hierarchy, each `place`d, and
/// read-only at the end when asked.
fn hierarchies_on_tmpfs(
    root: &Root,
    dst: &Path,
    at: &OwnedFd,
    hs: &[Hierarchy],
    flags: MsFlags,
    place: &dyn Fn(&Hierarchy, BorrowedFd) -> Res<()>,
) -> Res<()> {
    let tmpfs_flags =
        (flags & !MsFlags::MS_RDONLY) | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("tmpfs"),
        &fd_path(at.as_fd()),
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755"),
    )?;
    // The tmpfs just made: nothing but us writes in it, so names inside it need no resolving.
    let top = root.resolve(dst)?.ok_or(Fail::Errno(Errno::ENOENT))?;
    for h in hs.iter().filter(|h| {
        h.mountpoint.starts_with("/sys/fs/cgroup") && h.mountpoint != Path::new("/sys/fs/cgroup")
    }) {
        let Some(name) = h.mountpoint.file_name() else {
            continue;
        };
        match mkdirat(&top, name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let sub = openat(
            &top,
            name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        place(h, sub.as_fd())?;
        // cpu,cpuacct is reachable as cpu and cpuacct too
        let name = name.to_string_lossy();
        if name.contains(',') {
            for part in name.split(',') {
                let _ = symlinkat(&*name, &top, part);
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let ro = Attr {
            set: libc::MOUNT_ATTR_RDONLY,
            clr: 0,
        };
        setattr(top.as_fd(), ro, false)?;
    }
    Ok(())
}
