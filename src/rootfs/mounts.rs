//! `mounts[]`: each entry made at its destination resolved in the root, onto that fd (binds as
//! detached trees moved there, other types by mount(2) on the fd's /proc/self/fd name).
//! runs in: the container init, in its mount namespace, before pivot_root.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use super::inroot::{fd_is_dir, ident, on_procfs, Fail, Root};
use super::mountapi::{clone_tree, fd_path, move_onto, set_propagation, setattr};
use super::options::{Attr, MountOpts};
use super::{cgroupfs, Seal};
use crate::error::{Ctx, Error, Result};
use crate::spec::Plan;

/// Files under /proc that may be bind-mounted over (lxcfs and friends); anything else on /proc
/// is refused (CVE-2019-16884, CVE-2019-19921).
pub const PROC_OK: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/sys/kernel/ns_last_pid",
];

/// The source path of a bind, as the runtime and the init both resolve it (relative: to the
/// bundle).
pub fn bind_source(plan: &Plan, m: &Mount) -> Option<PathBuf> {
    m.source().as_ref().map(|s| {
        if s.is_absolute() {
            s.clone()
        } else {
            plan.bundle.join(s)
        }
    })
}

/// How a mount is named in errors: `mount SRC on DST`, with the type when the source does not
/// say it (an unknown one fails with a bare "no such device" that otherwise points nowhere).
fn describe(m: &Mount, typ: &str, bind: bool) -> String {
    let dst = m.destination().display();
    let src = m
        .source()
        .as_deref()
        .map(|s| s.display().to_string())
        .unwrap_or_else(|| typ.to_string());
    if bind || src == typ {
        format!("mount {src} on {dst}")
    } else {
        format!("mount {src} (type {typ}) on {dst}")
    }
}

/// One `mounts[]` entry. `given`: the bind source the runtime opened already (a user
/// namespace may not reach it). Mounts made read-only only at the end go to `seals`.
pub fn mount_one(
    plan: &Plan,
    root: &Root,
    m: &Mount,
    given: Option<OwnedFd>,
    seals: &mut Vec<Seal>,
) -> Result<()> {
    let o = MountOpts::parse(m.options().as_deref().unwrap_or(&[]));
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if o.bind { "bind" } else { "none" });
    let shown = || describe(m, typ, o.bind);
    if typ == "cgroup" || typ == "cgroup2" {
        let in_cgns = plan
            .ns(oci_spec::runtime::LinuxNamespaceType::Cgroup)
            .is_some();
        return cgroupfs::mount_cgroup(root, m.destination(), &o, in_cgns).ctx(shown);
    }
    let r = if o.bind {
        let src = bind_source(plan, m).ok_or_else(|| Error::invalid(shown()))?;
        bind(root, m.destination(), &src, &o, given)
    } else {
        new_fs(root, m, typ, &o).map(|seal| {
            seals.extend(seal.map(|(fd, attr, rattr)| Seal {
                fd,
                attr,
                rattr,
                what: shown(),
            }))
        })
    };
    r.map_err(|e| e.into_error(shown))
}

/// A filesystem mounted by mount(2) on the destination's fd. Returns what to seal at the end:
/// (the new mount's root, its attributes, its recursive attributes).
fn new_fs(
    root: &Root,
    m: &Mount,
    typ: &str,
    o: &MountOpts,
) -> std::result::Result<Option<(OwnedFd, Attr, Attr)>, Refused> {
    let dst = m.destination();
    let at = if typ == "proc" || typ == "sysfs" {
        // A symlink here would take the mount elsewhere (it has been an attack): these must
        // land on the directory the path names.
        root.ordinary_dir(dst)?.ok_or_else(|| {
            Refused::Why(format!(
                "filesystem \"{typ}\" must be mounted on ordinary directory"
            ))
        })?
    } else {
        root.dir(dst)?
    };
    guard_proc(root, at.as_fd(), at.as_fd(), typ == "proc")?;
    // tmpfs and /dev are made writable and sealed read-only at the end (as runc does): mount
    // points, device nodes and createContainer hooks may still write there.
    let late = typ == "tmpfs" || dst == Path::new("/dev");
    let mut flags = o.flags;
    if late {
        flags.remove(MsFlags::MS_RDONLY);
    }
    let data = o.data.join(",");
    let src = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    mount(
        Some(&src),
        &fd_path(at.as_fd()),
        Some(typ),
        flags,
        (!data.is_empty()).then_some(data.as_str()),
    )?;
    // The new mount's root: a fresh lookup crosses onto it (the old fd stays below it).
    let top = root
        .resolve(dst)?
        .ok_or_else(|| Refused::Why("the mount point went away".into()))?;
    for p in &o.propagation {
        set_propagation(top.as_fd(), *p)?;
    }
    let mut attr = Attr::default();
    if late && o.flags.contains(MsFlags::MS_RDONLY) {
        attr.set = libc::MOUNT_ATTR_RDONLY;
    }
    Ok((!attr.is_empty() || !o.rattr.is_empty()).then_some((top, attr, o.rattr)))
}

/// A failure of a check (already worded) or of a call.
pub enum Refused {
    Why(String),
    Call(Fail),
}

impl From<Fail> for Refused {
    fn from(f: Fail) -> Self {
        Refused::Call(f)
    }
}

impl From<nix::errno::Errno> for Refused {
    fn from(e: nix::errno::Errno) -> Self {
        Refused::Call(Fail::Errno(e))
    }
}

impl Refused {
    fn into_error(self, shown: impl Fn() -> String) -> Error {
        match self {
            Refused::Why(w) => Error::invalid(format!("{}: {w}", shown())),
            Refused::Call(f) => f.error(shown()),
        }
    }
}

/// A bind: the source as a detached tree (`given` by the runtime, or cloned here), its
/// attributes set while it is still detached, then moved onto the destination.
fn bind(
    root: &Root,
    dst: &Path,
    src: &Path,
    o: &MountOpts,
    given: Option<OwnedFd>,
) -> std::result::Result<(), Refused> {
    let tree = match given {
        Some(t) => t,
        None => clone_tree(src, o.recursive())?,
    };
    // The mount point: a directory for a directory, else a file.
    let (anchor, at) = if fd_is_dir(tree.as_fd())? {
        let d = root.dir(dst)?;
        (d.try_clone().map_err(Fail::from)?, d)
    } else {
        root.file(dst)?
    };
    guard_proc(root, at.as_fd(), anchor.as_fd(), on_procfs(tree.as_fd()))?;
    setattr(tree.as_fd(), o.attr, false)?;
    setattr(tree.as_fd(), o.rattr, true)?;
    move_onto(tree.as_fd(), at.as_fd())?;
    // Attached now: the tree's fd is the new mount's root.
    for p in &o.propagation {
        set_propagation(tree.as_fd(), *p)?;
    }
    Ok(())
}

/// CVE-2019-16884, CVE-2019-19921: nothing may cover procfs, whose files the kernel and the
/// LSMs act through, except a procfs on /proc itself and binds onto the files lxcfs serves.
/// Judged on what the destination *is* once symlinks were followed in the root: on a procfs,
/// or the container's /proc directory or below it. `dir` is `at` itself when a directory,
/// else the directory it is in; `procfs`: what is mounted is a procfs.
fn guard_proc(
    root: &Root,
    at: BorrowedFd,
    dir: BorrowedFd,
    procfs: bool,
) -> std::result::Result<(), Refused> {
    let proc_dir = root.resolve_nofollow(Path::new("/proc"))?;
    let proc_id = match &proc_dir {
        Some(p) => Some(ident(p.as_fd())?),
        None => None,
    };
    let within = on_procfs(at)
        || match proc_id {
            Some(id) => root.is_within(dir, id)?,
            None => false,
        };
    if !within {
        return Ok(());
    }
    let id = ident(at)?;
    if Some(id) == proc_id {
        return if procfs {
            Ok(())
        } else {
            Err(Refused::Why(
                "only a procfs may be mounted on /proc (CVE-2019-16884)".into(),
            ))
        };
    }
    for p in PROC_OK {
        if let Some(f) = root.resolve_nofollow(Path::new(p))? {
            if ident(f.as_fd())? == id {
                return Ok(());
            }
        }
    }
    Err(Refused::Why(format!(
        "mounting over /proc is refused (only proc, or binds onto {})",
        PROC_OK.join(", ")
    )))
}
