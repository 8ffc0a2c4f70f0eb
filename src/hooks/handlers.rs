//! Running one lifecycle handler: Exec (through the join path, so in the container's
//! namespaces and cgroup), HTTP GET (from a child that entered the container's network
//! namespace) and Sleep (in the runtime). Every wait also watches the container's init, so a
//! hook never outlives its container, and an optional deadline (PreStop's grace period).
//! runs in: the runtime (and, for HTTP, a short-lived child of it).

use std::io::{Read, Seek};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use super::lifecycle::{Handler, HttpTarget};
use crate::process::join::{self, JoinRequest};

/// What a handler run came to.
#[derive(Debug, Default)]
pub struct Outcome {
    pub ok: bool,
    /// The handler's error, worded like the kubelet's (`command exited with 3, message: …`).
    pub error: String,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Extra Warning events: (reason, message).
    pub warnings: Vec<(String, String)>,
    /// The deadline passed and the hook was stopped.
    pub timed_out: bool,
}

impl Outcome {
    fn fail(error: impl Into<String>) -> Outcome {
        Outcome {
            error: error.into(),
            ..Default::default()
        }
    }
}

pub struct Target<'a> {
    pub id: &'a str,
    pub init_pid: i32,
    pub init: &'a OwnedFd,
    pub spec: &'a Spec,
    /// The container's state (the exec handler joins through it, as `hookrun exec` does).
    pub state: &'a crate::state::State,
}

/// What ended a wait.
enum Woke {
    Hook,
    InitExited,
    Deadline,
}

/// Wait for `fd` to be readable, the init to exit, or the deadline.
fn wait(fd: &OwnedFd, init: &OwnedFd, deadline: Option<Instant>) -> Woke {
    loop {
        let t = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d
                    .saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(i32::MAX as u128);
                if left == 0 {
                    return Woke::Deadline;
                }
                PollTimeout::try_from(left as i32).unwrap_or(PollTimeout::ZERO)
            }
        };
        let mut fds = [
            PollFd::new(fd.as_fd(), PollFlags::POLLIN),
            PollFd::new(init.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, t) {
            Err(Errno::EINTR) => continue,
            Ok(0) => return Woke::Deadline,
            _ => {}
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            return Woke::Hook;
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            return Woke::InitExited;
        }
    }
}

fn memfd(name: &str) -> Option<OwnedFd> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: memfd_create with a valid name; a new fd we own.
    let fd = unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC) };
    // SAFETY: a fresh fd.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The tail of what the hook wrote (at most what the output files keep).
fn read_back(fd: OwnedFd) -> Vec<u8> {
    let mut f = std::fs::File::from(fd);
    let len = f.seek(std::io::SeekFrom::End(0)).unwrap_or(0);
    let _ = f.seek(std::io::SeekFrom::Start(
        len.saturating_sub(super::journal::FILE_CAP as u64),
    ));
    let mut v = Vec::new();
    let _ = f.read_to_end(&mut v);
    v
}

fn kill_group(pid: i32) {
    // SAFETY: kill(2) of the hook's own process group (it leads one: setsid in the join path)
    // and of the hook itself; it is our unreaped child, so the pid is still its.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Run `h`. `on_pid` learns the hook's own process (Exec) so a stop elsewhere can cancel it.
pub fn run(
    h: &Handler,
    t: &Target,
    deadline: Option<Instant>,
    on_pid: &mut dyn FnMut(i32),
) -> Outcome {
    match h {
        Handler::Exec { command } => exec(command, t, deadline, on_pid),
        Handler::HttpGet(target) => http(target, t, deadline),
        Handler::Sleep { seconds } => sleep(*seconds, t, deadline),
    }
}

fn exec(
    command: &[String],
    t: &Target,
    deadline: Option<Instant>,
    on_pid: &mut dyn FnMut(i32),
) -> Outcome {
    let mut process = t.spec.process().clone().unwrap_or_default();
    process.set_args(Some(command.to_vec()));
    process.set_terminal(Some(false));
    let (Some(out), Some(err)) = (memfd("hook-stdout"), memfd("hook-stderr")) else {
        return Outcome::fail("memfd_create failed");
    };
    let null = match std::fs::File::open("/dev/null") {
        Ok(f) => OwnedFd::from(f),
        Err(e) => return Outcome::fail(format!("open /dev/null: {e}")),
    };
    let req = JoinRequest {
        state: t.state,
        spec: t.spec,
        process: &process,
        stdio: Some([null.as_raw_fd(), out.as_raw_fd(), err.as_raw_fd()]),
        preserve_fds: 0,
        cgroups: &t.state.cgroup.paths,
        explicit_cgroup: false,
    };
    let joined = match join::spawn(&req, || {}) {
        Ok(j) => j,
        Err(e) => return Outcome::fail(e.to_string()),
    };
    on_pid(joined.pid);
    let woke = wait(&joined.pidfd, t.init, deadline);
    if !matches!(woke, Woke::Hook) {
        kill_group(joined.pid);
    }
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(joined.pid), None);
    let mut o = Outcome {
        stdout: read_back(out),
        stderr: read_back(err),
        ..Default::default()
    };
    let mut message = o.stdout.clone();
    message.extend_from_slice(&o.stderr);
    let message = String::from_utf8_lossy(&message).into_owned();
    use nix::sys::wait::WaitStatus;
    match (woke, status) {
        (Woke::InitExited, _) => o.error = "container terminated before exec hook finished".into(),
        (Woke::Deadline, _) => {
            o.timed_out = true;
            o.error =
                "timed out: still running when the grace period ended; the hook was killed".into();
        }
        (Woke::Hook, Ok(WaitStatus::Exited(_, 0))) => o.ok = true,
        (Woke::Hook, Ok(WaitStatus::Exited(_, c))) => {
            o.error = format!("command exited with {c}, message: {message:?}")
        }
        (Woke::Hook, Ok(WaitStatus::Signaled(_, s, _))) => {
            o.error = format!("command was killed by {s:?}, message: {message:?}")
        }
        (Woke::Hook, other) => o.error = format!("command ended unexpectedly: {other:?}"),
    }
    o
}

#[derive(Debug, Serialize, Deserialize)]
enum HttpResult {
    Status(u16),
    Fallback(u16, String),
    Error(String),
}

fn agent(timeout: Option<Duration>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(timeout)
        .http_status_as_error(false)
        // Kubernetes does not verify the certificates of lifecycle HTTPS endpoints either.
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build(),
        )
        .build()
        .into()
}

fn get(url: &str, headers: &[(String, String)], timeout: Option<Duration>) -> Result<u16, String> {
    let mut req = agent(timeout).get(url);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    req.call()
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

/// In the child, inside the container's network namespace.
fn http_in_netns(t: &HttpTarget, timeout: Option<Duration>) -> HttpResult {
    match get(&t.url(), &t.headers, timeout) {
        Ok(s) => HttpResult::Status(s),
        Err(e) if t.scheme == "HTTPS" && looks_like_plain_http(&e) => {
            // As the kubelet does: retry over plain HTTP, without credentials.
            let plain = HttpTarget {
                scheme: "HTTP".into(),
                ..t.clone()
            };
            let headers: Vec<_> = t
                .headers
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("authorization"))
                .cloned()
                .collect();
            match get(&plain.url(), &headers, timeout) {
                Ok(s) => HttpResult::Fallback(s, e),
                Err(e2) => HttpResult::Error(e2),
            }
        }
        Err(e) => HttpResult::Error(e),
    }
}

/// rustls' view of an HTTP answer to its ClientHello.
fn looks_like_plain_http(e: &str) -> bool {
    let e = e.to_ascii_lowercase();
    e.contains("invalidcontenttype")
        || e.contains("corrupt message")
        || e.contains("http response to https")
}

fn http(target: &HttpTarget, t: &Target, deadline: Option<Instant>) -> Outcome {
    let netns = match std::fs::File::open(format!("/proc/{}/ns/net", t.init_pid)) {
        Ok(f) => f,
        Err(e) => return Outcome::fail(format!("open the container's network namespace: {e}")),
    };
    // Rootless: the netns belongs to the container's user namespace, which must be entered
    // first to have the right to enter the netns.
    let own_userns = std::fs::read_link("/proc/self/ns/user").ok();
    let userns = (std::fs::read_link(format!("/proc/{}/ns/user", t.init_pid)).ok() != own_userns)
        .then(|| std::fs::File::open(format!("/proc/{}/ns/user", t.init_pid)).ok())
        .flatten();
    let (r, w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return Outcome::fail(format!("pipe: {e}")),
    };
    let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    // SAFETY: fork of the single-threaded runtime; the child only joins the netns, makes one
    // request, writes the result and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        drop(r);
        let joined_user = match &userns {
            Some(u) => nix::sched::setns(u, nix::sched::CloneFlags::CLONE_NEWUSER),
            None => Ok(()),
        };
        let res = match joined_user
            .and_then(|()| nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET))
        {
            Ok(()) => http_in_netns(target, timeout),
            Err(e) => HttpResult::Error(format!("join the container's network namespace: {e}")),
        };
        let _ = nix::unistd::write(&w, &serde_json::to_vec(&res).unwrap_or_default());
        // SAFETY: _exit in a forked child.
        unsafe { libc::_exit(0) }
    }
    drop(w);
    if pid < 0 {
        return Outcome::fail("fork for the HTTP hook failed");
    }
    let woke = wait(&r, t.init, deadline);
    if !matches!(woke, Woke::Hook) {
        // SAFETY: our own unreaped child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let mut buf = Vec::new();
    if matches!(woke, Woke::Hook) {
        let _ = std::fs::File::from(r).read_to_end(&mut buf);
    }
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    let url = target.url();
    match woke {
        Woke::InitExited => return Outcome::fail("container terminated before HTTP hook finished"),
        Woke::Deadline => {
            return Outcome {
                timed_out: true,
                error: format!("Get {url:?}: timed out: still running when the grace period ended"),
                ..Default::default()
            }
        }
        Woke::Hook => {}
    }
    let status_warning = |s: u16| {
        (!(200..400).contains(&s)).then(|| {
            (
                "LifecycleHTTPStatus".to_string(),
                format!(
                    "HTTP lifecycle hook ({}) for Container {:?} got status {s} from {url}",
                    target.path, t.id
                ),
            )
        })
    };
    match serde_json::from_slice::<HttpResult>(&buf) {
        Ok(HttpResult::Status(s)) => Outcome {
            ok: true,
            stdout: format!("HTTP {s}\n").into_bytes(),
            warnings: status_warning(s).into_iter().collect(),
            ..Default::default()
        },
        Ok(HttpResult::Fallback(s, why)) => {
            let mut warnings = vec![(
                "LifecycleHTTPFallback".to_string(),
                format!(
                    "HTTP lifecycle hook ({}) for Container {:?} fell back to http:// after https:// failed: {why}",
                    target.path, t.id
                ),
            )];
            warnings.extend(status_warning(s));
            Outcome {
                ok: true,
                stdout: format!("HTTP {s} (plain HTTP fallback)\n").into_bytes(),
                warnings,
                ..Default::default()
            }
        }
        Ok(HttpResult::Error(e)) => Outcome::fail(format!("Get {url:?}: {e}")),
        Err(_) => Outcome::fail(format!(
            "Get {url:?}: the request process ended without an answer"
        )),
    }
}

fn sleep(seconds: u64, t: &Target, deadline: Option<Instant>) -> Outcome {
    let end = Instant::now() + Duration::from_secs(seconds);
    let until = match deadline {
        Some(d) if d < end => d,
        _ => end,
    };
    // The init's pidfd doubles as the thing waited on: only its exit or the clock wakes us.
    match wait(t.init, t.init, Some(until)) {
        Woke::Hook | Woke::InitExited => {
            Outcome::fail("container terminated before sleep hook finished")
        }
        Woke::Deadline if until < end => Outcome {
            timed_out: true,
            error: "timed out: the grace period ended before the sleep did".into(),
            ..Default::default()
        },
        Woke::Deadline => Outcome {
            ok: true,
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_answers_are_recognised() {
        assert!(looks_like_plain_http(
            "io: received corrupt message of type InvalidContentType"
        ));
        assert!(!looks_like_plain_http("connection refused"));
    }
}
