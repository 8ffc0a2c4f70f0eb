//! What hookrun prints about containers and itself: `list`, `spec` (a default config.json) and
//! `features` (the OCI features document).
//! runs in: the runtime.

use std::path::Path;

use crate::cli::ListFormat;
use crate::container::state_doc;
use crate::error::{Error, Result};
use crate::state::Root;

pub fn list(root: &Root, format: ListFormat, quiet: bool) -> Result<()> {
    let mut loaded = Vec::new();
    for id in root.ids()? {
        // A container deleted meanwhile is simply not listed.
        let Ok(dir) = root.open(&id) else { continue };
        let Ok(st) = dir.load() else { continue };
        loaded.push((dir, st));
    }
    let docs: Vec<_> = loaded.iter().map(|(d, s)| state_doc(d, s)).collect();
    if quiet {
        for d in &docs {
            println!("{}", d.id);
        }
        return Ok(());
    }
    match format {
        // One line, runc's field order.
        ListFormat::Json => println!("{}", serde_json::to_string(&docs).expect("json")),
        ListFormat::Table => {
            let head = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
            let rows: Vec<Vec<String>> = docs
                .iter()
                .map(|d| {
                    vec![
                        d.id.to_string(),
                        d.pid.to_string(),
                        d.status.to_string(),
                        d.bundle.display().to_string(),
                        d.created.to_string(),
                        d.owner.to_string(),
                    ]
                })
                .collect();
            print!("{}", format_table(&head, &rows));
        }
    }
    Ok(())
}

/// runc's table (Go's tabwriter, minimum width 12, padding 3): every column but the last is
/// padded to the widest cell plus three spaces, and to at least 12.
pub fn format_table(head: &[String], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}", width = (w[i] + 3).max(12)));
            }
        }
        s + "\n"
    };
    let mut out = line(head);
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

pub fn write_spec(bundle: &Path, rootless: bool) -> Result<()> {
    let p = bundle.join("config.json");
    if p.exists() {
        return Err(Error::invalid(format!(
            "{}: already exists; remove it first",
            p.display()
        )));
    }
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let data = serde_json::to_vec_pretty(&default_spec(rootless, uid, gid)).expect("json");
    std::fs::write(&p, data).map_err(|e| Error::io("write", &p, e))
}

/// The config.json `spec` writes: runc's default bundle (the hostname aside), so that scripts and
/// tests written for `runc spec` behave the same (a terminal, `sh`, runc's three capabilities in
/// every set but inheritable, a read-only root). `rootless`: what `runc spec --rootless` writes —
/// the caller's uid/gid mapped to root in a user namespace, no network namespace, /sys bound from
/// the host, no device rules, no `gid=5` on devpts.
pub fn default_spec(rootless: bool, uid: u32, gid: u32) -> serde_json::Value {
    use serde_json::json;
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut devpts = vec![
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
    ];
    if !rootless {
        devpts.push("gid=5");
    }
    let sys = if rootless {
        json!({"destination": "/sys", "type": "none", "source": "/sys",
               "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    } else {
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]})
    };
    let mut namespaces = vec![json!({"type": "pid"})];
    if !rootless {
        namespaces.push(json!({"type": "network"}));
    }
    namespaces.extend([
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ]);
    let mut linux = json!({
        "namespaces": namespaces,
        "maskedPaths": [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
            "/proc/scsi"
        ],
        "readonlyPaths": [
            "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
        ]
    });
    if rootless {
        linux["namespaces"]
            .as_array_mut()
            .expect("array")
            .push(json!({"type": "user"}));
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    } else {
        linux["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    }
    json!({
        "ociVersion": crate::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                format!("PATH={}", crate::security::DEFAULT_PATH),
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "hookrun",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            sys,
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": linux
    })
}

/// The OCI features document: what this build really supports.
pub fn features() -> serde_json::Value {
    let caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": crate::rootfs::mount_options(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": crate::seccomp::features(),
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
        },
        "annotations": {
            "dev.hookrun.lifecycle": "Kubernetes Lifecycle object (postStart, preStop, stopSignal)",
            crate::hooks::lifecycle::GRACE: "termination grace period in seconds (default 30)",
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_specs_parse_and_match_runcs() {
        for rootless in [false, true] {
            let v = default_spec(rootless, 1000, 1000);
            let spec: oci_spec::runtime::Spec = serde_json::from_value(v.clone()).unwrap();
            let p = spec.process().as_ref().unwrap();
            assert_eq!(p.terminal(), Some(true));
            assert_eq!(p.args().as_deref().unwrap(), ["sh"]);
            assert!(p.capabilities().as_ref().unwrap().inheritable().is_none());
            let ns: Vec<String> = v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["type"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(ns.contains(&"user".to_string()), rootless);
            assert_eq!(ns.contains(&"network".to_string()), !rootless);
            assert!(v.get("annotations").is_none(), "no lifecycle example");
        }
        let v = default_spec(true, 1000, 1001);
        assert_eq!(v["linux"]["uidMappings"][0]["hostID"], 1000);
        assert_eq!(v["linux"]["gidMappings"][0]["hostID"], 1001);
    }

    #[test]
    fn table_columns_align() {
        let t = format_table(
            &["ID".into(), "STATUS".into()],
            &[
                vec!["a".into(), "running".into()],
                vec!["long-id".into(), "created".into()],
            ],
        );
        assert_eq!(
            t,
            "ID          STATUS\na           running\nlong-id     created\n"
        );
        let long = "a-container-id";
        let t = format_table(
            &["ID".into(), "PID".into(), "OWNER".into()],
            &[vec![long.into(), "42".into(), "root".into()]],
        );
        assert_eq!(
            t,
            format!(
                "{:<17}PID         OWNER\n{long:<17}42          root\n",
                "ID"
            )
        );
    }
}
