//! `run` in the foreground: create, start, forward signals to the container, run the stop
//! sequence on SIGTERM/SIGINT, reap, return the container's exit status, delete unless --keep.
//! runs in: the runtime (`run`), which stays the init's parent.

use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::cli::CreateOpts;
use crate::container::{self, pidfd_signal};
use crate::error::{Ctx, Error, Result};
use crate::hooks::sequence;
use crate::state::Root;
use crate::tty;

/// Signals the foreground runtime handles itself instead of dying of them.
pub fn handled() -> SigSet {
    let mut s = SigSet::empty();
    for sig in Signal::iterator() {
        if !matches!(
            sig,
            Signal::SIGKILL
                | Signal::SIGSTOP
                | Signal::SIGSEGV
                | Signal::SIGBUS
                | Signal::SIGILL
                | Signal::SIGFPE
                | Signal::SIGTRAP
                | Signal::SIGABRT
                | Signal::SIGTSTP
                | Signal::SIGTTIN
                | Signal::SIGTTOU
        ) {
            s.add(sig);
        }
    }
    s
}

/// Exit status the way a shell reports it: code, or 128+N for signal N.
pub fn exit_code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

pub fn run(root: &Root, id: &str, opts: &CreateOpts, detach: bool, keep: bool) -> Result<i32> {
    if detach {
        drop(container::create(root, id, opts)?);
        if let Err(e) = container::start(root, id) {
            let _ = container::delete(root, id, true);
            return Err(e);
        }
        return Ok(0);
    }
    // Blocked before the clone so no signal is lost before the signalfd exists; the init
    // unblocks everything first thing.
    let mask = handled();
    mask.thread_block().ctx(|| "block signals")?;
    // Orphans of a container without its own pid namespace come to us to be reaped.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut opts = opts.clone();
    opts.foreground = true;
    let container::Created {
        dir, child, pty, ..
    } = container::create(root, id, &opts)?;
    // Other commands (state, kill, and start and delete below) may now lock the container.
    drop(dir);
    // start reads exec.fifo to EOF, so it also reports the init's last steps (exec) failing.
    if let Err(e) = container::start_release(root, id) {
        let _ = waitpid(Pid::from_raw(child.pid), None);
        let _ = container::delete(root, id, true);
        return Err(e);
    }
    // PostStart runs in a child of ours while we supervise: SIGTERM during a hung PostStart then
    // starts the stop sequence, which cancels the hook. A failed PostStart stops the container
    // itself, and we see it exit like any other way. Without a PostStart there is nothing to
    // fork for (start_release set the phase to Running already).
    if container::has_post_start(root, id) {
        spawn_post_start(root, id);
    }
    let stop = || {
        let t0 = Instant::now();
        let opts = sequence::StopOpts {
            no_wait: true,
            ..Default::default()
        };
        if let Err(e) = sequence::stop(root, id, &opts) {
            crate::log::warn(format!("stop sequence: {e}"));
        }
        root.open(id)
            .and_then(|d| d.load())
            .map(|s| sequence::kill_after(&s, t0.elapsed()))
            .unwrap_or(crate::hooks::lifecycle::MIN_AFTER_PRESTOP)
    };
    let kill = || {
        if let Ok(st) = root.open(id).and_then(|d| d.load()) {
            sequence::kill_everything(&st);
        }
    };
    let code = supervise(
        &mask,
        child.pid,
        &child.pidfd,
        pty,
        Some(StopHooks {
            stop: &stop,
            kill: &kill,
        }),
    )?;
    if let Ok(dir) = root.open(id) {
        let msg = format!("Container {id} exited with status {code}");
        let _ = crate::events::record(&dir.path, crate::events::Type::Normal, "Exited", &msg);
    }
    if !keep {
        let _ = container::delete(root, id, true);
    }
    Ok(code)
}

/// Fork the runner of the PostStart hook; it reports a hook that failed, and says nothing when
/// the container it ran for stopped (or was deleted by us) meanwhile: that is not its error.
fn spawn_post_start(root: &Root, id: &str) {
    // SAFETY: fork of the single-threaded runtime; the child runs PostStart and _exits.
    let pid = unsafe { libc::fork() };
    if pid != 0 {
        if pid < 0 {
            crate::log::warn(format!(
                "fork the PostStart runner: {}",
                crate::error::errno_text(Errno::last())
            ));
        }
        return;
    }
    let code = match sequence::post_start(root, id) {
        Ok(()) => 0,
        Err(Error::NotFound(_) | Error::NotRunning) => 0,
        Err(e) => {
            crate::log::error(e.to_string());
            1
        }
    };
    // SAFETY: _exit in a forked child.
    unsafe { libc::_exit(code) }
}

/// What SIGTERM/SIGINT do to a foreground `run`: `stop` runs the stop sequence up to the stop
/// signal and says how long to wait before `kill`.
pub struct StopHooks<'a> {
    pub stop: &'a dyn Fn() -> Duration,
    pub kill: &'a dyn Fn(),
}

/// Wait for our child `pid` (a container init, or an exec'd process) and return its exit status
/// while forwarding signals to it and proxying its terminal. With `stop_hooks`, SIGTERM and
/// SIGINT start the stop sequence instead (once), and `kill` follows when its time is up.
/// `mask` must have been blocked since before the child was cloned.
pub fn supervise(
    mask: &SigSet,
    pid: i32,
    pidfd: &std::os::fd::OwnedFd,
    pty: Option<std::os::fd::OwnedFd>,
    stop_hooks: Option<StopHooks>,
) -> Result<i32> {
    let sfd = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC).ctx(|| "signalfd")?;
    let mut kill_at: Option<Instant> = None;
    let mut stopping = false;
    // With a terminal: our stdin (raw) → pty master → our stdout.
    let _raw = pty.as_ref().map(|m| {
        tty::set_nonblocking(m);
        tty::copy_winsize(m);
        tty::RawMode::enter()
    });
    let mut master = pty;
    let mut input = master.as_ref().and_then(|_| tty::dup_stdin());
    let code = loop {
        let timeout = match kill_at {
            None => PollTimeout::NONE,
            Some(t) => PollTimeout::try_from(
                t.saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(i32::MAX as u128) as i32,
            )
            .unwrap_or(PollTimeout::ZERO),
        };
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = &master {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if let Some(i) = &input {
            fds.push(PollFd::new(i.as_fd(), PollFlags::POLLIN));
        }
        let r = poll(&mut fds, timeout);
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if let Some(m) = &master {
            if ready[1] && !tty::pump(m, 1, false) {
                master = None;
            }
        }
        if let (Some(i), Some(m)) = (&input, &master) {
            if ready[ready.len() - 1] && !tty::pump(i, m.as_raw_fd(), true) {
                input = None;
            }
        }
        match r {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(crate::error::Error::sys("poll", e)),
            Ok(0) => {
                // grace period over
                let _ = pidfd_signal(pidfd, libc::SIGKILL);
                if let Some(h) = &stop_hooks {
                    (h.kill)();
                }
                kill_at = None;
                continue;
            }
            Ok(_) => {}
        }
        if !ready[0] {
            continue;
        }
        let Ok(Some(info)) = sfd.read_signal() else {
            continue;
        };
        let sig = info.ssi_signo as i32;
        if sig == libc::SIGCHLD {
            let mut done = None;
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(ws) if ws.pid() == Some(Pid::from_raw(pid)) => done = exit_code(ws),
                    Ok(_) => {}
                }
            }
            if let Some(c) = done {
                break c;
            }
        } else if let (true, Some(h)) = (sig == libc::SIGTERM || sig == libc::SIGINT, &stop_hooks) {
            if !stopping {
                stopping = true;
                kill_at = Some(Instant::now() + (h.stop)());
            }
        } else if sig == libc::SIGWINCH && master.is_some() {
            // The kernel tells the container's foreground group itself.
            if let Some(m) = &master {
                tty::copy_winsize(m);
            }
        } else {
            let _ = pidfd_signal(pidfd, sig);
        }
    };
    if let Some(m) = &master {
        tty::pump(m, 1, false);
    }
    Ok(code)
}
