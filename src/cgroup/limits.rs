//! `linux.resources` written into the container's cgroup through cgroups-rs's controllers: every
//! value asked for is applied or create fails naming it; hookrun writes a file itself only in
//! [`write`] (what cgroups-rs has no setter for: `unified` keys, `cpu.idle`).
//! runs in: the runtime: `create`, before the init joins the cgroup, and `update`.

use std::fs;
use std::path::Path;

use cgroups_rs::fs::blkio::BlkIoController;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::devices::{DevicePermissions, DeviceType, DevicesController};
use cgroups_rs::fs::hugetlb::HugeTlbController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::MaxValue;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::{failed, Cgroup, Hier};
use crate::error::{Error, Result};

/// The first limit a config asks for, by its field name (for the rootless error).
pub(super) fn first_limit(r: &LinuxResources) -> Option<&'static str> {
    let m = r.memory().as_ref();
    let c = r.cpu().as_ref();
    let b = r.block_io().as_ref();
    [
        (m.and_then(|m| m.limit()).is_some(), "memory.limit"),
        (
            m.and_then(|m| m.reservation()).is_some(),
            "memory.reservation",
        ),
        (m.and_then(|m| m.swap()).is_some(), "memory.swap"),
        (m.and_then(|m| m.kernel()).is_some(), "memory.kernel"),
        (m.and_then(|m| m.kernel_tcp()).is_some(), "memory.kernelTCP"),
        (
            m.and_then(|m| m.swappiness()).is_some(),
            "memory.swappiness",
        ),
        (
            m.and_then(|m| m.disable_oom_killer()) == Some(true),
            "memory.disableOOMKiller",
        ),
        (c.and_then(|c| c.shares()).is_some(), "cpu.shares"),
        (c.and_then(|c| c.quota()).is_some(), "cpu.quota"),
        (c.and_then(|c| c.period()).is_some(), "cpu.period"),
        (
            c.and_then(|c| c.realtime_runtime()).is_some(),
            "cpu.realtimeRuntime",
        ),
        (
            c.and_then(|c| c.realtime_period()).is_some(),
            "cpu.realtimePeriod",
        ),
        (c.and_then(|c| c.cpus().as_ref()).is_some(), "cpu.cpus"),
        (c.and_then(|c| c.mems().as_ref()).is_some(), "cpu.mems"),
        (r.pids().is_some(), "pids.limit"),
        (b.is_some_and(|b| *b != Default::default()), "blockIO"),
        (
            r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()),
            "hugepageLimits",
        ),
        (
            r.unified().as_ref().is_some_and(|u| !u.is_empty()),
            "unified",
        ),
    ]
    .into_iter()
    .find_map(|(set, name)| set.then_some(name))
}

/// The one place hookrun writes a cgroup file itself (what cgroups-rs has no setter for).
fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    fs::write(dir.join(file), value).map_err(|e| failed(dir, file, value, e))
}

/// A limit the user asked for whose file this kernel lacks.
fn missing(origin: &str, dir: &Path, file: &str, what: &str) -> Error {
    Error::invalid(format!(
        "{origin}.{what}: cannot be applied: {} has no {file} on this host",
        dir.display()
    ))
}

impl Cgroup {
    /// The directory of the hierarchy that holds controller `c` (a v1 one, else cgroup2 when it
    /// offers `c`).
    pub(super) fn dir_of(&self, c: &str) -> Option<(&Hier, &Path)> {
        let v1 = self
            .dirs
            .iter()
            .find(|(h, _)| h.ctrls.iter().any(|x| x == c));
        v1.or_else(|| {
            self.dirs.iter().find(|(h, d)| {
                h.v2 && fs::read_to_string(d.join("cgroup.controllers"))
                    .is_ok_and(|s| s.split_whitespace().any(|x| x == c))
            })
        })
        .map(|(h, d)| (h, d.as_path()))
    }

    /// Apply `linux.resources`. Every value asked for is written, or create (update) fails naming
    /// it. `devices` is `linux.devices`, which the device rules always allow.
    pub(super) fn apply(&self, r: &LinuxResources, devices: &[LinuxDevice]) -> Result<()> {
        let origin = self.origin;
        let need = |c: &str, what: &str| {
            self.dir_of(c).ok_or_else(|| {
                Error::invalid(format!(
                    "{origin}.{what}: cannot be applied: no {c} cgroup controller is mounted on \
                     this host"
                ))
            })
        };
        // Each setter's file, so an absent file is reported as such.
        let set = |dir: &Path,
                   file: &str,
                   what: &str,
                   v: String,
                   f: &dyn Fn() -> cgroups_rs::fs::error::Result<()>| {
            if !dir.join(file).exists() {
                return Err(missing(origin, dir, file, what));
            }
            f().map_err(|e| match failed(dir, file, &v, e) {
                Error::Child(m) => Error::Child(format!("{origin}.{what}: {m}")),
                e => e,
            })
        };
        if let Some(m) = r.memory() {
            let any = m.limit().is_some()
                || m.reservation().is_some()
                || m.swap().is_some()
                || m.kernel().is_some()
                || m.kernel_tcp().is_some()
                || m.swappiness().is_some()
                || m.disable_oom_killer() == Some(true);
            if any {
                let (h, d) = need("memory", "memory")?;
                let mc = MemController::new(d.to_path_buf(), h.mount.clone(), h.v2);
                let (lim, sw) = if h.v2 {
                    ("memory.max", "memory.swap.max")
                } else {
                    ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
                };
                let set_limit =
                    |v: i64| set(d, lim, "memory.limit", v.to_string(), &|| mc.set_limit(v));
                let set_swap = |v: i64| {
                    set(d, sw, "memory.swap", v.to_string(), &|| {
                        mc.set_memswap_limit(v)
                    })
                };
                // v1 keeps limit <= memsw: raise memsw first when the limit grows (as runc).
                let cur = fs::read_to_string(d.join(lim))
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .unwrap_or(i64::MAX);
                match (m.limit(), m.swap()) {
                    (Some(l), Some(s)) if s == -1 || cur < l => {
                        set_swap(s)?;
                        set_limit(l)?;
                    }
                    (l, s) => {
                        l.map(set_limit).transpose()?;
                        s.map(set_swap).transpose()?;
                    }
                }
                if let Some(v) = m.reservation() {
                    let f = if h.v2 {
                        "memory.low"
                    } else {
                        "memory.soft_limit_in_bytes"
                    };
                    set(d, f, "memory.reservation", v.to_string(), &|| {
                        mc.set_soft_limit(v)
                    })?;
                }
                if let Some(v) = m.kernel() {
                    // The one limit not enforced strictly: deprecated by the runtime spec, and
                    // since Linux 5.16 the kernel accepts the write and drops it (runc ignores
                    // it too). Tried, and a warning when the kernel did not keep it.
                    let f = d.join("memory.kmem.limit_in_bytes");
                    let kept = f.exists()
                        && mc.set_kmem_limit(v).is_ok()
                        && fs::read_to_string(&f)
                            .is_ok_and(|s| v == -1 || s.trim() == v.to_string());
                    if !kept {
                        crate::log::warn(format!(
                            "linux.resources.memory.kernel: {v} not applied: this kernel does not \
                             enforce kernel memory limits (deprecated in the runtime spec)"
                        ));
                    }
                }
                if let Some(v) = m.kernel_tcp() {
                    let f = "memory.kmem.tcp.limit_in_bytes";
                    set(d, f, "memory.kernelTCP", v.to_string(), &|| {
                        mc.set_tcp_limit(v)
                    })?;
                }
                if let Some(v) = m.swappiness() {
                    if v > 100 {
                        return Err(Error::invalid(format!(
                            "{origin}.memory.swappiness: {v} is not in 0..=100"
                        )));
                    }
                    let f = "memory.swappiness";
                    set(d, f, "memory.swappiness", v.to_string(), &|| {
                        mc.set_swappiness(v)
                    })?;
                }
                if m.disable_oom_killer() == Some(true) {
                    let f = "memory.oom_control";
                    set(d, f, "memory.disableOOMKiller", "1".into(), &|| {
                        mc.disable_oom_killer()
                    })?;
                }
            }
        }
        if let Some(c) = r.cpu() {
            if c.shares().is_some()
                || c.quota().is_some()
                || c.period().is_some()
                || c.realtime_runtime().is_some()
                || c.realtime_period().is_some()
                || c.idle().is_some()
            {
                let (h, d) = need("cpu", "cpu")?;
                let cc = CpuController::new(d.to_path_buf(), h.mount.clone(), h.v2);
                if let Some(v) = c.shares() {
                    let f = if h.v2 { "cpu.weight" } else { "cpu.shares" };
                    set(d, f, "cpu.shares", v.to_string(), &|| cc.set_shares(v))?;
                    // The kernel clamps out-of-range shares silently; say so rather than lie.
                    let got = cc.shares().unwrap_or(v);
                    if !h.v2 && got != v {
                        return Err(Error::invalid(format!(
                            "{origin}.cpu.shares: {v} is out of range (the kernel set {got})"
                        )));
                    }
                }
                if let Some(v) = c.period() {
                    let f = if h.v2 { "cpu.max" } else { "cpu.cfs_period_us" };
                    set(d, f, "cpu.period", v.to_string(), &|| cc.set_cfs_period(v))?;
                }
                if let Some(v) = c.quota() {
                    let f = if h.v2 { "cpu.max" } else { "cpu.cfs_quota_us" };
                    set(d, f, "cpu.quota", v.to_string(), &|| cc.set_cfs_quota(v))?;
                }
                // rt period before runtime: a runtime above the current period is refused.
                if let Some(v) = c.realtime_period() {
                    let f = "cpu.rt_period_us";
                    set(d, f, "cpu.realtimePeriod", v.to_string(), &|| {
                        cc.set_rt_period_us(v)
                    })?;
                }
                if let Some(v) = c.realtime_runtime() {
                    let f = "cpu.rt_runtime_us";
                    set(d, f, "cpu.realtimeRuntime", v.to_string(), &|| {
                        cc.set_rt_runtime(v)
                    })?;
                }
                if let Some(v) = c.idle() {
                    if !d.join("cpu.idle").exists() {
                        return Err(missing(origin, d, "cpu.idle", "cpu.idle"));
                    }
                    write(d, "cpu.idle", &v.to_string())?;
                }
            }
            if c.cpus().is_some() || c.mems().is_some() {
                let (h, d) = need("cpuset", "cpu.cpus")?;
                let cs = CpuSetController::new(d.to_path_buf(), h.mount.clone(), h.v2);
                if let Some(v) = c.cpus() {
                    set(d, "cpuset.cpus", "cpu.cpus", v.clone(), &|| cs.set_cpus(v))?;
                }
                if let Some(v) = c.mems() {
                    set(d, "cpuset.mems", "cpu.mems", v.clone(), &|| cs.set_mems(v))?;
                }
            }
        }
        if let Some(p) = r.pids() {
            let (h, d) = need("pids", "pids.limit")?;
            let pc = PidController::new(d.to_path_buf(), h.mount.clone(), h.v2);
            let v = pids_value(p.limit());
            let text = match v {
                MaxValue::Max => "max".to_string(),
                MaxValue::Value(n) => n.to_string(),
            };
            set(d, "pids.max", "pids.limit", text, &|| pc.set_pid_max(v))?;
        }
        if let Some(b) = r.block_io().as_ref().filter(|b| **b != Default::default()) {
            let (h, d) = need(
                if self.dir_of("blkio").is_some() {
                    "blkio"
                } else {
                    "io"
                },
                "blockIO",
            )?;
            let bc = BlkIoController::new(d.to_path_buf(), h.mount.clone(), h.v2);
            if let Some(w) = b.weight() {
                let f = if h.v2 {
                    "io.bfq.weight"
                } else {
                    "blkio.weight"
                };
                set(d, f, "blockIO.weight", w.to_string(), &|| {
                    bc.set_weight(w as u64)
                })?;
            }
            if let Some(w) = b.leaf_weight() {
                let f = "blkio.leaf_weight";
                set(d, f, "blockIO.leafWeight", w.to_string(), &|| {
                    bc.set_leaf_weight(w as u64)
                })?;
            }
            for wd in b.weight_device().iter().flatten() {
                let (ma, mi) = (wd.major() as u64, wd.minor() as u64);
                if let Some(w) = wd.weight() {
                    let f = if h.v2 {
                        "io.bfq.weight"
                    } else {
                        "blkio.weight_device"
                    };
                    let v = format!("{ma}:{mi} {w}");
                    set(d, f, "blockIO.weightDevice", v, &|| {
                        bc.set_weight_for_device(ma, mi, w as u64)
                    })?;
                }
                if let Some(w) = wd.leaf_weight() {
                    let f = "blkio.leaf_weight_device";
                    let v = format!("{ma}:{mi} {w}");
                    set(d, f, "blockIO.weightDevice", v, &|| {
                        bc.set_leaf_weight_for_device(ma, mi, w as u64)
                    })?;
                }
            }
            type Throttle =
                fn(&BlkIoController, u64, u64, u64) -> cgroups_rs::fs::error::Result<()>;
            let throttles: [(_, &str, &str, Throttle); 4] = [
                (
                    b.throttle_read_bps_device(),
                    "blkio.throttle.read_bps_device",
                    "blockIO.throttleReadBpsDevice",
                    BlkIoController::throttle_read_bps_for_device,
                ),
                (
                    b.throttle_write_bps_device(),
                    "blkio.throttle.write_bps_device",
                    "blockIO.throttleWriteBpsDevice",
                    BlkIoController::throttle_write_bps_for_device,
                ),
                (
                    b.throttle_read_iops_device(),
                    "blkio.throttle.read_iops_device",
                    "blockIO.throttleReadIOPSDevice",
                    BlkIoController::throttle_read_iops_for_device,
                ),
                (
                    b.throttle_write_iops_device(),
                    "blkio.throttle.write_iops_device",
                    "blockIO.throttleWriteIOPSDevice",
                    BlkIoController::throttle_write_iops_for_device,
                ),
            ];
            for (devs, file, what, f) in throttles {
                let file = if h.v2 { "io.max" } else { file };
                for t in devs.iter().flatten() {
                    let (ma, mi, rate) = (t.major() as u64, t.minor() as u64, t.rate());
                    set(d, file, what, format!("{ma}:{mi} {rate}"), &|| {
                        f(&bc, ma, mi, rate)
                    })?;
                }
            }
        }
        for hp in r.hugepage_limits().iter().flatten() {
            let (h, d) = need("hugetlb", "hugepageLimits")?;
            let hc = HugeTlbController::new(d.to_path_buf(), h.mount.clone(), h.v2);
            let size = hp.page_size();
            if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(Error::invalid(format!(
                    "{origin}.hugepageLimits: invalid pageSize {size:?}"
                )));
            }
            let f = if h.v2 {
                format!("hugetlb.{size}.max")
            } else {
                format!("hugetlb.{size}.limit_in_bytes")
            };
            let lim = hp.limit().max(0) as u64;
            set(d, &f, "hugepageLimits", lim.to_string(), &|| {
                hc.set_limit_in_bytes(size, lim)
            })?;
        }
        if let Some(rules) = r.devices().as_ref().filter(|d| !d.is_empty()) {
            match self.dir_of("devices") {
                Some((h, d)) if !h.v2 => {
                    let dc = DevicesController::new(d.to_path_buf(), h.mount.clone());
                    for rule in device_rules(rules, devices) {
                        let file = if rule.allow {
                            "devices.allow"
                        } else {
                            "devices.deny"
                        };
                        let (t, ma, mi, acc) =
                            (rule.typ, rule.major, rule.minor, rule.access.clone());
                        set(d, file, "devices", rule.to_string(), &|| {
                            if rule.allow {
                                dc.allow_device(t, ma, mi, &acc)
                            } else {
                                dc.deny_device(t, ma, mi, &acc)
                            }
                        })?;
                    }
                }
                _ => crate::log::debug(
                    "linux.resources.devices: no v1 devices hierarchy (cgroup v2 needs an eBPF \
                     program hookrun does not load yet); device rules not applied",
                ),
            }
        }
        for (k, v) in r.unified().iter().flatten() {
            let Some((h, d)) = self.dirs.iter().find(|(h, _)| h.v2) else {
                return Err(Error::invalid(format!(
                    "{origin}.unified.{k}: no cgroup2 hierarchy is mounted"
                )));
            };
            let _ = h;
            if k.contains('/') || k.starts_with('.') || !d.join(k).exists() {
                return Err(missing(origin, d, k, &format!("unified.{k}")));
            }
            write(d, k, v)?;
        }
        Ok(())
    }
}

/// `pids.limit`: a positive limit, or no limit (`max`) for 0 and below, as runc.
fn pids_value(limit: i64) -> MaxValue {
    if limit > 0 {
        MaxValue::Value(limit)
    } else {
        MaxValue::Max
    }
}

/// One v1 device-cgroup rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    allow: bool,
    typ: DeviceType,
    /// -1: any.
    major: i64,
    minor: i64,
    access: Vec<DevicePermissions>,
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |v: i64| {
            if v < 0 {
                "*".to_string()
            } else {
                v.to_string()
            }
        };
        let acc: String = self.access.iter().map(|p| p.to_char()).collect();
        write!(
            f,
            "{} {}:{} {acc}",
            self.typ.to_char(),
            n(self.major),
            n(self.minor)
        )
    }
}

fn rule(allow: bool, typ: DeviceType, major: i64, minor: i64, access: &str) -> Rule {
    Rule {
        allow,
        typ,
        major,
        minor,
        access: access
            .chars()
            .filter_map(DevicePermissions::from_char)
            .collect(),
    }
}

/// Devices every container may use whatever its rules say (runc's list).
fn default_allowed() -> Vec<Rule> {
    let c = DeviceType::Char;
    vec![
        rule(true, c, -1, -1, "m"),
        rule(true, DeviceType::Block, -1, -1, "m"),
        rule(true, c, 1, 3, "rwm"),    // null
        rule(true, c, 1, 8, "rwm"),    // random
        rule(true, c, 1, 7, "rwm"),    // full
        rule(true, c, 5, 0, "rwm"),    // tty
        rule(true, c, 1, 5, "rwm"),    // zero
        rule(true, c, 1, 9, "rwm"),    // urandom
        rule(true, c, 136, -1, "rwm"), // pts/*
        rule(true, c, 5, 2, "rwm"),    // ptmx
        rule(true, c, 5, 1, "rwm"),    // console
    ]
}

/// The rules to write, in order: deny everything (as runc), the config's rules in their order,
/// runc's default devices, then each of `linux.devices`.
fn device_rules(spec: &[LinuxDeviceCgroup], devices: &[LinuxDevice]) -> Vec<Rule> {
    let mut out = vec![rule(false, DeviceType::All, -1, -1, "rwm")];
    for d in spec {
        let typ = match d.typ().unwrap_or_default() {
            LinuxDeviceType::A => DeviceType::All,
            LinuxDeviceType::B => DeviceType::Block,
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceType::Char,
            LinuxDeviceType::P => continue, // fifos are not devices to the cgroup
        };
        let acc = d.access().clone().unwrap_or_else(|| "rwm".into());
        out.push(rule(
            d.allow(),
            typ,
            d.major().unwrap_or(-1),
            d.minor().unwrap_or(-1),
            &acc,
        ));
    }
    out.extend(default_allowed());
    for d in devices {
        let typ = match d.typ() {
            LinuxDeviceType::B => DeviceType::Block,
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceType::Char,
            _ => continue,
        };
        out.push(rule(true, typ, d.major(), d.minor(), "rwm"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_rule_text() {
        assert_eq!(
            rule(false, DeviceType::All, -1, -1, "rwm").to_string(),
            "a *:* rwm"
        );
        assert_eq!(
            rule(true, DeviceType::Char, 136, -1, "rw").to_string(),
            "c 136:* rw"
        );
        assert_eq!(
            rule(true, DeviceType::Block, 8, 0, "r").to_string(),
            "b 8:0 r"
        );
        assert_eq!(pids_value(10), MaxValue::Value(10));
        assert_eq!(pids_value(0), MaxValue::Max);
        assert_eq!(pids_value(-1), MaxValue::Max);
    }

    #[test]
    fn writers_against_a_temp_dir() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "pids.max", "10").unwrap();
        assert_eq!(fs::read_to_string(d.path().join("pids.max")).unwrap(), "10");
        let e = write(&d.path().join("gone"), "memory.max", "1")
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("write \"1\" to memory.max: no such file or directory"),
            "{e}"
        );
        // cgroups-rs's setters format the files as the kernel wants them.
        let mc = MemController::new(d.path().into(), "/".into(), false);
        mc.set_limit(52428800).unwrap();
        assert_eq!(
            fs::read_to_string(d.path().join("memory.limit_in_bytes")).unwrap(),
            "52428800"
        );
        let bc = BlkIoController::new(d.path().into(), "/".into(), false);
        bc.throttle_read_bps_for_device(8, 0, 1024).unwrap();
        assert_eq!(
            fs::read_to_string(d.path().join("blkio.throttle.read_bps_device")).unwrap(),
            "8:0 1024"
        );
        // remove() takes only the directories create made, deepest first.
        let made = d.path().join("a/b");
        fs::create_dir_all(&made).unwrap();
        let rec = super::super::Recorded {
            paths: vec![made.clone()],
            created: vec![made.clone(), d.path().join("a")],
        };
        super::super::remove(&rec).unwrap();
        assert!(!d.path().join("a").exists());
        assert!(d.path().exists());
    }
}
