//! Log lines for `--log FILE` / `--log-format json` / `--debug`, as runc writes them and as
//! containerd and podman read them: text is `time="…" level=… msg="…"`, json one object per line
//! with `level`, `msg`, `time` (RFC 3339). Without `--log` the lines go to stderr (text).
//! runs in: the runtime, and in the processes it clones (container init, exec child) until
//! they execve: they inherit the sink fd and write to it directly.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

use crate::cli::LogFormat;
use crate::error::{Error, Result};

struct Logger {
    json: bool,
    debug: bool,
    /// `--log FILE`, opened once at start-up (O_APPEND, close-on-exec).
    file: Option<OwnedFd>,
    /// The runtime's stderr at start-up, as (st_dev, st_ino): a child whose fd 2 has become the
    /// container's terminal must not write our lines into it.
    stderr_id: Option<(u64, u64)>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Without `--log`: a close-on-exec duplicate of the runtime's stderr. The container init keeps
/// it until it reports ready (its own fd 2 may already be the container's pty by then) and
/// closes it there, so that a caller reading our stderr to EOF does not wait for `start`.
static STDERR_DUP: AtomicI32 = AtomicI32::new(-1);

/// Set up logging for this invocation. `--log FILE` is created (or appended to) here, so it
/// exists even when nothing is logged, as with runc.
pub fn init(file: Option<PathBuf>, format: LogFormat, debug: bool) -> Result<()> {
    let file = file.map(|p| open_log(&p)).transpose()?;
    if file.is_none() {
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on our own stderr returns a new fd or -1.
        let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
        STDERR_DUP.store(fd, Ordering::SeqCst);
    }
    let _ = LOGGER.set(Logger {
        json: format == LogFormat::Json,
        debug,
        file,
        stderr_id: file_id(2),
    });
    Ok(())
}

fn open_log(p: &Path) -> Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(p)
        .map(OwnedFd::from)
        .map_err(|e| Error::io("open --log", p, e))
}

fn file_id(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: fstat into a zeroed stat buffer of the right type.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; a bad fd just fails.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino))
}

/// The fds a cloned child must keep open to go on logging (the init closes everything else).
pub fn inherited_fds() -> Vec<RawFd> {
    let mut v: Vec<RawFd> = LOGGER
        .get()
        .and_then(|l| l.file.as_ref())
        .map(|f| f.as_raw_fd())
        .into_iter()
        .collect();
    let dup = STDERR_DUP.load(Ordering::SeqCst);
    if dup >= 0 {
        v.push(dup);
    }
    v
}

/// In the container init once it has told the runtime it is ready: stop holding the runtime's
/// stderr open (later lines go to fd 2 only while it is still that same file).
pub fn release_stderr() {
    let fd = STDERR_DUP.swap(-1, Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: the duplicate made in `init`, owned by this process, closed once.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
}

/// One log line in the chosen format (no newline).
pub fn format_line(json: bool, level: &str, msg: &str, time: &str) -> String {
    if json {
        serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
    } else {
        format!("time=\"{time}\" level={level} msg={msg:?}")
    }
}

fn write_all(fd: BorrowedFd, data: &[u8]) {
    // One write per line: with O_APPEND, lines of concurrent writers do not interleave.
    let _ = nix::unistd::write(fd, data);
}

/// Where stderr lines go in this process: the duplicate while it is held, else fd 2 while it is
/// still the runtime's stderr.
fn stderr_fd(l: &Logger) -> Option<RawFd> {
    let dup = STDERR_DUP.load(Ordering::SeqCst);
    if dup >= 0 {
        return Some(dup);
    }
    (l.stderr_id.is_some() && file_id(2) == l.stderr_id).then_some(2)
}

fn emit(level: &str, msg: &str) {
    let Some(l) = LOGGER.get() else { return };
    let now = crate::state::now_rfc3339();
    if let Some(f) = &l.file {
        let line = format_line(l.json, level, msg, &now) + "\n";
        write_all(f.as_fd(), line.as_bytes());
    } else if let Some(fd) = stderr_fd(l) {
        let line = format_line(false, level, msg, &now) + "\n";
        // SAFETY: an fd of this process that stays open for the duration of the write.
        write_all(unsafe { BorrowedFd::borrow_raw(fd) }, line.as_bytes());
    }
}

/// Is `--debug` on?
pub fn debug_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.debug)
}

pub fn debug(msg: impl AsRef<str>) {
    if debug_enabled() {
        emit("debug", msg.as_ref());
    }
}

/// A warning: to `--log` when given, else one `hookrun: warning: …` line on stderr.
pub fn warn(msg: impl AsRef<str>) {
    let msg = msg.as_ref();
    match LOGGER.get() {
        Some(l) if l.file.is_some() => emit("warning", msg),
        Some(l) => {
            if let Some(fd) = stderr_fd(l) {
                let line = format!("hookrun: warning: {msg}\n");
                // SAFETY: an fd of this process that stays open for the duration of the write.
                write_all(unsafe { BorrowedFd::borrow_raw(fd) }, line.as_bytes());
            }
        }
        None => eprintln!("hookrun: warning: {msg}"),
    }
}

/// The one place a failed command reports: an `error` line in `--log` (text or json), and one
/// line `hookrun: error: MESSAGE` on stderr either way, the message as design.md words it.
pub fn error(msg: impl AsRef<str>) {
    let msg = msg.as_ref();
    if LOGGER.get().is_some_and(|l| l.file.is_some()) {
        emit("error", msg);
    }
    eprintln!("{}", error_line(msg));
}

/// The stderr line of a failed command.
pub fn error_line(msg: &str) -> String {
    format!("hookrun: error: {msg}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_level_msg_time() {
        let l = format_line(
            true,
            "error",
            "container \"x\" does not exist",
            "2026-11-25T00:00:00Z",
        );
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist");
        assert_eq!(v["time"], "2026-11-25T00:00:00Z");
        assert!(!l.contains('\n'));
    }

    #[test]
    fn text_lines_are_logfmt_on_one_line() {
        let l = format_line(false, "debug", "a \"b\"\nc", "2026-11-25T00:00:00Z");
        assert_eq!(
            l,
            r#"time="2026-11-25T00:00:00Z" level=debug msg="a \"b\"\nc""#
        );
        assert_eq!(
            error_line("container not running"),
            "hookrun: error: container not running"
        );
    }
}
