//! Rootless cgroups. Without limits there is no cgroup. With limits, they go into a cgroup v2
//! subtree delegated to the user (a cgroup2 directory they own, cgroup.procs writable), or
//! create fails naming the limit and how to get delegation: a requested limit is never silently
//! dropped. runs in: the runtime (`create`), as a non-root user.
//!
//! Two kernel rules shape this (cgroup-v2.rst, "Delegation Containment" and "No Internal Process
//! Constraint"): a process may be moved only between cgroups whose common ancestor's
//! cgroup.procs the mover can write, so hookrun itself must run inside the delegated subtree;
//! and a cgroup that holds processes cannot hand controllers down, so a container whose
//! `cgroupsPath` is relative (or absent) is placed *next to* the runtime's own cgroup, below its
//! parent, not below the runtime's cgroup as it is as root.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::{access, AccessFlags};
use oci_spec::runtime::LinuxResources;

use super::{check_reuse, dir_in, hierarchies, limits, resolve, Cgroup, Target};
use crate::error::{errno_text, Error, Result};
use crate::spec::Plan;

/// Each requested limit (its field below `linux.resources`) with the cgroup v2 controller that
/// enforces it. `devices` is left out: in a user namespace no device node can be made, and
/// cgroup v2 device rules are an eBPF program an unprivileged user cannot attach.
pub(super) fn needed(r: &LinuxResources) -> Vec<(String, String)> {
    let v = serde_json::to_value(r).unwrap_or_default();
    let mut out = Vec::new();
    let set = |v: &serde_json::Value| {
        !(v.is_null()
            || v == &serde_json::Value::Bool(false)
            || v.as_array().is_some_and(|a| a.is_empty()))
    };
    for (group, val) in v.as_object().into_iter().flatten() {
        let fields: Vec<(String, &serde_json::Value)> = match val.as_object() {
            Some(o) => o.iter().map(|(k, v)| (format!("{group}.{k}"), v)).collect(),
            None => vec![(group.clone(), val)],
        };
        for (f, _) in fields.into_iter().filter(|(_, v)| set(v)) {
            let ctrl = match group.as_str() {
                "devices" => continue,
                "memory" => "memory".to_string(),
                "cpu" if f == "cpu.cpus" || f == "cpu.mems" => "cpuset".to_string(),
                "cpu" => "cpu".to_string(),
                "pids" => "pids".to_string(),
                "blockIO" => "io".to_string(),
                "hugepageLimits" => "hugetlb".to_string(),
                "network" => "net_cls".to_string(),
                "rdma" => "rdma".to_string(),
                // `unified` keys name their controller before the first dot (`cgroup.*`: none).
                "unified" => match f.trim_start_matches("unified.").split('.').next() {
                    Some("cgroup") | None => continue,
                    Some(c) => c.to_string(),
                },
                other => other.to_string(),
            };
            if !out.iter().any(|(_, c)| c == &ctrl) {
                out.push((f, ctrl));
            }
        }
    }
    out
}

fn owned(d: &Path, uid: u32) -> bool {
    fs::metadata(d).is_ok_and(|m| m.uid() == uid)
        && access(&d.join("cgroup.procs"), AccessFlags::W_OK).is_ok()
}

/// The rootless side of [`Cgroup::create`].
pub(super) fn create(plan: &Plan, id: &str) -> Result<Option<Cgroup>> {
    let l = plan.linux();
    let res = l.resources().clone().unwrap_or_default();
    let Some(first) = limits::first_limit(&res) else {
        return Ok(None);
    };
    let uid = nix::unistd::geteuid().as_raw();
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let pc = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let refuse = |why: String| {
        Error::invalid(format!(
            "config.json: linux.resources.{first}: rootless cgroup limits need a cgroup v2 \
             subtree delegated to you, but {why}; get one from systemd (`systemd-run --user -p \
             Delegate=yes --scope hookrun …`, or Delegate=yes on user@.service) or have root \
             make a cgroup v2 directory, `chown -R` it to you and run hookrun from a child \
             cgroup of it; or remove the limit (`hookrun check --rootless` shows what you have)"
        ))
    };
    let hs = hierarchies(&mi);
    let Some(h) = hs.iter().find(|h| h.v2).cloned() else {
        return Err(refuse("no cgroup2 hierarchy is mounted".into()));
    };
    let own: PathBuf = dir_in(&h, &Target::Own(PathBuf::new()), &pc)
        .components()
        .collect();
    let dir = match resolve(l.cgroups_path().as_deref(), id)? {
        Target::Own(p) => own
            .parent()
            .filter(|p| p.starts_with(&h.mount))
            .unwrap_or(&own)
            .join(p),
        t => dir_in(&h, &t, &pc),
    };
    let base = dir
        .ancestors()
        .skip(1)
        .find(|p| p.exists())
        .unwrap_or(&h.mount)
        .to_path_buf();
    if !base.starts_with(&h.mount) || !owned(&base, uid) {
        let by = fs::metadata(&base).map_or("?".into(), |m| m.uid().to_string());
        return Err(refuse(format!(
            "{} (where the container's cgroup {} would go) is owned by uid {by}",
            base.display(),
            dir.display()
        )));
    }
    // Delegation containment: the common ancestor of where we are and where the init goes.
    let common = base
        .ancestors()
        .find(|a| own.starts_with(a))
        .unwrap_or(&h.mount);
    if !owned(common, uid) {
        return Err(refuse(format!(
            "hookrun runs in {}, outside your subtree {}: the kernel moves a process only \
             between cgroups whose common ancestor ({}) is yours",
            own.display(),
            base.display(),
            common.display()
        )));
    }
    let avail = fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
    let avail: Vec<&str> = avail.split_whitespace().collect();
    let enabled = fs::read_to_string(base.join("cgroup.subtree_control")).unwrap_or_default();
    for (field, c) in needed(&res) {
        if !avail.contains(&c.as_str()) {
            let v1 = hs.iter().any(|x| !x.v2 && x.ctrls.contains(&c));
            return Err(Error::invalid(format!(
                "config.json: linux.resources.{field}: your delegated cgroup v2 subtree {} has \
                 no {c} controller (it has: {}){}; remove the limit, or run where {c} is a cgroup \
                 v2 controller delegated to you",
                base.display(),
                if avail.is_empty() {
                    "none".into()
                } else {
                    avail.join(" ")
                },
                if v1 {
                    format!(
                        "; on this host {c} is bound to a cgroup v1 hierarchy, which cannot be \
                         delegated"
                    )
                } else {
                    String::new()
                }
            )));
        }
        if !enabled.split_whitespace().any(|e| e == c) {
            if let Err(e) = fs::write(base.join("cgroup.subtree_control"), format!("+{c}")) {
                let busy = e.raw_os_error() == Some(libc::EBUSY);
                return Err(Error::invalid(format!(
                    "config.json: linux.resources.{field}: cannot enable {c} in {}: {}{}",
                    base.join("cgroup.subtree_control").display(),
                    errno_text(nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))),
                    if busy {
                        " (it holds processes, and cgroup v2 hands controllers down only from \
                         a cgroup without them: run hookrun from a child cgroup of it)"
                    } else {
                        ""
                    }
                )));
            }
        }
    }
    let dirs = vec![(h, dir)];
    check_reuse(&dirs)?;
    Cgroup::make_and_apply(dirs, &res).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_names_its_v2_controller() {
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 1048576, "swap": 2097152, "disableOOMKiller": false},
            "cpu": {"quota": 1000, "cpus": "0"},
            "pids": {"limit": 10},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
            "unified": {"io.weight": "10", "cgroup.max.depth": "3"},
            "devices": [{"allow": false, "access": "rwm"}]
        }))
        .unwrap();
        let n = needed(&r);
        let ctrls: Vec<&str> = n.iter().map(|(_, c)| c.as_str()).collect();
        for c in ["memory", "cpu", "cpuset", "pids", "hugetlb", "io"] {
            assert!(ctrls.contains(&c), "{c} in {n:?}");
        }
        assert!(!ctrls.contains(&"devices") && !ctrls.contains(&"cgroup"));
        assert!(n.iter().any(|(f, c)| f == "pids.limit" && c == "pids"));
        assert!(n.iter().any(|(f, c)| f == "cpu.cpus" && c == "cpuset"));
        assert!(needed(&LinuxResources::default()).is_empty());
    }
}
