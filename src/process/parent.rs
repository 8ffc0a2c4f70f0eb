//! The runtime's side of creating a container: one clone3 makes the namespaces and the child
//! becomes init; the parent writes id maps and releases it (sync 1, see channel.rs).
//! runs in: the runtime (`create`, `run`).

use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType as T};

use super::channel::{self, Channel, Msg};
use crate::error::{Ctx, Error, Result};
use crate::spec::Plan;

/// What the init needs besides the plan.
#[derive(Debug, Clone)]
pub struct InitOpts {
    pub id: String,
    pub fifo: PathBuf,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
}

/// A freshly cloned init, released past sync 1.
pub struct Child {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub chan: Channel,
}

/// struct clone_args of clone3(2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

pub fn clone_flag(k: T) -> CloneFlags {
    match k {
        T::Mount => CloneFlags::CLONE_NEWNS,
        T::Uts => CloneFlags::CLONE_NEWUTS,
        T::Ipc => CloneFlags::CLONE_NEWIPC,
        T::User => CloneFlags::CLONE_NEWUSER,
        T::Pid => CloneFlags::CLONE_NEWPID,
        T::Network => CloneFlags::CLONE_NEWNET,
        T::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        T::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

fn open_ns(p: &Path) -> Result<OwnedFd> {
    open(p, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| format!("open namespace {}", p.display()))
}

/// The pid and time namespaces a child lands in are properties of the *parent*
/// (`pid_for_children`, `time_for_children`), so joining or making them is done here around the
/// clone and undone right after; the runtime itself never changes namespace.
struct ForChildren {
    restore: Vec<(OwnedFd, CloneFlags)>,
}

impl ForChildren {
    fn enter(plan: &Plan) -> Result<Self> {
        let mut restore = Vec::new();
        if let Some(ns) = plan.ns(T::Pid).filter(|n| n.path.is_some()) {
            let target = open_ns(ns.path.as_ref().expect("path"))?;
            let own = open_ns(Path::new("/proc/self/ns/pid"))?;
            setns(&target, CloneFlags::CLONE_NEWPID).ctx(|| "join pid namespace")?;
            restore.push((own, CloneFlags::CLONE_NEWPID));
        }
        if let Some(ns) = plan.ns(T::Time) {
            let own = open_ns(Path::new("/proc/self/ns/time"))?;
            let flag = clone_flag(T::Time);
            match &ns.path {
                Some(p) => setns(open_ns(p)?, flag).ctx(|| "join time namespace")?,
                None => {
                    unshare(flag).ctx(|| "unshare time namespace")?;
                    let mut text = String::new();
                    for (clock, off) in plan.linux().time_offsets().iter().flatten() {
                        text.push_str(&format!(
                            "{clock} {} {}\n",
                            off.secs().unwrap_or(0),
                            off.nanosecs().unwrap_or(0)
                        ));
                    }
                    if !text.is_empty() {
                        fs::write("/proc/self/timens_offsets", text)
                            .ctx(|| "write linux.timeOffsets")?;
                    }
                }
            }
            restore.push((own, flag));
        }
        Ok(ForChildren { restore })
    }

    fn leave(self) -> Result<()> {
        for (fd, flag) in self.restore {
            setns(&fd, flag).ctx(|| "return to the runtime's namespace")?;
        }
        Ok(())
    }
}

/// Clone the init, write its id maps, and release it (sync 1).
pub fn spawn(plan: &Plan, opts: &InitOpts) -> Result<Child> {
    spawn_with(plan, opts, &mut |_| Ok(()))
}

/// [`spawn`], running `before_go(pid)` between the clone and sync 1: `create` places the init in
/// its cgroup there, before the init unshares its cgroup namespace.
pub fn spawn_with(
    plan: &Plan,
    opts: &InitOpts,
    before_go: &mut dyn FnMut(i32) -> Result<()>,
) -> Result<Child> {
    let (ours, theirs) = channel::pair()?;
    // Opened here so the init can still reach exec.fifo after pivot_root (openat on this fd;
    // not /proc/self/fd, which a uid change inside a user namespace makes unreadable).
    let statedir = opts.fifo.parent().unwrap_or(Path::new("/"));
    let statedir = open(
        statedir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", statedir.display()))?;

    let mut flags = CloneFlags::empty();
    for ns in plan.namespaces.iter().filter(|n| n.path.is_none()) {
        // cgroup: unshared by the init after it is placed in its cgroup; time: via ForChildren.
        if !matches!(ns.kind, T::Cgroup | T::Time) {
            flags |= clone_flag(ns.kind);
        }
    }
    // Before the clone: the init inherits them (opened by the runtime's user, in its mount
    // namespace; see rootfs::open_bind_sources).
    let sources = crate::rootfs::open_bind_sources(plan);
    crate::log::debug(format!(
        "=> nsexec container setup: clone3 of the container init, new namespaces: {}",
        ns_list(plan)
    ));
    let around = ForChildren::enter(plan)?;
    // New namespaces next to a user namespace joined by path must belong to that one, so the
    // clone is made from inside it, by a middle process the runtime cannot be (it could never
    // leave the user namespace again).
    let joined_user = plan
        .ns(T::User)
        .and_then(|n| n.path.clone())
        .filter(|_| !flags.is_empty());
    let cloned = match joined_user {
        Some(upath) => {
            let ours_raw = ours.raw();
            let userfd = open_ns(&upath)?;
            let what = format!(
                "clone the container init in user namespace {}",
                upath.display()
            );
            let enter = || setns(&userfd, CloneFlags::CLONE_NEWUSER);
            clone_via_middle(&what, enter, flags.bits() as u64, move || {
                // SAFETY: the init's copy of the runtime's end; never dropped (run is `-> !`).
                unsafe { libc::close(ours_raw) };
                super::init::run(plan, opts, theirs, statedir, sources)
            })
        }
        None => {
            let mut pidfd: libc::c_int = -1;
            // The child never returns from `init::run`.
            let rc = clone3(
                flags.bits() as u64 | libc::CLONE_PIDFD as u64,
                Some(&mut pidfd),
            );
            if rc == Ok(0) {
                drop(ours);
                super::init::run(plan, opts, theirs, statedir, sources);
            }
            drop(theirs);
            drop(statedir);
            drop(sources);
            rc.ctx(|| "clone3 container init")
                // SAFETY: clone3 with CLONE_PIDFD stored a new fd we now own.
                .map(|pid| (pid, unsafe { OwnedFd::from_raw_fd(pidfd) }))
        }
    };
    let left = around.leave();
    let (pid, pidfd) = cloned?;
    let child = Child {
        pid,
        pidfd,
        chan: ours,
    };
    left?;
    child.chan.send(&Msg::Pid { pid })?;
    if plan.new_ns(T::User) {
        let l = plan.linux();
        let (uids, gids) = (
            l.uid_mappings().as_deref().unwrap_or(&[]),
            l.gid_mappings().as_deref().unwrap_or(&[]),
        );
        if nix::unistd::geteuid().is_root() {
            write_id_maps(pid, uids, gids, false)?;
        } else {
            crate::rootless::write_maps(pid, uids, gids)?;
        }
    }
    before_go(pid)?;
    child.chan.send(&Msg::Go)?; // sync 1
    crate::log::debug(format!(
        "<= nsexec container setup: init {pid} released (sync 1: id maps, cgroup)"
    ));
    Ok(child)
}

/// The namespaces a plan makes (new) or joins (by path), for debug lines.
fn ns_list(plan: &Plan) -> String {
    let v: Vec<String> = plan
        .namespaces
        .iter()
        .map(|n| match &n.path {
            None => format!("{:?}", n.kind).to_lowercase(),
            Some(p) => format!("{:?} (join {})", n.kind, p.display()).to_lowercase(),
        })
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// clone3(2) without a stack, so fork-like; the caller must be single-threaded (the runtime is),
/// so the child may run ordinary Rust code. With CLONE_PARENT the kernel wants exit_signal 0
/// and the child inherits the caller's (SIGCHLD); otherwise it is SIGCHLD. Returns the child's
/// pid (0 in the child); `pidfd` receives the pidfd asked for with CLONE_PIDFD.
pub(crate) fn clone3(flags: u64, pidfd: Option<&mut libc::c_int>) -> nix::Result<i32> {
    let parent = flags & libc::CLONE_PARENT as u64 != 0;
    let args = CloneArgs {
        flags,
        pidfd: pidfd.map_or(0, |p| p as *mut libc::c_int as u64),
        exit_signal: if parent { 0 } else { libc::SIGCHLD as u64 },
        ..Default::default()
    };
    // SAFETY: a valid clone_args of the size passed; no stack, so the child continues on a copy
    // of ours, as after fork.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    Errno::result(rc).map(|rc| rc as i32)
}

/// For what the runtime must not do itself (enter a user namespace it could never leave): a
/// short-lived middle process runs `enter`, clones with CLONE_PARENT | `flags` (so the child
/// is still the runtime's, to wait for and signal), reports the pid and exits. `child` is what
/// the clone runs; it does not return. `what` names the step in errors.
pub(crate) fn clone_via_middle(
    what: &str,
    enter: impl FnOnce() -> nix::Result<()>,
    flags: u64,
    child: impl FnOnce(),
) -> Result<(i32, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe")?;
    // SAFETY: fork of the single-threaded runtime; the middle process only runs `enter`,
    // clone3, write and _exit, and its clone runs `child`.
    let middle = unsafe { libc::fork() };
    if middle == 0 {
        drop(r);
        let got = enter().and_then(|()| clone3(flags | libc::CLONE_PARENT as u64, None));
        if got == Ok(0) {
            drop(w);
            child();
            // SAFETY: not reached (`child` execs or exits); _exit if it did return.
            unsafe { libc::_exit(127) }
        }
        let v = match got {
            Ok(pid) => pid,
            Err(e) => -(e as i32),
        };
        let _ = nix::unistd::write(&w, &v.to_ne_bytes());
        // SAFETY: _exit in a forked child.
        unsafe { libc::_exit(0) }
    }
    drop(w);
    drop(child);
    if middle < 0 {
        return Err(Error::sys("fork", Errno::last()));
    }
    let mut b = [0u8; 4];
    let n = nix::unistd::read(&r, &mut b).unwrap_or(0);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(middle), None);
    let v = i32::from_ne_bytes(b);
    if n != 4 || v <= 0 {
        let e = if n == 4 {
            Errno::from_raw(-v)
        } else {
            Errno::ECHILD
        };
        return Err(Error::sys(what, e));
    }
    // SAFETY: pidfd_open of our own unreaped child (CLONE_PARENT made it ours).
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, v, 0) };
    let fd = Errno::result(fd).ctx(|| "pidfd_open")? as i32;
    // SAFETY: a fresh fd we own.
    Ok((v, unsafe { OwnedFd::from_raw_fd(fd) }))
}

fn map_text(m: &[LinuxIdMapping]) -> String {
    m.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Write /proc/<pid>/{setgroups,uid_map,gid_map}. `deny_setgroups` is required before an
/// unprivileged gid map.
pub fn write_id_maps(
    pid: i32,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
    deny_setgroups: bool,
) -> Result<()> {
    if deny_setgroups {
        fs::write(format!("/proc/{pid}/setgroups"), "deny").ctx(|| "write setgroups deny")?;
    }
    fs::write(format!("/proc/{pid}/uid_map"), map_text(uids))
        .ctx(|| "write linux.uidMappings to uid_map")?;
    fs::write(format!("/proc/{pid}/gid_map"), map_text(gids))
        .ctx(|| "write linux.gidMappings to gid_map")?;
    Ok(())
}

/// Wait until the init reports it is set up (sync 2), turning a failure into the init's message.
/// Returns the pty master when the init made one (`process.terminal`).
/// `on_mounted` runs the runtime's create-time hooks at sync 2a; `agent` takes the init's
/// seccomp listener, when its profile has one.
pub fn wait_ready(
    child: &Child,
    on_mounted: &mut dyn FnMut() -> Result<()>,
    agent: Option<&crate::seccomp::Agent>,
) -> Result<Option<OwnedFd>> {
    let mut pty = None;
    loop {
        match child.chan.recv_fd()? {
            Some((Msg::Pty, fd)) => pty = fd,
            Some((Msg::SeccompListener { fd }, _)) => {
                let a = agent
                    .ok_or_else(|| Error::Child("a seccomp listener without an agent".into()))?;
                // "creating", as runc reports the container to the agent at this point.
                a.deliver(&child.pidfd, fd, child.pid, child.pid, "creating")?;
                child.chan.send(&Msg::SeccompDone)?;
            }
            Some((Msg::Mounted, _)) => {
                on_mounted()?;
                child.chan.send(&Msg::HooksDone)?; // sync 2b
            }
            m => return ready_or_error(child, m.map(|(m, _)| m)).map(|()| pty),
        }
    }
}

fn ready_or_error(child: &Child, m: Option<Msg>) -> Result<()> {
    match m {
        Some(Msg::Ready) => Ok(()),
        Some(Msg::Error { msg }) => Err(Error::Child(msg)),
        Some(m) => Err(Error::Child(format!("unexpected message from init: {m:?}"))),
        None => {
            // WNOWAIT: the status without reaping, so the pid stays ours until the caller's
            // cleanup has killed and reaped it (no recycled pid is ever signalled).
            let status = nix::sys::wait::waitid(
                nix::sys::wait::Id::Pid(nix::unistd::Pid::from_raw(child.pid)),
                nix::sys::wait::WaitPidFlag::WEXITED | nix::sys::wait::WaitPidFlag::WNOWAIT,
            )
            .map(|s| format!("{s:?}"))
            .unwrap_or_else(|e| e.to_string());
            Err(Error::Child(format!(
                "container init exited before it was ready ({status})"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_map_text() {
        let m: Vec<LinuxIdMapping> =
            serde_json::from_str(r#"[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":100000,"size":65536}]"#).unwrap();
        assert_eq!(map_text(&m), "0 1000 1\n1 100000 65536\n");
    }
}
