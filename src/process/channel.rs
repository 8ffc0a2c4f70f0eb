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
//!                                                mounts, /dev
//!  [only when the config has create-time hooks]
//!                     ◀─────────────────────────  sync 2a: Msg::Mounted
//!  prestart, createRuntime hooks
//!  sync 2b: Msg::HooksDone ───────────────────▶  createContainer hooks
//!                                                pivot_root, sysctl,
//!                                                masked/readonly paths, rlimits, cwd,
//!                                                entrypoint lookup
//!                     ◀─────────────────────────  sync 2: Msg::Ready   (or Msg::Error{msg})
//!  write pid file, state.json; exit             open exec.fifo for writing: blocks
//!                                                until `start` reads it, then
//!                                                startContainer hooks, uid/gid, caps,
//!                                                no_new_privs, execve
//!  (`start` reads exec.fifo to EOF: the write end closes on execve; anything written
//!   before that is the error of those last steps)
//! ```
//! A child that dies without a message shows up as EOF on the runtime's end (the init's copy of
//! the socket is its only one), so the runtime never hangs on a dead child.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType, UnixAddr,
};
use serde::{Deserialize, Serialize};

use crate::error::{Ctx, Error, Result};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Msg {
    /// The init's pid as the runtime sees it (sent right after clone; hooks' state needs it).
    Pid { pid: i32 },
    /// sync 1: the parent has done its part (id maps, cgroup); the init may set itself up.
    Go,
    /// sync 2a: mounts are made, pivot_root not yet: run prestart and createRuntime hooks.
    Mounted,
    /// sync 2b: those hooks succeeded; the init runs createContainer hooks and goes on.
    HooksDone,
    /// The pty master of a `process.terminal` container, passed as SCM_RIGHTS (just before
    /// sync 2); the runtime hands it to `--console-socket` or proxies it in a foreground run.
    Pty,
    /// The fd number of a seccomp listener in the sender, which the runtime takes with
    /// pidfd_getfd and hands to the agent (seccomp/notify.rs: written without allocating).
    SeccompListener { fd: i32 },
    /// The agent has the listener: the sender closes its copy and goes on.
    SeccompDone,
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

    /// Send a message with an fd attached (SCM_RIGHTS).
    pub fn send_fd(&self, m: &Msg, fd: RawFd) -> Result<()> {
        send_with_fd(
            self.fd.as_raw_fd(),
            &serde_json::to_vec(m).expect("msg serialises"),
            fd,
        )
        .ctx(|| "send fd to init channel")
    }

    /// The next message, or `None` when the other end is gone.
    pub fn recv(&self) -> Result<Option<Msg>> {
        Ok(self.recv_fd()?.map(|(m, _)| m))
    }

    /// The next message and the fd sent with it, if any.
    pub fn recv_fd(&self) -> Result<Option<(Msg, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; 64 * 1024];
        let (n, fd) = loop {
            match recv_with_fd(self.fd.as_raw_fd(), &mut buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.ctx(|| "receive from init channel")?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(|m| Some((m, fd)))
            .map_err(|e| Error::Child(format!("bad message on init channel: {e}")))
    }

    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

/// One datagram carrying `data` and one fd.
pub fn send_with_fd(sock: RawFd, data: &[u8], fd: RawFd) -> nix::Result<()> {
    let iov = [IoSlice::new(data)];
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<UnixAddr>(sock, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None).map(drop)
}

/// One datagram into `buf`: its length and the first fd that came with it (others are closed).
pub fn recv_with_fd(sock: RawFd, buf: &mut [u8]) -> nix::Result<(usize, Option<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<UnixAddr>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut got: Vec<OwnedFd> = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel installed these fds in our table for us to own.
            got.extend(fds.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
        }
    }
    let n = msg.bytes;
    Ok((n, got.into_iter().next()))
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
        let f = std::fs::File::open("/dev/null").unwrap();
        b.send_fd(&Msg::Pty, f.as_raw_fd()).unwrap();
        let (m, fd) = a.recv_fd().unwrap().unwrap();
        assert_eq!(m, Msg::Pty);
        let fd = fd.expect("fd passed");
        let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(target, std::path::Path::new("/dev/null"));
        drop(b);
        assert_eq!(a.recv().unwrap(), None);
    }
}
