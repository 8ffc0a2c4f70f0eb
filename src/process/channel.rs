//! The one channel between the runtime and the container init: a SOCK_SEQPACKET socketpair carrying
//! serde-encoded [`Msg`] datagrams. runs in: both ends.
//!
//! ```text
//!  runtime (create / run)                       container init (clone3 child)
//!  ───────────────────────                      ─────────────────────────────
//!  clone3(new namespaces, CLONE_PIDFD) ───────▶  (blocks in recv)
//!  [new userns] write setgroups/uid_map/gid_map
//!  sync 1: Msg::Go ───────────────────────────▶  setns(joined ns), unshare(cgroup ns),
//!                                                hostname, lo up, keyring, oom_score_adj,
//!                                                mounts, /dev, pivot_root, sysctl,
//!                                                masked/readonly paths, rlimits, cwd,
//!                                                entrypoint lookup
//!                     ◀─────────────────────────  sync 2: Msg::Ready   (or Msg::Error{msg})
//!  write pid file, state.json; exit             open exec.fifo for writing: blocks
//!                                                until `start` reads it, then
//!                                                uid/gid, caps, no_new_privs, execve
//! ```
//! A child that dies without a message shows up as EOF on the runtime's end (the init's copy of
//! the socket is its only one), so the runtime never hangs on a dead child.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{Ctx, Error, Result};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Msg {
    /// sync 1: the parent has done its part (id maps, cgroup); the init may set itself up.
    Go,
    /// sync 2: the init is set up and about to block on exec.fifo.
    Ready,
    /// The init failed; `msg` names the step and the cause.
    Error { msg: String },
}

pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (runtime's end, init's end).
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx(|| "socketpair")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, m: &Msg) -> Result<()> {
        let buf = serde_json::to_vec(m).expect("msg serialises");
        send(self.fd.as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL).ctx(|| "send to init channel")?;
        Ok(())
    }

    /// The next message, or `None` when the other end is gone.
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.ctx(|| "receive from init channel")?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| Error::Child(format!("bad message on init channel: {e}")))
    }

    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_eof() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::Go).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::Go));
        b.send(&Msg::Error {
            msg: "mount proc on /proc: permission denied".into(),
        })
        .unwrap();
        assert_eq!(
            a.recv().unwrap(),
            Some(Msg::Error {
                msg: "mount proc on /proc: permission denied".into()
            })
        );
        drop(b);
        assert_eq!(a.recv().unwrap(), None);
    }
}
