//! `checkpoint` and `restore` with runc's flags. hookrun has no criu support (criu 3.17 cannot
//! dump on this project's kernels for any runtime): both verbs check their arguments as runc
//! does, so a mistake is named as runc names it, then fail with one line saying so.
//! runs in: the runtime.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::error::{Error, Result};
use crate::state::{Root, Status};

/// `checkpoint`'s flags, runc's names.
#[derive(Debug, Args, Clone, Default)]
pub struct CheckpointOpts {
    /// Path for the criu image files (default: ./checkpoint)
    #[arg(long, value_name = "DIR")]
    pub image_path: Option<PathBuf>,
    /// Path for criu's work files and logs
    #[arg(long, value_name = "DIR")]
    pub work_path: Option<PathBuf>,
    /// Previous criu image files of a pre-dump, relative to --image-path
    #[arg(long, value_name = "DIR")]
    pub parent_path: Option<PathBuf>,
    /// Leave the process running after checkpointing
    #[arg(long)]
    pub leave_running: bool,
    /// Allow open TCP connections
    #[arg(long)]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long)]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long)]
    pub shell_job: bool,
    /// Restore memory pages lazily (userfaultfd)
    #[arg(long)]
    pub lazy_pages: bool,
    /// criu writes \0 to this fd once lazy-pages is ready
    #[arg(long, default_value_t = -1, allow_hyphen_values = true, value_name = "FD")]
    pub status_fd: i32,
    /// ADDRESS:PORT of the page server
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub page_server: Option<String>,
    /// Handle file locks
    #[arg(long)]
    pub file_locks: bool,
    /// Dump the memory only and leave the container running
    #[arg(long)]
    pub pre_dump: bool,
    /// Cgroups mode: soft (default), full or strict
    #[arg(long, value_name = "MODE")]
    pub manage_cgroups_mode: Option<String>,
    /// Create this namespace, but do not restore its properties (repeatable)
    #[arg(long, value_name = "NS")]
    pub empty_ns: Vec<String>,
    /// Deduplicate memory images
    #[arg(long)]
    pub auto_dedup: bool,
}

/// `restore`'s flags, runc's names.
#[derive(Debug, Args, Clone, Default)]
pub struct RestoreOpts {
    /// Unix socket to send the pty master to
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Path of the criu image files (default: ./checkpoint)
    #[arg(long, value_name = "DIR")]
    pub image_path: Option<PathBuf>,
    /// Path for criu's work files and logs
    #[arg(long, value_name = "DIR")]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections
    #[arg(long)]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long)]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long)]
    pub shell_job: bool,
    /// Handle file locks
    #[arg(long)]
    pub file_locks: bool,
    /// Cgroups mode: soft (default), full or strict
    #[arg(long, value_name = "MODE")]
    pub manage_cgroups_mode: Option<String>,
    /// Path to the bundle directory
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// Write the restored init's pid to FILE
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Do not become a subreaper for reparented processes
    #[arg(long)]
    pub no_subreaper: bool,
    /// Use MS_MOVE + chroot instead of pivot_root
    #[arg(long)]
    pub no_pivot: bool,
    /// Create this namespace, but do not restore its properties (repeatable)
    #[arg(long, value_name = "NS")]
    pub empty_ns: Vec<String>,
    /// Deduplicate memory images
    #[arg(long)]
    pub auto_dedup: bool,
    /// Restore memory pages lazily (userfaultfd)
    #[arg(long)]
    pub lazy_pages: bool,
    /// LSM profile for the restored process, TYPE:NAME
    #[arg(long, value_name = "TYPE:NAME")]
    pub lsm_profile: Option<String>,
    /// LSM mount context for the restore
    #[arg(long, value_name = "CONTEXT")]
    pub lsm_mount_context: Option<String>,
}

const WHY: &str = "hookrun has no checkpoint/restore (criu) support";

pub fn checkpoint(root: &Root, id: &str, o: &CheckpointOpts) -> Result<()> {
    let dir = root.open(id)?;
    let st = dir.load()?;
    let status = dir.status(&st);
    if matches!(status, Status::Created | Status::Stopped) {
        return Err(Error::WrongState {
            id: id.to_string(),
            status: status.to_string(),
            hint: "only a running or paused container can be checkpointed".into(),
        });
    }
    let image = o.image_path.clone().unwrap_or_else(default_image_path);
    if let Some(parent) = &o.parent_path {
        check_parent_path(&image, parent)?;
    }
    if let Some(ps) = &o.page_server {
        check_page_server(ps)?;
    }
    check_common(o.manage_cgroups_mode.as_deref(), &o.empty_ns)?;
    Err(Error::NotImplemented {
        verb: "checkpoint",
        why: WHY,
    })
}

pub fn restore(root: &Root, id: &str, o: &RestoreOpts) -> Result<()> {
    crate::state::validate_id(id)?;
    if root.open(id).is_ok() {
        return Err(Error::Exists(id.to_string()));
    }
    crate::spec::load(&o.bundle)?;
    let image = o.image_path.clone().unwrap_or_else(default_image_path);
    if !image.is_dir() {
        return Err(Error::invalid(format!(
            "--image-path {}: not a directory of criu images",
            image.display()
        )));
    }
    check_common(o.manage_cgroups_mode.as_deref(), &o.empty_ns)?;
    Err(Error::NotImplemented {
        verb: "restore",
        why: WHY,
    })
}

/// runc's default image path: `checkpoint` in the current directory.
fn default_image_path() -> PathBuf {
    std::env::current_dir()
        .unwrap_or_default()
        .join("checkpoint")
}

/// A pre-dump's parent: relative to the image path, and an existing directory there.
fn check_parent_path(image: &Path, parent: &Path) -> Result<()> {
    if parent.is_absolute() {
        return Err(Error::invalid(format!(
            "--parent-path {}: must be relative (to --image-path)",
            parent.display()
        )));
    }
    let real = image.join(parent);
    match std::fs::metadata(&real) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::invalid(format!(
            "invalid --parent-path: {}: not a directory",
            real.display()
        ))),
        Err(e) => Err(Error::invalid(format!(
            "invalid --parent-path: {}",
            Error::io("stat", &real, e)
        ))),
    }
}

fn check_page_server(ps: &str) -> Result<()> {
    let ok = ps
        .rsplit_once(':')
        .is_some_and(|(a, p)| !a.is_empty() && p.parse::<u16>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "--page-server {ps:?}: use ADDRESS:PORT"
        )))
    }
}

fn check_common(mode: Option<&str>, empty_ns: &[String]) -> Result<()> {
    if let Some(m) = mode {
        if !matches!(m, "soft" | "full" | "strict") {
            return Err(Error::invalid(format!(
                "--manage-cgroups-mode {m:?}: use soft, full or strict"
            )));
        }
    }
    const NS: [&str; 8] = [
        "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
    ];
    match empty_ns.iter().find(|n| !NS.contains(&n.as_str())) {
        Some(n) => Err(Error::invalid(format!(
            "--empty-ns {n:?}: unknown namespace (one of {})",
            NS.join(", ")
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_path_must_be_relative_and_exist() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("parent")).unwrap();
        std::fs::write(d.path().join("file"), "").unwrap();
        assert!(check_parent_path(d.path(), Path::new("parent")).is_ok());
        for (p, want) in [
            ("/abs", "--parent-path /abs: must be relative"),
            ("missing", "invalid --parent-path: stat "),
            ("file", "not a directory"),
        ] {
            let e = check_parent_path(d.path(), Path::new(p)).unwrap_err();
            assert!(e.to_string().contains(want), "{p}: {e}");
        }
    }

    #[test]
    fn page_server_modes_and_namespaces() {
        assert!(check_page_server("10.0.0.1:8080").is_ok());
        assert!(check_page_server("host").is_err());
        assert!(check_page_server(":1").is_err());
        assert!(check_common(Some("full"), &["network".into()]).is_ok());
        assert!(check_common(Some("loose"), &[]).is_err());
        assert!(check_common(None, &["net".into()]).is_err());
    }
}
