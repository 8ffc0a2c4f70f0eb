//! SCMP_ACT_NOTIFY: the listener fd of a loaded filter is handed to the seccomp agent at
//! `linux.seccomp.listenerPath`, with runtime-spec's ContainerProcessState as its message.
//!
//! ```text
//!  loading process (init at create, join child at exec)    runtime
//!  load the filter (SECCOMP_FILTER_FLAG_NEW_LISTENER)
//!  write(2) Msg::SeccompListener { fd } ───────────────▶ pidfd_getfd(process, fd)
//!                                                         connect listenerPath, send the state
//!                                                         with the fd (SCM_RIGHTS), close ours
//!                      ◀─────────────────────────────── Msg::SeccompDone
//!  close its copy, go on
//! ```
//! Between the load and the write nothing else runs: a call the filter holds for the agent
//! before the agent has the fd would wait forever. So the write is the one system call a
//! profile may not send to the agent, and the message is formatted without allocating.
//! runs in: the process that loads the filter (`announce`) and the runtime (`Agent::deliver`).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{Ctx, Error, Result};

/// `listenerPath` and `listenerMetadata` of a profile that uses SCMP_ACT_NOTIFY.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub path: PathBuf,
    pub metadata: String,
}

/// Where a container's listeners go and what the agent is told about the container.
#[derive(Debug, Clone)]
pub struct Agent {
    /// The socket; a relative `listenerPath` is taken from the bundle.
    pub path: PathBuf,
    pub metadata: String,
    pub id: String,
    pub bundle: PathBuf,
    pub annotations: HashMap<String, String>,
}

/// runtime-spec's ContainerProcessState: what the agent reads with the fd.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProcessState<'a> {
    oci_version: &'a str,
    fds: [&'a str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "str::is_empty")]
    metadata: &'a str,
    state: serde_json::Value,
}

impl Agent {
    /// The agent of a compiled profile, when the profile has a listener.
    pub fn of(
        filter: Option<&super::Filter>,
        id: &str,
        bundle: &Path,
        annotations: &HashMap<String, String>,
    ) -> Option<Agent> {
        let l = filter?.listener.as_ref()?;
        Some(Agent {
            path: bundle.join(&l.path),
            metadata: l.metadata.clone(),
            id: id.to_string(),
            bundle: bundle.to_path_buf(),
            annotations: annotations.clone(),
        })
    }

    /// The message for the listener of process `pid` (host pid) in the container whose init is
    /// `init_pid`, in status `status` ("creating" at create, "running" at exec, as runc says).
    fn message(&self, pid: i32, init_pid: i32, status: &str) -> Vec<u8> {
        let state = serde_json::json!({
            "ociVersion": crate::OCI_VERSION,
            "id": self.id,
            "status": status,
            "pid": init_pid,
            "bundle": self.bundle,
            "annotations": self.annotations,
        });
        serde_json::to_vec(&ProcessState {
            oci_version: crate::OCI_VERSION,
            fds: ["seccompFd"],
            pid,
            metadata: &self.metadata,
            state,
        })
        .expect("state serialises")
    }

    /// Take fd `fd` of the process behind `pidfd` (host pid `pid`) and send it to the agent.
    pub fn deliver(
        &self,
        pidfd: &OwnedFd,
        fd: i32,
        pid: i32,
        init_pid: i32,
        status: &str,
    ) -> Result<()> {
        // SAFETY: pidfd_getfd(2) with a pidfd we hold; the result is a new fd we own.
        let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
        let got = Errno::result(got)
            .ctx(|| format!("take the seccomp listener (fd {fd}) from process {pid}"))?;
        // SAFETY: a fresh fd from pidfd_getfd, owned here and closed when sent.
        let listener = unsafe { OwnedFd::from_raw_fd(got as RawFd) };
        let sock = UnixStream::connect(&self.path).map_err(|e| {
            Error::Child(format!(
                "failed to connect with seccomp agent specified in the seccomp profile: {}",
                Error::io("connect", &self.path, e)
            ))
        })?;
        let msg = self.message(pid, init_pid, status);
        crate::process::channel::send_with_fd(sock.as_raw_fd(), &msg, listener.as_raw_fd())
            .ctx(|| format!("send the seccomp listener to {}", self.path.display()))
    }
}

/// In the process that loaded the filter: tell the runtime the listener's fd number over the
/// channel `chan`, with one write(2) and no allocation (see the module comment).
pub fn announce(chan: RawFd, fd: RawFd) -> Result<()> {
    // The JSON of channel::Msg::SeccompListener { fd }, built on the stack.
    const HEAD: &[u8] = br#"{"SeccompListener":{"fd":"#;
    const TAIL: &[u8] = b"}}";
    let mut buf = [0u8; 64];
    let mut n = 0;
    for part in [HEAD, itoa(fd as u32, &mut [0u8; 10]), TAIL] {
        buf[n..n + part.len()].copy_from_slice(part);
        n += part.len();
    }
    // SAFETY: write(2) of `n` initialised bytes of `buf` to the channel socket.
    let rc = unsafe { libc::write(chan, buf.as_ptr().cast(), n) };
    Errno::result(rc)
        .map(drop)
        .ctx(|| "send the seccomp listener's fd number")
}

/// Decimal digits of `v` in `out`, without allocating.
fn itoa(mut v: u32, out: &mut [u8; 10]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &out[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::channel::{pair, Msg};

    #[test]
    fn the_announcement_is_the_channels_message() {
        let (a, b) = pair().unwrap();
        for fd in [0, 7, 1234567] {
            announce(b.raw(), fd).unwrap();
            assert_eq!(a.recv().unwrap(), Some(Msg::SeccompListener { fd }));
        }
    }

    fn message_for_test(a: &Agent, pid: i32, init_pid: i32, status: &str) -> serde_json::Value {
        serde_json::from_slice(&a.message(pid, init_pid, status)).unwrap()
    }

    #[test]
    fn the_agent_reads_a_container_process_state() {
        let a = Agent {
            path: "/run/agent.sock".into(),
            metadata: "bar".into(),
            id: "c1".into(),
            bundle: "/b".into(),
            annotations: HashMap::from([("k".to_string(), "v".to_string())]),
        };
        let m = message_for_test(&a, 42, 7, "creating");
        assert_eq!(m["fds"], serde_json::json!(["seccompFd"]));
        assert_eq!(m["pid"], 42);
        assert_eq!(m["metadata"], "bar");
        assert_eq!(m["ociVersion"], crate::OCI_VERSION);
        assert_eq!(m["state"]["id"], "c1");
        assert_eq!(m["state"]["status"], "creating");
        assert_eq!(m["state"]["pid"], 7);
        assert_eq!(m["state"]["bundle"], "/b");
        assert_eq!(m["state"]["annotations"]["k"], "v");
        let quiet = Agent {
            metadata: String::new(),
            ..a
        };
        assert!(message_for_test(&quiet, 1, 1, "running")
            .get("metadata")
            .is_none());
    }
}
