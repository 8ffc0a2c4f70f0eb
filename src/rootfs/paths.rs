//! After pivot_root: sysctls, read-only and masked paths, the late read-only seals, root
//! propagation and the read-only root, each on an fd resolved in the new root.
//! runs in: the container init, right after pivot_root (or chroot with --no-pivot).

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::{fstat, major, minor, SFlag};

use super::inroot::{fd_is_dir, on_procfs, Fail, Res, Root};
use super::mountapi::{clone_fd, empty_ro_tmpfs, move_onto, set_propagation, setattr};
use super::options::{propagation_flag, Attr};
use super::Prepared;
use crate::error::{Ctx, Error, Result};
use crate::spec::Plan;

const RDONLY: Attr = Attr {
    set: libc::MOUNT_ATTR_RDONLY,
    clr: 0,
};

pub(super) fn finish(plan: &Plan, prep: Prepared) -> Result<()> {
    let linux = plan.linux();
    for (k, v) in linux.sysctl().iter().flatten() {
        write_sysctl(k, v)?;
    }
    let root = Root::open(Path::new("/"))?;
    for p in linux.readonly_paths().iter().flatten() {
        let p = Path::new(p);
        readonly(&root, p).ctx(|| format!("make {} read-only", p.display()))?;
    }
    let mut null: Option<OwnedFd> = None;
    for p in linux.masked_paths().iter().flatten() {
        let p = Path::new(p);
        mask(&root, p, &mut null).map_err(|e| e.error(format!("mask {}", p.display())))?;
    }
    // tmpfs and /dev mounts asked to be read-only, and recursive attributes of non-bind mounts.
    for s in prep.seals {
        setattr(s.fd.as_fd(), s.attr, false).ctx(|| s.what.clone())?;
        setattr(s.fd.as_fd(), s.rattr, true).ctx(|| s.what.clone())?;
    }
    let top = root.fd();
    if let Some(f) = linux
        .rootfs_propagation()
        .as_deref()
        .and_then(propagation_flag)
    {
        set_propagation(top, f).ctx(|| "set rootfs propagation")?;
    }
    if plan
        .spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        setattr(top, RDONLY, false).ctx(|| "remount / read-only")?;
    }
    Ok(())
}

/// A sysctl is written only into a procfs (a file the image put at /proc/sys would take it
/// otherwise).
fn write_sysctl(k: &str, v: &str) -> Result<()> {
    let p = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
    let what = || format!("write sysctl {k}");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&p)
        .ctx(what)?;
    if !on_procfs(f.as_fd()) {
        return Err(Error::invalid(format!(
            "{}: {} is not on a procfs",
            what(),
            p.display()
        )));
    }
    f.write_all(v.as_bytes()).ctx(what)
}

/// A recursive bind of `p` onto itself, its top mount read-only (what runc does); a missing
/// path is skipped.
fn readonly(root: &Root, p: &Path) -> Res<()> {
    let Some(at) = root.resolve(p)? else {
        return Ok(());
    };
    let tree = clone_fd(at.as_fd(), true)?;
    setattr(tree.as_fd(), RDONLY, false)?;
    move_onto(tree.as_fd(), at.as_fd())?;
    Ok(())
}

/// Hide `p`: a directory under an empty read-only tmpfs, anything else under /dev/null (checked
/// to be the null device: an image's /dev/null could be anything). A missing path is skipped.
fn mask(root: &Root, p: &Path, null: &mut Option<OwnedFd>) -> Res<()> {
    let Some(at) = root.resolve(p)? else {
        return Ok(());
    };
    let tree = if fd_is_dir(at.as_fd())? {
        empty_ro_tmpfs()?
    } else {
        if null.is_none() {
            *null = Some(dev_null(root)?);
        }
        clone_fd(null.as_ref().expect("set").as_fd(), false)?
    };
    move_onto(tree.as_fd(), at.as_fd())?;
    Ok(())
}

fn dev_null(root: &Root) -> Res<OwnedFd> {
    let fd = root
        .resolve_nofollow(Path::new("/dev/null"))?
        .ok_or(Fail::Other("/dev/null is missing".into()))?;
    if !is_null_device(fd.as_fd())? {
        return Err(Fail::Other(
            "/dev/null is not the null device (char 1:3)".into(),
        ));
    }
    Ok(fd)
}

fn is_null_device(fd: BorrowedFd) -> nix::Result<bool> {
    let st = fstat(fd)?;
    let chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    Ok(chr && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3)
}
