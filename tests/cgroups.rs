//! Cgroups on a real (hybrid) host: limits written and read back from the host and from inside,
//! limits that bite (OOM kill, pids.max), membership of the init, relative and absolute
//! cgroupsPath, removal on delete and on a failed create, a shared cgroup warned about and a
//! frozen one refused, BFQ's blkio weights, device rules (what `linux.devices` does not grant,
//! `update` moving rules with no gap), and `kill --all` / `delete --force` reaching every process
//! through the cgroup.

mod common;
#[path = "cgroups/devices.rs"]
mod devices;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::json;

/// This process's cgroup in the v1 hierarchy of `ctrl` (the runtime it starts shares it).
fn own(ctrl: &str) -> String {
    cgroup_of("self", ctrl).expect("own cgroup")
}

/// The cgroup of `pid` in the v1 hierarchy of `ctrl` ("" for cgroup2), from /proc/<pid>/cgroup.
fn cgroup_of(pid: &str, ctrl: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, c, p) = (it.next()?, it.next()?, it.next()?);
        let hit = if ctrl.is_empty() {
            c.is_empty()
        } else {
            c.split(',').any(|x| x == ctrl)
        };
        hit.then(|| p.to_string())
    })
}

/// Host directory of cgroup path `p` in the hierarchy mounted at /sys/fs/cgroup/<mount>.
fn host_dir(mount: &str, p: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(mount)
        .join(p.trim_start_matches('/'))
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

const MOUNTS: [&str; 9] = [
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "unified",
];

/// The container's directory in every hierarchy, for a cgroup path below this process's own.
fn dirs_below_own(name: &str) -> Vec<PathBuf> {
    MOUNTS
        .iter()
        .map(|m| {
            let ctrl = if *m == "unified" { "" } else { m };
            host_dir(m, &format!("{}/{name}", own(ctrl)))
        })
        .collect()
}

/// A bundle without a cgroup namespace, so /proc/self/cgroup inside shows host paths.
fn bundle(args: &[&str]) -> Bundle {
    let mut b = Bundle::new(args);
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "cgroup");
    });
    b
}

#[test]
fn limits_are_written_and_seen_from_host_and_inside() {
    if !require_root() {
        return;
    }
    let mut b = bundle(&[
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
         /sys/fs/cgroup/cpu/cpu.shares > /inside; sleep 1000",
    ]);
    b.edit(|c| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 52428800, "reservation": 26214400, "swap": 104857600,
                       "swappiness": 10, "disableOOMKiller": false,
                       "kernelTCP": 16777216, "kernel": 50593792},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 10},
            "blockIO": {"throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}]},
            "devices": [{"allow": false, "access": "rwm"}]
        });
    });
    let c = Ctr::new("cg-limits");
    c.create_bg(&b);
    let pid = c.pid().to_string();
    // Placed in every hierarchy before it ran a line of its own.
    for (m, dir) in MOUNTS.iter().zip(dirs_below_own(&c.id)) {
        let ctrl = if *m == "unified" { "" } else { m };
        assert_eq!(
            host_dir(m, &cgroup_of(&pid, ctrl).unwrap()),
            dir,
            "init's {m} cgroup"
        );
    }
    let d = dirs_below_own(&c.id);
    let dir = |m: &str| d[MOUNTS.iter().position(|x| *x == m).unwrap()].clone();
    assert_eq!(read(&dir("memory"), "memory.limit_in_bytes"), "52428800");
    assert_eq!(
        read(&dir("memory"), "memory.soft_limit_in_bytes"),
        "26214400"
    );
    assert_eq!(
        read(&dir("memory"), "memory.memsw.limit_in_bytes"),
        "104857600"
    );
    assert_eq!(read(&dir("memory"), "memory.swappiness"), "10");
    assert_eq!(
        read(&dir("memory"), "memory.kmem.tcp.limit_in_bytes"),
        "16777216"
    );
    assert_eq!(read(&dir("cpu"), "cpu.shares"), "512");
    assert_eq!(read(&dir("cpu"), "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&dir("cpu"), "cpu.cfs_period_us"), "100000");
    assert_eq!(read(&dir("cpuset"), "cpuset.cpus"), "0");
    assert_eq!(read(&dir("pids"), "pids.max"), "10");
    assert_eq!(
        read(&dir("blkio"), "blkio.throttle.read_bps_device"),
        "254:0 1048576"
    );
    // deny-all, then runc's default devices: /dev/null is allowed, a disk is not.
    let list = read(&dir("devices"), "devices.list");
    assert!(list.contains("c 1:3 rwm"), "{list}");
    assert!(!list.contains("a *:* rwm"), "{list}");

    c.ok(&["start", "{id}"]);
    let inside = b.rootfs().join("inside");
    assert!(wait_until(Duration::from_secs(10), || inside.exists()
        && std::fs::read_to_string(&inside).unwrap().lines().count()
            == 3));
    assert_eq!(
        std::fs::read_to_string(&inside).unwrap(),
        "52428800\n10\n512\n"
    );
    c.ok(&["delete", "--force", "{id}"]);
    for d in dirs_below_own(&c.id) {
        assert!(!d.exists(), "{} left after delete", d.display());
    }
}

#[test]
fn memory_hog_is_oom_killed() {
    if !require_root() {
        return;
    }
    let mut b = bundle(&["tail", "/dev/zero"]);
    b.edit(|c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 52428800, "swap": 52428800}});
    });
    let c = Ctr::new("cg-oom");
    let (code, _, err) = c.run_fg(&b);
    assert_eq!(code, 137, "tail /dev/zero under a 50 MiB limit: {err}");
    assert!(
        !dirs_below_own(&c.id)[3].exists(),
        "memory cgroup left behind"
    );
}

#[test]
fn fork_loop_stops_at_pids_max() {
    if !require_root() {
        return;
    }
    // The loop runs in a child shell, which gives up at the first failed fork; the outer one
    // then reads pids.current: itself and the sleeps that got a pid (the child shell is gone).
    let mut b = bundle(&[
        "sh",
        "-c",
        "sh -c 'for i in $(seq 20); do sleep 100 & done'; \
         read n < /sys/fs/cgroup/pids/pids.current; echo $n",
    ]);
    b.edit(|c| c["linux"]["resources"] = json!({"pids": {"limit": 10}}));
    let c = Ctr::new("cg-pids");
    let (code, out, err) = c.run_fg(&b);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("can't fork"), "no fork failed: {err}");
    assert_eq!(
        out.trim(),
        "9",
        "outer sh + 8 sleeps: the 9 others hit pids.max 10"
    );
}

#[test]
fn relative_and_absolute_cgroups_path() {
    if !require_root() {
        return;
    }
    let c = Ctr::new("cg-rel");
    let mut b = bundle(&["sleep", "1000"]);
    let rel = format!("hookrun-test-{}/{}", std::process::id(), c.id);
    b.edit(|cfg| cfg["linux"]["cgroupsPath"] = json!(rel));
    c.create_bg(&b);
    let pid = c.pid().to_string();
    let mem = format!("{}/{rel}", own("memory"));
    assert_eq!(cgroup_of(&pid, "memory").unwrap(), mem);
    assert_eq!(
        cgroup_of(&pid, "pids").unwrap(),
        format!("{}/{rel}", own("pids")).replace("//", "/")
    );
    c.ok(&["delete", "--force", "{id}"]);
    // The leaf and the parent create made are both gone; the runtime's own cgroup stays.
    assert!(!host_dir("memory", &mem).exists());
    assert!(!host_dir("memory", &mem).parent().unwrap().exists());
    assert!(host_dir("memory", &own("memory")).exists());

    let c = Ctr::new("cg-abs");
    let mut b = bundle(&["sleep", "1000"]);
    let abs = format!("/hookrun-test-abs-{}/{}", std::process::id(), c.id);
    b.edit(|cfg| cfg["linux"]["cgroupsPath"] = json!(abs));
    c.create_bg(&b);
    let pid = c.pid().to_string();
    for ctrl in ["memory", "cpu", "pids", "devices", ""] {
        assert_eq!(cgroup_of(&pid, ctrl).unwrap(), abs, "{ctrl}");
    }
    assert!(host_dir("memory", &abs).is_dir());
    c.ok(&["delete", "--force", "{id}"]);
    assert!(!host_dir("memory", &abs).exists());
    assert!(!host_dir("memory", &abs).parent().unwrap().exists());
}

#[test]
fn a_shared_cgroup_warns_and_a_delete_leaves_the_other_containers_processes() {
    if !require_root() {
        return;
    }
    let path = format!("/hookrun-test-shared-{}", std::process::id());
    let a = Ctr::new("cg-share-a");
    let mut ba = bundle(&["sleep", "1000"]);
    ba.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
    a.create_bg(&ba);

    // A second container in the same cgroup: a warning (runc's words), not a refusal.
    let b = Ctr::new("cg-share-b");
    let log = b.root.path().join("log.txt");
    let o = b.run_files(&[
        "--log",
        log.to_str().unwrap(),
        "create",
        "-b",
        bpath(&ba),
        "{id}",
    ]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("container's cgroup is not empty: 1 process(es) found"),
        "{logged}"
    );
    let (pa, pb) = (a.pid().to_string(), b.pid().to_string());
    assert_eq!(cgroup_of(&pb, "memory").unwrap(), path);
    assert_eq!(cgroup_of(&pa, "memory"), cgroup_of(&pb, "memory"));

    // Each has its own pid namespace: deleting one kills nothing of the other's, and the cgroup
    // the other is in stays.
    let leftover = Leftover(path.clone());
    a.ok(&["delete", "--force", "{id}"]);
    assert_eq!(b.status(), "created");
    assert_eq!(procs_in(&host_dir("memory", &path)), [b.pid()]);
    b.ok(&["delete", "--force", "{id}"]);
    assert!(procs_in(&host_dir("memory", &path)).is_empty());
    drop(leftover);

    // An existing empty cgroup is reused, and left in place since hookrun did not make it.
    let pre = host_dir("pids", &path);
    std::fs::create_dir(&pre).unwrap();
    let c = Ctr::new("cg-reuse");
    let o = c.run_files(&["create", "-b", bpath(&ba), "{id}"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(!o.stderr.contains("not empty"), "{}", o.stderr);
    assert_eq!(cgroup_of(&c.pid().to_string(), "pids").unwrap(), path);
    c.ok(&["delete", "--force", "{id}"]);
    assert!(pre.exists(), "a cgroup hookrun did not make was removed");
    assert!(!host_dir("memory", &path).exists());
    let _ = std::fs::remove_dir(&pre);
}

/// A cgroup path in every hierarchy that no delete removes (its maker was deleted while another
/// container was still in it): the test removes it on drop.
struct Leftover(String);

impl Drop for Leftover {
    fn drop(&mut self) {
        for m in MOUNTS.iter().chain(&["systemd"]) {
            let _ = std::fs::remove_dir(host_dir(m, &self.0));
        }
    }
}

/// A freezer cgroup the test made and froze; thawed and removed on drop.
struct Frozen(PathBuf);

impl Frozen {
    fn new(path: &str) -> Frozen {
        let d = host_dir("freezer", path);
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("freezer.state"), "FROZEN").unwrap();
        Frozen(d)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("freezer.state"), "THAWED");
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_frozen_cgroup_is_refused_not_hung_in() {
    if !require_root() {
        return;
    }
    let top = format!("/hookrun-test-frozen-{}", std::process::id());
    // The container's own cgroup frozen, and a frozen parent (its new child is born frozen).
    for path in [top.clone(), format!("{top}/ctr")] {
        let frozen = Frozen::new(&top);
        let mut b = bundle(&["true"]);
        b.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
        let c = Ctr::new("cg-frozen");
        let o = c.run_files(&["create", "-b", bpath(&b), "{id}"]);
        assert_ne!(o.code, Some(0));
        assert!(
            o.stderr.contains("container's cgroup unexpectedly frozen")
                && o.stderr.contains(&frozen.0.display().to_string()),
            "{path}: {}",
            o.stderr
        );
        assert!(!c.state_dir().exists());
        for m in MOUNTS.iter().filter(|m| **m != "freezer") {
            assert!(!host_dir(m, &top).exists(), "{m} cgroup made for {path}");
        }
        assert!(!host_dir("freezer", &format!("{top}/ctr")).exists());
    }
}

/// Pids in the container's pids cgroup, read from the host.
fn procs_in(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn kill_all_and_delete_force_reach_processes_without_a_pid_namespace() {
    if !require_root() {
        return;
    }
    for verb in ["kill", "delete"] {
        let mut b = bundle(&["sh", "-c", "sleep 1001 & sleep 1002 & touch /ready; wait"]);
        b.edit(|c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "pid");
        });
        let c = Ctr::new(&format!("cg-{verb}-all"));
        c.create_bg(&b);
        c.ok(&["start", "{id}"]);
        assert!(wait_until(Duration::from_secs(10), || b
            .rootfs()
            .join("ready")
            .exists()));
        let dir = host_dir("pids", &format!("{}/{}", own("pids"), c.id));
        // `touch` may still be on its way out when /ready appears
        assert!(
            wait_until(Duration::from_secs(5), || procs_in(&dir).len() == 3),
            "sh and two sleeps: {:?}",
            procs_in(&dir)
        );
        let before = procs_in(&dir);
        if verb == "kill" {
            c.ok(&["kill", "--all", "{id}", "KILL"]);
            assert!(
                wait_until(Duration::from_secs(5), || procs_in(&dir).is_empty()),
                "left: {:?}",
                procs_in(&dir)
            );
            c.ok(&["delete", "{id}"]);
        } else {
            c.ok(&["delete", "--force", "{id}"]);
            assert!(procs_in(&dir).is_empty());
        }
        assert!(!dir.exists(), "{} left after delete", dir.display());
        for p in before {
            assert!(
                !Path::new(&format!("/proc/{p}")).exists()
                    || std::fs::read_to_string(format!("/proc/{p}/stat"))
                        .is_ok_and(|s| s.contains(") Z")),
                "pid {p} survived"
            );
        }
    }
}

#[test]
fn failed_create_leaves_no_cgroup() {
    if !require_root() {
        return;
    }
    let mut b = bundle(&["true"]);
    b.edit(|c| c["linux"]["resources"] = json!({"cpu": {"cpus": "99-100"}}));
    let c = Ctr::new("cg-fail");
    let err = c.fails(&["create", "-b", b.path().to_str().unwrap(), "{id}"]);
    assert!(
        err.contains("cpuset.cpus") && err.contains("99-100"),
        "{err}"
    );
    for d in dirs_below_own(&c.id) {
        assert!(!d.exists(), "{} left after a failed create", d.display());
    }
    assert!(!c.state_dir().exists());

    // A limit the host cannot apply is an error naming it, not silently dropped.
    b.edit(|c| c["linux"]["resources"] = json!({"blockIO": {"leafWeight": 300}}));
    let err = c.fails(&["create", "-b", b.path().to_str().unwrap(), "{id}"]);
    assert!(err.contains("linux.resources.blockIO.leafWeight"), "{err}");
    for d in dirs_below_own(&c.id) {
        assert!(!d.exists(), "{} left after a failed create", d.display());
    }

    // cgroup2 files where the controllers are v1 hierarchies: runc's words.
    b.edit(|c| {
        c["linux"]["resources"] =
            json!({"memory": {"limit": 33554432}, "unified": {"memory.min": "131072"}})
    });
    let err = c.fails(&["create", "-b", b.path().to_str().unwrap(), "{id}"]);
    assert!(
        err.contains(
            "linux.resources.unified.memory.min: invalid configuration: cannot use unified on \
             cgroup v1"
        ),
        "{err}"
    );
    // A device taken out of a wildcard rule, which the v1 device cgroup would silently ignore.
    b.edit(|c| {
        c["linux"]["resources"] = json!({"devices": [
            {"allow": true, "type": "c", "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "r"}]})
    });
    let err = c.fails(&["create", "-b", b.path().to_str().unwrap(), "{id}"]);
    assert!(
        err.contains(
            "linux.resources.devices[1]: deny c 1:11 r cannot be applied after allow c *:* rwm"
        ),
        "{err}"
    );
    for d in dirs_below_own(&c.id) {
        assert!(!d.exists(), "{} left after a failed create", d.display());
    }
    assert!(!c.state_dir().exists());
}

#[test]
fn systemd_style_cgroups_path_is_refused() {
    if !require_root() {
        return;
    }
    let mut b = bundle(&["true"]);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!("system.slice:hookrun:web"));
    let c = Ctr::new("cg-systemd");
    let err = c.fails(&["create", "-b", b.path().to_str().unwrap(), "{id}"]);
    assert!(
        err.contains("linux.cgroupsPath") && err.contains("systemd"),
        "{err}"
    );
}
