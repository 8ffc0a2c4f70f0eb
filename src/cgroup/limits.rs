//! `linux.resources` written into the container's cgroup through cgroups-rs's controllers: every
//! value asked for is applied or create (update) fails naming it; hookrun writes a file itself
//! only in [`write`] (what cgroups-rs has no setter for: `unified` keys, `cpu.idle`, BFQ's v1
//! weights). Memory, pids, hugetlb and `unified` are here; [`super::cpu`], [`super::blkio`] and
//! [`super::devices`] hold the rest.
//! runs in: the runtime: `create`, before the init joins the cgroup, and `update`.

use std::fs;
use std::path::Path;

use cgroups_rs::fs::hugetlb::HugeTlbController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::MaxValue;
use oci_spec::runtime::{LinuxMemory, LinuxResources};

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
pub(super) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    fs::write(dir.join(file), value).map_err(|e| failed(dir, file, value, e))
}

/// A limit the user asked for whose file this kernel lacks.
fn missing(origin: &str, dir: &Path, file: &str, what: &str) -> Error {
    Error::invalid(format!(
        "{origin}.{what}: cannot be applied: {} has no {file} on this host",
        dir.display()
    ))
}

/// Writes one container's limits, naming each value by its field: `{origin}.{what}`.
pub(super) struct Writer<'a> {
    pub(super) cg: &'a Cgroup,
    pub(super) origin: &'static str,
}

impl<'a> Writer<'a> {
    /// The directory of the hierarchy that enforces controller `c`, or an error naming `what`.
    pub(super) fn need(&self, c: &str, what: &str) -> Result<(&'a Hier, &'a Path)> {
        self.cg.dir_of(c).ok_or_else(|| {
            Error::invalid(format!(
                "{}.{what}: cannot be applied: no {c} cgroup controller is mounted on this host",
                self.origin
            ))
        })
    }

    /// Run a cgroups-rs setter that writes `v` to `file`; an absent file is reported as such.
    pub(super) fn set(
        &self,
        dir: &Path,
        file: &str,
        what: &str,
        v: String,
        f: &dyn Fn() -> cgroups_rs::fs::error::Result<()>,
    ) -> Result<()> {
        if !dir.join(file).exists() {
            return Err(missing(self.origin, dir, file, what));
        }
        f().map_err(|e| self.named(what, failed(dir, file, &v, e)))
    }

    /// Write `v` to `file` with [`write`], for the files cgroups-rs has no setter for.
    pub(super) fn put(&self, dir: &Path, file: &str, what: &str, v: &str) -> Result<()> {
        if !dir.join(file).exists() {
            return Err(missing(self.origin, dir, file, what));
        }
        write(dir, file, v).map_err(|e| self.named(what, e))
    }

    fn named(&self, what: &str, e: Error) -> Error {
        match e {
            Error::Child(m) => Error::Child(format!("{}.{what}: {m}", self.origin)),
            e => e,
        }
    }
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
    /// it. Device rules are written when `r.devices` is set (create always sets it).
    pub(super) fn apply(&self, r: &LinuxResources) -> Result<()> {
        let w = Writer {
            cg: self,
            origin: self.origin,
        };
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            self.check_unified(r)?;
        }
        if let Some(m) = r.memory() {
            memory(&w, m)?;
        }
        if let Some(c) = r.cpu() {
            super::cpu::apply(&w, c)?;
        }
        if let Some(p) = r.pids() {
            let (h, d) = w.need("pids", "pids.limit")?;
            let pc = PidController::new(d.to_path_buf(), h.mount.clone(), h.v2);
            let v = pids_value(p.limit());
            let text = match v {
                MaxValue::Max => "max".to_string(),
                MaxValue::Value(n) => n.to_string(),
            };
            w.set(d, "pids.max", "pids.limit", text, &|| pc.set_pid_max(v))?;
        }
        if let Some(b) = r.block_io().as_ref().filter(|b| **b != Default::default()) {
            super::blkio::apply(&w, b)?;
        }
        for hp in r.hugepage_limits().iter().flatten() {
            let (h, d) = w.need("hugetlb", "hugepageLimits")?;
            let hc = HugeTlbController::new(d.to_path_buf(), h.mount.clone(), h.v2);
            let size = hp.page_size();
            if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(Error::invalid(format!(
                    "{}.hugepageLimits: invalid pageSize {size:?}",
                    self.origin
                )));
            }
            let f = if h.v2 {
                format!("hugetlb.{size}.max")
            } else {
                format!("hugetlb.{size}.limit_in_bytes")
            };
            let lim = hp.limit().max(0) as u64;
            w.set(d, &f, "hugepageLimits", lim.to_string(), &|| {
                hc.set_limit_in_bytes(size, lim)
            })?;
        }
        if let Some(rules) = r.devices() {
            super::devices::apply(&w, rules)?;
        }
        for (k, v) in r.unified().iter().flatten() {
            let Some((_, d)) = self.dirs.iter().find(|(h, _)| h.v2) else {
                return Err(Error::invalid(format!(
                    "{}.unified.{k}: no cgroup2 hierarchy is mounted",
                    self.origin
                )));
            };
            if k.contains('/') || k.starts_with('.') || !d.join(k).exists() {
                return Err(missing(self.origin, d, k, &format!("unified.{k}")));
            }
            write(d, k, v)?;
        }
        Ok(())
    }

    /// `unified` keys are cgroup2 files: a container whose controllers are v1 ones (on a v1 or
    /// hybrid host, as root) cannot take them (runc's wording, which clients match).
    fn check_unified(&self, r: &LinuxResources) -> Result<()> {
        let v1 = self
            .dirs
            .iter()
            .filter(|(h, _)| !h.v2)
            .find(|(h, _)| h.ctrls.iter().any(|c| !c.starts_with("name=")));
        match v1 {
            Some((h, _)) => {
                let key = r.unified().iter().flatten().next().map(|(k, _)| k.clone());
                Err(Error::invalid(format!(
                    "{}.unified.{}: invalid configuration: cannot use unified on cgroup v1 (this                      host's {} controller is a v1 hierarchy at {}; give the limit in its v1 field)",
                    self.origin,
                    key.unwrap_or_default(),
                    h.ctrls.join(","),
                    h.mount.display()
                )))
            }
            None => Ok(()),
        }
    }
}

/// Memory limits. v1 keeps limit <= memsw, so the order of the two writes depends on where they
/// go (as runc); a limit of -1 with no swap given lifts the swap limit too, or the kernel would
/// refuse an unlimited memory limit under a limited memsw.
fn memory(w: &Writer, m: &LinuxMemory) -> Result<()> {
    let any = m.limit().is_some()
        || m.reservation().is_some()
        || m.swap().is_some()
        || m.kernel().is_some()
        || m.kernel_tcp().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true);
    if !any {
        return Ok(());
    }
    let origin = w.origin;
    let (h, d) = w.need("memory", "memory")?;
    let mc = MemController::new(d.to_path_buf(), h.mount.clone(), h.v2);
    let (lim, sw) = if h.v2 {
        ("memory.max", "memory.swap.max")
    } else {
        ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
    };
    let set_limit = |v: i64| w.set(d, lim, "memory.limit", v.to_string(), &|| mc.set_limit(v));
    let set_swap = |v: i64| {
        w.set(d, sw, "memory.swap", v.to_string(), &|| {
            mc.set_memswap_limit(v)
        })
    };
    let swap = match (m.limit(), m.swap()) {
        (Some(-1), None) if !h.v2 && d.join(sw).exists() => Some(-1),
        (_, s) => s,
    };
    let cur = fs::read_to_string(d.join(lim))
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(i64::MAX);
    match (m.limit(), swap) {
        (Some(l), Some(s)) if s == -1 || cur < s => {
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
        w.set(d, f, "memory.reservation", v.to_string(), &|| {
            mc.set_soft_limit(v)
        })?;
    }
    if let Some(v) = m.kernel() {
        // The one limit not enforced strictly: deprecated by the runtime spec, and since Linux
        // 5.16 the kernel accepts the write and drops it (runc ignores it too). Tried, and a
        // warning when the kernel did not keep it.
        let f = d.join("memory.kmem.limit_in_bytes");
        let kept = f.exists()
            && mc.set_kmem_limit(v).is_ok()
            && fs::read_to_string(&f).is_ok_and(|s| v == -1 || s.trim() == v.to_string());
        if !kept {
            crate::log::warn(format!(
                "linux.resources.memory.kernel: {v} not applied: this kernel does not enforce                  kernel memory limits (deprecated in the runtime spec)"
            ));
        }
    }
    if let Some(v) = m.kernel_tcp() {
        let f = "memory.kmem.tcp.limit_in_bytes";
        w.set(d, f, "memory.kernelTCP", v.to_string(), &|| {
            mc.set_tcp_limit(v)
        })?;
    }
    if let Some(v) = m.swappiness() {
        if v > 100 {
            return Err(Error::invalid(format!(
                "{origin}.memory.swappiness: {v} is not in 0..=100"
            )));
        }
        w.set(
            d,
            "memory.swappiness",
            "memory.swappiness",
            v.to_string(),
            &|| mc.set_swappiness(v),
        )?;
    }
    if m.disable_oom_killer() == Some(true) {
        w.set(
            d,
            "memory.oom_control",
            "memory.disableOOMKiller",
            "1".into(),
            &|| mc.disable_oom_killer(),
        )?;
    }
    Ok(())
}

/// `pids.limit`: a positive limit, or no limit (`max`) for 0 and below, as runc.
fn pids_value(limit: i64) -> MaxValue {
    if limit > 0 {
        MaxValue::Value(limit)
    } else {
        MaxValue::Max
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cgroups_rs::fs::blkio::BlkIoController;

    #[test]
    fn pids_limits() {
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

    /// A v1 memory cgroup in a temp dir, as a `Cgroup` that `apply` writes into.
    fn fake_memcg(d: &Path, limit: &str, memsw: &str) -> Cgroup {
        fs::write(d.join("memory.limit_in_bytes"), limit).unwrap();
        fs::write(d.join("memory.memsw.limit_in_bytes"), memsw).unwrap();
        let h = Hier {
            mount: d.to_path_buf(),
            root: "/".into(),
            v2: false,
            ctrls: vec!["memory".into()],
        };
        Cgroup {
            dirs: vec![(h, d.to_path_buf())],
            created: vec![],
            origin: "update: resources",
        }
    }

    #[test]
    fn an_unlimited_memory_limit_lifts_the_swap_limit() {
        let d = tempfile::tempdir().unwrap();
        let cg = fake_memcg(d.path(), "52428800", "96468992");
        let r: LinuxResources = serde_json::from_str(r#"{"memory": {"limit": -1}}"#).unwrap();
        cg.apply(&r).unwrap();
        let read = |f: &str| fs::read_to_string(d.path().join(f)).unwrap();
        assert_eq!(read("memory.limit_in_bytes"), "-1");
        assert_eq!(read("memory.memsw.limit_in_bytes"), "-1");
        // A swap given stays what was given.
        let cg = fake_memcg(d.path(), "52428800", "96468992");
        let r = serde_json::from_str(r#"{"memory": {"limit": -1, "swap": 200000000}}"#).unwrap();
        cg.apply(&r).unwrap();
        assert_eq!(read("memory.memsw.limit_in_bytes"), "200000000");
        // A file the host lacks is named with its field.
        fs::remove_file(d.path().join("memory.memsw.limit_in_bytes")).unwrap();
        let r = serde_json::from_str(r#"{"memory": {"swap": 1}}"#).unwrap();
        let e = cg.apply(&r).unwrap_err().to_string();
        assert!(
            e.starts_with("update: resources.memory.swap: cannot be applied"),
            "{e}"
        );
    }

    #[test]
    fn unified_keys_on_a_v1_controller_are_an_invalid_configuration() {
        let d = tempfile::tempdir().unwrap();
        let cg = fake_memcg(d.path(), "1", "1");
        let r = serde_json::from_str(r#"{"unified": {"memory.min": "131072"}}"#).unwrap();
        let e = cg.apply(&r).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "update: resources.unified.memory.min: invalid configuration: cannot use \
                 unified on cgroup v1"
            ),
            "{e}"
        );
    }
}
