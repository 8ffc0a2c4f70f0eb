//! SCMP_ACT_NOTIFY with real containers and an agent in this test process: the listener and
//! runtime-spec's ContainerProcessState reach the agent at `run` and at `exec`, the agent's
//! answers are what the container sees, and nothing but the agent keeps the listener (the
//! agent closing it turns held calls into ENOSYS). Bad uses fail `create` with one clear line.

mod common;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::*;
use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde_json::{json, Value};

/// What the test agent does with a listener.
#[derive(Clone, Copy)]
enum Answer {
    /// Fail every held call with this errno.
    Errno(i32),
    /// Close the listener at once.
    Drop,
}

/// An agent like runc's contrib/cmd/seccompagent: it accepts connections on a unix socket,
/// reads one message with one fd from each, records the message and serves the listener.
struct Agent {
    path: PathBuf,
    messages: Arc<Mutex<Vec<Value>>>,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start(answer: Answer) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let seen = messages.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let mut buf = vec![0u8; 8192];
                let (n, fd) =
                    hookrun::process::channel::recv_with_fd(conn.as_raw_fd(), &mut buf).unwrap();
                let msg: Value = serde_json::from_slice(&buf[..n]).unwrap();
                seen.lock().unwrap().push(msg);
                let fd = fd.expect("the listener came with the message");
                match answer {
                    Answer::Drop => drop(fd),
                    Answer::Errno(e) => {
                        std::thread::spawn(move || serve(fd, e));
                    }
                }
            }
        });
        Agent {
            path,
            messages,
            _dir: dir,
        }
    }

    fn messages(&self) -> Vec<Value> {
        self.messages.lock().unwrap().clone()
    }
}

/// Answer held calls until no process uses the filter any more (the listener then hangs up).
fn serve(fd: OwnedFd, errno: i32) {
    loop {
        let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        if poll(&mut p, PollTimeout::NONE).is_err() {
            return;
        }
        let got = p[0].revents().unwrap_or(PollFlags::empty());
        if !got.contains(PollFlags::POLLIN) {
            return;
        }
        let Ok(req) = ScmpNotifReq::receive(fd.as_raw_fd()) else {
            continue;
        };
        let _ = ScmpNotifResp::new_error(req.id, -errno, ScmpNotifRespFlags::empty())
            .respond(fd.as_raw_fd());
    }
}

/// A profile that sends mkdir and mkdirat to the agent at `path`.
fn profile(path: &std::path::Path) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": path,
        "listenerMetadata": "bar",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })
}

fn bundle(script: &str, seccomp: Value, nnp: bool) -> Bundle {
    let mut b = sh(script);
    b.edit(|c| {
        c["linux"]["seccomp"] = seccomp;
        c["process"]["noNewPrivileges"] = json!(nnp);
    });
    b
}

#[test]
fn the_agent_gets_the_listener_and_the_state_at_run() {
    if !require_root() {
        return;
    }
    for nnp in [false, true] {
        let agent = Agent::start(Answer::Errno(libc::ENOMEDIUM));
        let b = bundle("mkdir /tmp/d; echo rc=$?", profile(&agent.path), nnp);
        let c = Ctr::new("notify-run");
        let (code, out, err) = c.run_fg(&b);
        assert_eq!((code, out.trim()), (0, "rc=1"), "nnp={nnp}: {err}");
        assert!(err.contains("No medium found"), "nnp={nnp}: {err}");
        assert!(!b.rootfs().join("tmp/d").exists());
        let m = agent.messages();
        assert_eq!(m.len(), 1, "{m:?}");
        let m = &m[0];
        assert_eq!(m["fds"], json!(["seccompFd"]), "{m}");
        assert_eq!(m["metadata"], "bar", "{m}");
        assert_eq!(m["state"]["id"], c.id.as_str(), "{m}");
        assert_eq!(m["state"]["status"], "creating", "{m}");
        assert_eq!(m["state"]["bundle"], b.path().to_str().unwrap(), "{m}");
        assert!(m["pid"].as_i64().unwrap() > 0, "{m}");
        assert_eq!(m["pid"], m["state"]["pid"], "{m}");
    }
}

#[test]
fn an_exec_process_gets_its_own_listener() {
    if !require_root() {
        return;
    }
    let agent = Agent::start(Answer::Errno(libc::ENOMEDIUM));
    let b = bundle("sleep 1000", profile(&agent.path), false);
    let c = Ctr::new("notify-exec");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    let o = c.run_files(&["exec", "{id}", "sh", "-c", "mkdir /tmp/e; echo rc=$?"]);
    assert_eq!((o.code, o.stdout.trim()), (Some(0), "rc=1"), "{}", o.stderr);
    assert!(o.stderr.contains("No medium found"), "{}", o.stderr);
    let m = agent.messages();
    assert_eq!(m.len(), 2, "{m:?}");
    assert_eq!(m[1]["state"]["status"], "running", "{m:?}");
    assert_eq!(m[1]["state"]["pid"], c.pid(), "{m:?}");
    assert_ne!(m[1]["pid"], c.pid(), "the exec process's own pid: {m:?}");
}

#[test]
fn only_the_agent_holds_the_listener() {
    if !require_root() {
        return;
    }
    // The agent closes the listener as soon as it has it: if no copy is left in the runtime or
    // the container, a held mkdir gets ENOSYS instead of waiting for ever.
    let agent = Agent::start(Answer::Drop);
    let b = bundle("mkdir /tmp/d; echo rc=$?", profile(&agent.path), false);
    let c = Ctr::new("notify-drop");
    let (code, out, err) = c.run_fg(&b);
    assert_eq!((code, out.trim()), (0, "rc=1"), "{err}");
    assert!(err.contains("Function not implemented"), "{err}");
}

#[test]
fn start_container_hooks_see_no_listener_fd() {
    if !require_root() {
        return;
    }
    let agent = Agent::start(Answer::Errno(libc::ENOMEDIUM));
    let mut b = bundle("true", profile(&agent.path), false);
    b.edit(|c| {
        c["hooks"] = json!({"startContainer": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", "ls /proc/self/fd > /hook-fds"]
        }]});
    });
    let c = Ctr::new("notify-hook");
    run_ok(&c, &b);
    // stdin, stdout, stderr and ls's own directory fd.
    let fds = std::fs::read_to_string(b.rootfs().join("hook-fds")).unwrap();
    assert_eq!(fds.lines().count(), 4, "{fds}");
}

/// `create` fails with one line containing `want`, leaving nothing under the root.
fn create_fails(name: &str, seccomp: Value, want: &str) {
    let b = bundle("true", seccomp, false);
    let c = Ctr::new(name);
    let o = c.run_files(&["create", "-b", bpath(&b), "{id}"]);
    assert!(o.code.is_some_and(|c| c != 0), "{name}: {o:?}");
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{name}: {:?}", o.stderr);
    assert!(lines[0].contains(want), "{name}: {:?}", lines[0]);
    assert_eq!(
        std::fs::read_dir(c.root.path()).unwrap().count(),
        0,
        "{name}"
    );
    assert!(processes_matching(bpath(&b)).is_empty(), "{name}");
}

#[test]
fn bad_uses_fail_create_clearly() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nobody = dir.path().join("nobody-listens.sock");
    create_fails(
        "notify-noagent",
        profile(&nobody),
        "failed to connect with seccomp agent specified in the seccomp profile: connect",
    );
    let mut p = profile(&nobody);
    p["syscalls"][0]["names"] = json!(["mkdir", "write"]);
    create_fails(
        "notify-write",
        p,
        "config.json: linux.seccomp.syscalls[0]: SCMP_ACT_NOTIFY cannot be used for the write \
         syscall",
    );
    let mut p = profile(&nobody);
    p["listenerPath"] = json!("");
    create_fails(
        "notify-nopath",
        p,
        "config.json: linux.seccomp.listenerPath: must be set",
    );
    let mut p = profile(&nobody);
    p["defaultAction"] = json!("SCMP_ACT_NOTIFY");
    create_fails(
        "notify-default",
        p,
        "SCMP_ACT_NOTIFY cannot be used as default action",
    );
}

#[test]
fn a_listener_path_without_notify_rules_is_not_used() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut p = profile(&dir.path().join("nobody-listens.sock"));
    p["syscalls"][0]["action"] = json!("SCMP_ACT_ERRNO");
    let b = bundle("mkdir /tmp/d; echo rc=$?", p, false);
    let c = Ctr::new("notify-unused");
    assert_eq!(run_ok(&c, &b).trim(), "rc=1");
}
