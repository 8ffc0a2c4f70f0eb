//! Terminals for `process.terminal`: the pty made inside the container (so its slave lives in
//! the container's devpts), the hand-off of the master to `--console-socket`, and the proxy a
//! foreground `run` keeps between its own stdio and the master.
//! runs in: the container init (`open_pty`) and the runtime (`send_to_console_socket`, `Proxy`).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

use crate::error::{Ctx, Error, Result};

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);
nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, libc::winsize);

/// In the init, after pivot_root (or in an exec child, after chroot): a new pty whose slave
/// becomes stdin/stdout/stderr and the controlling terminal (the caller leads its session
/// already). Returns the master. The slave is given to `uid`; its group stays the one devpts
/// gave it (`gid=5`, tty, in the usual /dev/pts mount), as runc leaves it.
pub fn open_pty(size: Option<(u16, u16)>, uid: u32) -> Result<OwnedFd> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx(|| "open /dev/ptmx for process.terminal")?;
    grantpt(&master).ctx(|| "grantpt")?;
    unlockpt(&master).ctx(|| "unlockpt")?;
    let name = ptsname_r(&master).ctx(|| "ptsname")?;
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ on the master we own, with a valid winsize.
        unsafe { set_winsize(master.as_raw_fd(), &ws) }.ctx(|| "set process.consoleSize")?;
    }
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("open {name}"))?;
    // The container's user must own its terminal, as a login would leave it. A devpts whose
    // owner is not mapped here (EINVAL, EPERM) or that is read-only keeps its owner, as in runc.
    match nix::unistd::fchown(&slave, Some(uid.into()), None) {
        Ok(()) | Err(Errno::EINVAL | Errno::EPERM | Errno::EROFS) => {}
        Err(e) => return Err(Error::sys(format!("chown {name}"), e)),
    }
    for target in 0..=2 {
        // SAFETY: dup2 onto the stdio numbers of this process; `slave` stays valid.
        Errno::result(unsafe { libc::dup2(slave.as_raw_fd(), target) })
            .ctx(|| "dup2 pty slave onto stdio")?;
    }
    // SAFETY: TIOCSCTTY on our stdin, now the slave; we lead our session.
    Errno::result(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) })
        .ctx(|| "make the pty the controlling terminal")?;
    // SAFETY: into_raw_fd gives up PtyMaster's ownership of a valid fd.
    Ok(unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(master)) })
}

/// Hand the master to the client listening on `--console-socket` (containerd, podman).
pub fn send_to_console_socket(socket: &Path, master: &OwnedFd) -> Result<()> {
    let s = UnixStream::connect(socket)
        .map_err(|e| Error::io("connect to --console-socket", socket, e))?;
    crate::process::channel::send_with_fd(s.as_raw_fd(), b"/dev/ptmx", master.as_raw_fd())
        .ctx(|| format!("send the pty master to {}", socket.display()))
}

/// The runtime's own terminal in raw mode while it proxies; restored on drop.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

/// Copy our terminal's size to the master (on start and on SIGWINCH).
pub fn copy_winsize(master: &OwnedFd) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ into a winsize we own; fails harmlessly when stdin is no terminal.
    // A 0x0 size (no real terminal behind stdin, e.g. under script(1)) is not copied.
    if unsafe { get_winsize(0, &mut ws) }.is_ok() && ws.ws_row > 0 && ws.ws_col > 0 {
        // SAFETY: TIOCSWINSZ on the master we own.
        let _ = unsafe { set_winsize(master.as_raw_fd(), &ws) };
    }
}

pub fn set_nonblocking(fd: &OwnedFd) {
    if let Ok(fl) = fcntl(fd, FcntlArg::F_GETFL) {
        let _ = fcntl(
            fd,
            FcntlArg::F_SETFL(OFlag::from_bits_retain(fl) | OFlag::O_NONBLOCK),
        );
    }
}

/// Move what is readable on `from` to `to` (one read when `once`: a blocking stdin must not be
/// read again after poll said it had data). False when `from` is finished (EOF, or EIO from a
/// master whose slave side is all closed).
pub fn pump(from: &OwnedFd, to: i32, once: bool) -> bool {
    let mut buf = [0u8; 8192];
    loop {
        match nix::unistd::read(from, &mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                // SAFETY: `to` is an fd we hold open for the life of the proxy.
                let out = unsafe { std::os::fd::BorrowedFd::borrow_raw(to) };
                let mut off = 0;
                while off < n {
                    match nix::unistd::write(out, &buf[off..n]) {
                        Ok(w) => off += w,
                        Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
                        Err(_) => return false,
                    }
                }
                if once {
                    return true;
                }
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return true,
            Err(_) => return false,
        }
    }
}

/// Our stdin as an owned dup (the proxy reads it without closing fd 0).
pub fn dup_stdin() -> Option<OwnedFd> {
    // SAFETY: dup of fd 0; the result is a new fd we own.
    let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
    // SAFETY: a fresh fd from F_DUPFD_CLOEXEC.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}
