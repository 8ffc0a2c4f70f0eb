//! The one error type of hookrun, with the context a user needs (operation, path, id).
//! runs in: every process of the runtime; the container init sends its errors over the channel.

use std::path::PathBuf;

use nix::errno::Errno;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The id names no container under the state root. Wording is what clients key on.
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    #[error("container \"{0}\" already exists")]
    Exists(String),
    /// `kill` of a stopped container; wording is what clients key on.
    #[error("container not running")]
    NotRunning,
    /// A command that needs another status.
    #[error("container \"{id}\" is {status}: {hint}")]
    WrongState {
        id: String,
        status: String,
        hint: String,
    },
    /// A user mistake in the command line or config.json; the text names the field.
    #[error("{0}")]
    Invalid(String),
    /// A system call failed: `op path: cause`.
    #[error("{op}: {}", errno_text(*errno))]
    Sys { op: String, errno: Errno },
    /// Reading or writing a file failed.
    #[error("{op} {}: {}", path.display(), io_text(source))]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A verb runc has that hookrun accepts but does not carry out (checkpoint, restore).
    #[error("{verb}: not implemented: {why}")]
    NotImplemented {
        verb: &'static str,
        why: &'static str,
    },
    /// A failure reported by the container init (or the join helper), already worded.
    #[error("{0}")]
    Child(String),
    /// Anything that stopped `exec` from running its process, in runc's words ("exec failed:
    /// …"); runc exits 255 for these, the process's own status being 0-255 otherwise.
    #[error("exec failed: {0}")]
    Exec(Box<Error>),
}

impl Error {
    pub fn sys(op: impl Into<String>, errno: Errno) -> Self {
        Error::Sys {
            op: op.into(),
            errno,
        }
    }
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}

/// `strerror` text in the lowercase form the rest of our messages use
/// ("permission denied", "no such file or directory").
pub fn errno_text(errno: Errno) -> String {
    let d = errno.desc();
    let mut c = d.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => format!("errno {}", errno as i32),
    }
}

fn io_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => errno_text(Errno::from_raw(n)),
        None => e.to_string(),
    }
}

/// Attach an operation name to a nix result: `mount(...).ctx(|| format!("mount proc on /proc"))`.
pub trait Ctx<T> {
    fn ctx<S: Into<String>>(self, op: impl FnOnce() -> S) -> Result<T>;
}

impl<T> Ctx<T> for std::result::Result<T, Errno> {
    fn ctx<S: Into<String>>(self, op: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::sys(op(), e))
    }
}

impl<T> Ctx<T> for std::io::Result<T> {
    fn ctx<S: Into<String>>(self, op: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| match e.raw_os_error() {
            Some(n) => Error::sys(op(), Errno::from_raw(n)),
            None => Error::Child(format!("{}: {}", op().into(), e)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_op_then_cause() {
        let e = Error::sys("mount proc on /proc", Errno::EACCES);
        assert_eq!(e.to_string(), "mount proc on /proc: permission denied");
        let e = Error::io(
            "read",
            "/x/config.json",
            std::io::Error::from_raw_os_error(2),
        );
        assert_eq!(
            e.to_string(),
            "read /x/config.json: no such file or directory"
        );
        assert_eq!(
            Error::NotFound("web".into()).to_string(),
            "container \"web\" does not exist"
        );
    }
}
