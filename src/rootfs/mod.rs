//! The container's filesystem: the rootfs bind, config mounts, /dev, pivot_root, then masked and
//! read-only paths. Every path inside the rootfs is resolved in the root, by fd (inroot.rs).
//! runs in: the container init, in its new mount namespace, before and right after pivot_root;
//! [`open_bind_sources`] runs in the runtime, before the clone.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{fchdir, pivot_root};

use crate::error::{Ctx, Result};
use crate::spec::Plan;

mod cgroupfs;
mod dev;
mod inroot;
mod mountapi;
mod mounts;
mod options;
mod paths;

pub use options::{propagation_flag, MountOpts};

/// Every mount option hookrun acts on (`features`' `mountOptions`).
pub fn mount_options() -> Vec<&'static str> {
    options::known()
}

/// A mount whose attributes change only at the end (after /dev, hooks and pivot_root): a
/// read-only tmpfs or /dev, recursive attributes of a non-bind mount.
pub struct Seal {
    fd: OwnedFd,
    attr: options::Attr,
    rattr: options::Attr,
    what: String,
}

/// What [`prepare`] leaves for [`finish`].
pub struct Prepared {
    seals: Vec<Seal>,
}

/// Bind sources the runtime opens for the init, one per `mounts[]` entry (`None`: not a bind,
/// or the init opens it itself). In a user namespace the init's root is not the caller: a
/// source only the caller may reach (a 0700 directory) is reached through this detached tree.
/// Not root: the runtime may not clone mounts, and the caller's own user reaches its sources.
/// A source that fails to open here is left to the init, which reports the error.
pub fn open_bind_sources(plan: &Plan) -> Vec<Option<OwnedFd>> {
    use oci_spec::runtime::LinuxNamespaceType as T;
    let mounts = plan.spec.mounts().as_deref().unwrap_or(&[]);
    if plan.ns(T::User).is_none() || !nix::unistd::geteuid().is_root() {
        return Vec::new();
    }
    mounts
        .iter()
        .map(|m| {
            let o = MountOpts::parse(m.options().as_deref().unwrap_or(&[]));
            let cg = matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2"));
            let src = mounts::bind_source(plan, m).filter(|_| o.bind && !cg)?;
            mountapi::clone_tree(&src, o.recursive()).ok()
        })
        .collect()
}

/// The raw fds of [`open_bind_sources`], which the init must not close as inherited.
pub fn raw_fds(sources: &[Option<OwnedFd>]) -> Vec<RawFd> {
    sources.iter().flatten().map(|f| f.as_raw_fd()).collect()
}

/// Everything before pivot_root: propagation, the rootfs bind, config mounts, /dev.
/// `userns`: the init is in a user namespace (device nodes are then bound from the host).
pub fn prepare(plan: &Plan, userns: bool, mut sources: Vec<Option<OwnedFd>>) -> Result<Prepared> {
    let linux = plan.linux();
    let prop = linux
        .rootfs_propagation()
        .as_deref()
        .and_then(propagation_flag)
        // An unbindable tree cannot give the rootfs bind below: that one is applied to the new
        // root after pivot_root (finish), and rslave serves until then.
        .filter(|p| !p.contains(MsFlags::MS_UNBINDABLE))
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    // Stop our mounts reaching the host (and, for rslave, keep host mounts arriving).
    mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
        .ctx(|| "make / a private mount tree")?;
    let rootfs = &plan.rootfs;
    if prop.contains(MsFlags::MS_SHARED) {
        // pivot_root refuses a shared parent mount.
        if let Some(parent) = mount_point_of(rootfs.parent().unwrap_or(Path::new("/"))) {
            mount(
                None::<&str>,
                &parent,
                None::<&str>,
                MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .ctx(|| format!("make {} private", parent.display()))?;
        }
    }
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind rootfs {}", rootfs.display()))?;
    // Opened after the bind, so that what is mounted below lands on the bind, not under it.
    let root = inroot::Root::open(rootfs)?;

    let all = plan.spec.mounts().clone().unwrap_or_default();
    sources.resize_with(all.len(), || None);
    let mut seals = Vec::new();
    for (m, given) in all.iter().zip(sources) {
        mounts::mount_one(plan, &root, m, given, &mut seals)?;
    }
    let dev_bound = all.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && MountOpts::parse(m.options().as_deref().unwrap_or(&[])).bind
    });
    if !dev_bound {
        dev::create_devices(plan, &root, userns)?;
        dev::dev_symlinks(&root, &all)?;
    }
    Ok(Prepared { seals })
}

/// The mount point that holds `p` (longest mountinfo prefix).
fn mount_point_of(p: &Path) -> Option<PathBuf> {
    let mi = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mi.lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape))
        .filter(|mp| p.starts_with(mp))
        .max_by_key(|mp| mp.as_os_str().len())
}

/// A mountinfo path field: spaces, tabs, newlines and backslashes come octal-escaped.
fn unescape(s: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match (b[i], oct) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Switch to the rootfs: pivot_root, then drop the old root (made rslave first so the detach
/// does not travel back to the host). With `no_pivot`, MS_MOVE + chroot instead.
pub fn enter(plan: &Plan, no_pivot: bool) -> Result<()> {
    let rootfs = &plan.rootfs;
    if no_pivot {
        hide_host_procfs(rootfs)?;
        nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
        mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .ctx(|| "move rootfs to /")?;
        nix::unistd::chroot(".").ctx(|| "chroot")?;
        nix::unistd::chdir("/").ctx(|| "chdir /")?;
        return Ok(());
    }
    let old: OwnedFd = fs::File::open("/").ctx(|| "open /")?.into();
    let new: OwnedFd = fs::File::open(rootfs)
        .ctx(|| format!("open {}", rootfs.display()))?
        .into();
    fchdir(&new).ctx(|| "fchdir rootfs")?;
    pivot_root(".", ".").ctx(|| format!("pivot_root {}", rootfs.display()))?;
    fchdir(&old).ctx(|| "fchdir old root")?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "make old root rslave")?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach old root")?;
    nix::unistd::chdir("/").ctx(|| "chdir /")?;
    Ok(())
}

/// Before a chroot (`--no-pivot`): the host's mounts stay in this mount namespace, out of
/// sight but not out of the kernel's count. A full procfs or sysfs among them lets the container
/// mount a fresh, unmasked one in a user namespace of its own (the kernel allows that only where
/// such a mount is already fully visible). Detach them; where that is refused (locked in a user
/// namespace), cover them with an empty tmpfs.
fn hide_host_procfs(rootfs: &Path) -> Result<()> {
    let mi = fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo")?;
    let mut full: Vec<PathBuf> = Vec::new();
    for l in mi.lines() {
        let Some((pre, post)) = l.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let fstype = post.split(' ').next().unwrap_or("");
        if pre.len() < 5 || pre[3] != "/" || !matches!(fstype, "proc" | "sysfs") {
            continue;
        }
        let point = unescape(pre[4]);
        if !point.starts_with(rootfs) {
            full.push(point);
        }
    }
    for p in full {
        // The detach must not reach the host's copy of the mount.
        match mount(
            None::<&str>,
            &p,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            // Gone with a parent detached before it.
            Err(Errno::ENOENT) => continue,
            r => r.ctx(|| format!("make {} rslave", p.display()))?,
        }
        match umount2(&p, MntFlags::MNT_DETACH) {
            Err(Errno::EINVAL | Errno::EPERM) => mount(
                Some("tmpfs"),
                &p,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .ctx(|| format!("cover {}", p.display()))?,
            r => r.ctx(|| format!("detach {}", p.display()))?,
        }
    }
    Ok(())
}

/// After pivot_root: sysctls, read-only and masked paths, late seals, root propagation,
/// read-only root.
pub fn finish(plan: &Plan, prep: Prepared) -> Result<()> {
    paths::finish(plan, prep)
}

/// C string of a path, for the few raw calls that need one.
pub fn cpath(p: &Path) -> CString {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape("/a\\040b"), Path::new("/a b"));
        assert_eq!(unescape("/x\\134y"), Path::new("/x\\y"));
        assert_eq!(unescape("/plain"), Path::new("/plain"));
        assert_eq!(unescape("/odd\\9"), Path::new("/odd\\9"));
    }
}
