//! /dev: the default and configured device nodes (made with mknod, or bind-mounted from the host
//! in a user namespace) and the standard symlinks.
//! runs in: the container init, before pivot_root.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chown, Gid, Uid};
use oci_spec::runtime::{LinuxDeviceType, Mount};

use super::{mnt, secure_join};
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

pub(super) fn create_devices(plan: &Plan, userns: bool) -> Result<()> {
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
        let dst = secure_join(&plan.rootfs, &d.path);
        let what = || format!("create device {}", d.path.display());
        if let Some(p) = dst.parent() {
            fs::create_dir_all(p).ctx(what)?;
        }
        if let Ok(md) = fs::symlink_metadata(&dst) {
            if md.is_dir() {
                return Err(Error::invalid(format!(
                    "{}: a directory is in the way",
                    what()
                )));
            }
            let _ = fs::remove_file(&dst);
        }
        if userns && d.kind != SFlag::S_IFIFO {
            // No mknod in a user namespace: bind the host's node instead.
            fs::File::create(&dst).ctx(what)?;
            mnt(Some(&d.path), &dst, None, MsFlags::MS_BIND, None).ctx(what)?;
            continue;
        }
        mknod(
            &dst,
            d.kind,
            Mode::from_bits_truncate(d.mode),
            makedev(d.major, d.minor),
        )
        .ctx(what)?;
        // mknod honours the umask; the config's mode wins.
        fs::set_permissions(&dst, fs::Permissions::from_mode(d.mode)).ctx(what)?;
        chown(&dst, Some(Uid::from_raw(d.uid)), Some(Gid::from_raw(d.gid))).ctx(what)?;
    }
    Ok(())
}

pub(super) fn dev_symlinks(rootfs: &Path, mounts: &[Mount]) -> Result<()> {
    let dev = secure_join(rootfs, Path::new("/dev"));
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
        let _ = fs::remove_file(dev.join("ptmx"));
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        match symlink(target, dev.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("symlink", dev.join(name), e)),
        }
    }
    Ok(())
}
