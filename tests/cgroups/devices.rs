//! Block devices and the cgroup: BFQ's blkio weight files, what a `linux.devices` entry does
//! not grant in the device cgroup, and `update` moving device rules with no moment where a
//! device allowed before and after is denied. Run as part of tests/cgroups.rs.

use std::time::Duration;

use serde_json::json;

use super::common::*;
use super::{bundle, host_dir, own, read};

/// A loop device over a small temp file, detached on drop: a block device the test owns.
struct Loop {
    dev: String,
    _file: tempfile::NamedTempFile,
}

impl Loop {
    fn new() -> Loop {
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(4096).unwrap();
        let o = std::process::Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file.path())
            .output()
            .expect("run losetup");
        assert!(
            o.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let dev = String::from_utf8(o.stdout).unwrap().trim().to_string();
        Loop { dev, _file: file }
    }

    fn name(&self) -> &str {
        self.dev.trim_start_matches("/dev/")
    }

    /// (major, minor) from /sys/block/NAME/dev.
    fn numbers(&self) -> (i64, i64) {
        let t = std::fs::read_to_string(format!("/sys/block/{}/dev", self.name())).unwrap();
        let (a, b) = t.trim().split_once(':').unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.dev])
            .status();
    }
}

#[test]
fn blkio_weights_go_to_bfqs_files_where_cfqs_are_missing() {
    if !require_root() {
        return;
    }
    let lo = Loop::new();
    let sched = format!("/sys/block/{}/queue/scheduler", lo.name());
    if std::fs::write(&sched, "bfq").is_err() {
        eprintln!(
            "skipped: the BFQ I/O scheduler is not available for {}",
            lo.dev
        );
        return;
    }
    let (ma, mi) = lo.numbers();
    let mut b = bundle(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["resources"] = json!({"blockIO": {
            "weight": 333, "weightDevice": [{"major": ma, "minor": mi, "weight": 444}]}});
    });
    let c = Ctr::new("cg-bfq");
    c.create_bg(&b);
    let dir = host_dir("blkio", &format!("{}/{}", own("blkio"), c.id));
    if dir.join("blkio.weight").exists() {
        // A kernel with CFQ's names: they are the ones written.
        assert_eq!(read(&dir, "blkio.weight"), "333");
    } else {
        assert_eq!(read(&dir, "blkio.bfq.weight"), "333");
        let per_dev = read(&dir, "blkio.bfq.weight_device");
        assert!(
            per_dev.contains("default 333") && per_dev.contains(&format!("{ma}:{mi} 444")),
            "{per_dev}"
        );
    }
}

/// `exec` in the container, (exit code, stderr).
fn exec(c: &Ctr, script: &str) -> (Option<i32>, String) {
    let o = c.run(&["exec", "{id}", "sh", "-c", script]);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `update -r FILE` with `doc` as the file.
fn update_doc(c: &Ctr, doc: &serde_json::Value) {
    let f = c.root.path().join("resources.json");
    std::fs::write(&f, doc.to_string()).unwrap();
    c.ok(&["update", "-r", f.to_str().unwrap(), "{id}"]);
}

#[test]
fn linux_devices_make_nodes_and_update_grants_what_they_do_not() {
    if !require_root() {
        return;
    }
    let lo = Loop::new();
    let (ma, mi) = lo.numbers();
    let mut b = bundle(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["devices"] =
            json!([{"path": "/dev/hrdisk", "type": "b", "major": ma, "minor": mi}]);
        c["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    });
    let c = Ctr::new("cg-devnode");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    // The node is there, the device cgroup does not let it be opened (as runc).
    let (code, err) = exec(&c, "test -b /dev/hrdisk && head -c 1 /dev/hrdisk");
    assert_ne!(code, Some(0));
    assert!(err.contains("Operation not permitted"), "{err}");

    let rules = json!([{"allow": false, "access": "rwm"},
                       {"allow": true, "type": "b", "major": ma, "minor": mi, "access": "r"}]);
    update_doc(&c, &json!({ "devices": rules }));
    let list = read(
        &host_dir("devices", &format!("{}/{}", own("devices"), c.id)),
        "devices.list",
    );
    assert!(list.contains(&format!("b {ma}:{mi} r")), "{list}");
    assert_eq!(exec(&c, "head -c 1 /dev/hrdisk | wc -c").0, Some(0));
    // Kept in the saved config; an update that names no devices leaves the rules alone.
    let saved = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(c.state_dir().join("config.json")).unwrap()).unwrap()
    };
    assert_eq!(saved()["linux"]["resources"]["devices"], rules);
    c.ok(&["update", "--pids-limit", "30", "{id}"]);
    assert_eq!(saved()["linux"]["resources"]["pids"]["limit"], 30);
    assert_eq!(saved()["linux"]["resources"]["devices"], rules);
    let (code, err) = exec(&c, "head -c 1 /dev/hrdisk > /dev/null");
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn device_rules_change_with_no_moment_where_dev_null_is_denied() {
    if !require_root() {
        return;
    }
    let lo = Loop::new();
    let (ma, mi) = lo.numbers();
    // Writes to /dev/null as fast as sh goes; any refusal is kept in /denied.
    let mut b = bundle(&[
        "sh",
        "-c",
        "i=0; while true; do echo x > /dev/null || echo $i >> /denied; i=$((i+1)); \
         echo $i > /count; done 2> /err",
    ]);
    b.edit(|c| c["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]}));
    let c = Ctr::new("cg-devgap");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    // The loop truncates /count before each write: read until a number is there.
    let count = || -> u64 {
        let mut n = 0;
        wait_until(Duration::from_secs(5), || {
            let s = std::fs::read_to_string(b.rootfs().join("count")).unwrap_or_default();
            s.trim().parse().map(|v| n = v).is_ok()
        });
        n
    };
    assert!(wait_until(Duration::from_secs(10), || count() > 0));
    let before = count();
    let deny = json!({"allow": false, "access": "rwm"});
    let disk = json!({"allow": true, "type": "b", "major": ma, "minor": mi, "access": "rw"});
    for i in 0..30 {
        let rules = if i % 2 == 0 {
            json!([deny, disk])
        } else {
            json!([deny])
        };
        update_doc(&c, &json!({ "devices": rules }));
    }
    assert!(
        count() > before,
        "the loop did not run while the rules changed"
    );
    let list = read(
        &host_dir("devices", &format!("{}/{}", own("devices"), c.id)),
        "devices.list",
    );
    assert!(
        list.contains("c 1:3 rwm") && !list.contains(&format!("b {ma}:{mi}")),
        "{list}"
    );
    c.ok(&["kill", "{id}", "KILL"]);
    c.wait_status("stopped");
    assert!(
        !b.rootfs().join("denied").exists(),
        "{}",
        read(&b.rootfs(), "err")
    );
    assert_eq!(read(&b.rootfs(), "err"), "");
}
