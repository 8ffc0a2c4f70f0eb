//! The command line as a runc user sees it, on real containers: create/start/state/kill/delete,
//! foreground and detached `run`, list, spec, features, ids, json logs, and concurrent commands.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(15);

/// (state, start time) of a live pid, from /proc/<pid>/stat.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    Some((f[0].chars().next()?, f[19].parse().ok()?))
}

/// The process that had start time `start` still exists and is not a zombie.
fn alive(pid: i32, start: u64) -> bool {
    matches!(proc_stat(pid), Some((s, t)) if t == start && s != 'Z')
}

fn start_time(pid: i32) -> u64 {
    proc_stat(pid).expect("process is alive").1
}

/// Status, or None when `state` fails (not created yet, or gone).
fn status_of(c: &Ctr) -> Option<String> {
    let o = c.run(&["state", "{id}"]);
    if !o.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&o.stdout).ok()?;
    v["status"].as_str().map(str::to_string)
}

/// Live processes in the pid namespace of `init` (init included), by their host pids.
fn ns_members(init: i32) -> Vec<i32> {
    let Ok(ns) = std::fs::read_link(format!("/proc/{init}/ns/pid")) else {
        return vec![];
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read_link(format!("/proc/{pid}/ns/pid"))
            .ok()
            .as_ref()
            == Some(&ns)
            && proc_stat(pid).is_some_and(|(s, _)| s != 'Z')
        {
            out.push(pid);
        }
    }
    out
}

fn cmdline(pid: i32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
        .replace('\0', " ")
        .trim()
        .to_string()
}

/// Exactly one line on stderr, as `hookrun: …`.
fn one_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr, got: {stderr:?}"
    );
    assert!(lines[0].starts_with("hookrun: "), "{stderr:?}");
    lines[0]
}

fn wait_file(p: &Path) -> bool {
    wait_until(LIMIT, || p.exists())
}

fn send(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a hookrun process this test spawned and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

#[test]
fn create_leaves_a_created_container_and_writes_the_pid_file() {
    if !require_root() {
        return;
    }
    let b = sh("exec sleep 1000");
    let c = Ctr::new("create");
    let pidfile = c.root.path().join("init.pid");
    let o = c.run_files(&[
        "create",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "-b",
        bpath(&b),
        "{id}",
    ]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let st = c.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["phase"], "Created");
    assert_eq!(st["id"], c.id.as_str());
    let bundle = std::fs::canonicalize(b.path()).unwrap();
    assert_eq!(st["bundle"], json!(bundle));
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0, "{st}");
    let text = std::fs::read_to_string(&pidfile).unwrap();
    assert_eq!(
        text,
        pid.to_string(),
        "pid file must be the decimal pid, no newline"
    );
    assert!(alive(pid as i32, start_time(pid as i32)));
    // Blocked before exec: the init is still hookrun, not the entrypoint.
    assert!(
        !cmdline(pid as i32).starts_with("sleep"),
        "{}",
        cmdline(pid as i32)
    );
    assert!(c.state_dir().join("exec.fifo").exists());
    let created = st["created"].as_str().unwrap();
    humantime::parse_rfc3339(created).unwrap_or_else(|e| panic!("created {created:?}: {e}"));
}

#[test]
fn relative_bundle_and_pid_file_are_taken_from_the_working_directory() {
    if !require_root() {
        return;
    }
    // `cd bundle && hookrun create --pid-file init.pid ID`, as runc users do.
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("relative");
    let st = std::process::Command::new(bin())
        .arg("--root")
        .arg(c.root.path())
        .args(["create", "--pid-file", "init.pid", &c.id])
        .current_dir(b.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let text = std::fs::read_to_string(b.path().join("init.pid")).unwrap();
    assert_eq!(text, c.pid().to_string());
    assert_eq!(
        c.state()["bundle"],
        json!(std::fs::canonicalize(b.path()).unwrap())
    );
}

#[test]
fn the_entrypoint_runs_only_after_start() {
    if !require_root() {
        return;
    }
    let b = sh("echo started > /tmp/started; exec sleep 1000");
    let marker = b.rootfs().join("tmp/started");
    let c = Ctr::new("start");
    c.create_bg(&b);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!marker.exists(), "entrypoint ran before start");
    c.ok(&["start", "{id}"]);
    assert!(wait_file(&marker), "entrypoint did not run after start");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "started\n");
    let st = c.state();
    assert_eq!(st["status"], "running");
    assert_eq!(st["phase"], "Running");
    assert!(wait_until(LIMIT, || cmdline(c.pid()) == "sleep 1000"));
    assert!(!c.state_dir().join("exec.fifo").exists());
}

#[test]
fn kill_sends_sigterm_by_default() {
    if !require_root() {
        return;
    }
    let b = sh(
        "trap 'echo TERM > /tmp/got; exit 0' TERM; touch /tmp/ready; \
                while :; do sleep 0.1; done",
    );
    let c = Ctr::new("killterm");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    assert!(wait_file(&b.rootfs().join("tmp/ready")));
    c.ok(&["kill", "{id}"]);
    assert!(wait_until(LIMIT, || c.status() == "stopped"));
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("tmp/got")).unwrap(),
        "TERM\n"
    );
    assert_eq!(c.state()["phase"], "Stopped");
}

#[test]
fn kill_by_name_and_by_number() {
    if !require_root() {
        return;
    }
    // `sleep` as pid 1 of its namespace has no handlers: only a real SIGKILL stops it.
    for sig in ["KILL", "SIGKILL", "9"] {
        let b = Bundle::new(&["sleep", "1000"]);
        let c = Ctr::new("killsig");
        c.create_bg(&b);
        c.ok(&["start", "{id}"]);
        let pid = c.pid();
        let t = start_time(pid);
        c.ok(&["kill", "{id}", sig]);
        assert!(
            wait_until(LIMIT, || !alive(pid, t)),
            "kill {sig} did not stop it"
        );
        assert_eq!(c.status(), "stopped", "after kill {sig}");
    }
}

#[test]
fn kill_with_an_unknown_signal_is_refused() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("killbad");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    for sig in ["NOPE", "99", "SIGFOO"] {
        let err = c.fails(&["kill", "{id}", sig]);
        assert!(one_line(&err).contains("unknown signal"), "{sig}: {err}");
    }
    assert_eq!(c.status(), "running");
}

#[test]
fn kill_of_a_stopped_container_says_not_running() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["true"]);
    let c = Ctr::new("killstopped");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    c.wait_status("stopped");
    let err = c.fails(&["kill", "{id}", "KILL"]);
    assert!(one_line(&err).contains("container not running"), "{err}");
    // Still there to be deleted.
    c.ok(&["delete", "{id}"]);
    assert!(!c.state_dir().exists());
}

#[test]
fn kill_all_signals_every_process_in_the_container() {
    if !require_root() {
        return;
    }
    // The init traps TERM (and so survives it); its children have no trap and die of it.
    let b = sh("trap 'echo term >> /tmp/init-term' TERM; \
                sleep 1000 & sleep 1000 & sleep 1000 & touch /tmp/ready; \
                while :; do sleep 1; done");
    let c = Ctr::new("killall");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    assert!(wait_file(&b.rootfs().join("tmp/ready")));
    let init = c.pid();
    let sleepers = || -> Vec<i32> {
        ns_members(init)
            .into_iter()
            .filter(|p| cmdline(*p) == "sleep 1000")
            .collect()
    };
    let first = sleepers();
    assert_eq!(first.len(), 3, "background sleeps: {first:?}");
    let starts: Vec<(i32, u64)> = first.iter().map(|p| (*p, start_time(*p))).collect();

    c.ok(&["kill", "--all", "{id}", "TERM"]);
    assert!(
        wait_until(LIMIT, || starts.iter().all(|(p, t)| !alive(*p, *t))),
        "kill --all TERM left {:?}",
        sleepers()
    );
    assert!(
        wait_file(&b.rootfs().join("tmp/init-term")),
        "init got no TERM"
    );
    assert_eq!(
        c.status(),
        "running",
        "the init traps TERM and must survive"
    );

    let everyone: Vec<(i32, u64)> = ns_members(init)
        .into_iter()
        .filter_map(|p| proc_stat(p).map(|(_, t)| (p, t)))
        .collect();
    c.ok(&["kill", "-a", "{id}", "KILL"]);
    assert!(
        wait_until(LIMIT, || everyone.iter().all(|(p, t)| !alive(*p, *t))),
        "kill --all KILL left processes"
    );
    assert_eq!(c.status(), "stopped");
}

#[test]
fn delete_without_force_refuses_a_running_container() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("delrun");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    let pid = c.pid();
    let t = start_time(pid);
    let err = c.fails(&["delete", "{id}"]);
    let line = one_line(&err);
    assert!(
        line.contains("running") && line.contains("--force"),
        "{err}"
    );
    assert_eq!(c.status(), "running");
    assert!(alive(pid, t));
    assert!(c.state_dir().exists());
}

#[test]
fn delete_force_removes_a_running_container() {
    if !require_root() {
        return;
    }
    let b = sh("sleep 1000 & exec sleep 1000");
    let c = Ctr::new("delforce");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    let pid = c.pid();
    assert!(wait_until(LIMIT, || ns_members(pid).len() == 2));
    let members: Vec<(i32, u64)> = ns_members(pid)
        .into_iter()
        .map(|p| (p, start_time(p)))
        .collect();
    c.ok(&["delete", "-f", "{id}"]);
    assert!(!c.state_dir().exists());
    assert!(
        wait_until(LIMIT, || members.iter().all(|(p, t)| !alive(*p, *t))),
        "processes left after delete -f"
    );
    let err = c.fails(&["state", "{id}"]);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!c.ok(&["list", "-q"]).contains(&c.id));
}

#[test]
fn delete_of_a_created_container_needs_force_and_kills_the_blocked_init() {
    if !require_root() {
        return;
    }
    let b = sh("touch /tmp/ran; exec sleep 1000");
    let c = Ctr::new("delcreated");
    c.create_bg(&b);
    let pid = c.pid();
    let t = start_time(pid);
    // runtime spec: deleting a container that is not stopped is an error
    let err = c.fails(&["delete", "{id}"]);
    assert!(
        err.contains("is created") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(c.status(), "created");
    c.ok(&["delete", "--force", "{id}"]);
    assert!(!c.state_dir().exists());
    assert!(wait_until(LIMIT, || !alive(pid, t)), "init survived delete");
    assert!(processes_matching(bpath(&b)).is_empty());
    assert!(!b.rootfs().join("tmp/ran").exists(), "entrypoint ran");
}

#[test]
fn unknown_ids_say_does_not_exist() {
    if !require_root() {
        return;
    }
    let c = Ctr::new("unknown");
    let want = format!("container \"{}\" does not exist", c.id);
    for args in [
        &["state", "{id}"][..],
        &["start", "{id}"],
        &["kill", "{id}"],
        &["kill", "{id}", "KILL"],
        &["delete", "{id}"],
    ] {
        let err = c.fails(args);
        assert!(one_line(&err).contains(&want), "{args:?}: {err}");
    }
    // delete --force of an unknown id is not an error (as runc).
    let o = c.run(&["delete", "--force", "{id}"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn starting_twice_fails_naming_the_status() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("twice");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    let err = c.fails(&["start", "{id}"]);
    assert!(one_line(&err).contains("is running"), "{err}");
    assert_eq!(c.status(), "running");
}

#[test]
fn run_returns_the_exit_code_and_passes_stdout_through() {
    if !require_root() {
        return;
    }
    let b = sh("echo hello-from-the-container; exit 7");
    let c = Ctr::new("runexit");
    let (code, out, err) = c.run_fg(&b);
    assert_eq!(code, 7, "{err}");
    assert_eq!(out, "hello-from-the-container\n");
    assert!(!c.state_dir().exists(), "run without --keep must delete");
    assert!(!c.ok(&["list", "-q"]).contains(&c.id));
}

#[test]
fn run_of_a_killed_container_exits_128_plus_the_signal() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("runkilled");
    let run = c.spawn(&["run", "-b", bpath(&b), "{id}"]);
    assert!(wait_until(LIMIT, || status_of(&c).as_deref() == Some("running")));
    c.ok(&["kill", "{id}", "KILL"]);
    let o = run.wait(LIMIT);
    assert_eq!(o.code, Some(128 + 9), "{}", o.stderr);
    assert!(!c.state_dir().exists());
}

#[test]
fn run_keep_leaves_a_stopped_container_to_delete() {
    if !require_root() {
        return;
    }
    let b = sh("exit 0");
    let c = Ctr::new("runkeep");
    let o = c.run_files(&["run", "--keep", "-b", bpath(&b), "{id}"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let st = c.state();
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["pid"], 0);
    c.ok(&["delete", "{id}"]);
    assert!(!c.state_dir().exists());
}

#[test]
fn sigterm_or_sigint_to_run_is_delivered_to_the_container_as_sigterm() {
    if !require_root() {
        return;
    }
    // Ctrl-C on a foreground `run` stops the container the same way: its stop signal.
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let b = sh(
            "trap 'echo got-term; exit 3' TERM; trap 'echo got-int; exit 4' INT; \
                    touch /tmp/ready; while :; do sleep 0.1; done",
        );
        let c = Ctr::new("runterm");
        let run = c.spawn(&["run", "-b", bpath(&b), "{id}"]);
        assert!(wait_file(&b.rootfs().join("tmp/ready")));
        send(run.pid(), sig);
        let o = run.wait(LIMIT);
        assert_eq!(o.code, Some(3), "signal {sig}: {}", o.stderr);
        assert_eq!(o.stdout, "got-term\n", "signal {sig}");
        assert!(!c.state_dir().exists());
    }
}

#[test]
fn run_sigkills_a_container_that_ignores_sigterm_after_the_grace_period() {
    if !require_root() {
        return;
    }
    let mut b = sh("trap '' TERM; touch /tmp/ready; while :; do sleep 1; done");
    b.edit(|c| {
        c["annotations"] = json!({"dev.hookrun.termination-grace-period-seconds": "1"});
    });
    let c = Ctr::new("rungrace");
    let run = c.spawn(&["run", "-b", bpath(&b), "{id}"]);
    assert!(wait_file(&b.rootfs().join("tmp/ready")));
    let t0 = Instant::now();
    send(run.pid(), libc::SIGTERM);
    // The default grace period (30 s) would overrun this limit: the annotation must be honoured.
    let o = run.wait(LIMIT);
    assert_eq!(o.code, Some(128 + 9), "{}", o.stderr);
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "killed before the grace period: {:?}",
        t0.elapsed()
    );
}

#[test]
fn other_signals_to_run_are_forwarded() {
    if !require_root() {
        return;
    }
    let b = sh("trap 'echo usr1 > /tmp/usr1' USR1; touch /tmp/ready; \
                while :; do sleep 0.1; done");
    let c = Ctr::new("runusr1");
    let run = c.spawn(&["run", "-b", bpath(&b), "{id}"]);
    assert!(wait_file(&b.rootfs().join("tmp/ready")));
    send(run.pid(), libc::SIGUSR1);
    assert!(
        wait_file(&b.rootfs().join("tmp/usr1")),
        "USR1 not forwarded"
    );
    assert_eq!(
        status_of(&c).as_deref(),
        Some("running"),
        "USR1 must not stop it"
    );
    c.ok(&["kill", "{id}", "KILL"]);
    assert_eq!(run.wait(LIMIT).code, Some(137));
}

#[test]
fn run_detached_returns_with_the_container_running() {
    if !require_root() {
        return;
    }
    let b = sh("touch /tmp/ran; exec sleep 1000");
    let c = Ctr::new("rund");
    let o = c.run_files(&["run", "-d", "-b", bpath(&b), "{id}"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let st = c.state();
    assert_eq!(st["status"], "running");
    assert_eq!(st["phase"], "Running");
    assert!(wait_file(&b.rootfs().join("tmp/ran")));
}

#[test]
fn list_in_table_json_and_quiet_forms() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("list");
    c.create_bg(&b);
    let table = c.ok(&["list"]);
    let mut lines = table.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{table}"
    );
    let row: Vec<&str> = lines.next().expect("one row").split_whitespace().collect();
    assert_eq!(row[0], c.id);
    assert_eq!(row[1], c.pid().to_string());
    assert_eq!(row[2], "created");
    assert_eq!(row[5], "root");

    let v: Value = serde_json::from_str(&c.ok(&["list", "--format", "json"])).unwrap();
    let arr = v.as_array().expect("a json array");
    assert_eq!(arr.len(), 1, "{v}");
    assert_eq!(arr[0]["id"], c.id.as_str());
    assert_eq!(arr[0]["status"], "created");

    assert_eq!(c.ok(&["list", "-q"]), format!("{}\n", c.id));
    c.ok(&["start", "{id}"]);
    let v: Value = serde_json::from_str(&c.ok(&["list", "-f", "json"])).unwrap();
    assert_eq!(v[0]["status"], "running");
}

#[test]
fn spec_writes_a_config_and_refuses_to_overwrite_it() {
    if !require_root() {
        return;
    }
    let c = Ctr::new("spec");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    c.ok(&["spec", "-b", d]);
    let p = dir.path().join("config.json");
    let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).expect("valid JSON");
    assert!(v["ociVersion"].is_string(), "{v}");
    assert!(v["process"]["args"].is_array(), "{v}");
    assert!(v["linux"]["namespaces"].is_array(), "{v}");
    std::fs::write(&p, "mine").unwrap();
    let err = c.fails(&["spec", "-b", d]);
    assert!(one_line(&err).contains("already exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "mine");
}

#[test]
fn spec_rootless_has_a_user_namespace_with_mappings() {
    if !require_root() {
        return;
    }
    let c = Ctr::new("specrl");
    let dir = tempfile::tempdir().unwrap();
    c.ok(&["spec", "--rootless", "-b", dir.path().to_str().unwrap()]);
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    let ns = v["linux"]["namespaces"].as_array().unwrap();
    assert!(ns.iter().any(|n| n["type"] == "user"), "{v}");
    let uids = v["linux"]["uidMappings"].as_array().expect("uidMappings");
    assert!(!uids.is_empty());
    assert!(v["linux"]["gidMappings"]
        .as_array()
        .is_some_and(|g| !g.is_empty()));
}

#[test]
fn features_and_version() {
    if !require_root() {
        return;
    }
    let c = Ctr::new("features");
    let v: Value = serde_json::from_str(&c.ok(&["features"])).expect("features is JSON");
    assert!(
        v["ociVersionMax"]
            .as_str()
            .is_some_and(|s| s.starts_with("1.")),
        "{v}"
    );
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for n in ["mount", "pid", "network", "user", "uts", "ipc"] {
        assert!(ns.contains(&n), "{ns:?}");
    }
    let ver = c.ok(&["--version"]);
    assert!(
        ver.starts_with(&format!("hookrun version {}", env!("CARGO_PKG_VERSION"))),
        "{ver}"
    );
}

#[test]
fn invalid_ids_are_refused_and_create_nothing() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("ids");
    let escape = format!("hookrun-escape-{}", std::process::id());
    let long = "a".repeat(1025);
    let outside = c.root.path().parent().unwrap().join(&escape);
    for bad in [
        format!("../{escape}"),
        "a/b".to_string(),
        ".".to_string(),
        "..".to_string(),
        "-x".to_string(),
        long,
    ] {
        let o = c.run_files(&["create", "-b", bpath(&b), "--", &bad]);
        assert_ne!(o.code, Some(0), "create {bad:?} succeeded");
        assert!(
            one_line(&o.stderr).contains("invalid container id"),
            "{bad:?}: {}",
            o.stderr
        );
        let left: Vec<_> = std::fs::read_dir(c.root.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{bad:?} left {left:?} under the root");
        assert!(!outside.exists(), "{bad:?} escaped the root");
    }
    assert!(processes_matching(bpath(&b)).is_empty());
}

#[test]
fn an_id_of_1024_bytes_works_through_the_whole_lifecycle() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let mut c = Ctr::new("long");
    c.id = format!("{}{}", c.id, "x".repeat(1024 - c.id.len()));
    assert_eq!(c.id.len(), 1024);
    c.create_bg(&b);
    assert_eq!(c.status(), "created");
    assert_eq!(c.ok(&["list", "-q"]).trim(), c.id);
    c.ok(&["start", "{id}"]);
    assert_eq!(c.status(), "running");
    c.ok(&["delete", "--force", "{id}"]);
    assert!(c.fails(&["state", "{id}"]).contains("does not exist"));
    assert_eq!(std::fs::read_dir(c.root.path()).unwrap().count(), 0);
}

#[test]
fn a_duplicate_id_is_refused_and_the_first_container_is_unharmed() {
    if !require_root() {
        return;
    }
    let b1 = sh("touch /tmp/ran; exec sleep 1000");
    let b2 = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("dup");
    c.create_bg(&b1);
    let pid = c.pid();
    let o = c.run_files(&["create", "-b", bpath(&b2), "{id}"]);
    assert_ne!(o.code, Some(0));
    assert!(
        one_line(&o.stderr).contains("already exists"),
        "{}",
        o.stderr
    );
    let st = c.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid);
    assert_eq!(
        st["bundle"],
        json!(std::fs::canonicalize(b1.path()).unwrap())
    );
    assert!(processes_matching(bpath(&b2)).is_empty());
    c.ok(&["start", "{id}"]);
    assert!(wait_file(&b1.rootfs().join("tmp/ran")));
    assert_eq!(c.status(), "running");
}

#[test]
fn log_json_records_the_error_of_a_failed_command() {
    if !require_root() {
        return;
    }
    let c = Ctr::new("logjson");
    let log = c.root.path().join("hookrun.log");
    let err = c.fails(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "{id}",
    ]);
    one_line(&err);
    let text = std::fs::read_to_string(&log).expect("log file written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let v: Value = serde_json::from_str(lines[0]).expect("a JSON object per line");
    assert_eq!(v["level"], "error", "{v}");
    assert_eq!(
        v["msg"],
        format!("container \"{}\" does not exist", c.id).as_str()
    );
    let t = v["time"].as_str().expect("time");
    humantime::parse_rfc3339(t).unwrap_or_else(|e| panic!("time {t:?} is not RFC 3339: {e}"));
}

#[test]
fn racing_starts_are_serialised_and_exactly_one_wins() {
    if !require_root() {
        return;
    }
    for _ in 0..3 {
        let b = Bundle::new(&["sleep", "1000"]);
        let c = Ctr::new("racestart");
        c.create_bg(&b);
        let (a, z) = (c.spawn(&["start", "{id}"]), c.spawn(&["start", "{id}"]));
        let (a, z) = (a.wait(LIMIT), z.wait(LIMIT));
        let wins = [&a, &z].iter().filter(|o| o.code == Some(0)).count();
        assert_eq!(wins, 1, "{a:?} {z:?}");
        let loser = if a.code == Some(0) { &z } else { &a };
        assert_eq!(loser.code, Some(1), "{loser:?}");
        assert!(one_line(&loser.stderr).contains("is running"), "{loser:?}");
        assert_eq!(c.status(), "running");
    }
}

#[test]
fn racing_start_and_kill_end_consistently() {
    if !require_root() {
        return;
    }
    for _ in 0..3 {
        let b = Bundle::new(&["sleep", "1000"]);
        let c = Ctr::new("racekill");
        c.create_bg(&b);
        let (s, k) = (
            c.spawn(&["start", "{id}"]),
            c.spawn(&["kill", "{id}", "KILL"]),
        );
        let (s, k) = (s.wait(LIMIT), k.wait(LIMIT));
        // The container was alive (created or running) whichever ran first: kill must land.
        assert_eq!(k.code, Some(0), "{k:?}");
        for o in [&s, &k] {
            assert!(!o.stderr.contains("panicked"), "{o:?}");
            if o.code != Some(0) {
                assert_eq!(o.code, Some(1), "{o:?}");
                one_line(&o.stderr);
            }
        }
        assert!(wait_until(LIMIT, || c.status() == "stopped"));
        c.ok(&["delete", "{id}"]);
        assert!(!c.state_dir().exists());
    }
}

/// Force-deletes extra ids made under one Ctr's root.
struct Extra<'a>(&'a Ctr, Vec<String>);

impl Drop for Extra<'_> {
    fn drop(&mut self) {
        for id in &self.1 {
            let _ = self.0.cmd(&["delete", "--force", id]);
        }
    }
}

#[test]
fn parallel_creates_on_one_root_all_succeed() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("parallel");
    let ids: Vec<String> = (0..5).map(|k| format!("{}-{k}", c.id)).collect();
    let extra = Extra(&c, ids.clone());
    let outs: Vec<Out> = std::thread::scope(|s| {
        let hs: Vec<_> = ids
            .iter()
            .map(|id| s.spawn(|| c.run_files(&["create", "-b", bpath(&b), id.as_str()])))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (id, o) in ids.iter().zip(&outs) {
        assert_eq!(o.code, Some(0), "create {id}: {}", o.stderr);
    }
    let listed: Vec<String> = c.ok(&["list", "-q"]).lines().map(str::to_string).collect();
    assert_eq!(listed, ids);
    let mut pids = Vec::new();
    for id in &ids {
        let o = c.cmd(&["state", id]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["status"], "created", "{id}: {v}");
        pids.push(v["pid"].as_i64().unwrap());
    }
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 5, "each container has its own init");
    drop(extra);
    assert!(processes_matching(bpath(&b)).is_empty());
}

#[test]
fn racing_creates_of_one_id_leave_one_container() {
    if !require_root() {
        return;
    }
    let (b1, b2) = (
        Bundle::new(&["sleep", "1000"]),
        Bundle::new(&["sleep", "1000"]),
    );
    let c = Ctr::new("racedup");
    let (x, y) = (
        c.spawn(&["create", "-b", bpath(&b1), "{id}"]),
        c.spawn(&["create", "-b", bpath(&b2), "{id}"]),
    );
    let (x, y) = (x.wait(LIMIT), y.wait(LIMIT));
    assert_eq!(
        [&x, &y].iter().filter(|o| o.code == Some(0)).count(),
        1,
        "{x:?} {y:?}"
    );
    let (winner, loser) = if x.code == Some(0) {
        (&b1, &y)
    } else {
        (&b2, &x)
    };
    assert!(
        one_line(&loser.stderr).contains("already exists"),
        "{loser:?}"
    );
    let st = c.state();
    assert_eq!(st["status"], "created");
    assert_eq!(
        st["bundle"],
        json!(std::fs::canonicalize(winner.path()).unwrap())
    );
    let other = if std::ptr::eq(winner, &b1) { &b2 } else { &b1 };
    assert!(processes_matching(bpath(other)).is_empty());
    c.ok(&["start", "{id}"]);
    assert_eq!(c.status(), "running");
}

#[test]
fn racing_force_deletes_both_succeed() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("racedel");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    let pid = c.pid();
    let t = start_time(pid);
    let (x, y) = (
        c.spawn(&["delete", "-f", "{id}"]),
        c.spawn(&["delete", "-f", "{id}"]),
    );
    for o in [x.wait(LIMIT), y.wait(LIMIT)] {
        assert_eq!(o.code, Some(0), "{o:?}");
    }
    assert!(!c.state_dir().exists());
    assert!(wait_until(LIMIT, || !alive(pid, t)));
}

#[test]
fn a_config_without_process_creates_but_cannot_start() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| {
        c.as_object_mut().unwrap().remove("process");
    });
    let c = Ctr::new("noproc");
    c.create_bg(&b);
    assert_eq!(c.status(), "created");
    let err = c.fails(&["start", "{id}"]);
    assert!(err.contains("process is not set"), "{err}");
    c.wait_status("stopped");
    c.ok(&["delete", "{id}"]);
}

#[test]
fn an_unknown_oci_version_is_refused() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| c["ociVersion"] = serde_json::json!("invalid"));
    let c = Ctr::new("badver");
    let err = c.fails(&["create", "-b", bpath(&b), "{id}"]);
    assert!(
        err.contains("config.json: ociVersion: \"invalid\""),
        "{err}"
    );
    assert!(!c.state_dir().exists());
}
