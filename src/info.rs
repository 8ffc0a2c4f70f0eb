//! What hookrun prints about containers and itself: `list`, `spec` (a default config.json) and
//! `features` (the OCI features document).
//! runs in: the runtime.

use std::path::Path;

use crate::cli::ListFormat;
use crate::container::state_json;
use crate::error::{Error, Result};
use crate::state::Root;
use oci_spec::runtime::LinuxNamespaceType;

pub fn list(root: &Root, format: ListFormat, quiet: bool) -> Result<()> {
    let mut rows = Vec::new();
    for id in root.ids()? {
        // A container deleted meanwhile is simply not listed.
        let Ok(dir) = root.open(&id) else { continue };
        let Ok(st) = dir.load() else { continue };
        rows.push(state_json(&dir, &st));
    }
    if quiet {
        for r in &rows {
            println!("{}", r["id"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    match format {
        ListFormat::Json => println!("{}", serde_json::Value::Array(rows)),
        ListFormat::Table => {
            let cols = ["id", "pid", "status", "bundle", "created", "owner"];
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    cols.iter()
                        .map(|c| match &r[*c] {
                            serde_json::Value::String(s) => s.clone(),
                            v => v.to_string(),
                        })
                        .collect()
                })
                .collect();
            let head: Vec<String> = cols.iter().map(|c| c.to_uppercase()).collect();
            print!("{}", format_table(&head, &table));
        }
    }
    Ok(())
}

/// Columns padded to the widest cell, three spaces apart, as runc's tabwriter does.
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
                s.push_str(&format!("{c:<width$}   ", width = w[i]));
            }
        }
        s.trim_end().to_string() + "\n"
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
    let mut s = if rootless {
        let mut s = oci_spec::runtime::Spec::rootless(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        // A network namespace made inside the user namespace needs no privilege and gives the
        // container its own loopback (where HTTP lifecycle hooks reach it), not the host's.
        if let Some(l) = s.linux_mut() {
            let mut ns = l.namespaces().clone().unwrap_or_default();
            if !ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network) {
                let mut net = oci_spec::runtime::LinuxNamespace::default();
                net.set_typ(LinuxNamespaceType::Network);
                ns.push(net);
            }
            l.set_namespaces(Some(ns));
        }
        s
    } else {
        oci_spec::runtime::Spec::default()
    };
    s.set_hostname(Some("hookrun".into()));
    s.set_version(crate::OCI_VERSION.into());
    let data = serde_json::to_vec_pretty(&s).expect("spec serialises");
    std::fs::write(&p, data).map_err(|e| Error::io("write", &p, e))
}

/// The OCI features document: what this build really supports.
pub fn features() -> serde_json::Value {
    let caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand",
            "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime",
            "nosuid", "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared",
            "rslave", "runbindable", "rw", "shared", "silent", "loud", "slave", "strictatime",
            "suid", "sync", "unbindable"
        ],
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
            "ID        STATUS\na         running\nlong-id   created\n"
        );
    }
}
