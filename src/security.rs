//! Process settings applied in the container init: rlimits, uid/gid/groups, capabilities,
//! no_new_privs, fd closing, umask, entrypoint lookup.
//! runs in: the container init (after pivot_root, the last steps before execve).

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use caps::{CapSet, Capability as Cap};
use nix::errno::Errno;
use oci_spec::runtime::{PosixRlimitType, Process};

use crate::error::{Ctx, Error, Result};

pub fn rlimit_resource(t: PosixRlimitType) -> (libc::__rlimit_resource_t, &'static str) {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => (libc::RLIMIT_CPU, "RLIMIT_CPU"),
        RlimitFsize => (libc::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
        RlimitData => (libc::RLIMIT_DATA, "RLIMIT_DATA"),
        RlimitStack => (libc::RLIMIT_STACK, "RLIMIT_STACK"),
        RlimitCore => (libc::RLIMIT_CORE, "RLIMIT_CORE"),
        RlimitRss => (libc::RLIMIT_RSS, "RLIMIT_RSS"),
        RlimitNproc => (libc::RLIMIT_NPROC, "RLIMIT_NPROC"),
        RlimitNofile => (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
        RlimitMemlock => (libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
        RlimitAs => (libc::RLIMIT_AS, "RLIMIT_AS"),
        RlimitLocks => (libc::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
        RlimitSigpending => (libc::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
        RlimitMsgqueue => (libc::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
        RlimitNice => (libc::RLIMIT_NICE, "RLIMIT_NICE"),
        RlimitRtprio => (libc::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
        RlimitRttime => (libc::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
    }
}

/// setrlimit for each configured limit. Raising a hard limit needs CAP_SYS_RESOURCE; the error
/// says so and names the limit.
pub fn set_rlimits(p: &Process) -> Result<()> {
    for r in p.rlimits().iter().flatten() {
        let (res, name) = rlimit_resource(r.typ());
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: plain setrlimit on our own process with a valid struct.
        let rc = unsafe { libc::setrlimit(res, &lim) };
        if let Err(e) = Errno::result(rc) {
            let mut cur = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit fills the struct we own.
            unsafe { libc::getrlimit(res, &mut cur) };
            let hint = if e == Errno::EPERM && r.hard() > cur.rlim_max {
                format!(
                    " (the hard limit here is {}; raising it needs CAP_SYS_RESOURCE)",
                    cur.rlim_max
                )
            } else {
                String::new()
            };
            return Err(Error::Child(format!(
                "setrlimit {name} (soft {}, hard {}): {}{hint}",
                r.soft(),
                r.hard(),
                crate::error::errno_text(e)
            )));
        }
    }
    Ok(())
}

/// Names like "CAP_SYS_ADMIN" from an oci-spec capability set, as the caps crate's type.
fn cap_set(set: &Option<oci_spec::runtime::Capabilities>) -> Result<HashSet<Cap>> {
    let mut out = HashSet::new();
    for c in set.iter().flatten() {
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match name.parse::<Cap>() {
            Ok(cap) => {
                if caps::all().contains(&cap)
                    && cap.index()
                        <= caps::runtime::thread_all_supported()
                            .iter()
                            .map(|c| c.index())
                            .max()
                            .unwrap_or(63)
                {
                    out.insert(cap);
                }
            }
            Err(_) => return Err(Error::invalid(format!("unknown capability {name:?}"))),
        }
    }
    Ok(out)
}

/// The credentials and capabilities of the container process, applied in the order the kernel
/// needs: bounding set (needs CAP_SETPCAP) → groups/gid/uid with KEEPCAPS → capability sets →
/// ambient → no_new_privs, with the seccomp filter loaded where its no_new_privs setting allows.
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub set_groups: bool,
    pub caps: Option<[HashSet<Cap>; 5]>,
    pub no_new_privs: bool,
    /// Loaded by `apply`, at the point its no_new_privs setting allows.
    pub seccomp: Option<crate::seccomp::Filter>,
}

/// The names of the four sets that must lie within the bounding set, in `Creds::caps` order.
const BOUND_SETS: [(usize, &str); 4] = [
    (1, "effective"),
    (2, "inheritable"),
    (3, "permitted"),
    (4, "ambient"),
];

fn cap_names(caps: &HashSet<Cap>) -> String {
    let mut v: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
    v.sort();
    v.join(", ")
}

impl Creds {
    /// The credentials of `p`. A capability in effective, permitted, inheritable or ambient but
    /// not in bounding is refused: execve would take it away (a new permitted set is bounded by
    /// the bounding set), and capset refuses such an inheritable one outright.
    pub fn from_process(p: &Process, set_groups: bool) -> Result<Self> {
        let caps = match p.capabilities() {
            None => None,
            Some(c) => Some([
                cap_set(c.bounding())?,
                cap_set(c.effective())?,
                cap_set(c.inheritable())?,
                cap_set(c.permitted())?,
                cap_set(c.ambient())?,
            ]),
        };
        if let Some(sets) = &caps {
            for (i, name) in BOUND_SETS {
                let outside: HashSet<Cap> = sets[i].difference(&sets[0]).copied().collect();
                if !outside.is_empty() {
                    return Err(Error::invalid(format!(
                        "process.capabilities.{name}: {} not in process.capabilities.bounding: \
                         a capability outside the bounding set cannot be kept past execve",
                        cap_names(&outside)
                    )));
                }
            }
        }
        Ok(Creds {
            uid: p.user().uid(),
            gid: p.user().gid(),
            groups: p.user().additional_gids().clone().unwrap_or_default(),
            set_groups,
            caps,
            no_new_privs: p.no_new_privileges().unwrap_or(false),
            seccomp: None,
        })
    }

    /// In the process about to apply these credentials, before any change: every capability
    /// asked for must be one this process holds (permitted), or capset would refuse it with a
    /// bare EPERM. The usual cause is a capability missing from the host's bounding set.
    pub fn check_held(&self) -> Result<()> {
        let Some([_, effective, inheritable, permitted, _]) = &self.caps else {
            return Ok(());
        };
        let held = caps::read(None, CapSet::Permitted)
            .map_err(|e| Error::Child(format!("read permitted capabilities: {e}")))?;
        let wanted: HashSet<Cap> = effective | &(inheritable | permitted);
        let missing: HashSet<Cap> = wanted.difference(&held).copied().collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "process.capabilities: {} not held by the runtime here (not in its bounding set), \
             so the container cannot be given it",
            cap_names(&missing)
        )))
    }

    /// With an SCMP_ACT_NOTIFY listener, the filter loads here, before the credentials change
    /// (and so before `apply`): the runtime takes the listener with pidfd_getfd, which the
    /// kernel allows while this process still has the runtime's credentials. `chan` is the
    /// channel to the runtime, which hands the listener to the agent (seccomp/notify.rs).
    pub fn hand_off_listener(&mut self, chan: &crate::process::channel::Channel) -> Result<()> {
        use crate::process::channel::Msg;
        let Some(f) = self.seccomp.take_if(|f| f.listener.is_some()) else {
            return Ok(());
        };
        if self.no_new_privs {
            // SAFETY: prctl with integer arguments only.
            Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
                .ctx(|| "prctl PR_SET_NO_NEW_PRIVS")?;
        }
        let listener = f
            .load()?
            .ok_or_else(|| Error::Child("load seccomp filter: no listener came back".into()))?;
        crate::seccomp::announce(chan.raw(), std::os::fd::AsRawFd::as_raw_fd(&listener))?;
        // From here on a call held for the agent is answered: the agent has the listener (or
        // the runtime failed and kills us).
        match chan.recv()? {
            Some(Msg::SeccompDone) => Ok(()),
            m => Err(Error::Child(format!(
                "seccomp listener hand-off: unexpected message from runtime: {m:?}"
            ))),
        }
    }

    pub fn apply(&self) -> Result<()> {
        if self.seccomp.as_ref().is_some_and(|f| f.listener.is_some()) {
            return Err(Error::Child(
                "seccomp filter with a listener: hand_off_listener must load it".into(),
            ));
        }
        let supported = caps::runtime::thread_all_supported();
        if let Some([bounding, ..]) = &self.caps {
            for c in &supported {
                if !bounding.contains(c) {
                    caps::drop(None, CapSet::Bounding, *c).map_err(|e| {
                        Error::Child(format!("drop {c} from the bounding set: {e}"))
                    })?;
                }
            }
        }
        // SAFETY: prctl with integer arguments only.
        Errno::result(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) })
            .ctx(|| "prctl PR_SET_KEEPCAPS")?;
        // While we may still chown.
        own_stdio(self.uid);
        if self.set_groups {
            let gids: Vec<nix::unistd::Gid> = self
                .groups
                .iter()
                .map(|g| nix::unistd::Gid::from_raw(*g))
                .collect();
            nix::unistd::setgroups(&gids).ctx(|| "setgroups")?;
        }
        let gid = nix::unistd::Gid::from_raw(self.gid);
        nix::unistd::setresgid(gid, gid, gid).ctx(|| format!("setresgid {}", self.gid))?;
        let uid = nix::unistd::Uid::from_raw(self.uid);
        nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("setresuid {}", self.uid))?;
        // Seccomp without no_new_privs needs CAP_SYS_ADMIN, so it loads before the capability
        // sets are narrowed (as in runc), but after the uid/gid change so the profile need not
        // allow setgroups/setresuid: it binds only prctl, capset and execve of ours. Leaving uid
        // 0 cleared the effective set (KEEPCAPS keeps only permitted): raise CAP_SYS_ADMIN for
        // the load, and drop it again below if no capset follows to set the final sets.
        if let (Some(f), false) = (&self.seccomp, self.no_new_privs) {
            let raised = !caps::has_cap(None, CapSet::Effective, Cap::CAP_SYS_ADMIN)
                .unwrap_or(true)
                && caps::raise(None, CapSet::Effective, Cap::CAP_SYS_ADMIN).is_ok();
            f.load()?;
            if raised && self.caps.is_none() {
                caps::drop(None, CapSet::Effective, Cap::CAP_SYS_ADMIN)
                    .map_err(|e| Error::Child(format!("drop CAP_SYS_ADMIN after seccomp: {e}")))?;
            }
        }
        // SAFETY: as above.
        Errno::result(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) })
            .ctx(|| "prctl PR_SET_KEEPCAPS")?;
        if let Some([_, effective, inheritable, permitted, ambient]) = &self.caps {
            let set = |s: CapSet, v: &HashSet<Cap>, what: &str| {
                caps::set(None, s, v)
                    .map_err(|e| Error::Child(format!("set {what} capabilities: {e}")))
            };
            // effective first (a subset of what we still hold), then inheritable, then narrow
            // permitted: capset refuses an effective set that is not within permitted.
            set(CapSet::Effective, &(effective & permitted), "effective")?;
            set(CapSet::Inheritable, inheritable, "inheritable")?;
            set(CapSet::Permitted, permitted, "permitted")?;
            caps::clear(None, CapSet::Ambient).ok();
            // The kernel raises an ambient capability only when it is permitted and inheritable;
            // `runc spec` asks for three with no inheritable set. As runc does, raise what the
            // kernel allows and pass over the rest (a debug line says which).
            for c in ambient {
                if let Err(e) = caps::raise(None, CapSet::Ambient, *c) {
                    crate::log::debug(format!("ambient capability {c} not raised: {e}"));
                }
            }
        }
        if self.no_new_privs {
            // SAFETY: prctl with integer arguments only.
            Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
                .ctx(|| "prctl PR_SET_NO_NEW_PRIVS")?;
            // With no_new_privs no capability is needed: load last, right before execve.
            if let Some(f) = &self.seccomp {
                f.load()?;
            }
        }
        Ok(())
    }
}

/// Give the process's uid the stdio pipes and sockets it inherits (their group is left), so a
/// process that is not root can still open /dev/stdout (/proc/self/fd/1) — runc does this.
/// Terminals, /dev/null and files are left alone: those are the host's, and their owner would
/// stay changed after the container is gone (a pty of the container's own is chowned by
/// tty::open_pty). Failures are passed over, as in runc: an unmapped owner (EINVAL, EPERM) or
/// a read-only file system is no reason to fail the container.
fn own_stdio(uid: u32) {
    for fd in 0..=2 {
        // SAFETY: fds 0-2 of this process; borrowed only for this iteration.
        let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let Ok(st) = nix::sys::stat::fstat(b) else {
            continue;
        };
        let kind = st.st_mode & libc::S_IFMT;
        if st.st_uid == uid || (kind != libc::S_IFIFO && kind != libc::S_IFSOCK) {
            continue;
        }
        if let Err(e) = nix::unistd::fchown(b, Some(uid.into()), None) {
            crate::log::debug(format!("chown stdio fd {fd} to uid {uid}: {e}"));
        }
    }
}

/// Mark every fd from `3 + preserve` on close-on-exec, so only stdio and the preserved ones pass.
pub fn close_fds_on_exec(preserve: u32) -> Result<()> {
    let first = 3 + preserve;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on our own fds.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(rc).map(drop).ctx(|| "close_range")
}

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Find the entrypoint the way execvp would, with the container's PATH, and check it can run.
/// Errors say `no such file or directory` or `permission denied`, as clients expect.
pub fn find_executable(arg0: &str, env: &[String], cwd: &Path) -> Result<PathBuf> {
    let check = |p: &Path| -> std::result::Result<PathBuf, Errno> {
        let md = std::fs::metadata(p)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)))?;
        if !md.is_file() || md.permissions().mode() & 0o111 == 0 {
            return Err(Errno::EACCES);
        }
        Ok(p.to_path_buf())
    };
    if arg0.contains('/') {
        let p = if arg0.starts_with('/') {
            PathBuf::from(arg0)
        } else {
            cwd.join(arg0)
        };
        return check(&p).map_err(|e| Error::sys(format!("exec {arg0}"), e));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let mut denied = false;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        match check(&Path::new(dir).join(arg0)) {
            Ok(p) => return Ok(p),
            Err(Errno::EACCES) => denied = true,
            Err(_) => {}
        }
    }
    Err(Error::sys(
        format!("exec {arg0:?}: executable file not found in $PATH"),
        if denied { Errno::EACCES } else { Errno::ENOENT },
    ))
}

/// The environment for execve: the config's, plus HOME from the container's /etc/passwd when
/// the config does not set it.
pub fn exec_env(env: &[String], uid: u32) -> Vec<CString> {
    let mut out: Vec<String> = env.to_vec();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|pw| {
                pw.lines().find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
                })
            })
            .unwrap_or_else(|| "/".to_string());
        out.push(format!("HOME={home}"));
    }
    out.into_iter()
        .filter_map(|s| CString::new(s).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoint_lookup() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert_eq!(
            find_executable("sh", &env, Path::new("/")).unwrap(),
            PathBuf::from("/bin/sh")
        );
        let e = find_executable("no-such-binary-xyz", &env, Path::new("/")).unwrap_err();
        assert!(e.to_string().ends_with("no such file or directory"), "{e}");
        let e = find_executable("/etc/passwd", &env, Path::new("/")).unwrap_err();
        assert_eq!(e.to_string(), "exec /etc/passwd: permission denied");
        let e = find_executable("/nope", &env, Path::new("/")).unwrap_err();
        assert_eq!(e.to_string(), "exec /nope: no such file or directory");
    }

    #[test]
    fn capability_names_map() {
        let c: oci_spec::runtime::Capabilities =
            serde_json::from_str(r#"["CAP_KILL","CAP_NET_BIND_SERVICE"]"#).unwrap();
        let s = cap_set(&Some(c)).unwrap();
        assert!(s.contains(&Cap::CAP_KILL) && s.contains(&Cap::CAP_NET_BIND_SERVICE));
        assert_eq!(s.len(), 2);
    }
}
