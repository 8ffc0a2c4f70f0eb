//! The state directory of one container: state.json (atomic writes), the exec.fifo, the per-container
//! lock, id validation, and the status derived from facts on every read.
//! runs in: the runtime (every verb).

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{Ctx, Error, Result};

pub const STATE_FILE: &str = "state.json";
pub const FIFO_FILE: &str = "exec.fifo";
pub const CONFIG_FILE: &str = "config.json";

/// The OCI status, always derived (see [`ContainerDir::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// hookrun's own lifecycle phase, finer than the OCI status (design.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Phase {
    #[default]
    Created,
    Starting,
    Running,
    Stopping,
    Stopped,
}

/// What is written to state.json. Status is not stored: it is derived on read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    /// Host pid of the container init.
    pub pid: i32,
    /// Start time of the init (clock ticks after boot, /proc/<pid>/stat field 22): a pid whose start
    /// time differs is a recycled pid and is never signalled.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    #[serde(default)]
    pub phase: Phase,
    /// Whether init runs in its own pid namespace (then `kill --all` reaches every process in it).
    #[serde(default)]
    pub own_pid_ns: bool,
    /// Counts stop sequences: PreStop runs once per stop, and a stop is known by this number.
    #[serde(default)]
    pub stop_seq: u32,
    /// The container's cgroup directories, and which of them create made (for kill and delete).
    #[serde(default)]
    pub cgroup: crate::cgroup::Recorded,
}

/// `^[A-Za-z0-9][A-Za-z0-9_.-]*$`, at most 1024 bytes; `.` and `..` and anything with `/` refused.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid container id {id:?}: it must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$ and be at most 1024 bytes"
        )))
    }
}

/// The state directory's name for an id. A file name holds at most 255 bytes but an id may have
/// 1024, so a long id is cut and given a hash suffix (`~` never occurs in an id, so no short id
/// can collide); the full id lives in state.json.
pub fn dir_name(id: &str) -> String {
    if id.len() <= 200 {
        return id.to_string();
    }
    // FNV-1a, 64 bit: stable across builds, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}~{h:016x}", &id[..128])
}

/// Facts about a live process, read from /proc/<pid>/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let st = procfs::process::Process::new(pid).ok()?.stat().ok()?;
    Some((st.state, st.starttime))
}

/// The state root (`--root`).
#[derive(Debug, Clone)]
pub struct Root {
    pub path: PathBuf,
}

impl Root {
    pub fn new(path: PathBuf) -> Self {
        Root { path }
    }

    fn ensure(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .ctx(|| format!("create state root {}", self.path.display()))
    }

    /// Ids of every container directory under the root (sorted).
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let rd = match fs::read_dir(&self.path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(Error::io("read", &self.path, e)),
        };
        for e in rd.flatten() {
            if let Ok(st) = read_state(&e.path()) {
                if dir_name(&st.id) == e.file_name().to_string_lossy() {
                    ids.push(st.id);
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Make a new container directory, locked. Fails if the id is taken.
    pub fn create(&self, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        self.ensure()?;
        let path = self.path.join(dir_name(id));
        match fs::DirBuilder::new().mode(0o711).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.to_string()))
            }
            Err(e) => return Err(Error::io("create", &path, e)),
        }
        let dir = ContainerDir::lock(id, path)?;
        Ok(dir)
    }

    /// Open and lock an existing container directory.
    pub fn open(&self, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        let path = self.path.join(dir_name(id));
        let dir = match ContainerDir::lock(id, path) {
            Err(Error::Sys {
                errno: Errno::ENOENT,
                ..
            }) => return Err(Error::NotFound(id.to_string())),
            r => r?,
        };
        // A concurrent delete may have removed it while we waited for the lock; a create that died
        // before writing state.json leaves a directory without it.
        if !dir.path.join(STATE_FILE).exists() {
            return Err(Error::NotFound(id.to_string()));
        }
        Ok(dir)
    }
}

/// One container's state directory, held under an exclusive flock for the life of this value.
#[derive(Debug)]
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    _lock: OwnedFd,
}

impl ContainerDir {
    fn lock(id: &str, path: PathBuf) -> Result<Self> {
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&path)
            .ctx(|| format!("open state dir {}", path.display()))?;
        let fd: OwnedFd = f.into();
        // SAFETY: flock on an fd we own; blocks until other commands on this container finish.
        let r = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) };
        Errno::result(r).ctx(|| format!("lock state dir {}", path.display()))?;
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            _lock: fd,
        })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn fifo(&self) -> PathBuf {
        self.file(FIFO_FILE)
    }

    pub fn load(&self) -> Result<State> {
        read_state(&self.path)
    }

    /// Write state.json to a temp file, fsync, then rename over the old one.
    pub fn save(&self, st: &State) -> Result<()> {
        let data = serde_json::to_vec_pretty(st).expect("state serialises");
        write_atomic(&self.file(STATE_FILE), &data)
    }

    /// Remove the directory and everything in it. It is first renamed out of the way (a name no
    /// id can have): a command still writing into it without the lock — a cancelled PostStart
    /// recording its end — then finds no directory, instead of refilling the one being removed.
    pub fn remove(self) -> Result<()> {
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        let grave = self
            .path
            .with_file_name(format!(".{name}.deleted.{}", std::process::id()));
        fs::rename(&self.path, &grave).map_err(|e| Error::io("remove", &self.path, e))?;
        fs::remove_dir_all(&grave).map_err(|e| Error::io("remove", &grave, e))
    }

    /// The state of a container that has not stopped; a stopped one is an error saying `hint`.
    pub fn load_live(&self, hint: &str) -> Result<State> {
        let st = self.load()?;
        let status = self.status(&st);
        if status == Status::Stopped {
            return Err(Error::WrongState {
                id: self.id.clone(),
                status: status.to_string(),
                hint: hint.to_string(),
            });
        }
        Ok(st)
    }

    pub fn status(&self, st: &State) -> Status {
        derive_status(st, self.fifo().exists())
    }
}

pub fn read_state(dir: &Path) -> Result<State> {
    let p = dir.join(STATE_FILE);
    let data = fs::read(&p).map_err(|e| Error::io("read", &p, e))?;
    serde_json::from_slice(&data).map_err(|e| Error::invalid(format!("{}: {e}", p.display())))
}

/// Status from facts: is init alive with the recorded start time, is it frozen, is the fifo there.
pub fn derive_status(st: &State, fifo_present: bool) -> Status {
    // Frozen: the container's cgroup, v1 freezer or cgroup2, as the kernel reports it.
    status_from(proc_stat(st.pid), st.pid_start, fifo_present, || {
        crate::cgroup::frozen(&st.cgroup, st.pid)
    })
}

fn status_from(
    stat: Option<(char, u64)>,
    pid_start: u64,
    fifo_present: bool,
    is_frozen: impl FnOnce() -> bool,
) -> Status {
    match stat {
        Some((state, start)) if start == pid_start && state != 'Z' && state != 'X' => {
            if fifo_present {
                Status::Created
            } else if is_frozen() {
                Status::Paused
            } else {
                Status::Running
            }
        }
        _ => Status::Stopped,
    }
}

/// Run `f` holding an exclusive flock on `<dir>/<name>`: for read-modify-write of small files
/// (events, hook journal) that commands update without holding the container's lock.
pub fn with_file_lock<T>(dir: &Path, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let p = dir.join(name);
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .mode(0o600)
        .open(&p)
        .map_err(|e| Error::io("open", &p, e))?;
    // SAFETY: flock on an fd we own; released when `lock` is dropped.
    Errno::result(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) })
        .ctx(|| format!("lock {}", p.display()))?;
    f()
}

/// Replace a file atomically: a temp file in the same directory (named for this process, so
/// two writers never share one), then rename. Readers see the old or the new file, whole.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_file(path, data, false)
}

/// The same, and durable: fsync of the file before the rename and of the directory after, for
/// what must survive a crash (the hook journal).
pub fn write_durable(path: &Path, data: &[u8]) -> Result<()> {
    write_file(path, data, true)
}

fn write_file(path: &Path, data: &[u8], durable: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io("write", &tmp, e))?;
    f.write_all(data)
        .and_then(|_| if durable { f.sync_all() } else { Ok(()) })
        .map_err(|e| Error::io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))?;
    if durable {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// The current time in RFC 3339 with nanoseconds, as runc prints `created`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "web-1", "A.b_c", "0"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(1025);
        for bad in ["", ".", "..", "a/b", "-x", "_x", "a b", "é", long.as_str()] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
        assert!(validate_id(&"a".repeat(1024)).is_ok());
    }

    #[test]
    fn long_ids_get_short_distinct_dir_names() {
        assert_eq!(dir_name("web"), "web");
        let a = "a".repeat(1024);
        let mut b = a.clone();
        b.replace_range(1000..1001, "b");
        assert!(dir_name(&a).len() <= 255);
        assert_ne!(dir_name(&a), dir_name(&b));
        assert_eq!(dir_name(&a), dir_name(&a.clone()));
    }

    #[test]
    fn status_derivation() {
        let alive = Some(('S', 42));
        assert_eq!(status_from(alive, 42, true, || false), Status::Created);
        assert_eq!(status_from(alive, 42, false, || false), Status::Running);
        assert_eq!(status_from(alive, 42, false, || true), Status::Paused);
        // recycled pid: another start time
        assert_eq!(status_from(alive, 41, false, || false), Status::Stopped);
        assert_eq!(
            status_from(Some(('Z', 42)), 42, true, || false),
            Status::Stopped
        );
        assert_eq!(status_from(None, 42, false, || false), Status::Stopped);
    }

    #[test]
    fn atomic_write_replaces() {
        let d = std::env::temp_dir().join(format!("hookrun-aw-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let p = d.join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }
}
