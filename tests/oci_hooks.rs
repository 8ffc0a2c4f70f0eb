//! The six OCI hooks with real containers: order, namespaces, state on stdin, env, timeouts,
//! and which failures abort and which only warn.
mod common;
use common::*;

use serde_json::{json, Value};
use std::path::Path;

/// A hook that appends "<name> <state json>" (and the mount ns it ran in) to `log`.
fn logging_hook(name: &str, log: &Path) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("read -r s; echo \"{name} $(readlink /proc/self/ns/mnt) $s\" >> {}", log.display())],
    })
}

fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn all_six_run_in_order_with_state_on_stdin() {
    if !require_root() {
        return;
    }
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("hooks.log");
    let mut b = Bundle::new(&["/bin/sh", "-c", "cat /started; echo ran >> /entry"]);
    b.edit(|c| {
        c["hooks"] = json!({
            "prestart": [logging_hook("prestart", &log)],
            "createRuntime": [logging_hook("createRuntime", &log)],
            "createContainer": [logging_hook("createContainer", &log)],
            // after pivot_root: its path and its writes are the container's
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "read -r s; echo \"$s\" > /started; echo env=$HOOKVAR >> /started"], "env": ["HOOKVAR=set"]}],
            "poststart": [logging_hook("poststart", &log)],
            "poststop": [logging_hook("poststop", &log)],
        });
    });
    let c = Ctr::new("hooks");
    let (code, out, err) = c.run_fg(&b);
    assert_eq!(code, 0, "{err}");
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let got = lines(&log);
    let names: Vec<&str> = got.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ]
    );
    let status = |i: usize| -> (String, String, Value) {
        let mut it = got[i].splitn(3, ' ');
        let (name, ns, st) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        (
            name.to_string(),
            ns.to_string(),
            serde_json::from_str(st).unwrap(),
        )
    };
    for (i, want_status, in_runtime_ns) in [
        (0, "created", true),
        (1, "created", true),
        (2, "created", false),
        (3, "running", true),
        (4, "stopped", true),
    ] {
        let (name, ns, st) = status(i);
        assert_eq!(st["status"], want_status, "{name}");
        assert_eq!(st["id"], c.id.as_str(), "{name}");
        assert!(st["pid"].as_i64().unwrap() > 0, "{name}");
        assert_eq!(
            ns == host_mnt.to_str().unwrap(),
            in_runtime_ns,
            "{name} ran in the wrong mount namespace"
        );
    }
    // startContainer ran inside the container, before the entrypoint, with its own env
    let started: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(started["status"], "created");
    assert!(out.contains("env=set"), "{out}");
}

#[test]
fn a_failing_create_time_hook_aborts_create_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let mut b = Bundle::new(&["/bin/sh", "-c", "touch /ran"]);
        b.edit(|c| {
            c["hooks"] = json!({kind: [
                {"path": "/bin/true"},
                {"path": "/bin/sh", "args": ["sh", "-c", "echo broken >&2; exit 2"]}
            ]});
        });
        let c = Ctr::new("hookfail");
        let err = c.fails(&["create", "-b", b.path().to_str().unwrap(), "{id}"]);
        assert!(
            err.contains(&format!(
                "{kind} hook #1 (/bin/sh): error running hook: exit status 2: broken"
            )),
            "{kind}: {err}"
        );
        assert!(!c.state_dir().exists(), "{kind}: state dir left");
        assert!(processes_matching(b.path().to_str().unwrap()).is_empty());
        assert!(!b.rootfs().join("ran").exists());
    }
}

#[test]
fn a_failing_start_container_hook_fails_start_and_the_entrypoint_never_runs() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(&["/bin/sh", "-c", "touch /ran"]);
    b.edit(|c| {
        c["hooks"] =
            json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 5"]}]});
    });
    let c = Ctr::new("startfail");
    c.create_bg(&b);
    let err = c.fails(&["start", "{id}"]);
    assert!(
        err.contains("startContainer hook #0 (/bin/sh): error running hook: exit status 5"),
        "{err}"
    );
    c.wait_status("stopped");
    assert!(!b.rootfs().join("ran").exists());
}

#[test]
fn poststart_and_poststop_failures_only_warn() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(&["sleep", "1000"]);
    let marks = tempfile::tempdir().unwrap();
    let second = marks.path().join("second-ran");
    b.edit(|c| {
        c["hooks"] = json!({
            // the one after a failing hook still runs
            "poststart": [{"path": "/bin/false"}, {"path": "/bin/touch", "args": ["touch", second.to_str().unwrap()]}],
            "poststop": [{"path": "/bin/false"}],
        });
    });
    let c = Ctr::new("latefail");
    c.create_bg(&b);
    let o = c.run_files(&["start", "{id}"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(
        o.stderr.contains("warning: poststart hook #0"),
        "{}",
        o.stderr
    );
    assert!(
        second.exists(),
        "the poststart hook after the failing one did not run"
    );
    assert_eq!(c.status(), "running");
    let o = c.run_files(&["delete", "--force", "{id}"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(
        o.stderr.contains("warning: poststop hook #0"),
        "{}",
        o.stderr
    );
    assert!(!c.state_dir().exists());
}

#[test]
fn a_hook_past_its_timeout_is_killed_and_fails_create() {
    if !require_root() {
        return;
    }
    // The hook notes its pid, then becomes a 600 s sleep: only the timeout ends it early.
    let pids = tempfile::tempdir().unwrap();
    let pidfile = pids.path().join("hook.pid");
    let mut b = Bundle::new(&["/bin/true"]);
    b.edit(|c| {
        c["hooks"] = json!({"createRuntime": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo $$ > {}; exec sleep 600", pidfile.display())],
            "timeout": 1
        }]});
    });
    let c = Ctr::new("hooktimeout");
    let o = c
        .spawn(&["create", "-b", b.path().to_str().unwrap(), "{id}"])
        .wait(std::time::Duration::from_secs(60));
    assert_ne!(o.code, Some(0), "create succeeded past a hung hook");
    assert!(
        o.stderr
            .contains("createRuntime hook #0 (/bin/sh): timed out after 1s"),
        "{}",
        o.stderr
    );
    assert!(!c.state_dir().exists());
    // The hook itself was killed, not left sleeping.
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let sleeping =
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep\x00600"));
    assert!(!sleeping, "the timed-out hook {pid} still runs");
}

#[test]
fn start_container_hooks_run_in_order_as_the_process_with_its_env() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(&["/bin/sh", "-c", "cat /hooks.log"]);
    let hook = |n: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {n} $(id -u) [$FROM_PROCESS] [$HOOK_OWN] >> /hooks.log")]});
    b.edit(|c| {
        c["process"]["env"] = json!(["PATH=/bin:/usr/bin", "FROM_PROCESS=yes"]);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        let mut own = hook("third");
        own["env"] = json!(["HOOK_OWN=only"]);
        c["hooks"] = json!({"startContainer": [hook("first"), hook("second"), own]});
    });
    // The hooks run as uid 1000: let it write the log.
    std::fs::write(b.rootfs().join("hooks.log"), "").unwrap();
    std::os::unix::fs::chown(b.rootfs().join("hooks.log"), Some(1000), Some(1000)).unwrap();
    let c = Ctr::new("hookenv");
    let out = run_ok(&c, &b);
    // In the listed order; without an `env` of its own a hook gets the process's (as runc
    // gives it), with one it gets only that.
    assert_eq!(
        out,
        "first 1000 [yes] []\nsecond 1000 [yes] []\nthird 1000 [] [only]\n"
    );
}
