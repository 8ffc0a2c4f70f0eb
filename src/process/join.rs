//! The join path: a new process inside a running container — every namespace of its init, its
//! cgroups, its root, its process settings. `hookrun exec` and lifecycle Exec hooks both come
//! through here, so placement is right by construction.
//! runs in: the runtime (spawn) and the joining child (from clone3 to execve).
//!
//! ```text
//!  runtime                                       joining child (clone3, in the container's
//!                                                pid and time namespaces already)
//!  setns pid/time *_for_children → clone3 ───▶  (blocks in recv)
//!  write child pid to the container's cgroups
//!  (exec: the container lock is dropped here)
//!  sync 1: Msg::Go ─────────────────────────▶   setns user, then mnt uts ipc net cgroup;
//!                                                chroot to the init's root; pty; rlimits;
//!                                                cwd; [listener: seccomp, see below];
//!                                                uid/gid/caps/no_new_privs; seccomp
//!        ◀────────────────  Msg::Pty (when a terminal is asked for)
//!        ◀────────────────  Msg::SeccompListener { fd } (a profile with SCMP_ACT_NOTIFY)
//!  pidfd_getfd, hand it to the agent
//!  Msg::SeccompDone ────────────────────────▶
//!        ◀────────────────  EOF on execve (CLOEXEC), or Msg::Error{msg}
//! ```

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Process, Spec};

use super::channel::{self, Channel, Msg};
use crate::error::{Ctx, Error, Result};
use crate::security::{self, Creds};
use crate::state::State;

/// Namespace kinds in the order they are joined: user first (it owns the others), mnt before
/// the rest is not required but keeps /proc lookups below on the host until the end.
const KINDS: [(&str, libc::c_int); 6] = [
    ("user", libc::CLONE_NEWUSER),
    ("mnt", libc::CLONE_NEWNS),
    ("uts", libc::CLONE_NEWUTS),
    ("ipc", libc::CLONE_NEWIPC),
    ("net", libc::CLONE_NEWNET),
    ("cgroup", libc::CLONE_NEWCGROUP),
];

/// What to run and how.
pub struct JoinRequest<'a> {
    /// The container: its init, id, bundle and annotations (for a seccomp agent).
    pub state: &'a State,
    /// The container's config (saved at create): seccomp, sysctl-free process defaults.
    pub spec: &'a Spec,
    /// The process to run, already merged with the container's settings.
    pub process: &'a Process,
    /// stdin/stdout/stderr for the new process; `None` inherits the runtime's.
    pub stdio: Option<[RawFd; 3]>,
    pub preserve_fds: u32,
    /// The cgroup directories to put it in: the container's recorded ones, or the sub-cgroups
    /// `exec --cgroup` asked for (`explicit_cgroup`: then no fallback to the init's cgroup).
    pub cgroups: &'a [PathBuf],
    pub explicit_cgroup: bool,
}

pub struct Joined {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub pty: Option<OwnedFd>,
}

fn ns_link(pid: i32, kind: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/{kind}"))
}

/// True when the init's namespace of `kind` is not ours (so there is something to join).
fn differs(pid: i32, kind: &str) -> bool {
    let theirs = fs::read_link(ns_link(pid, kind)).ok();
    theirs.is_some() && theirs != fs::read_link(format!("/proc/self/ns/{kind}")).ok()
}

/// Put `child` in each cgroup directory. Where cgroup2 refuses (EBUSY: domain controllers are
/// on in that directory, so it may hold no process) and no sub-cgroup was asked for, the child
/// goes to the init's own cgroup below it, as runc does.
fn place(child: i32, init: i32, dirs: &[PathBuf], explicit: bool) -> Result<()> {
    let adding = |procs: &Path, e: std::io::Error| {
        let cause = e.raw_os_error().map_or_else(
            || e.to_string(),
            |n| crate::error::errno_text(Errno::from_raw(n)),
        );
        Error::Child(format!(
            "join cgroup: adding pid {child} to {}: {cause}",
            procs.display()
        ))
    };
    for d in dirs {
        let procs = d.join("cgroup.procs");
        match fs::write(&procs, child.to_string()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && !explicit => {
                let Some(alt) = init_cgroup2_below(d, init) else {
                    return Err(adding(&procs, e));
                };
                let procs = alt.join("cgroup.procs");
                fs::write(&procs, child.to_string()).map_err(|e| adding(&procs, e))?;
            }
            Err(e) => return Err(adding(&procs, e)),
        }
    }
    Ok(())
}

/// The init's cgroup2 directory when it lies below `dir` (the init moved itself into a child
/// cgroup): /proc/<init>/cgroup gives its path, whose leading part is `dir`'s trailing one.
fn init_cgroup2_below(dir: &Path, init: i32) -> Option<PathBuf> {
    let cg = fs::read_to_string(format!("/proc/{init}/cgroup")).ok()?;
    let path = cg.lines().find_map(|l| l.strip_prefix("0::"))?;
    let theirs: Vec<_> = Path::new(path).components().skip(1).collect();
    let ours: Vec<_> = dir.components().collect();
    let k = (0..=theirs.len().min(ours.len()))
        .rev()
        .find(|&k| ours[ours.len() - k..] == theirs[..k])?;
    (theirs.len() > k).then(|| {
        let mut p = dir.to_path_buf();
        p.extend(&theirs[k..]);
        p
    })
}

/// Start a process in the container; returns once it has exec'd (or with its error). `placed`
/// runs once the process is in the container's cgroups: from then on a `delete` or `kill
/// --all` reaches it, so `exec` lets go of the container lock there (a paused container can
/// then be resumed while an `exec --ignore-paused` waits).
pub fn spawn(req: &JoinRequest, placed: impl FnOnce()) -> Result<Joined> {
    let pid = req.state.pid;
    let (ours, theirs) = channel::pair()?;
    // Opened on the host side: the init's root (to chroot into after joining) and its
    // namespaces (by fd, so a pid reuse between here and setns cannot swap them).
    let root = open(
        &PathBuf::from(format!("/proc/{pid}/root")),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open /proc/{pid}/root"))?;
    let mut joins: Vec<(OwnedFd, CloneFlags, &str)> = Vec::new();
    for (kind, flag) in KINDS {
        if differs(pid, kind) {
            let fd = open_ns(pid, kind)?;
            joins.push((fd, CloneFlags::from_bits_retain(flag), kind));
        }
    }
    let filter =
        crate::seccomp::compile(req.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()))?;
    let st = req.state;
    let agent = crate::seccomp::Agent::of(filter.as_ref(), &st.id, &st.bundle, &st.annotations);
    let mut creds = Creds::from_process(req.process, !setgroups_denied(pid))?;
    creds.seccomp = filter;
    let args = req.process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(Error::invalid(
            "exec: no command given (process.args is empty)",
        ));
    }

    // pid and time namespaces are entered by the child at birth (our *_for_children). Without
    // privilege that needs the container's user namespace first, which the runtime cannot
    // leave again: then a short-lived middle process enters it and clones the child as our
    // sibling's twin (CLONE_PARENT), so the child is still ours to wait for.
    let user_join = joins
        .iter()
        .position(|(_, f, _)| *f == CloneFlags::CLONE_NEWUSER);
    let (child, pidfd) = if let (Some(u), false) = (user_join, nix::unistd::geteuid().is_root()) {
        let (userfd, _, _) = joins.remove(u);
        spawn_via_middle(req, theirs, &joins, &root, creds, args, &userfd, pid)?
    } else {
        let mut restore = Vec::new();
        for (fd, flag) in birth_namespaces(pid)? {
            let own = open(
                &PathBuf::from(format!(
                    "/proc/self/ns/{}",
                    if flag == CloneFlags::CLONE_NEWPID {
                        "pid"
                    } else {
                        "time"
                    }
                )),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ctx(|| "open own namespace")?;
            setns(&fd, flag).ctx(|| "join the container's pid/time namespace")?;
            restore.push((own, flag));
        }
        crate::log::debug(format!(
            "=> nsexec container setup: clone3 of a process for container {} (init {pid})",
            req.state.id
        ));
        let mut pidfd: libc::c_int = -1;
        let rc = super::parent::clone3(libc::CLONE_PIDFD as u64, Some(&mut pidfd));
        if rc == Ok(0) {
            drop(ours);
            child_main(req, theirs, &joins, &root, creds, args);
        }
        for (fd, flag) in restore {
            setns(&fd, flag).ctx(|| "return to the runtime's namespace")?;
        }
        let child = rc.ctx(|| "clone3 exec process")?;
        drop(theirs);
        // SAFETY: clone3 with CLONE_PIDFD stored a new fd we now own.
        (child, unsafe { OwnedFd::from_raw_fd(pidfd) })
    };
    run_to_exec(req, ours, child, pidfd, agent.as_ref(), placed)
}

/// From the clone to the child's execve: cgroups (then `placed`), sync 1, and the messages on
/// the way (pty, seccomp listener). Any failure kills and reaps the child.
fn run_to_exec(
    req: &JoinRequest,
    ours: Channel,
    child: i32,
    pidfd: OwnedFd,
    agent: Option<&crate::seccomp::Agent>,
    placed: impl FnOnce(),
) -> Result<Joined> {
    let kill = |e: Error| {
        // SAFETY: kill(2) and waitpid on our own unreaped child.
        unsafe { libc::kill(child, libc::SIGKILL) };
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
        e
    };
    // Charged to the container from its first instruction on: placed before it runs anything.
    place(child, req.state.pid, req.cgroups, req.explicit_cgroup).map_err(kill)?;
    placed();
    ours.send(&Msg::Go).map_err(kill)?; // sync 1
    crate::log::debug(format!(
        "<= nsexec container setup: process {child} released (sync 1: cgroup joined)"
    ));
    let mut pty = None;
    loop {
        match ours.recv_fd().map_err(kill)? {
            Some((Msg::Pty, fd)) => pty = fd,
            Some((Msg::SeccompListener { fd }, _)) => {
                let a = agent
                    .ok_or_else(|| Error::Child("a seccomp listener without an agent".into()))
                    .map_err(kill)?;
                a.deliver(&pidfd, fd, child, req.state.pid, "running")
                    .map_err(kill)?;
                ours.send(&Msg::SeccompDone).map_err(kill)?;
            }
            Some((Msg::Error { msg }, _)) => return Err(kill(Error::Child(msg))),
            Some((m, _)) => return Err(kill(Error::Child(format!("unexpected message: {m:?}")))),
            None => break, // exec'd: the channel closed with it
        }
    }
    Ok(Joined {
        pid: child,
        pidfd,
        pty,
    })
}

/// The init's namespace of `kind`, by fd (so a pid reuse cannot swap it before setns).
fn open_ns(pid: i32, kind: &str) -> Result<OwnedFd> {
    open(
        &ns_link(pid, kind),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {kind} namespace of the container"))
}

/// The container's pid and time namespaces where they are not ours: a child enters them at
/// birth, through the parent's *_for_children.
fn birth_namespaces(pid: i32) -> Result<Vec<(OwnedFd, CloneFlags)>> {
    let mut out = Vec::new();
    for (kind, flag) in [("pid", libc::CLONE_NEWPID), ("time", libc::CLONE_NEWTIME)] {
        if differs(pid, kind) {
            out.push((open_ns(pid, kind)?, CloneFlags::from_bits_retain(flag)));
        }
    }
    Ok(out)
}

/// The unprivileged way in: a middle process joins the container's user namespace, then its
/// pid/time namespaces for children, clones the child with CLONE_PARENT (so the child is the
/// runtime's, to wait for and signal), reports its pid and exits.
#[allow(clippy::too_many_arguments)]
fn spawn_via_middle(
    req: &JoinRequest,
    theirs: Channel,
    joins: &[(OwnedFd, CloneFlags, &str)],
    root: &OwnedFd,
    creds: Creds,
    args: Vec<String>,
    userfd: &OwnedFd,
    init: i32,
) -> Result<(i32, OwnedFd)> {
    let births = birth_namespaces(init)?;
    let enter = || {
        setns(userfd, CloneFlags::CLONE_NEWUSER)?;
        for (fd, flag) in &births {
            setns(fd, *flag)?;
        }
        Ok(())
    };
    super::parent::clone_via_middle("enter the container's namespaces", enter, 0, move || {
        child_main(req, theirs, joins, root, creds, args)
    })
}

/// Close every fd from 3 + `preserve` on but those in `keep`.
fn close_inherited(preserve: u32, keep: &[RawFd]) {
    let fds: Vec<RawFd> = fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    for fd in fds {
        if fd >= 3 + preserve as RawFd && !keep.contains(&fd) {
            // SAFETY: closing an fd of this (cloned) process that nothing here uses; the
            // read_dir handle is closed already.
            unsafe { libc::close(fd) };
        }
    }
}

/// /proc/<pid>/setgroups says "deny" in a rootless user namespace.
fn setgroups_denied(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/setgroups")).is_ok_and(|s| s.trim() == "deny")
}

fn child_main(
    req: &JoinRequest,
    chan: Channel,
    joins: &[(OwnedFd, CloneFlags, &str)],
    root: &OwnedFd,
    creds: Creds,
    args: Vec<String>,
) -> ! {
    let e = child_setup(req, &chan, joins, root, creds, args);
    let _ = chan.send(&Msg::Error { msg: e.to_string() });
    // SAFETY: _exit in a forked child, skipping the runtime's atexit work.
    unsafe { libc::_exit(127) }
}

fn child_setup(
    req: &JoinRequest,
    chan: &Channel,
    joins: &[(OwnedFd, CloneFlags, &str)],
    root: &OwnedFd,
    mut creds: Creds,
    args: Vec<String>,
) -> Error {
    let r = (|| -> Result<std::convert::Infallible> {
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).ctx(|| "sigprocmask")?;
        // SAFETY: prctl with integer arguments: die with the runtime until exec.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
        if let Some([i, o, e]) = req.stdio {
            for (from, to) in [(i, 0), (o, 1), (e, 2)] {
                // SAFETY: dup2 of fds the runtime handed us onto stdio.
                Errno::result(unsafe { libc::dup2(from, to) }).ctx(|| "dup2 stdio")?;
            }
        }
        // The runtime's other fds, the container lock above all: a child that waits (in a
        // paused container's frozen cgroup) must not hold it for the runtime.
        let mut keep = vec![chan.raw(), root.as_raw_fd()];
        keep.extend(joins.iter().map(|(fd, _, _)| fd.as_raw_fd()));
        // The log's own fds stay (close-on-exec): debug lines of the steps below go there.
        keep.extend(crate::log::inherited_fds());
        close_inherited(req.preserve_fds, &keep);
        match chan.recv()? {
            Some(Msg::Go) => {}
            m => {
                return Err(Error::Child(format!(
                    "unexpected message from runtime: {m:?}"
                )))
            }
        }
        let kinds: Vec<&str> = joins.iter().map(|j| j.2).collect();
        crate::log::debug(format!(
            "child process in init(): joining the {} namespaces of container {}",
            kinds.join(", "),
            req.state.id
        ));
        for (fd, flag, kind) in joins {
            setns(fd, *flag).ctx(|| format!("join the container's {kind} namespace"))?;
        }
        // The container's root, whether it got there by pivot_root or by chroot.
        nix::unistd::fchdir(root).ctx(|| "enter the container's root")?;
        nix::unistd::chroot(".").ctx(|| "chroot to the container's root")?;
        nix::unistd::setsid().ctx(|| "setsid")?;
        // Here, in the container's user namespace, the capabilities to hand out are known.
        creds.check_held()?;
        let process = req.process;
        if process.terminal().unwrap_or(false) {
            let size = process
                .console_size()
                .as_ref()
                .map(|b| (b.height() as u16, b.width() as u16));
            let master = crate::tty::open_pty(size, creds.uid)?;
            chan.send_fd(&Msg::Pty, master.as_raw_fd())?;
        }
        security::set_rlimits(process)?;
        let cwd = process.cwd();
        nix::unistd::chdir(cwd).ctx(|| format!("chdir to {}", cwd.display()))?;
        let env: Vec<String> = process.env().clone().unwrap_or_default();
        let path = security::find_executable(&args[0], &env, cwd)?;
        let argv: Vec<CString> = args
            .iter()
            .filter_map(|a| CString::new(a.as_str()).ok())
            .collect();
        let envp = security::exec_env(&env, creds.uid);
        nix::sys::stat::umask(Mode::from_bits_truncate(
            process.user().umask().unwrap_or(0o022),
        ));
        // Logged before the seccomp filter, which may forbid the write.
        crate::log::debug(format!(
            "setns_init: about to exec {} once credentials and seccomp are applied",
            path.display()
        ));
        security::close_fds_on_exec(req.preserve_fds)?;
        // A filter with a listener loads before the credentials change (security.rs says why).
        creds.hand_off_listener(chan)?;
        // uid/gid, capabilities, no_new_privs and the seccomp filter, in the init's order.
        creds.apply()?;
        // A detached exec outlives this runtime (execve keeps the parent-death signal).
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
        let e = nix::unistd::execve(&crate::rootfs::cpath(&path), &argv, &envp).unwrap_err();
        Err(Error::sys(format!("exec {}", path.display()), e))
    })();
    match r {
        Err(e) => e,
        Ok(never) => match never {},
    }
}
