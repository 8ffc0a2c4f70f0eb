//! `type: cgroup` mounts: the host's hierarchies as the container should see them.
//! runs in: the container init, before pivot_root.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;

use super::{mnt, MountOpts};

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
pub(super) fn mount_cgroup(dst: &Path, o: &MountOpts, in_cgns: bool) -> nix::Result<()> {
    let hs = host_hierarchies();
    let flags = o.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    fs::create_dir_all(dst).map_err(|_| Errno::EIO)?;
    let v2_only = hs
        .iter()
        .any(|h| h.fstype == "cgroup2" && h.mountpoint == Path::new("/sys/fs/cgroup"));
    let place = |h: &Hierarchy, at: &Path, f: MsFlags| -> nix::Result<()> {
        if in_cgns {
            let data = (h.fstype == "cgroup").then_some(h.opts.as_str());
            mnt(Some(Path::new(&h.fstype)), at, Some(&h.fstype), f, data)
        } else {
            let src = h.mountpoint.join(own_cgroup(h));
            mnt(
                Some(&src),
                at,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
            mnt(
                None,
                at,
                None,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | f,
                None,
            )
        }
    };
    if v2_only {
        let h = hs
            .iter()
            .find(|h| h.mountpoint == Path::new("/sys/fs/cgroup"))
            .expect("found");
        return place(h, dst, flags);
    }
    let tmpfs_flags =
        (flags & !MsFlags::MS_RDONLY) | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mnt(
        Some(Path::new("tmpfs")),
        dst,
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755"),
    )?;
    for h in hs.iter().filter(|h| {
        h.mountpoint.starts_with("/sys/fs/cgroup") && h.mountpoint != Path::new("/sys/fs/cgroup")
    }) {
        let Some(name) = h.mountpoint.file_name() else {
            continue;
        };
        let at = dst.join(name);
        fs::create_dir_all(&at).map_err(|_| Errno::EIO)?;
        place(h, &at, flags)?;
        // cpu,cpuacct is reachable as cpu and cpuacct too
        let name = name.to_string_lossy();
        if name.contains(',') {
            for part in name.split(',') {
                let _ = symlink(&*name, dst.join(part));
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        mnt(
            None,
            dst,
            None,
            MsFlags::MS_REMOUNT | tmpfs_flags | MsFlags::MS_RDONLY,
            Some("mode=755"),
        )?;
    }
    Ok(())
}
