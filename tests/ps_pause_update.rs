//! ps, pause/resume, update and events on real containers: the pids `ps` lists are the
//! container's, a paused container really stops (and still dies on SIGKILL), limits changed by
//! `update` are read back from the host, and `events` reports stats and OOM kills in runc's shape.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// The container's cgroup directory whose path contains `/sys/fs/cgroup/<mount>/`, from
/// state.json.
fn cgroup_dir(c: &Ctr, mount: &str) -> PathBuf {
    let st: Value =
        serde_json::from_slice(&std::fs::read(c.state_dir().join("state.json")).unwrap()).unwrap();
    let want = format!("/sys/fs/cgroup/{mount}/");
    st["cgroup"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .find(|p| p.to_string_lossy().starts_with(&want))
        .unwrap_or_else(|| panic!("no {mount} cgroup in {st}"))
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Create and start a container running `script` under sh.
fn started(name: &str, script: &str) -> (Ctr, Bundle) {
    let b = Bundle::new(&["sh", "-c", script]);
    let c = Ctr::new(name);
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    (c, b)
}

fn ps_json(c: &Ctr) -> Vec<i32> {
    serde_json::from_str(&c.ok(&["ps", "--format", "json", "{id}"])).unwrap()
}

fn ppid(pid: i32) -> i32 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &s[s.rfind(')').unwrap() + 2..];
    after.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !matches!(
            s[s.rfind(')').unwrap() + 2..].chars().next(),
            Some('Z' | 'X')
        )
    })
}

fn counter(b: &Bundle) -> u64 {
    std::fs::read_to_string(b.rootfs().join("count"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

const COUNTER: &str = "i=0; while true; do i=$((i+1)); echo $i > /count; usleep 20000; done";

#[test]
fn ps_lists_the_init_and_its_child_and_nothing_else() {
    if !require_root() {
        return;
    }
    let (c, _b) = started("ps", "sleep 1000 & wait");
    assert!(
        wait_until(Duration::from_secs(10), || ps_json(&c).len() == 2),
        "ps json: {:?}",
        ps_json(&c)
    );
    let init = c.pid();
    let pids = ps_json(&c);
    assert!(pids.contains(&init), "{pids:?} lacks init {init}");
    let child = *pids.iter().find(|p| **p != init).unwrap();
    assert_eq!(ppid(child), init, "the other pid is the init's child");
    assert!(std::fs::read_to_string(format!("/proc/{child}/cmdline"))
        .unwrap()
        .starts_with("sleep"));

    let table = c.ok(&["ps", "{id}"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let col = lines[0]
        .split_whitespace()
        .position(|h| h == "PID")
        .unwrap();
    let mut shown: Vec<i32> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(col).unwrap().parse().unwrap())
        .collect();
    shown.sort();
    assert_eq!(shown, pids);
    // ps arguments after `--` replace -ef.
    let custom = c.ok(&["ps", "{id}", "--", "-o", "pid,comm"]);
    assert!(
        custom.starts_with("    PID COMMAND") || custom.contains("PID"),
        "{custom}"
    );
    assert_eq!(custom.lines().count(), 3, "{custom}");

    c.ok(&["kill", "{id}", "KILL"]);
    c.wait_status("stopped");
    // As runc: a stopped container has no processes to list, and that is not an error.
    assert_eq!(c.ok(&["ps", "-f", "json", "{id}"]).trim(), "[]");
}

#[test]
fn pause_stops_the_container_and_resume_lets_it_go_on() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sh", "-c", COUNTER]);
    let c = Ctr::new("pause");
    c.create_bg(&b);
    let err = c.fails(&["pause", "{id}"]);
    assert!(
        err.contains("is created: only a running container can be paused"),
        "{err}"
    );
    c.ok(&["start", "{id}"]);
    assert!(wait_until(Duration::from_secs(10), || counter(&b) > 3));

    c.ok(&["pause", "{id}"]);
    assert_eq!(c.status(), "paused");
    assert_eq!(
        read(cgroup_dir(&c, "freezer").join("freezer.state")),
        "FROZEN"
    );
    let before = counter(&b);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(counter(&b), before, "the counter advanced while paused");
    let err = c.fails(&["pause", "{id}"]);
    assert!(err.contains("is paused"), "{err}");
    // Still listed while paused (the init, and a usleep it may have been frozen waiting for).
    assert!(ps_json(&c).contains(&c.pid()));

    c.ok(&["resume", "{id}"]);
    assert_eq!(c.status(), "running");
    let at = counter(&b);
    assert!(
        wait_until(Duration::from_secs(5), || counter(&b) > at + 3),
        "the counter did not advance after resume"
    );
    let err = c.fails(&["resume", "{id}"]);
    assert!(
        err.contains("is running: only a paused container can be resumed"),
        "{err}"
    );
}

#[test]
fn a_cgroup2_freeze_is_seen_as_paused_and_resumed() {
    if !require_root() {
        return;
    }
    let (c, b) = started("pause-v2", COUNTER);
    assert!(wait_until(Duration::from_secs(10), || counter(&b) > 3));
    let v2 = cgroup_dir(&c, "unified");
    std::fs::write(v2.join("cgroup.freeze"), "1").unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || c.status() == "paused"),
        "state never said paused after cgroup.freeze=1 ({})",
        read(v2.join("cgroup.events"))
    );
    let before = counter(&b);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(counter(&b), before);
    c.ok(&["resume", "{id}"]);
    assert_eq!(c.status(), "running");
    assert_eq!(read(v2.join("cgroup.freeze")), "0");
    assert!(wait_until(Duration::from_secs(5), || counter(&b) > before));
}

#[test]
fn kill_and_delete_force_of_a_paused_container() {
    if !require_root() {
        return;
    }
    for how in ["kill", "delete"] {
        let (c, _b) = started(&format!("pause-{how}"), "sleep 1000 & wait");
        assert!(wait_until(Duration::from_secs(10), || ps_json(&c).len() == 2));
        let pids = ps_json(&c);
        c.ok(&["pause", "{id}"]);
        assert_eq!(c.status(), "paused");
        if how == "kill" {
            c.ok(&["kill", "{id}", "9"]);
            c.wait_status("stopped");
            c.ok(&["delete", "{id}"]);
        } else {
            c.ok(&["delete", "-f", "{id}"]);
            assert!(!c.state_dir().exists());
        }
        assert!(
            wait_until(Duration::from_secs(5), || !pids.iter().any(|p| alive(*p))),
            "{how}: processes left: {pids:?}"
        );
    }
}

#[test]
fn update_changes_limits_read_back_from_the_host() {
    if !require_root() {
        return;
    }
    let (c, _b) = started("update", "sleep 1000");
    let mem = cgroup_dir(&c, "memory");
    c.ok(&["update", "--memory", "64m", "{id}"]);
    assert_eq!(read(mem.join("memory.limit_in_bytes")), "67108864");
    c.ok(&[
        "update",
        "--memory-reservation",
        "33554432",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "100000",
        "--cpu-shares",
        "512",
        "{id}",
    ]);
    assert_eq!(read(mem.join("memory.soft_limit_in_bytes")), "33554432");
    let cpu = cgroup_dir(&c, "cpu");
    assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(cpu.join("cpu.shares")), "512");

    // -r - : the resources document on stdin; a flag overrides its memory limit.
    let update_stdin = |doc: &str, extra: &[&str]| {
        let mut child = Command::new(bin())
            .arg("--root")
            .arg(c.root.path())
            .args(["update", "-r", "-"])
            .args(extra)
            .arg(&c.id)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(doc.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let o = update_stdin(
        r#"{"pids": {"limit": 20}, "memory": {"limit": 1048576}}"#,
        &["--memory", "48m"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read(cgroup_dir(&c, "pids").join("pids.max")), "20");
    assert_eq!(read(mem.join("memory.limit_in_bytes")), "50331648");

    for (doc, want) in [
        (
            r#"{"memory": {"limitt": 1}}"#,
            "update: resources.memory.limitt: unknown field",
        ),
        (
            r#"{"pids": {"limit": "many"}}"#,
            "update: resources.pids.limit: invalid type",
        ),
    ] {
        let o = update_stdin(doc, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{doc}: {err}");
    }
    let err = c.fails(&["update", "--cpuset-cpus", "99", "{id}"]);
    assert!(err.contains("update: resources.cpu.cpus:"), "{err}");
    let err = c.fails(&["update", "--memory", "lots", "{id}"]);
    assert!(err.contains("invalid size \"lots\""), "{err}");
    let err = c.fails(&["update", "{id}"]);
    assert!(err.contains("nothing to change"), "{err}");
    // The limits from before the failures are untouched.
    assert_eq!(read(cgroup_dir(&c, "pids").join("pids.max")), "20");

    c.ok(&["kill", "{id}", "KILL"]);
    c.wait_status("stopped");
    let err = c.fails(&["update", "--pids-limit", "5", "{id}"]);
    assert!(err.contains("is stopped"), "{err}");
}

/// `update -r -` with `doc` on stdin.
fn update_stdin(c: &Ctr, doc: &str) -> std::process::Output {
    let mut child = Command::new(bin())
        .arg("--root")
        .arg(c.root.path())
        .args(["update", "-r", "-", &c.id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// What v1 shows for "no limit" in a memory file.
const UNLIMITED: &str = "9223372036854771712";

#[test]
fn update_takes_runcs_flags_documents_and_unlimited_values() {
    if !require_root() {
        return;
    }
    let (c, _b) = started("update-runc", "sleep 1000");
    let (mem, cpu) = (cgroup_dir(&c, "memory"), cgroup_dir(&c, "cpu"));
    // Memory -1 after a swap limit: both go, or the kernel would refuse limit > memsw.
    c.ok(&["update", "--memory", "50M", "{id}"]);
    c.ok(&["update", "--memory-swap", "96468992", "{id}"]);
    assert_eq!(read(mem.join("memory.memsw.limit_in_bytes")), "96468992");
    c.ok(&["update", "--memory", "-1", "{id}"]);
    assert_eq!(read(mem.join("memory.limit_in_bytes")), UNLIMITED);
    assert_eq!(read(mem.join("memory.memsw.limit_in_bytes")), UNLIMITED);
    // runc's flag names.
    c.ok(&[
        "update",
        "--cpu-share",
        "200",
        "--cpu-rt-period",
        "900001",
        "{id}",
    ]);
    assert_eq!(read(cpu.join("cpu.shares")), "200");
    assert_eq!(read(cpu.join("cpu.rt_period_us")), "900001");
    // Field names in any case, as runc's Go decoder reads them.
    let cpus = cgroup_dir(&c, "cpuset").join("cpuset.cpus");
    let o = update_stdin(&c, r#"{"CPU": {"Cpus": "0"}}"#);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read(cpus.clone()), "0");
    // runc's template, all zeroes: nothing changes, and that is no error.
    let o = update_stdin(
        &c,
        r#"{"memory": {"limit": 0, "reservation": 0, "swap": 0},
            "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0,
                    "realtimePeriod": 0, "cpus": "", "mems": ""},
            "blockIO": {"weight": 0}}"#,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read(cpu.join("cpu.shares")), "200");
    assert_eq!(read(cpus), "0");
    // The saved config carries the limits the container now has.
    let saved: Value =
        serde_json::from_slice(&std::fs::read(c.state_dir().join("config.json")).unwrap()).unwrap();
    let res = &saved["linux"]["resources"];
    assert_eq!(res["memory"]["limit"], -1);
    assert_eq!(res["memory"]["swap"], 96468992);
    assert_eq!(res["cpu"]["shares"], 200);
    assert_eq!(res["cpu"]["cpus"], "0");
}

/// A cpu cgroup the test made (a pod with its own limit); removed on drop.
struct Pod(PathBuf);

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_quota_below_a_pod_limit_is_written_in_an_order_the_kernel_takes() {
    if !require_root() {
        return;
    }
    let pod = format!("hookrun-test-pod-{}", std::process::id());
    let p = Pod(PathBuf::from("/sys/fs/cgroup/cpu").join(&pod));
    std::fs::create_dir(&p.0).unwrap();
    std::fs::write(p.0.join("cpu.cfs_quota_us"), "50000").unwrap(); // 50% of 100 ms
    let mut b = Bundle::new(&["sleep", "1000"]);
    b.edit(|cfg| {
        cfg["linux"]["cgroupsPath"] = serde_json::json!(format!("/{pod}/ctr"));
        cfg["linux"]["resources"] =
            serde_json::json!({"cpu": {"quota": 500000, "period": 1000000}});
    });
    let c = Ctr::new("update-pod");
    c.create_bg(&b);
    let cpu = cgroup_dir(&c, "cpu");
    let pair = || {
        (
            read(cpu.join("cpu.cfs_quota_us")),
            read(cpu.join("cpu.cfs_period_us")),
        )
    };
    // Above the pod's 50%: the kernel says no, and the values stay.
    let err = c.fails(&["update", "--cpu-quota", "600000", "{id}"]);
    assert!(
        err.contains("cpu.quota") && err.contains("invalid argument"),
        "{err}"
    );
    assert_eq!(pair(), ("500000".into(), "1000000".into()));
    // 30% at a 10 ms period: only quota-then-period passes (period first would be 5000%).
    c.ok(&[
        "update",
        "--cpu-period",
        "10000",
        "--cpu-quota",
        "3000",
        "{id}",
    ]);
    assert_eq!(pair(), ("3000".into(), "10000".into()));
    // And back: only period-then-quota passes.
    c.ok(&[
        "update",
        "--cpu-quota",
        "500000",
        "--cpu-period",
        "1000000",
        "{id}",
    ]);
    assert_eq!(pair(), ("500000".into(), "1000000".into()));
    c.ok(&["delete", "--force", "{id}"]);
    assert!(!cpu.exists() && p.0.exists());
}

#[test]
fn events_stats_once_in_runcs_shape() {
    if !require_root() {
        return;
    }
    let (c, _b) = started(
        "ev-stats",
        "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 1000 & wait",
    );
    assert!(wait_until(Duration::from_secs(10), || ps_json(&c).len() == 2));
    let out = c.ok(&["events", "--stats", "{id}"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("{\"type\":\"stats\",\"id\":"), "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], c.id.as_str());
    let d = &v["data"];
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{d}");
    assert!(d["cpu"]["usage"]["percpu"].as_array().is_some(), "{d}");
    assert!(d["cpu"]["throttling"].is_object(), "{d}");
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{d}");
    assert!(d["memory"]["usage"]["limit"].as_u64().unwrap() > 0, "{d}");
    assert!(d["memory"]["raw"]["rss"].is_u64(), "{d}");
    assert!(d["pids"]["current"].as_u64().unwrap() >= 1, "{d}");
    assert!(d["blkio"].is_object() && d["hugetlb"].is_object(), "{d}");
}

#[test]
fn events_stream_until_the_container_stops() {
    if !require_root() {
        return;
    }
    let (c, _b) = started("ev-stream", "sleep 1000");
    let ev = c.spawn(&["events", "--interval", "1s", "{id}"]);
    std::thread::sleep(Duration::from_millis(2600));
    c.ok(&["kill", "{id}", "KILL"]);
    let out = ev.wait(Duration::from_secs(5));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let stats: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(stats.len() >= 2, "{}", out.stdout);
    for s in &stats {
        assert_eq!(s["type"], "stats");
        assert_eq!(s["id"], c.id.as_str());
        assert!(s["data"]["memory"]["usage"].is_object());
    }
}

#[test]
fn events_report_an_oom_kill() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(&["sh", "-c", "sleep 1; tail /dev/zero; sleep 1000"]);
    b.edit(|c| {
        c["linux"]["resources"] =
            serde_json::json!({"memory": {"limit": 33554432, "swap": 33554432}});
    });
    let c = Ctr::new("ev-oom");
    c.create_bg(&b);
    let ev = c.spawn(&["events", "--interval", "10s", "{id}"]);
    std::thread::sleep(Duration::from_millis(300));
    c.ok(&["start", "{id}"]);
    let oom = cgroup_dir(&c, "memory").join("memory.oom_control");
    assert!(
        wait_until(Duration::from_secs(20), || read(oom.clone())
            .contains("oom_kill 1")),
        "the hog was not OOM-killed: {}",
        read(oom.clone())
    );
    // The stream polls every 100 ms; give it a few rounds, then end the container.
    std::thread::sleep(Duration::from_millis(500));
    c.ok(&["kill", "{id}", "KILL"]);
    let out = ev.wait(Duration::from_secs(5));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let oom_lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "oom")
        .collect();
    assert_eq!(oom_lines.len(), 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("{{\"type\":\"oom\",\"id\":\"{}\"}}", c.id)),
        "runc's key order: {}",
        out.stdout
    );
    assert_eq!(oom_lines[0]["id"], c.id.as_str());
}
