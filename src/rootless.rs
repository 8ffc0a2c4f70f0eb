//! The one place that decides rootless policy: whether we run rootless, where state lives, and
//! how a user namespace gets its id maps without privilege (written directly for the caller's
//! own single ids with setgroups denied; through setuid newuidmap/newgidmap for /etc/subuid
//! ranges).
//! runs in: the runtime.

use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::LinuxIdMapping;

use crate::error::{Ctx, Error, Result};

/// Rootless when not root (`--rootless auto`), or when told.
pub fn is_rootless(flag: &str) -> bool {
    match flag {
        "true" => true,
        "false" => false,
        _ => !nix::unistd::geteuid().is_root(),
    }
}

/// The state root when `--root` is not given: /run/hookrun as root; else
/// `$XDG_RUNTIME_DIR/hookrun`, or a private `hookrun-<uid>` under the temp dir.
pub fn default_root() -> PathBuf {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return PathBuf::from("/run/hookrun");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() && Path::new(&d).is_dir() => PathBuf::from(d).join("hookrun"),
        _ => std::env::temp_dir().join(format!("hookrun-{uid}")),
    }
}

/// A state root that is not ours (another user made it, or it is open to others) is refused:
/// two users must never see or touch each other's containers.
pub fn check_root_owner(root: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let md = match std::fs::symlink_metadata(root) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // Behind a directory we may not search (another user's 0700 runtime dir): not ours.
        Err(e) => {
            return Err(Error::invalid(format!(
                "state root {}: {}; use --root or set XDG_RUNTIME_DIR",
                root.display(),
                crate::error::errno_text(nix::errno::Errno::from_raw(
                    e.raw_os_error().unwrap_or(0)
                ))
            )))
        }
    };
    let me = nix::unistd::geteuid().as_raw();
    if md.uid() != me || !md.is_dir() {
        return Err(Error::invalid(format!(
            "state root {}: owned by uid {}, not by you (uid {me}); use --root or set XDG_RUNTIME_DIR",
            root.display(),
            md.uid()
        )));
    }
    if md.mode() & 0o077 != 0 && !nix::unistd::geteuid().is_root() {
        return Err(Error::invalid(format!(
            "state root {}: mode {:o} lets other users in; chmod 700 it",
            root.display(),
            md.mode() & 0o777
        )));
    }
    Ok(())
}

/// True when `maps` is just one id of size 1 that is `own` on the host: an unprivileged process
/// may write that itself.
pub fn is_own_single(maps: &[LinuxIdMapping], own: u32) -> bool {
    maps.len() == 1 && maps[0].size() == 1 && maps[0].host_id() == own
}

/// Arguments for newuidmap/newgidmap: `PID inside outside count …`.
pub fn helper_args(pid: i32, maps: &[LinuxIdMapping]) -> Vec<String> {
    let mut a = vec![pid.to_string()];
    for m in maps {
        a.push(m.container_id().to_string());
        a.push(m.host_id().to_string());
        a.push(m.size().to_string());
    }
    a
}

fn run_helper(tool: &str, pid: i32, maps: &[LinuxIdMapping], field: &str) -> Result<()> {
    let out = Command::new(tool)
        .args(helper_args(pid, maps))
        .output()
        .map_err(|e| {
            Error::invalid(format!(
                "config.json: {field}: more than your own id needs {tool} (package uidmap): {e}"
            ))
        })?;
    if !out.status.success() {
        return Err(Error::invalid(format!(
            "config.json: {field}: {tool} refused the mapping ({}); check /etc/subuid and /etc/subgid",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Write the id maps of the user namespace of `pid` without privilege.
pub fn write_maps(pid: i32, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    if is_own_single(uids, uid) {
        std::fs::write(
            format!("/proc/{pid}/uid_map"),
            format!("{} {uid} 1\n", uids[0].container_id()),
        )
        .ctx(|| "write linux.uidMappings to uid_map")?;
    } else {
        run_helper("newuidmap", pid, uids, "linux.uidMappings")?;
    }
    if is_own_single(gids, gid) {
        // The kernel takes an unprivileged gid map only once setgroups is denied.
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny").ctx(|| "write setgroups deny")?;
        std::fs::write(
            format!("/proc/{pid}/gid_map"),
            format!("{} {gid} 1\n", gids[0].container_id()),
        )
        .ctx(|| "write linux.gidMappings to gid_map")?;
    } else {
        run_helper("newgidmap", pid, gids, "linux.gidMappings")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(v: serde_json::Value) -> Vec<LinuxIdMapping> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn own_single_id_is_written_directly_else_the_helpers() {
        let one = maps(serde_json::json!([{"containerID": 0, "hostID": 1001, "size": 1}]));
        assert!(is_own_single(&one, 1001));
        assert!(!is_own_single(&one, 1002));
        let many = maps(serde_json::json!([
            {"containerID": 0, "hostID": 1001, "size": 1},
            {"containerID": 1, "hostID": 100000, "size": 65536}
        ]));
        assert!(!is_own_single(&many, 1001));
        assert_eq!(
            helper_args(42, &many),
            ["42", "0", "1001", "1", "1", "100000", "65536"]
        );
    }

    #[test]
    fn rootless_flag() {
        assert!(is_rootless("true"));
        assert!(!is_rootless("false"));
    }

    #[test]
    fn foreign_or_open_state_roots_are_refused() {
        let d = tempfile::tempdir().unwrap();
        assert!(check_root_owner(&d.path().join("absent")).is_ok());
        assert!(check_root_owner(d.path()).is_ok());
        // /: owned by root; refused for anyone else
        if !nix::unistd::geteuid().is_root() {
            assert!(check_root_owner(Path::new("/")).is_err());
        }
    }
}
