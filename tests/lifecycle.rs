//! Kubernetes-style lifecycle hooks (issue 4, design.md §3–§4) with real containers: the
//! declaration checked at create; PostStart after the entrypoint is released; PreStop before the
//! stop signal however a stop begins, bounded by the grace period; Exec hooks placed in the
//! container's namespaces and cgroup and charged to it; HTTP hooks from inside the container's
//! network namespace; Sleep hooks; events and `describe`; at-least-once delivery after the
//! runtime running a hook is SIGKILLed.
mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

const LIFECYCLE: &str = "dev.hookrun.lifecycle";
const GRACE: &str = "dev.hookrun.termination-grace-period-seconds";

/// A grace period no test waits out: a stop that wrongly waited for it (or for a hook that
/// sleeps 1000 s) runs into [`HANG`] instead, so "did not wait" needs no timing claim.
const LONG_GRACE: u64 = 600;

/// How long a hookrun command may take before the test calls it hung (and kills it). Not a
/// measure of speed: with [`LONG_GRACE`] the wrong behaviour takes ten times longer.
const HANG: Duration = Duration::from_secs(60);

/// An entrypoint that exits 0 on SIGTERM (pid 1 needs a handler to notice it at all).
const TRAP_TERM: &str = "trap 'exit 0' TERM; sleep 1000 & wait";

/// A bundle running `sh -c entry` with the lifecycle annotation (and the grace period if given).
fn bundle(entry: &str, lifecycle: Value, grace: Option<u64>) -> Bundle {
    let mut b = Bundle::new(&["/bin/sh", "-c", entry]);
    b.edit(|c| {
        let mut a = serde_json::Map::new();
        a.insert(LIFECYCLE.into(), json!(lifecycle.to_string()));
        if let Some(g) = grace {
            a.insert(GRACE.into(), json!(g.to_string()));
        }
        c["annotations"] = Value::Object(a);
    });
    b
}

/// An Exec handler running `sh -c cmd`.
fn sh(cmd: &str) -> Value {
    json!({"exec": {"command": ["/bin/sh", "-c", cmd]}})
}

/// The kubelet-style name of that handler: `[/bin/sh -c cmd]`.
fn sh_what(cmd: &str) -> String {
    format!("[/bin/sh -c {cmd}]")
}

fn describe(c: &Ctr) -> Value {
    serde_json::from_str(&c.ok(&["describe", "--format", "json", "{id}"])).unwrap()
}

/// Hook runs of `hook` (PostStart or PreStop) from the journal, in order.
fn runs(c: &Ctr, hook: &str) -> Vec<Value> {
    describe(c)["hookRuns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["hook"] == hook)
        .cloned()
        .collect()
}

/// The aggregated event with this reason (there is at most one per message).
fn events(c: &Ctr, reason: &str) -> Vec<Value> {
    describe(c)["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == reason)
        .cloned()
        .collect()
}

/// When the runtime recorded something (a hook run's `started`/`finished`, an event's
/// `firstSeen`): RFC 3339.
fn at(v: &Value) -> SystemTime {
    humantime::parse_rfc3339(v.as_str().unwrap_or_else(|| panic!("no time in {v}")))
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// How long after `earlier` the runtime recorded `later`; fails if it recorded them the other
/// way round.
fn between(earlier: &Value, later: &Value) -> Duration {
    at(later)
        .duration_since(at(earlier))
        .unwrap_or_else(|_| panic!("{later} is before {earlier}"))
}

/// A shell loop that waits for the file `gate` (in the container) to exist: a hook or an
/// entrypoint that holds until the test lets it go, instead of sleeping a guessed time.
fn until(gate: &str) -> String {
    format!("until [ -e {gate} ]; do sleep 0.1; done")
}

/// Let a process waiting in [`until`] go on.
fn open_gate(b: &Bundle, gate: &str) {
    std::fs::write(b.rootfs().join(gate.trim_start_matches('/')), "").unwrap();
}

fn phase(c: &Ctr) -> String {
    c.state()["phase"].as_str().unwrap().to_string()
}

/// A file the container (or a hook) wrote into its rootfs.
fn read(b: &Bundle, name: &str) -> Option<String> {
    std::fs::read_to_string(b.rootfs().join(name)).ok()
}

fn lines(b: &Bundle, name: &str) -> Vec<String> {
    read(b, name)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Wait (up to `limit`) for a run of `hook` that is still going and whose process is known;
/// returns its pid.
fn running_hook_pid(c: &Ctr, hook: &str, limit: Duration) -> i32 {
    let mut pid = None;
    assert!(
        wait_until(limit, || {
            pid = runs(c, hook)
                .last()
                .filter(|r| r["result"] == "Running")
                .and_then(|r| r["hookPid"][0].as_i64());
            pid.is_some()
        }),
        "no running {hook} with a known process: {}",
        describe(c)["hookRuns"]
    );
    pid.unwrap() as i32
}

/// The process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().to_string()))
        .is_some_and(|r| !r.starts_with('Z'))
}

/// The container has no pid namespace of its own: nothing but hookrun kills a leftover hook.
fn without_pid_ns(b: &mut Bundle) {
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid")
    });
}

/// The cgroup of `pid` in the v1 hierarchy `ctrl`, as a host directory.
fn cgroup_dir(pid: i32, ctrl: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let p = text
        .lines()
        .find_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, c, p) = (it.next()?, it.next()?, it.next()?);
            c.split(',').any(|x| x == ctrl).then(|| p.to_string())
        })
        .unwrap_or_else(|| panic!("no {ctrl} cgroup for {pid}"));
    Path::new("/sys/fs/cgroup")
        .join(ctrl)
        .join(p.trim_start_matches('/'))
}

fn read_u64(p: &Path) -> u64 {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .parse()
        .unwrap()
}

/// Something in `pid`'s network namespace listens on TCP `port`.
fn listening(pid: i32, port: u16) -> bool {
    let hex = format!(":{port:04X} ");
    ["tcp", "tcp6"].iter().any(|f| {
        std::fs::read_to_string(format!("/proc/{pid}/net/{f}"))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() > 3 && format!("{} ", cols[1]).ends_with(&hex) && cols[3] == "0A"
            })
    })
}

/// A host process we started (a server in the container's netns); killed and reaped on drop.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `cmd` on the host inside `init`'s network namespace and wait until it listens on `port`.
fn serve_in_netns(init: i32, port: u16, cmd: &[&str]) -> Server {
    let child = std::process::Command::new("nsenter")
        .arg(format!("--net=/proc/{init}/ns/net"))
        .args(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let s = Server(child);
    assert!(
        wait_until(Duration::from_secs(15), || listening(init, port)),
        "{cmd:?} never listened on {port}"
    );
    s
}

fn sigkill(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

// ---- 1. Declaration ----------------------------------------------------------------------

#[test]
fn bad_declarations_fail_create_naming_the_field_and_leave_nothing() {
    if !require_root() {
        return;
    }
    let pre = format!("annotations[\"{LIFECYCLE}\"]");
    let cases: Vec<(Option<&str>, Option<&str>, String)> = vec![
        (Some("{not json"), None, pre.clone()),
        (
            Some(r#"{"postStrat": {"sleep": {"seconds": 1}}}"#),
            None,
            "unknown field `postStrat`".into(),
        ),
        (
            Some(r#"{"preStop": {"sleep": {"seconds": 1, "minutes": 2}}}"#),
            None,
            format!("{pre}.preStop.sleep"),
        ),
        (
            Some(r#"{"postStart": {}}"#),
            None,
            format!("{pre}.postStart: exactly one of exec, httpGet, sleep must be given (0 are)"),
        ),
        (
            Some(r#"{"postStart": {"exec": {"command": ["true"]}, "sleep": {"seconds": 1}}}"#),
            None,
            format!("{pre}.postStart: exactly one of exec, httpGet, sleep must be given (2 are)"),
        ),
        (
            Some(r#"{"preStop": {"tcpSocket": {"port": 80}}}"#),
            None,
            format!("{pre}.preStop.tcpSocket: not supported for lifecycle hooks"),
        ),
        (
            Some(r#"{"preStop": {"httpGet": {"path": "/", "port": 0}}}"#),
            None,
            format!("{pre}.preStop.httpGet.port: 0 is outside 1-65535"),
        ),
        (
            Some(r#"{"postStart": {"httpGet": {"path": "/", "port": 70000}}}"#),
            None,
            format!("{pre}.postStart.httpGet.port: 70000 is outside 1-65535"),
        ),
        (
            Some(r#"{"preStop": {"sleep": {"seconds": -1}}}"#),
            None,
            format!("{pre}.preStop.sleep.seconds: -1 is negative"),
        ),
        (
            None,
            Some("-5"),
            format!("annotations[\"{GRACE}\"]: \"-5\" is not a whole number of seconds >= 0"),
        ),
    ];
    for (lc, grace, want) in cases {
        let mut b = Bundle::new(&["true"]);
        b.edit(|c| {
            let mut a = serde_json::Map::new();
            if let Some(lc) = lc {
                a.insert(LIFECYCLE.into(), json!(lc));
            }
            if let Some(g) = grace {
                a.insert(GRACE.into(), json!(g));
            }
            c["annotations"] = Value::Object(a);
        });
        let c = Ctr::new("lc-decl");
        let o = c.run_files(&["create", "-b", b.path().to_str().unwrap(), "{id}"]);
        assert_ne!(o.code, Some(0), "create accepted {lc:?} / grace {grace:?}");
        assert!(
            o.stderr.contains("config.json: ") && o.stderr.contains(&want),
            "{lc:?} / grace {grace:?}: want {want:?} in {:?}",
            o.stderr
        );
        assert!(!c.state_dir().exists(), "state dir left by {lc:?}");
        assert_eq!(
            std::fs::read_dir(c.root.path()).unwrap().count(),
            0,
            "something left under the state root by {lc:?}"
        );
        let own_mem = cgroup_dir(std::process::id() as i32, "memory");
        assert!(!own_mem.join(&c.id).exists(), "cgroup left by {lc:?}");
    }
}

// ---- 2. PostStart --------------------------------------------------------------------------

#[test]
fn post_start_runs_after_the_release_concurrently_and_start_waits_for_it() {
    if !require_root() {
        return;
    }
    // The hook sees what the released entrypoint wrote, then holds start until the test has
    // looked, and notes that it finished.
    let hook = format!(
        "{}; cat /entry > /hook-saw; {}; echo done > /hook-done",
        until("/entry"),
        until("/gate")
    );
    let b = bundle(
        &format!("echo released > /entry; {TRAP_TERM}"),
        json!({"postStart": sh(&hook)}),
        Some(10),
    );
    let c = Ctr::new("lc-ps");
    c.create_bg(&b);
    assert_eq!(phase(&c), "Created");
    let mut start = c.spawn(&["start", "{id}"]);
    running_hook_pid(&c, "PostStart", Duration::from_secs(20));
    // Mid-hook: the entrypoint runs, the phase says Starting, start has not returned.
    assert!(wait_until(Duration::from_secs(20), || read(&b, "hook-saw")
        .is_some_and(|s| s == "released\n")));
    let st = c.state();
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["phase"], "Starting", "{st}");
    assert!(
        start.child.try_wait().unwrap().is_none(),
        "start returned while PostStart was still running"
    );
    assert!(read(&b, "hook-done").is_none());
    open_gate(&b, "/gate");
    let o = start.wait(HANG);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    // start returned only after the hook's last step.
    assert_eq!(read(&b, "hook-done").as_deref(), Some("done\n"));
    assert_eq!(phase(&c), "Running");
    let r = runs(&c, "PostStart");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["result"], "Succeeded");
    assert_eq!(r[0]["attempt"], 1);
    assert_eq!(events(&c, "Started").len(), 1);
    assert!(events(&c, "FailedPostStartHook").is_empty());
}

#[test]
fn a_failing_post_start_fails_start_stops_the_container_and_runs_pre_stop() {
    if !require_root() {
        return;
    }
    let b = bundle(
        TRAP_TERM,
        json!({"postStart": sh("echo boom; exit 3"), "preStop": sh("echo prestop > /prestop-ran")}),
        Some(10),
    );
    let c = Ctr::new("lc-psfail");
    c.create_bg(&b);
    let o = c.run_files(&["start", "{id}"]);
    let want = format!(
        "Exec lifecycle hook ([/bin/sh -c echo boom; exit 3]) for Container \"{}\" failed - error: command exited with 3, message: \"boom\\n\"",
        c.id
    );
    assert_ne!(o.code, Some(0));
    assert_eq!(o.stderr.trim_end(), format!("hookrun: error: {want}"));
    c.wait_status("stopped");
    let d = describe(&c);
    assert_eq!(d["container"]["phase"], "Stopped");
    let ev = events(&c, "FailedPostStartHook");
    assert_eq!(ev.len(), 1, "{}", d["events"]);
    assert_eq!(ev[0]["type"], "Warning");
    assert_eq!(ev[0]["message"], want);
    // The stop that followed ran PreStop, as the kubelet's killContainer does.
    let pre = runs(&c, "PreStop");
    assert_eq!(pre.len(), 1, "{}", d["hookRuns"]);
    assert_eq!(pre[0]["result"], "Succeeded");
    assert_eq!(read(&b, "prestop-ran").as_deref(), Some("prestop\n"));
    assert_eq!(runs(&c, "PostStart")[0]["result"], "Failed");
    assert_eq!(events(&c, "Killing").len(), 1);
    // The text view lists the failure among the events.
    let text = c.ok(&["describe", "{id}"]);
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("Warning") && l.contains("FailedPostStartHook")),
        "{text}"
    );
}

// ---- 3. PreStop ----------------------------------------------------------------------------

/// An entrypoint that records, when the stop signal (TERM) comes, whether /marker existed.
const RECORDS_MARKER: &str =
    "trap 'if [ -f /marker ]; then echo yes > /seen; else echo no > /seen; fi; exit 0' TERM; \
     trap 'echo usr1 > /usr1' USR1; sleep 1000 & while :; do wait; done";

#[test]
fn stop_runs_pre_stop_before_the_stop_signal() {
    if !require_root() {
        return;
    }
    let b = bundle(
        RECORDS_MARKER,
        json!({"preStop": sh("sleep 1; touch /marker")}),
        Some(10),
    );
    let c = Ctr::new("lc-stop");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    assert_eq!(phase(&c), "Running");
    c.ok(&["stop", "{id}"]);
    assert_eq!(c.status(), "stopped");
    assert_eq!(
        read(&b, "seen").as_deref(),
        Some("yes\n"),
        "TERM came first"
    );
    let r = runs(&c, "PreStop");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["result"], "Succeeded");
    let k = events(&c, "Killing");
    assert_eq!(k.len(), 1);
    assert_eq!(k[0]["message"], format!("Stopping container {}", c.id));
    assert_eq!(events(&c, "Exited").len(), 1);
    assert_eq!(phase(&c), "Stopped");
}

#[test]
fn kill_with_the_stop_signal_runs_pre_stop_and_other_signals_do_not() {
    if !require_root() {
        return;
    }
    for sig in [
        None,
        Some("TERM"),
        Some("SIGTERM"),
        Some("KILL"),
        Some("USR1"),
    ] {
        let b = bundle(
            RECORDS_MARKER,
            json!({"preStop": sh("touch /marker")}),
            Some(10),
        );
        let c = Ctr::new("lc-kill");
        c.create_bg(&b);
        c.ok(&["start", "{id}"]);
        let mut args = vec!["kill", "{id}"];
        args.extend(sig);
        c.ok(&args);
        match sig {
            None | Some("TERM") | Some("SIGTERM") => {
                c.wait_status("stopped");
                assert_eq!(read(&b, "seen").as_deref(), Some("yes\n"), "kill {sig:?}");
                assert_eq!(runs(&c, "PreStop").len(), 1, "kill {sig:?}");
            }
            Some("KILL") => {
                c.wait_status("stopped");
                assert!(read(&b, "marker").is_none());
                assert!(runs(&c, "PreStop").is_empty());
            }
            _ => {
                assert!(wait_until(Duration::from_secs(20), || read(&b, "usr1").is_some()));
                assert_eq!(c.status(), "running");
                assert!(read(&b, "marker").is_none());
                assert!(runs(&c, "PreStop").is_empty());
                assert!(events(&c, "Killing").is_empty());
            }
        }
    }
}

#[test]
fn sigterm_to_a_foreground_run_runs_pre_stop_first() {
    if !require_root() {
        return;
    }
    let b = bundle(
        RECORDS_MARKER,
        json!({"preStop": sh("sleep 1; touch /marker")}),
        Some(10),
    );
    let c = Ctr::new("lc-fg");
    let run = c.spawn(&["run", "--keep", "-b", b.path().to_str().unwrap(), "{id}"]);
    assert!(
        wait_until(Duration::from_secs(15), || {
            let o = c.run(&["state", "{id}"]);
            o.status.success()
                && serde_json::from_slice::<Value>(&o.stdout).unwrap()["phase"] == "Running"
        }),
        "run never got the container running"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.pid()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let o = run.wait(Duration::from_secs(20));
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(read(&b, "seen").as_deref(), Some("yes\n"));
    let r = runs(&c, "PreStop");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["result"], "Succeeded");
    assert_eq!(events(&c, "Killing").len(), 1);
}

#[test]
fn stop_sends_the_stop_signal_of_the_annotation() {
    if !require_root() {
        return;
    }
    let b = bundle(
        "trap 'echo usr1 > /got; exit 0' USR1; trap 'echo term > /got; exit 0' TERM; sleep 1000 & wait",
        json!({"stopSignal": "SIGUSR1", "preStop": sh("touch /marker")}),
        Some(LONG_GRACE),
    );
    let c = Ctr::new("lc-sig");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    assert_eq!(describe(&c)["lifecycle"]["stopSignal"], libc::SIGUSR1);
    // Ended by its USR1 trap: a stop that sent nothing would wait out the grace period.
    let o = c.spawn(&["stop", "{id}"]).wait(HANG);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(read(&b, "got").as_deref(), Some("usr1\n"));
    assert!(read(&b, "marker").is_some());
}

#[test]
fn racing_stops_run_pre_stop_once() {
    if !require_root() {
        return;
    }
    let b = bundle(
        TRAP_TERM,
        json!({"preStop": sh("echo x >> /prestops; sleep 2")}),
        Some(20),
    );
    let c = Ctr::new("lc-race");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    // Six at once: two alone rarely hit the window between the check and the begin.
    let stops: Vec<Bg> = (0..6).map(|_| c.spawn(&["stop", "{id}"])).collect();
    for s in stops {
        let o = s.wait(Duration::from_secs(20));
        assert_eq!(o.code, Some(0), "{}", o.stderr);
    }
    assert_eq!(c.status(), "stopped");
    let r = runs(&c, "PreStop");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["result"], "Succeeded");
    assert_eq!(lines(&b, "prestops"), ["x"]);
    // Each stop that found it running said so; one Killing row counts them.
    let k = events(&c, "Killing");
    assert_eq!(k.len(), 1);
    assert!((2..=6).contains(&k[0]["count"].as_u64().unwrap()), "{k:?}");
}

#[test]
fn a_pre_stop_past_the_grace_period_is_killed_and_the_container_still_gets_two_seconds() {
    if !require_root() {
        return;
    }
    let mark = format!("prestop-hang-{}", std::process::id());
    // The entrypoint notes the stop signal and keeps going: only SIGKILL ends it.
    let b = bundle(
        "trap 'echo term > /term' TERM; while :; do sleep 0.1; done",
        json!({"preStop": sh(&format!("sleep 600; echo {mark}"))}),
        Some(3),
    );
    let c = Ctr::new("lc-grace");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    let stop = c.spawn(&["stop", "{id}"]);
    assert!(
        wait_until(HANG, || read(&b, "term").is_some()),
        "the stop signal never came"
    );
    assert!(
        processes_matching(&mark).is_empty(),
        "PreStop still running after the stop signal"
    );
    let o = stop.wait(HANG);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(c.status(), "stopped");
    // The grace period, as the runtime recorded it: the stop began (Killing), PreStop was cut
    // at the 3 s deadline, and after the stop signal the container still had 2 s before the
    // SIGKILL that ended it (Exited). Lower bounds only grow on a busy machine; the one upper
    // bound is the behaviour itself, the 600 s hook cut short at the grace period, and gets
    // 27 s of slack over the 3 s.
    let run = &runs(&c, "PreStop")[0];
    assert_eq!(run["result"], "Failed");
    let killing = &events(&c, "Killing")[0]["firstSeen"];
    let exited = &events(&c, "Exited")[0]["firstSeen"];
    let cut = between(killing, &run["finished"]);
    assert!(
        cut >= Duration::from_millis(2900),
        "PreStop cut after {cut:?}"
    );
    assert!(
        run["durationMs"].as_u64().unwrap() < 30_000,
        "PreStop ran {}ms: the grace period was not enforced",
        run["durationMs"]
    );
    let after = between(&run["finished"], exited);
    assert!(
        after >= Duration::from_millis(1900),
        "SIGKILL {after:?} after the stop signal"
    );
    let ev = events(&c, "FailedPreStopHook");
    assert_eq!(ev.len(), 1);
    let m = ev[0]["message"].as_str().unwrap();
    assert!(
        m.starts_with(&format!(
            "Exec lifecycle hook ({}) for Container \"{}\" failed - error: timed out",
            sh_what(&format!("sleep 600; echo {mark}")),
            c.id
        )),
        "{m}"
    );
}

#[test]
fn a_failing_pre_stop_is_recorded_and_the_stop_goes_on() {
    if !require_root() {
        return;
    }
    let b = bundle(
        RECORDS_MARKER,
        json!({"preStop": sh("echo nope >&2; exit 1")}),
        Some(LONG_GRACE),
    );
    let c = Ctr::new("lc-psfail");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    // The stop signal follows the failure at once: waiting out the grace would hang.
    let o = c.spawn(&["stop", "{id}"]).wait(HANG);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(c.status(), "stopped");
    assert_eq!(
        read(&b, "seen").as_deref(),
        Some("no\n"),
        "TERM after PreStop"
    );
    let ev = events(&c, "FailedPreStopHook");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["type"], "Warning");
    assert_eq!(
        ev[0]["message"],
        format!(
            "Exec lifecycle hook ({}) for Container \"{}\" failed - error: command exited with 1, message: \"nope\\n\"",
            sh_what("echo nope >&2; exit 1"),
            c.id
        )
    );
    let r = runs(&c, "PreStop");
    assert_eq!(r[0]["stderr"], "nope\n");
}

#[test]
fn a_hung_post_start_blocks_neither_stop_nor_kill_nor_delete() {
    if !require_root() {
        return;
    }
    for verb in ["stop", "kill", "delete"] {
        let mark = format!("poststart-hang-{verb}-{}", std::process::id());
        let b = bundle(
            TRAP_TERM,
            json!({"postStart": sh(&format!("sleep 1000; echo {mark}"))}),
            Some(LONG_GRACE),
        );
        let c = Ctr::new("lc-hung");
        c.create_bg(&b);
        let start = c.spawn(&["start", "{id}"]);
        let hook = running_hook_pid(&c, "PostStart", Duration::from_secs(20));
        assert!(alive(hook));
        assert_eq!(phase(&c), "Starting");
        let args: &[&str] = match verb {
            "stop" => &["stop", "{id}"],
            "kill" => &["kill", "{id}", "KILL"],
            _ => &["delete", "-f", "{id}"],
        };
        // Waiting for the hook (1000 s) or the grace period (600 s) would hang.
        let o = c.spawn(args).wait(HANG);
        assert_eq!(o.code, Some(0), "{verb}: {}", o.stderr);
        assert!(
            wait_until(Duration::from_secs(20), || processes_matching(&mark)
                .is_empty()
                && !alive(hook)),
            "{verb}: the PostStart hook outlived it"
        );
        let o = start.wait(HANG);
        assert_ne!(o.code, Some(0), "{verb}: start of a cancelled PostStart");
        if verb == "delete" {
            assert!(!c.state_dir().exists());
        } else {
            c.wait_status("stopped");
        }
    }
}

#[test]
fn hooks_still_running_when_the_container_exits_are_cancelled_at_once() {
    if !require_root() {
        return;
    }
    // No pid namespace: the kernel would not kill a leftover hook, only hookrun can.
    for hook in ["PostStart", "PreStop"] {
        let mark = format!("hook-outlives-{hook}-{}", std::process::id());
        let key = if hook == "PostStart" {
            "postStart"
        } else {
            "preStop"
        };
        // The entrypoint exits when the test opens the gate, while the hook still runs.
        let mut b = bundle(
            &until("/exit-now"),
            json!({ key: sh(&format!("sleep 1000; echo {mark}")) }),
            Some(LONG_GRACE),
        );
        without_pid_ns(&mut b);
        let c = Ctr::new("lc-exit");
        c.create_bg(&b);
        let cmd = if hook == "PostStart" {
            c.spawn(&["start", "{id}"])
        } else {
            c.ok(&["start", "{id}"]);
            c.spawn(&["stop", "{id}"])
        };
        let pid = running_hook_pid(&c, hook, Duration::from_secs(20));
        open_gate(&b, "/exit-now");
        // Waiting for the hook (1000 s) or the grace period (600 s) would hang.
        let o = cmd.wait(HANG);
        assert!(
            wait_until(Duration::from_secs(20), || !alive(pid)
                && processes_matching(&mark).is_empty()),
            "{hook} hook outlived its container"
        );
        assert_eq!(c.status(), "stopped");
        let r = runs(&c, hook);
        assert_eq!(r[0]["result"], "Failed", "{hook}: {o:?}");
        // Cancelled because the container ended, not at a deadline.
        assert_eq!(
            r[0]["message"],
            "container terminated before exec hook finished"
        );
    }
}

// ---- 4. Exec handler placement and accounting ----------------------------------------------

#[test]
fn an_exec_hook_runs_in_the_containers_namespaces_cgroup_user_env_and_cwd() {
    if !require_root() {
        return;
    }
    let nss = ["pid", "net", "ipc", "uts", "mnt", "cgroup", "user", "time"];
    let record = nss
        .iter()
        .map(|n| format!("readlink /proc/self/ns/{n} >> /out/hook-ns"))
        .collect::<Vec<_>>()
        .join("; ");
    let hook = format!(
        "{record}; cat /proc/self/cgroup > /out/hook-cg; id -u > /out/hook-uid; \
         echo \"$HOOKVAR\" > /out/hook-env; pwd > /out/hook-cwd; {}",
        until("/out/gate")
    );
    let mut b = bundle(
        &format!("cat /proc/self/cgroup > /out/init-cg; {TRAP_TERM}"),
        json!({ "postStart": sh(&hook) }),
        Some(10),
    );
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["cwd"] = json!("/home");
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("HOOKVAR=from-config"));
    });
    let out = b.rootfs().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let c = Ctr::new("lc-place");
    c.create_bg(&b);
    let init = c.pid();
    let start = c.spawn(&["start", "{id}"]);
    // Seen from the host while the hook runs: its namespaces and cgroups are the init's.
    let hook = running_hook_pid(&c, "PostStart", Duration::from_secs(20));
    for ns in nss {
        let of = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/{ns}")).unwrap();
        assert_eq!(of(hook), of(init), "{ns} namespace of the hook");
    }
    let cg = |p: i32| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cg(hook), cg(init));
    assert_ne!(
        cg(hook),
        std::fs::read_to_string("/proc/self/cgroup").unwrap()
    );
    open_gate(&b, "/out/gate");
    let o = start.wait(HANG);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    // Seen from inside, by the hook itself.
    let want_ns: Vec<String> = nss
        .iter()
        .map(|n| {
            std::fs::read_link(format!("/proc/{init}/ns/{n}"))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(lines(&b, "out/hook-ns"), want_ns);
    assert_eq!(read(&b, "out/hook-cg"), read(&b, "out/init-cg"));
    assert_eq!(read(&b, "out/hook-uid").as_deref(), Some("1000\n"));
    assert_eq!(read(&b, "out/hook-env").as_deref(), Some("from-config\n"));
    assert_eq!(read(&b, "out/hook-cwd").as_deref(), Some("/home\n"));
}

#[test]
fn an_exec_hooks_cpu_and_memory_are_charged_to_the_container() {
    if !require_root() {
        return;
    }
    let hook = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; \
                dd if=/dev/zero of=/dev/shm/fill bs=1M count=48 2>/dev/null; rm /dev/shm/fill";
    let b = bundle(TRAP_TERM, json!({ "postStart": sh(hook) }), Some(10));
    let c = Ctr::new("lc-acct");
    c.create_bg(&b);
    let init = c.pid();
    let cpu = cgroup_dir(init, "cpuacct").join("cpuacct.usage");
    let mem = cgroup_dir(init, "memory").join("memory.max_usage_in_bytes");
    assert!(cpu.parent().unwrap().ends_with(&c.id), "{}", cpu.display());
    let (cpu0, mem0) = (read_u64(&cpu), read_u64(&mem));
    let o = c.run_files(&["start", "{id}"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let (cpu1, mem1) = (read_u64(&cpu), read_u64(&mem));
    assert!(
        cpu1 - cpu0 >= 200_000_000,
        "container cpu rose by only {} ns",
        cpu1 - cpu0
    );
    assert!(
        mem1 >= mem0 + 40 * 1024 * 1024,
        "memory peak {mem0} -> {mem1}"
    );
}

#[test]
fn an_exec_hook_over_the_containers_memory_limit_is_oom_killed_and_reported() {
    if !require_root() {
        return;
    }
    let mut b = bundle(
        TRAP_TERM,
        json!({"postStart": {"exec": {"command": ["tail", "/dev/zero"]}}}),
        Some(10),
    );
    b.edit(|c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}});
    });
    let c = Ctr::new("lc-oom");
    c.create_bg(&b);
    let memcg = cgroup_dir(c.pid(), "memory");
    let o = c.run_files(&["start", "{id}"]);
    assert_ne!(o.code, Some(0));
    assert!(o.stderr.contains("SIGKILL"), "{}", o.stderr);
    let ev = events(&c, "FailedPostStartHook");
    assert_eq!(ev.len(), 1);
    let m = ev[0]["message"].as_str().unwrap();
    assert!(
        m.starts_with(&format!(
            "Exec lifecycle hook ([tail /dev/zero]) for Container \"{}\" failed - error: command was killed by SIGKILL",
            c.id
        )),
        "{m}"
    );
    // The kernel's OOM killer of the container's memory cgroup did it.
    let oom = std::fs::read_to_string(memcg.join("memory.oom_control")).unwrap();
    assert!(
        oom.lines()
            .any(|l| l.starts_with("oom_kill ") && l != "oom_kill 0"),
        "{oom}"
    );
    c.wait_status("stopped");
}

// ---- 5. HTTP handler ------------------------------------------------------------------------

/// busybox httpd on :8080 as the entrypoint (pid 1 is a shell so TERM ends it), serving /www
/// with a CGI script that appends the X-Hook-Token header to /www-seen.
fn httpd_bundle(lifecycle: Value) -> Bundle {
    let b = bundle(
        "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait",
        lifecycle,
        Some(10),
    );
    write_site(&b.rootfs().join("www"), "/www-seen");
    b
}

/// index.html and cgi-bin/hdr (appends "$REQUEST_URI $HTTP_X_HOOK_TOKEN" to `seen`).
fn write_site(dir: &Path, seen: &str) {
    std::fs::create_dir_all(dir.join("cgi-bin")).unwrap();
    std::fs::write(dir.join("index.html"), "hello\n").unwrap();
    let cgi = dir.join("cgi-bin/hdr");
    std::fs::write(
        &cgi,
        format!(
            "#!/bin/sh\necho \"$REQUEST_URI $HTTP_X_HOOK_TOKEN\" >> {seen}\n\
             printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cgi, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

fn http(port: u16, path: &str, extra: Value) -> Value {
    let mut g = json!({"path": path, "port": port});
    g.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    json!({ "httpGet": g })
}

#[test]
fn http_hooks_reach_servers_on_a_loopback_only_container_and_send_their_headers() {
    if !require_root() {
        return;
    }
    let tok = |t: &str| json!({"httpHeaders": [{"name": "X-Hook-Token", "value": t}]});
    let b = httpd_bundle(json!({
        "postStart": http(8081, "/cgi-bin/hdr", tok("post-tok")),
        "preStop": http(8080, "/cgi-bin/hdr", tok("pre-tok")),
    }));
    let c = Ctr::new("lc-http");
    c.create_bg(&b);
    let init = c.pid();
    let ifaces: Vec<String> = std::fs::read_to_string(format!("/proc/{init}/net/dev"))
        .unwrap()
        .lines()
        .skip(2)
        .map(|l| l.split(':').next().unwrap().trim().to_string())
        .collect();
    assert_eq!(ifaces, ["lo"], "the container has only loopback");
    // PostStart fires as soon as the entrypoint is released, before its httpd can listen: its
    // server is one the test starts in the container's network namespace beforehand.
    let site = tempfile::tempdir().unwrap();
    let seen = site.path().join("seen");
    write_site(site.path(), seen.to_str().unwrap());
    let _server = serve_in_netns(
        init,
        8081,
        &[
            "busybox",
            "httpd",
            "-f",
            "-p",
            "127.0.0.1:8081",
            "-h",
            site.path().to_str().unwrap(),
        ],
    );
    let o = c.run_files(&["start", "{id}"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "/cgi-bin/hdr post-tok\n"
    );
    assert_eq!(runs(&c, "PostStart")[0]["result"], "Succeeded");
    assert!(wait_until(Duration::from_secs(10), || listening(
        init, 8080
    )));
    c.ok(&["stop", "{id}"]);
    assert_eq!(
        read(&b, "www-seen").as_deref(),
        Some("/cgi-bin/hdr pre-tok\n")
    );
    let r = runs(&c, "PreStop");
    assert_eq!(r[0]["result"], "Succeeded", "{r:?}");
    assert_eq!(r[0]["handler"], "HTTP");
    let d = describe(&c);
    assert!(
        !d["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "Warning"),
        "{}",
        d["events"]
    );
}

#[test]
fn an_http_hook_to_a_refused_port_fails_naming_the_url() {
    if !require_root() {
        return;
    }
    let b = bundle(
        TRAP_TERM,
        json!({"postStart": http(9, "/ready", json!({}))}),
        Some(10),
    );
    let c = Ctr::new("lc-refused");
    c.create_bg(&b);
    let o = c.run_files(&["start", "{id}"]);
    assert_ne!(o.code, Some(0));
    let want = format!(
        "HTTP lifecycle hook (/ready) for Container \"{}\" failed - error: Get \"http://127.0.0.1:9/ready\": ",
        c.id
    );
    assert!(o.stderr.contains(&want), "{}", o.stderr);
    assert!(o.stderr.to_lowercase().contains("refused"), "{}", o.stderr);
    let ev = events(&c, "FailedPostStartHook");
    assert!(ev[0]["message"].as_str().unwrap().starts_with(&want));
    c.wait_status("stopped");
}

#[test]
fn an_http_hook_answered_404_succeeds_with_a_warning_naming_the_status() {
    if !require_root() {
        return;
    }
    let b = httpd_bundle(json!({"preStop": http(8080, "/nope", json!({}))}));
    let c = Ctr::new("lc-404");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    assert!(wait_until(Duration::from_secs(10), || listening(
        c.pid(),
        8080
    )));
    c.ok(&["stop", "{id}"]);
    assert_eq!(runs(&c, "PreStop")[0]["result"], "Succeeded");
    assert!(events(&c, "FailedPreStopHook").is_empty());
    let ev = events(&c, "LifecycleHTTPStatus");
    assert_eq!(ev.len(), 1, "{}", describe(&c)["events"]);
    assert_eq!(ev[0]["type"], "Warning");
    let m = ev[0]["message"].as_str().unwrap();
    assert!(
        m.contains("404") && m.contains("http://127.0.0.1:8080/nope"),
        "{m}"
    );
}

#[test]
fn https_hooks_work_and_fall_back_to_plain_http_with_a_warning() {
    if !require_root() {
        return;
    }
    // PostStart over TLS to a server the test runs in the container's network namespace.
    let tls = tempfile::tempdir().unwrap();
    let (key, cert, log) = (
        tls.path().join("key.pem"),
        tls.path().join("cert.pem"),
        tls.path().join("log"),
    );
    let o = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let server = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[3], "a") as f:
            f.write("%s %s\n" % (self.path, self.headers.get("X-Hook-Token")))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 8443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"#;
    let b = httpd_bundle(json!({
        "postStart": http(8443, "/tls", json!({"scheme": "HTTPS", "httpHeaders": [{"name": "X-Hook-Token", "value": "tls-tok"}]})),
        "preStop": http(8080, "/index.html", json!({"scheme": "HTTPS", "httpHeaders": [{"name": "Authorization", "value": "Bearer secret"}]})),
    }));
    let c = Ctr::new("lc-https");
    c.create_bg(&b);
    let init = c.pid();
    let _server = serve_in_netns(
        init,
        8443,
        &[
            "/usr/bin/python3",
            "-c",
            server,
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
            log.to_str().unwrap(),
        ],
    );
    let o = c.run_files(&["start", "{id}"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "/tls tls-tok\n");
    assert_eq!(runs(&c, "PostStart")[0]["result"], "Succeeded");
    assert!(events(&c, "LifecycleHTTPFallback").is_empty());
    // PreStop over HTTPS to busybox httpd, which answers in plain HTTP.
    assert!(wait_until(Duration::from_secs(10), || listening(
        init, 8080
    )));
    c.ok(&["stop", "{id}"]);
    let r = runs(&c, "PreStop");
    assert_eq!(r[0]["result"], "Succeeded", "{r:?}");
    let ev = events(&c, "LifecycleHTTPFallback");
    assert_eq!(ev.len(), 1, "{}", describe(&c)["events"]);
    assert_eq!(ev[0]["type"], "Warning");
}

// ---- 6. Sleep handler -----------------------------------------------------------------------

#[test]
fn a_sleep_post_start_holds_start_for_its_seconds() {
    if !require_root() {
        return;
    }
    let b = bundle(
        TRAP_TERM,
        json!({"postStart": {"sleep": {"seconds": 1}}}),
        Some(10),
    );
    let c = Ctr::new("lc-sleep");
    c.create_bg(&b);
    let o = c.run_files(&["start", "{id}"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(phase(&c), "Running");
    let r = runs(&c, "PostStart");
    assert_eq!(r[0]["handler"], "Sleep");
    assert_eq!(r[0]["result"], "Succeeded");
    // By the time start returned the runtime had recorded the whole sleep. The upper bound is
    // the behaviour (seconds, not minutes or milliseconds misread) with 29 s of slack.
    let slept = between(&r[0]["started"], &r[0]["finished"]);
    assert!(
        slept >= Duration::from_secs(1) && slept < Duration::from_secs(30),
        "slept {slept:?}"
    );
}

#[test]
fn a_sleep_pre_stop_is_bounded_by_the_grace_period() {
    if !require_root() {
        return;
    }
    let b = bundle(
        RECORDS_MARKER,
        json!({"preStop": {"sleep": {"seconds": 600}}}),
        Some(2),
    );
    let c = Ctr::new("lc-sleepgrace");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    let o = c.spawn(&["stop", "{id}"]).wait(HANG);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(c.status(), "stopped");
    // As the runtime recorded it: the sleep was cut at the 2 s grace period after the stop
    // began. The upper bound is the behaviour (the 600 s sleep cut short), with 28 s of slack.
    let run = &runs(&c, "PreStop")[0];
    let cut = between(&events(&c, "Killing")[0]["firstSeen"], &run["finished"]);
    assert!(cut >= Duration::from_millis(1900), "cut after {cut:?}");
    assert!(
        run["durationMs"].as_u64().unwrap() < 30_000,
        "slept {}ms: the grace period was not enforced",
        run["durationMs"]
    );
    assert_eq!(read(&b, "seen").as_deref(), Some("no\n"));
    let ev = events(&c, "FailedPreStopHook");
    assert_eq!(ev.len(), 1);
    assert!(
        ev[0]["message"].as_str().unwrap().starts_with(&format!(
            "Sleep lifecycle hook (600) for Container \"{}\" failed - error: timed out",
            c.id
        )),
        "{}",
        ev[0]["message"]
    );
}

// ---- 7. Events and describe -----------------------------------------------------------------

#[test]
fn describe_shows_the_container_its_hook_runs_and_aggregated_events() {
    if !require_root() {
        return;
    }
    // TERM is ignored: each `kill` records Killing and leaves the container running.
    let b = bundle(
        "trap '' TERM; sleep 1000 & wait",
        json!({"postStart": sh("echo hello-from-hook"), "preStop": sh("echo bye; exit 1")}),
        Some(2),
    );
    let c = Ctr::new("lc-desc");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    c.ok(&["kill", "{id}"]);
    c.ok(&["kill", "{id}"]);
    assert_eq!(c.status(), "running");
    let d = describe(&c);
    for k in ["container", "lifecycle", "hookRuns", "events"] {
        assert!(!d[k].is_null(), "json lacks {k}: {d}");
    }
    assert_eq!(d["container"]["id"], c.id.as_str());
    assert_eq!(d["lifecycle"]["grace"]["secs"], 2, "{}", d["lifecycle"]);
    let killing = events(&c, "Killing");
    assert_eq!(killing.len(), 1, "equal events are aggregated");
    assert_eq!(killing[0]["count"], 2);
    assert!(killing[0]["firstSeen"].as_str() <= killing[0]["lastSeen"].as_str());
    // PreStop ran once for that stop, though two kills asked for it.
    assert_eq!(runs(&c, "PreStop").len(), 1);
    assert_eq!(events(&c, "FailedPreStopHook")[0]["count"], 1);
    c.ok(&["stop", "{id}"]);
    assert_eq!(c.status(), "stopped");

    let text = c.ok(&["describe", "{id}"]);
    let has = |s: &str| assert!(text.contains(s), "describe lacks {s:?}:\n{text}");
    has(&format!("Name:          {}\n", c.id));
    has("Status:        stopped\n");
    has("Phase:         Stopped\n");
    has("Hook Runs:\n");
    has(&format!(
        "  PostStart (Exec {}): attempt 1, started ",
        sh_what("echo hello-from-hook")
    ));
    has("Succeeded\n    Stdout (last lines):\n      hello-from-hook\n");
    has(&format!(
        "  PreStop (Exec {}): attempt 1, started ",
        sh_what("echo bye; exit 1")
    ));
    has("    Error:  command exited with 1, message: \"bye\\n\"\n");
    // The events table, in kubectl's layout: columns line up under the header.
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| *l == "Events:").expect("Events:");
    let head = lines[at + 1];
    assert_eq!(
        head.split_whitespace().collect::<Vec<_>>(),
        ["Type", "Reason", "Age", "From", "Message"]
    );
    assert_eq!(
        lines[at + 2].split_whitespace().collect::<Vec<_>>(),
        ["----", "------", "----", "----", "-------"]
    );
    let col = |name: &str| head.find(name).unwrap();
    let rows = &lines[at + 3..];
    let mut reasons = Vec::new();
    for r in rows {
        assert!(
            r.starts_with("  Normal ") || r.starts_with("  Warning "),
            "{r}"
        );
        assert_eq!(&r[col("From")..col("From") + 7], "hookrun", "{r}");
        let m = col("Message");
        assert!(&r[m - 1..m] == " " && &r[m..m + 1] != " ", "{r}");
        reasons.push(r[col("Reason")..].split_whitespace().next().unwrap());
    }
    for want in [
        "Created",
        "Started",
        "Killing",
        "FailedPreStopHook",
        "Exited",
    ] {
        assert!(reasons.contains(&want), "no {want} row:\n{text}");
    }
    let killing_row = rows.iter().find(|r| r.contains("Killing")).unwrap();
    assert!(killing_row.contains("(x3 over "), "{killing_row}");
    assert!(killing_row.ends_with(&format!("Stopping container {}", c.id)));
}

// ---- 8. At least once ----------------------------------------------------------------------

#[test]
fn a_post_start_cut_short_by_a_killed_start_fires_again_on_the_next_start() {
    if !require_root() {
        return;
    }
    let b = bundle(
        TRAP_TERM,
        json!({"postStart": sh(&format!("{}; echo done >> /attempts", until("/gate")))}),
        Some(10),
    );
    let c = Ctr::new("lc-alo-ps");
    c.create_bg(&b);
    let start = c.spawn(&["start", "{id}"]);
    let hook = running_hook_pid(&c, "PostStart", Duration::from_secs(20));
    assert_eq!(phase(&c), "Starting");
    // Only the hookrun we started; its hook runs on and finishes on its own once let go.
    sigkill(start.pid());
    let o = start.wait(HANG);
    assert_eq!(o.code, None, "start was killed by a signal");
    assert!(alive(hook), "the hook died with the start that ran it");
    open_gate(&b, "/gate");
    assert!(wait_until(Duration::from_secs(20), || !alive(hook)));
    assert_eq!(lines(&b, "attempts"), ["done"]);
    assert_eq!(phase(&c), "Starting", "a PostStart never finished");

    let o = c.run_files(&["start", "{id}"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(lines(&b, "attempts"), ["done", "done"]);
    assert_eq!(phase(&c), "Running");
    let r = runs(&c, "PostStart");
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0]["attempt"], 1);
    assert_eq!(r[0]["result"], "Interrupted");
    assert_eq!(r[1]["attempt"], 2);
    assert_eq!(r[1]["result"], "Succeeded");
    let text = c.ok(&["describe", "{id}"]);
    assert!(text.contains("attempt 2"), "{text}");
    assert!(text.contains("Interrupted"), "{text}");
}

#[test]
fn a_pre_stop_cut_short_by_a_killed_stop_fires_again_on_the_next_stop() {
    if !require_root() {
        return;
    }
    let b = bundle(
        TRAP_TERM,
        json!({"preStop": sh(&format!("{}; echo done >> /prestops", until("/gate")))}),
        Some(LONG_GRACE),
    );
    let c = Ctr::new("lc-alo-pre");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    let stop = c.spawn(&["stop", "{id}"]);
    let hook = running_hook_pid(&c, "PreStop", Duration::from_secs(20));
    sigkill(stop.pid());
    let o = stop.wait(HANG);
    assert_eq!(o.code, None);
    assert!(alive(hook), "the hook died with the stop that ran it");
    open_gate(&b, "/gate");
    assert!(wait_until(Duration::from_secs(20), || !alive(hook)));
    assert_eq!(lines(&b, "prestops"), ["done"]);
    assert_eq!(c.status(), "running", "the stop signal was never sent");

    let o = c.run_files(&["stop", "{id}"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(c.status(), "stopped");
    assert_eq!(lines(&b, "prestops"), ["done", "done"]);
    let r = runs(&c, "PreStop");
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0]["attempt"], 1);
    assert_eq!(r[0]["result"], "Interrupted");
    assert_eq!(r[1]["attempt"], 2);
    assert_eq!(r[1]["result"], "Succeeded");
    assert_eq!(r[0]["stop"], r[1]["stop"], "the same stop");
}

#[test]
fn sigterm_to_a_foreground_run_cancels_a_hung_post_start() {
    if !require_root() {
        return;
    }
    let b = bundle(
        "trap 'exit 0' TERM; while :; do sleep 0.1; done",
        json!({"postStart": sh("echo started-hanging; sleep 1000 # fg-hung-marker")}),
        Some(LONG_GRACE),
    );
    let c = Ctr::new("lc-fghung");
    let run = c.spawn(&["run", "--keep", "-b", b.path().to_str().unwrap(), "{id}"]);
    assert!(
        wait_until(Duration::from_secs(15), || c
            .run(&["state", "{id}"])
            .status
            .success()),
        "run never created the container"
    );
    let hook = running_hook_pid(&c, "PostStart", Duration::from_secs(20));
    assert_eq!(phase(&c), "Starting");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.pid()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    // Waiting for the hook (1000 s) or the grace period (600 s) would hang.
    let o = run.wait(HANG);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(
        wait_until(Duration::from_secs(20), || !alive(hook)),
        "the PostStart hook survived"
    );
    // its output is kept as a file in the state dir too
    let r = runs(&c, "PostStart");
    let files = r[0]["outputFiles"].as_str().unwrap().to_string();
    let stdout = c.state_dir().join(files.split(", ").next().unwrap());
    assert_eq!(
        std::fs::read_to_string(stdout).unwrap(),
        "started-hanging\n"
    );
}

#[test]
fn stopping_a_paused_container_thaws_it_for_pre_stop_and_the_stop_signal() {
    if !require_root() {
        return;
    }
    let b = bundle(
        "trap 'echo term > /term; exit 0' TERM; while :; do sleep 0.1; done",
        json!({"preStop": sh("touch /prestop-ran")}),
        Some(LONG_GRACE),
    );
    let c = Ctr::new("lc-paused");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    c.ok(&["pause", "{id}"]);
    assert_eq!(c.status(), "paused");
    // Frozen, neither PreStop nor the entrypoint's trap could run: the stop would hang.
    let o = c.spawn(&["stop", "{id}"]).wait(HANG);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(c.status(), "stopped");
    assert!(read(&b, "prestop-ran").is_some(), "PreStop did not run");
    assert_eq!(
        read(&b, "term").as_deref(),
        Some("term\n"),
        "the stop signal did not reach a thawed entrypoint"
    );
}
