//! The container init: the clone3 child that sets up the container and finally execs the
//! entrypoint. runs in: the container init, from clone3 to execve (never returns).
//! Step order follows the kernel's rules; the `sync N` labels match channel.rs and parent.rs.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxNamespaceType as T;

use super::channel::{Channel, Msg};
use super::parent::{clone_flag, InitOpts};
use crate::error::{Ctx, Error, Result};
use crate::rootfs;
use crate::security::{self, Creds};
use crate::spec::Plan;

/// Entry from clone3. Reports the first failure over the channel and exits 1.
/// `sources`: the bind sources the runtime opened (rootfs::open_bind_sources).
pub fn run(
    plan: &Plan,
    opts: &InitOpts,
    chan: Channel,
    statedir: OwnedFd,
    sources: Vec<Option<OwnedFd>>,
) -> ! {
    // Inherited copies of the runtime's fds (the state dir lock above all) must not live on in
    // the init while it waits for `start`.
    let mut keep = vec![chan.raw(), statedir.as_raw_fd()];
    keep.extend(rootfs::raw_fds(&sources));
    keep.extend(crate::log::inherited_fds());
    close_inherited(opts.preserve_fds, &keep);
    match setup(plan, opts, &chan, sources) {
        Ok(exec) => {
            crate::log::debug(
                "init: closing the pipe to signal completion (hookrun: Ready on the channel, sync 2; \
                 then exec.fifo until start)",
            );
            // sync 2
            let _ = chan.send(&Msg::Ready);
            // The creator may return now: do not keep its stderr open while we wait for start.
            crate::log::release_stderr();
            let (err, told_start) = finish(exec, &statedir, opts);
            // Past `Ready` the creator may be gone; `start` heard it through exec.fifo when it
            // got that far. Only when nobody heard is it said on the container's stderr.
            let msg = err.to_string();
            if chan.send(&Msg::Error { msg: msg.clone() }).is_err() && !told_start {
                eprintln!(
                    "{}",
                    crate::log::error_line(&format!("container init: {msg}"))
                );
            }
            // SAFETY: _exit in a forked child, skipping the parent's atexit work.
            unsafe { libc::_exit(127) }
        }
        Err(e) => {
            let _ = chan.send(&Msg::Error { msg: e.to_string() });
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
    }
}

/// What is left to do after the start barrier.
struct Exec {
    path: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    creds: Creds,
    umask: u32,
    /// startContainer hooks and the state document they read.
    start_hooks: Vec<oci_spec::runtime::Hook>,
    start_state: String,
}

/// Everything up to sync 2; `None` when the config has no process (start will fail).
fn setup(
    plan: &Plan,
    opts: &InitOpts,
    chan: &Channel,
    sources: Vec<Option<OwnedFd>>,
) -> Result<Option<Exec>> {
    // The runtime may block signals (foreground `run`); the container starts with none blocked.
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).ctx(|| "sigprocmask")?;
    // Die with the runtime while we are being set up; cleared before sync 2.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };

    let host_pid = match chan.recv()? {
        Some(Msg::Pid { pid }) => pid,
        m => {
            return Err(Error::Child(format!(
                "unexpected message from runtime: {m:?}"
            )))
        }
    };
    // sync 1: id maps written, cgroup joined.
    match chan.recv()? {
        Some(Msg::Go) => {}
        Some(m) => {
            return Err(Error::Child(format!(
                "unexpected message from runtime: {m:?}"
            )))
        }
        None => return Err(Error::Child("runtime went away".into())),
    }
    crate::log::debug(format!(
        "child process in init(): container init {host_pid} sets up its namespaces, mounts and root"
    ));
    let new_user = plan.new_ns(T::User);
    if new_user {
        become_root_in_userns()?;
        // A uid change clears the parent-death signal: arm it again.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    }

    // Join namespaces given by path. The user namespace first: the others are owned by one.
    let mut joins: Vec<_> = plan
        .namespaces
        .iter()
        .filter(|n| n.path.is_some() && !matches!(n.kind, T::Pid | T::Time))
        .collect();
    joins.sort_by_key(|n| n.kind != T::User);
    for ns in joins {
        let p = ns.path.as_ref().expect("filtered");
        let f = fs::File::open(p).ctx(|| format!("open namespace {}", p.display()))?;
        if ns.kind == T::User && same_file(&f, "/proc/self/ns/user") {
            // Entered already: the middle process of spawn_with did, before the clone.
            continue;
        }
        setns(&f, clone_flag(ns.kind)).ctx(|| format!("join namespace {}", p.display()))?;
    }
    if plan.ns(T::User).is_some_and(|n| n.path.is_some()) {
        // Our host uid is not mapped in a joined user namespace: files we make (devpts, device
        // nodes, mount points) need a mapped owner.
        become_root_in_userns()?;
        // SAFETY: prctl with integer arguments (a uid change cleared the parent-death signal).
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    }
    // Placed in our cgroup by now, so the new cgroup namespace is rooted there.
    if plan.new_ns(T::Cgroup) {
        unshare(CloneFlags::CLONE_NEWCGROUP).ctx(|| "unshare cgroup namespace")?;
    }
    nix::unistd::setsid().ctx(|| "setsid")?;
    if let Some(h) = plan.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).ctx(|| format!("sethostname {h}"))?;
    }
    if let Some(d) = plan.spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: pointer and length of a live byte slice.
        let rc = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        Errno::result(rc).ctx(|| format!("setdomainname {d}"))?;
    }
    if plan.new_ns(T::Network) {
        loopback_up()?;
    }
    if !opts.no_new_keyring {
        join_session_keyring(&opts.id)?;
    }
    let process = plan.process();
    if let Some(adj) = process.oom_score_adj() {
        fs::write("/proc/self/oom_score_adj", adj.to_string())
            .ctx(|| format!("set process.oomScoreAdj {adj}"))?;
    }

    let mut prepared = None;
    if plan.ns(T::Mount).is_some() {
        // In any user namespace but the first, devices are host nodes bound in (no mknod).
        prepared = Some(rootfs::prepare(plan, plan.ns(T::User).is_some(), sources)?);
    }
    create_hooks(plan, opts, chan, host_pid)?;
    if let Some(prepared) = prepared {
        rootfs::enter(plan, opts.no_pivot)?;
        rootfs::finish(plan, prepared)?;
    } else {
        // Without a mount namespace every mount would land in the host's table: none is made,
        // and the rootfs is only chrooted into (as runc does).
        nix::unistd::chroot(&plan.rootfs).ctx(|| format!("chroot {}", plan.rootfs.display()))?;
        nix::unistd::chdir("/").ctx(|| "chdir /")?;
    }

    if plan.spec.process().is_none() {
        // Nothing to run: the container is created; `start` will be told so.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
        return Ok(None);
    }
    security::set_rlimits(process)?;
    let cwd = process.cwd();
    if nix::unistd::chdir(cwd).is_err() {
        fs::create_dir_all(cwd).ctx(|| format!("create process.cwd {}", cwd.display()))?;
        nix::unistd::chdir(cwd).ctx(|| format!("chdir to process.cwd {}", cwd.display()))?;
    }
    let args = plan.args();
    let path = security::find_executable(&args[0], plan.env(), cwd)?;
    let mut creds = Creds::from_process(process, !rootless_single_map(plan))?;
    // Compiled by spec::validate; loaded by creds.apply() just before execve.
    creds.seccomp = plan.seccomp.clone();
    let mut exec = Exec {
        path: rootfs::cpath(&path),
        argv: args
            .iter()
            .filter_map(|a| CString::new(a.as_str()).ok())
            .collect(),
        env: security::exec_env(plan.env(), creds.uid),
        creds,
        umask: process.user().umask().unwrap_or(0o022),
        start_hooks: crate::hooks::oci::hooks(&plan.spec, crate::hooks::oci::Kind::StartContainer),
        start_state: crate::hooks::oci::state_doc(
            &opts.id,
            "created",
            host_pid,
            &plan.bundle,
            &plan.spec.annotations().clone().unwrap_or_default(),
        ),
    };
    if process.terminal().unwrap_or(false) {
        // Made here, after pivot_root, so the slave is in the container's own devpts.
        let size = process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        let master = crate::tty::open_pty(size, exec.creds.uid)?;
        chan.send_fd(&Msg::Pty, master.as_raw_fd())?;
    }
    exec.creds.check_held()?;
    // A seccomp listener must reach its agent while `create` is here to take it: such a filter
    // loads now, before sync 2 (as runc loads every filter); any other loads before execve.
    exec.creds.hand_off_listener(chan)?;
    // SAFETY: as above; from here on the init outlives `create`.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
    Ok(Some(exec))
}

/// sync 2a/2b when the config has create-time hooks, then createContainer hooks here, in the
/// container's namespaces but before pivot_root (their paths resolve as the runtime sees them).
fn create_hooks(plan: &Plan, opts: &InitOpts, chan: &Channel, host_pid: i32) -> Result<()> {
    use crate::hooks::oci::{hooks, run_all, state_doc, Kind};
    let runtime_side = !hooks(&plan.spec, Kind::Prestart).is_empty()
        || !hooks(&plan.spec, Kind::CreateRuntime).is_empty();
    if runtime_side {
        chan.send(&Msg::Mounted)?;
        match chan.recv()? {
            Some(Msg::HooksDone) => {}
            m => {
                return Err(Error::Child(format!(
                    "unexpected message from runtime: {m:?}"
                )))
            }
        }
    }
    let cc = hooks(&plan.spec, Kind::CreateContainer);
    if !cc.is_empty() {
        // As runc: they run in the rootfs, so relative paths in them name its files.
        nix::unistd::chdir(&plan.rootfs)
            .ctx(|| format!("chdir {} for createContainer hooks", plan.rootfs.display()))?;
        let annotations = plan.spec.annotations().clone().unwrap_or_default();
        let st = state_doc(&opts.id, "created", host_pid, &plan.bundle, &annotations);
        run_all(Kind::CreateContainer, &cc, &st)?;
    }
    Ok(())
}

/// After sync 2: block on exec.fifo until `start`, then drop privileges and exec.
/// Returns the error, and whether it was written to exec.fifo for `start` to report.
fn finish(exec: Option<Exec>, statedir: &OwnedFd, opts: &InitOpts) -> (Error, bool) {
    let mut fifo: Option<OwnedFd> = None;
    let r = (|| -> Result<std::convert::Infallible> {
        // Opening for writing blocks until `start` opens the read end.
        let w = openat(
            statedir,
            crate::state::FIFO_FILE,
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| "open exec.fifo")?;
        nix::unistd::write(&w, b"0").ctx(|| "write exec.fifo")?;
        // Kept open (close-on-exec) until execve: `start` reads on to EOF, so a failure of the
        // steps below, written here, reaches it.
        fifo = Some(w);
        let Some(exec) = exec else {
            return Err(Error::invalid(
                "config.json: process is not set: there is nothing to start",
            ));
        };
        nix::sys::stat::umask(Mode::from_bits_truncate(exec.umask));
        security::close_fds_on_exec(opts.preserve_fds)?;
        exec.creds.apply()?;
        // As runc runs them: as the container's user, under its seccomp filter, with the
        // process's environment when a hook gives none of its own.
        let env: Vec<String> = exec
            .env
            .iter()
            .map(|e| e.to_string_lossy().into())
            .collect();
        crate::hooks::oci::run_all_with_env(
            crate::hooks::oci::Kind::StartContainer,
            &exec.start_hooks,
            &exec.start_state,
            Some(&env),
        )?;
        let e = nix::unistd::execve(&exec.path, &exec.argv, &exec.env).unwrap_err();
        Err(Error::sys(
            format!("exec {}", exec.path.to_string_lossy()),
            e,
        ))
    })();
    let e = match r {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let told = fifo
        .as_ref()
        .is_some_and(|w| nix::unistd::write(w, e.to_string().as_bytes()).is_ok());
    (e, told)
}

fn close_inherited(preserve: u32, keep: &[i32]) {
    let fds: Vec<i32> = fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    for fd in fds {
        if fd >= 3 + preserve as i32 && !keep.contains(&fd) {
            // SAFETY: closing an fd of this (forked) process that nothing here uses; the
            // read_dir handle above is already closed.
            unsafe { libc::close(fd) };
        }
    }
}

/// Is `f` the same namespace (nsfs inode) as the one at `path`?
fn same_file(f: &fs::File, path: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// In a new user namespace, take uid/gid 0 there (when mapped) so files we create are owned by
/// the container's root.
fn become_root_in_userns() -> Result<()> {
    let mapped = |f: &str| {
        fs::read_to_string(f)
            .map(|m| m.lines().any(|l| l.split_whitespace().next() == Some("0")))
            .unwrap_or(false)
    };
    if mapped("/proc/self/gid_map") {
        let g = nix::unistd::Gid::from_raw(0);
        nix::unistd::setresgid(g, g, g).ctx(|| "setresgid 0 in the user namespace")?;
    }
    if mapped("/proc/self/uid_map") {
        let u = nix::unistd::Uid::from_raw(0);
        nix::unistd::setresuid(u, u, u).ctx(|| "setresuid 0 in the user namespace")?;
    }
    Ok(())
}

/// A gid map written by an unprivileged user comes with setgroups denied.
fn rootless_single_map(plan: &Plan) -> bool {
    plan.new_ns(T::User)
        && fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// A new network namespace has only `lo`, and down; runc and crun bring it up.
fn loopback_up() -> Result<()> {
    // SAFETY: a plain datagram socket; closed below.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    let s = Errno::result(s).ctx(|| "socket for loopback")?;
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: ioctl on our socket with a properly sized ifreq.
    let mut rc = unsafe { libc::ioctl(s, libc::SIOCGIFFLAGS, &mut req) };
    if rc == 0 {
        // SAFETY: the union member written by SIOCGIFFLAGS.
        unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
        // SAFETY: as above.
        rc = unsafe { libc::ioctl(s, libc::SIOCSIFFLAGS, &req) };
    }
    let r = Errno::result(rc);
    // SAFETY: closing the socket we opened.
    unsafe { libc::close(s) };
    r.map(drop).ctx(|| "bring up lo")
}

/// A session keyring of our own, so containers do not share the host's keys.
fn join_session_keyring(id: &str) -> Result<()> {
    let name = CString::new(format!("_ses.{id}")).unwrap_or_default();
    // SAFETY: keyctl(KEYCTL_JOIN_SESSION_KEYRING, name) with a valid C string.
    let rc = unsafe { libc::syscall(libc::SYS_keyctl, 1 as libc::c_long, name.as_ptr()) };
    match Errno::result(rc) {
        Ok(_) | Err(Errno::ENOSYS) | Err(Errno::EACCES) | Err(Errno::EDQUOT) => Ok(()),
        Err(e) => Err(Error::sys("join session keyring", e)),
    }
}
