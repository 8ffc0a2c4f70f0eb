//! /dev: the default and configured device nodes (made with mknodat in their directory's fd, or
//! the host's node bound in a user namespace) and the standard symlinks.
//! runs in: the container init, before pivot_root.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, makedev, mknodat, umask, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDeviceType, Mount};

use super::inroot::{Fail, Root};
use super::mountapi::{clone_tree, move_onto};
use crate::error::{Ctx, Error, Result};
use crate::spec::Plan;

struct Dev {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

fn default_devices() -> Vec<Dev> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(n, ma, mi)| Dev {
        path: PathBuf::from("/dev").join(n),
        kind: SFlag::S_IFCHR,
        major: ma,
        minor: mi,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

pub(super) fn create_devices(plan: &Plan, root: &Root, userns: bool) -> Result<()> {
    let mut devs = default_devices();
    for d in plan.linux().devices().iter().flatten() {
        let kind = match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        devs.retain(|x| x.path != *d.path());
        devs.push(Dev {
            path: d.path().clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    for d in devs {
        let what = || format!("create device {}", d.path.display());
        make_node(root, &d, userns).map_err(|e| match e {
            Some(f) => f.error(what()),
            None => Error::invalid(format!("{}: a directory is in the way", what())),
        })?;
    }
    Ok(())
}

/// One node, in its directory (made inside the root where missing). `Err(None)`: a directory
/// is where the node should be.
fn make_node(root: &Root, d: &Dev, userns: bool) -> std::result::Result<(), Option<Fail>> {
    let (dir, name) = root.parent(&d.path)?;
    match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR => {
            return Err(None)
        }
        // Whatever the image has there (a file, a link) is replaced, never followed.
        Ok(_) => {
            unlinkat(&dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir).map_err(Fail::from)?
        }
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(Some(e.into())),
    }
    if userns && d.kind != SFlag::S_IFIFO {
        // No mknod in a user namespace: the host's node, bound onto an empty file.
        let f = openat(
            &dir,
            name.as_os_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(Fail::from)?;
        let tree = clone_tree(&d.path, false).map_err(Fail::from)?;
        move_onto(tree.as_fd(), f.as_fd()).map_err(Fail::from)?;
        return Ok(());
    }
    // The config's mode, not the umask's.
    let old = umask(Mode::empty());
    let made = mknodat(
        &dir,
        name.as_os_str(),
        d.kind,
        Mode::from_bits_truncate(d.mode),
        makedev(d.major, d.minor),
    );
    umask(old);
    made.map_err(Fail::from)?;
    let node = openat(
        &dir,
        name.as_os_str(),
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(Fail::from)?;
    fchownat(
        &node,
        "",
        Some(Uid::from_raw(d.uid)),
        Some(Gid::from_raw(d.gid)),
        AtFlags::AT_EMPTY_PATH,
    )
    .map_err(Fail::from)?;
    Ok(())
}

pub(super) fn dev_symlinks(root: &Root, mounts: &[Mount]) -> Result<()> {
    let dev = root.dir(Path::new("/dev")).ctx(|| "open /dev")?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    if mounts
        .iter()
        .any(|m| m.destination() == Path::new("/dev/pts"))
    {
        match unlinkat(&dev, "ptmx", UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys("remove /dev/ptmx", e)),
        }
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        match symlinkat(target, &dev, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("symlink /dev/{name}"), e)),
        }
    }
    Ok(())
}
