//! `hookrun exec`: the join path places the new process in every namespace and cgroup of the
//! container, with the container's process settings unless overridden.
mod common;
use common::*;

use serde_json::json;

fn running(c: &Ctr, b: &Bundle) -> i32 {
    c.create_bg(b);
    c.ok(&["start", "{id}"]);
    c.pid()
}

fn exec_out(c: &Ctr, args: &[&str]) -> (Option<i32>, String, String) {
    let mut full = vec!["exec"];
    full.extend_from_slice(args);
    let o = c.run_files(&full);
    (o.code, o.stdout, o.stderr)
}

#[test]
fn an_exec_process_shares_every_namespace_and_cgroup_of_the_init() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "mount"}, {"type": "cgroup"}
        ]);
    });
    let c = Ctr::new("execns");
    let init = running(&c, &b);
    let pidfile = c.root.path().join("exec.pid");
    let (code, _, err) = exec_out(
        &c,
        &[
            "-d",
            "--pid-file",
            pidfile.to_str().unwrap(),
            &c.id,
            "sleep",
            "1000",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    assert_ne!(pid, init);
    for ns in ["pid", "net", "ipc", "uts", "mnt", "cgroup", "user", "time"] {
        let a = std::fs::read_link(format!("/proc/{init}/ns/{ns}")).unwrap();
        let b = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_eq!(a, b, "{ns} namespace differs");
        if ns != "user" && ns != "time" {
            assert_ne!(
                a,
                std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap(),
                "{ns} is the host's"
            );
        }
    }
    let cg = |p: i32| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cg(init), cg(pid));
    assert_eq!(
        std::fs::read_link(format!("/proc/{init}/root")).unwrap(),
        std::fs::read_link(format!("/proc/{pid}/root")).unwrap()
    );
}

#[test]
fn exit_status_and_output_come_back() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("execrc");
    running(&c, &b);
    let (code, out, _) = exec_out(
        &c,
        &[&c.id, "sh", "-c", "echo pid=$$ host=$(hostname); exit 7"],
    );
    assert_eq!(code, Some(7));
    assert!(out.contains("host=hookrun"), "{out}");
    assert!(!out.contains("pid=1 "), "{out}");
    let (code, _, _) = exec_out(&c, &[&c.id, "sh", "-c", "kill -9 $$"]);
    assert_eq!(code, Some(137));
}

#[test]
fn settings_are_inherited_unless_overridden() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(&["sleep", "1000"]);
    b.edit(|c| {
        c["process"]["env"] = json!(["PATH=/bin", "FROM_CONFIG=yes"]);
        c["process"]["noNewPrivileges"] = json!(true);
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]
        });
    });
    let c = Ctr::new("execset");
    running(&c, &b);
    let (code, out, err) = exec_out(
        &c,
        &[
            &c.id,
            "sh",
            "-c",
            "echo $FROM_CONFIG; grep -E 'NoNewPrivs|CapBnd' /proc/self/status; id -u; pwd",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("yes"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("CapBnd:\t0000000000000020"), "{out}");
    let (code, out, err) = exec_out(
        &c,
        &[
            "-e",
            "FROM_CONFIG=over",
            "-u",
            "1000:1000",
            "--cwd",
            "/tmp",
            "--cap",
            "CAP_NET_RAW",
            &c.id,
            "sh",
            "-c",
            "echo $FROM_CONFIG; id -u; id -g; pwd; grep CapBnd /proc/self/status",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..4], ["over", "1000", "1000", "/tmp"], "{out}");
    assert!(out.contains("CapBnd:\t0000000000002020"), "{out}");
}

#[test]
fn a_process_json_replaces_the_settings() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("execjson");
    running(&c, &b);
    let pj = c.root.path().join("process.json");
    std::fs::write(
        &pj,
        json!({"args": ["sh", "-c", "echo $ONLY; id -u"], "cwd": "/", "env": ["ONLY=this", "PATH=/bin"],
               "user": {"uid": 65534, "gid": 65534}})
        .to_string(),
    )
    .unwrap();
    let (code, out, err) = exec_out(&c, &["--process", pj.to_str().unwrap(), &c.id]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "this\n65534\n");
    std::fs::write(&pj, r#"{"args": ["sh"], "cwd": 5}"#).unwrap();
    let (code, _, err) = exec_out(&c, &["--process", pj.to_str().unwrap(), &c.id]);
    assert_ne!(code, Some(0));
    assert!(err.contains("cwd"), "{err}");
}

#[test]
fn exec_errors_are_clear() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("execerr");
    running(&c, &b);
    let (code, _, err) = exec_out(&c, &[&c.id, "/no/such/binary"]);
    // runc's status for an exec that could not start.
    assert_eq!(code, Some(255));
    assert!(
        err.contains("exec /no/such/binary: no such file or directory"),
        "{err}"
    );
    let (code, _, err) = exec_out(&c, &["nope-not-here", "true"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("container \"nope-not-here\" does not exist"),
        "{err}"
    );
    c.ok(&["kill", "{id}", "KILL"]);
    c.wait_status("stopped");
    let (code, _, err) = exec_out(&c, &[&c.id, "true"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("stopped"), "{err}");
}

#[test]
fn exec_with_a_terminal_in_the_foreground() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("exectty");
    running(&c, &b);
    let (code, out, err) = exec_out(&c, &["-t", &c.id, "sh", "-c", "tty; exit 3"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(out.contains("/dev/pts/"), "{out}");
}
