//! The container verbs: create, start, kill, stop, delete and the state document — each a short
//! sequence over state, spec and process. runs in: the runtime.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::cgroup;
use crate::cli::CreateOpts;
use crate::error::{Ctx, Error, Result};
use crate::events;
use crate::process::parent::{self, Child, InitOpts};
use crate::spec;
use crate::state::{self, ContainerDir, Phase, Root, State, Status};

/// A created container whose init is our child (used by `run` to keep waiting on it).
pub struct Created {
    pub dir: ContainerDir,
    pub state: State,
    pub child: Child,
    /// The pty master, for a foreground run of a `process.terminal` container.
    pub pty: Option<OwnedFd>,
}

/// Undo a half-made container: kill and reap the init, remove its cgroup and the state dir.
struct Undo {
    dir: Option<PathBuf>,
    /// Our own unreaped child, so its pid cannot be recycled before we wait for it.
    child: Option<i32>,
    cgroup: Option<cgroup::Recorded>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(pid) = self.child {
            // SAFETY: kill(2) on our own child that we have not reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cgroup::remove(cg);
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

pub fn create(root: &Root, id: &str, opts: &CreateOpts) -> Result<Created> {
    state::validate_id(id)?;
    let plan = spec::load(&opts.bundle)?;
    if plan.process().terminal().unwrap_or(false)
        && opts.console_socket.is_none()
        && !opts.foreground
    {
        return Err(Error::invalid(
            "config.json: process.terminal: a detached container with a terminal needs --console-socket",
        ));
    }
    let dir = root.create(id)?;
    let mut undo = Undo {
        dir: Some(dir.path.clone()),
        child: None,
        cgroup: None,
    };
    // The bundle may change after create; exec and hooks use this copy.
    state::write_atomic(
        &dir.file(state::CONFIG_FILE),
        &serde_json::to_vec(&plan.spec).expect("spec serialises"),
    )?;
    nix::unistd::mkfifo(&dir.fifo(), nix::sys::stat::Mode::from_bits_truncate(0o622))
        .ctx(|| format!("mkfifo {}", dir.fifo().display()))?;
    // Writable by the container's root whoever it maps to (mkfifo's mode is cut by the umask).
    std::fs::set_permissions(
        dir.fifo(),
        std::os::unix::fs::PermissionsExt::from_mode(0o622),
    )
    .map_err(|e| Error::io("chmod", dir.fifo(), e))?;
    let init_opts = InitOpts {
        id: id.to_string(),
        fifo: dir.fifo(),
        preserve_fds: opts.preserve_fds,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
    };
    let cg = cgroup::Cgroup::create(&plan, id)?;
    undo.cgroup = cg.as_ref().map(|c| c.recorded());
    let child = parent::spawn_with(&plan, &init_opts, &mut |pid| {
        undo.child = Some(pid);
        cg.as_ref().map_or(Ok(()), |c| c.enter(pid))
    })?;
    undo.child = Some(child.pid);
    let annotations = plan.spec.annotations().clone().unwrap_or_default();
    let mut create_hooks = || -> Result<()> {
        use crate::hooks::oci::{hooks, run_all, state_doc, Kind};
        // "created" per the runtime spec's state.md: the environment exists (lifecycle step 2).
        let st = state_doc(id, "created", child.pid, &plan.bundle, &annotations);
        run_all(Kind::Prestart, &hooks(&plan.spec, Kind::Prestart), &st)?;
        run_all(
            Kind::CreateRuntime,
            &hooks(&plan.spec, Kind::CreateRuntime),
            &st,
        )
    };
    let agent = crate::seccomp::Agent::of(plan.seccomp.as_ref(), id, &plan.bundle, &annotations);
    let mut pty = parent::wait_ready(&child, &mut create_hooks, agent.as_ref())?; // sync 2
    if let (Some(sock), Some(master)) = (&opts.console_socket, &pty) {
        crate::tty::send_to_console_socket(sock, master)?;
        pty = None;
    }
    let pid_start = state::proc_stat(child.pid)
        .map(|s| s.1)
        .ok_or_else(|| Error::Child("container init vanished".into()))?;
    let st = State {
        oci_version: crate::OCI_VERSION.to_string(),
        id: id.to_string(),
        pid: child.pid,
        pid_start,
        bundle: plan.bundle.clone(),
        rootfs: plan.rootfs.clone(),
        created: state::now_rfc3339(),
        owner: owner_name(nix::unistd::geteuid().as_raw()),
        annotations: plan.spec.annotations().clone().unwrap_or_default(),
        phase: Phase::Created,
        own_pid_ns: plan.new_ns(oci_spec::runtime::LinuxNamespaceType::Pid),
        cgroup: undo.cgroup.clone().unwrap_or_default(),
        stop_seq: 0,
    };
    dir.save(&st)?;
    events::record(
        &dir.path,
        events::Type::Normal,
        "Created",
        &format!("Created container {id}"),
    )?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, child.pid)?;
    }
    undo.dir = None;
    undo.child = None;
    undo.cgroup = None;
    drop(undo);
    crate::log::debug(format!(
        "created container {id} with init pid {}",
        child.pid
    ));
    Ok(Created {
        dir,
        state: st,
        child,
        pty,
    })
}

/// Decimal pid, no newline, written atomically (clients poll for the file).
fn write_pid_file(p: &Path, pid: i32) -> Result<()> {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    state::write_atomic(&p, pid.to_string().as_bytes())
}

fn owner_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|pw| {
            pw.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// A pidfd for the container init, refused if the pid now belongs to another process.
pub fn open_init(st: &State) -> Result<OwnedFd> {
    // SAFETY: pidfd_open returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, st.pid, 0) };
    let fd = Errno::result(fd).map_err(|_| Error::NotRunning)? as i32;
    // SAFETY: a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // The pidfd pins the process: if the start time matches now, it is our init.
    match state::proc_stat(st.pid) {
        Some((s, t)) if t == st.pid_start && s != 'Z' => Ok(fd),
        _ => Err(Error::NotRunning),
    }
}

pub fn pidfd_signal(fd: &OwnedFd, sig: i32) -> Result<()> {
    // SAFETY: pidfd_send_signal on a pidfd we own, no siginfo.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    match Errno::result(rc) {
        Ok(_) => Ok(()),
        Err(Errno::ESRCH) => Err(Error::NotRunning),
        Err(e) => Err(Error::sys(format!("send signal {sig}"), e)),
    }
}

/// Wait until the process behind `fd` exits, or `timeout` passes. True when it exited.
pub fn wait_exit(fd: &OwnedFd, timeout: Option<Duration>) -> bool {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let ms = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::ZERO)
            }
        };
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(Errno::EINTR) => continue,
            Err(_) => return true,
        }
    }
}

/// Release the entrypoint: read exec.fifo, watching the init's pidfd so a dead init is an
/// error, never a hang.
pub fn release(dir: &ContainerDir, st: &State) -> Result<()> {
    let init = open_init(st).map_err(|_| not_created(dir, st))?;
    let fifo: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblock()
        .open(dir.fifo())
        .map_err(|_| not_created(dir, st))?
        .into();
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(init.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            r => {
                r.ctx(|| "wait for container init")?;
            }
        }
        let fifo_ready = fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP));
        if fifo_ready {
            let mut b = [0u8; 1];
            match nix::unistd::read(&fifo, &mut b) {
                Ok(1) => break,
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
                _ => {}
            }
        }
        if fds[1].revents().is_some() || fifo_ready {
            return Err(Error::Child(
                "container init exited before it could be started".into(),
            ));
        }
    }
    let _ = std::fs::remove_file(dir.fifo());
    // The init keeps its end open until execve: read on to EOF; text means the last steps
    // (startContainer hooks, credentials, exec) failed.
    let mut late = Vec::new();
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            r => {
                r.ctx(|| "wait for container init")?;
            }
        }
        let mut b = [0u8; 4096];
        match nix::unistd::read(&fifo, &mut b) {
            Ok(0) => break,
            Ok(n) => late.extend_from_slice(&b[..n]),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    if !late.is_empty() {
        return Err(Error::Child(String::from_utf8_lossy(&late).into_owned()));
    }
    Ok(())
}

/// The config saved at create (the bundle may have changed since).
pub fn saved_spec(dir: &ContainerDir) -> Option<oci_spec::runtime::Spec> {
    spec::parse(&std::fs::read(dir.file(state::CONFIG_FILE)).ok()?).ok()
}

/// Run poststart or poststop hooks: failures are logged, never fatal (runtime spec).
pub fn run_late_hooks(dir: &ContainerDir, st: &State, kind: crate::hooks::oci::Kind, status: &str) {
    use crate::hooks::oci::{hooks, run_all, state_doc};
    let Some(spec) = saved_spec(dir) else { return };
    let hs = hooks(&spec, kind);
    if hs.is_empty() {
        return;
    }
    let doc = state_doc(&st.id, status, st.pid, &st.bundle, &st.annotations);
    // Each hook runs even when one before it failed: the lifecycle goes on as if it succeeded.
    for (i, h) in hs.iter().enumerate() {
        if let Err(e) = run_all(kind, std::slice::from_ref(h), &doc) {
            crate::log::warn(e.to_string().replacen("hook #0", &format!("hook #{i}"), 1));
        }
    }
}

fn not_created(dir: &ContainerDir, st: &State) -> Error {
    Error::WrongState {
        id: st.id.clone(),
        status: dir.status(st).to_string(),
        hint: "only a created container can be started".into(),
    }
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}
impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
    }
}

/// Release the entrypoint, then PostStart (the container is `Starting` until it succeeds). A
/// PostStart cut short by a crash of the runtime that ran it is fired again by the next start.
pub fn start(root: &Root, id: &str) -> Result<()> {
    start_release(root, id)?;
    // Unlocked: a hung PostStart must not block stop, kill or delete --force.
    crate::hooks::sequence::post_start(root, id)
}

/// Does the container have a PostStart hook (still to run)?
pub fn has_post_start(root: &Root, id: &str) -> bool {
    root.open(id).and_then(|d| d.load()).is_ok_and(|st| {
        crate::hooks::sequence::lifecycle_of(&st)
            .post_start
            .is_some()
    })
}

/// The part of `start` before PostStart: release the entrypoint (or, after a crash, get ready
/// to fire an interrupted PostStart again).
pub fn start_release(root: &Root, id: &str) -> Result<()> {
    use crate::hooks::{journal, sequence};
    {
        let dir = root.open(id)?;
        let mut st = dir.load()?;
        let lc = sequence::lifecycle_of(&st);
        let status = dir.status(&st);
        let refire = status == Status::Running
            && st.phase == Phase::Starting
            && lc.post_start.is_some()
            && journal::progress(&journal::load(&dir.path), "PostStart", 0)
                == journal::Progress::Interrupted;
        if refire {
            journal::close_interrupted(&dir.path)?;
        } else {
            if status != Status::Created {
                return Err(not_created(&dir, &st));
            }
            st.phase = if lc.post_start.is_some() {
                Phase::Starting
            } else {
                Phase::Running
            };
            dir.save(&st)?;
            release(&dir, &st)?;
            crate::log::debug(format!(
                "started container {id}: exec.fifo read to EOF, the entrypoint is exec'd"
            ));
            events::record(
                &dir.path,
                events::Type::Normal,
                "Started",
                &format!("Started container {id}"),
            )?;
            run_late_hooks(&dir, &st, crate::hooks::oci::Kind::Poststart, "running");
        }
    }
    Ok(())
}

/// The OCI state document as `state` and `list -f json` print it: runc's fields in runc's order
/// (`ociVersion, id, pid, status, bundle, rootfs, created, annotations, owner`), then hookrun's
/// `phase`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateDoc<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    /// 0 once stopped, as runc.
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    /// Sorted, so the output is stable.
    pub annotations: std::collections::BTreeMap<&'a str, &'a str>,
    pub owner: &'a str,
    pub phase: Phase,
}

pub fn state_doc<'a>(dir: &ContainerDir, st: &'a State) -> StateDoc<'a> {
    let status = dir.status(st);
    let stopped = status == Status::Stopped;
    StateDoc {
        oci_version: &st.oci_version,
        id: &st.id,
        pid: if stopped { 0 } else { st.pid },
        status,
        bundle: &st.bundle,
        rootfs: &st.rootfs,
        created: &st.created,
        annotations: st
            .annotations
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        owner: &st.owner,
        phase: if stopped { Phase::Stopped } else { st.phase },
    }
}

/// [`state_doc`] as a JSON value (keys sorted), for documents that embed it (`describe`).
pub fn state_json(dir: &ContainerDir, st: &State) -> serde_json::Value {
    serde_json::to_value(state_doc(dir, st)).expect("state serialises")
}

/// Host pids of every process in the container: its pid namespace's members when it has its own,
/// else the init alone.
pub fn container_pids(st: &State) -> Vec<i32> {
    if !st.own_pid_ns {
        return vec![st.pid];
    }
    let Ok(ns) = std::fs::read_link(format!("/proc/{}/ns/pid", st.pid)) else {
        return vec![];
    };
    let mut out = vec![st.pid];
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid != st.pid
            && std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                .ok()
                .as_ref()
                == Some(&ns)
        {
            out.push(pid);
        }
    }
    out
}

pub fn kill(root: &Root, id: &str, sig: i32, all: bool) -> Result<()> {
    use crate::hooks::sequence;
    let dir = root.open(id)?;
    let st = dir.load()?;
    if dir.status(&st) == Status::Stopped {
        if !all {
            return Err(Error::NotRunning);
        }
        // As runc: `--all` reaches whatever is left in the container's cgroup (the init's
        // orphans when it had no pid namespace of its own), which may be nothing.
        let n = if st.cgroup.paths.is_empty() {
            0
        } else {
            cgroup::signal_all(&st.cgroup, sig, 0)
        };
        crate::log::debug(format!(
            "kill --all: container {id} is stopped; signal {sig} sent to {n} processes left in its cgroup"
        ));
        return Ok(());
    }
    let lc = sequence::lifecycle_of(&st);
    if !all && sig == lc.stop_signal && lc.pre_stop.is_some() && dir.status(&st) == Status::Running
    {
        // The stop signal begins a stop: PreStop first (once per stop), then the signal.
        drop(dir);
        let opts = sequence::StopOpts {
            signal_only: Some(sig),
            ..Default::default()
        };
        return sequence::stop(root, id, &opts);
    }
    let paused = dir.status(&st) == Status::Paused;
    let init = open_init(&st)?;
    if all && !st.cgroup.paths.is_empty() {
        // Every process in the container's cgroup, with or without its own pid namespace.
        cgroup::signal_all(&st.cgroup, sig, st.pid);
    } else if all {
        for pid in container_pids(&st).into_iter().filter(|p| *p != st.pid) {
            // SAFETY: kill(2) on a pid in the container's own pid namespace.
            unsafe { libc::kill(pid, sig) };
        }
    }
    let sent = pidfd_signal(&init, sig);
    if paused && sig == libc::SIGKILL {
        // A task frozen by the v1 freezer acts on SIGKILL only once thawed (as runc).
        cgroup::thaw(&st.cgroup);
    }
    sent
}

/// The full stop sequence (PreStop → stop signal → grace → SIGKILL), `-t` overriding the grace
/// period.
pub fn stop(root: &Root, id: &str, time: Option<u64>) -> Result<()> {
    let opts = crate::hooks::sequence::StopOpts {
        grace: time.map(Duration::from_secs),
        ..Default::default()
    };
    crate::hooks::sequence::stop(root, id, &opts)
}

pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    let dir = match root.open(id) {
        Err(Error::NotFound(_)) if force => return Ok(()),
        r => r?,
    };
    let st = dir.load()?;
    match dir.status(&st) {
        Status::Stopped => {}
        _ if force => kill_and_wait(&dir, &st),
        s => {
            return Err(Error::WrongState {
                id: id.to_string(),
                status: s.to_string(),
                hint: "stop it first, or use delete --force".into(),
            })
        }
    }
    if !st.cgroup.paths.is_empty() {
        // What the init left behind (a container without its own pid namespace: with one,
        // nothing outlives the init, and what else the cgroup holds is another container's),
        // then the directories create made; on failure the state stays so delete can be retried.
        if !st.own_pid_ns {
            cgroup::kill_all(&st.cgroup);
        }
        cgroup::remove(&st.cgroup)?;
    }
    run_late_hooks(&dir, &st, crate::hooks::oci::Kind::Poststop, "stopped");
    dir.remove()?;
    crate::log::debug(format!("deleted container {id}"));
    Ok(())
}

fn kill_and_wait(dir: &ContainerDir, st: &State) {
    let Ok(init) = open_init(st) else { return };
    // Hooks first: a hung PostStart or PreStop must not outlive a forced delete.
    for r in crate::hooks::journal::load(&dir.path)
        .iter()
        .filter(|r| r.is_running())
    {
        if let Some((pid, start)) = r.hook_pid {
            if state::proc_stat(pid).is_some_and(|s| s.1 == start) {
                // SAFETY: the hook's process group, identity checked by its start time.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
        }
    }
    crate::hooks::sequence::kill_everything(st);
    wait_exit(&init, Some(Duration::from_secs(10)));
}
