//! CPU limits: shares, the CFS quota and period, the realtime runtime and period, `cpu.idle`, and
//! the cpuset. Each budget/period pair is written in the order the kernel's bandwidth checks let
//! through, whatever the parent's limit.
//! runs in: the runtime (`create`, `update`).

use std::fs;
use std::path::Path;

use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use oci_spec::runtime::LinuxCpu;

use super::limits::Writer;
use crate::error::{Error, Result};

/// Which value of a (budget, period) pair to write first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum First {
    Budget,
    Period,
}

/// The kernel checks each write against the parent's limit with the other value as it stands:
/// the period first is checked as old budget / new period, the budget first as new budget / old
/// period. The product of those two ratios is the product of the old and the new ratio, both
/// within the limit, so the smaller of the two always passes (a pod's 50% with a period going
/// from 1 s to 10 ms: the quota must shrink first). `free`: what a negative budget costs — nothing
/// for CFS (v1 treats an unlimited child as bound by its parent), everything for realtime.
fn first(old: (i64, u64), new: (i64, u64), free: bool) -> First {
    let ratio = |budget: i64, period: u64| match budget {
        b if b < 0 && free => 0.0,
        b if b < 0 => f64::INFINITY,
        b => b as f64 / period.max(1) as f64,
    };
    if ratio(new.0, old.1) < ratio(old.0, new.1) {
        First::Budget
    } else {
        First::Period
    }
}

fn read_num<T: std::str::FromStr>(d: &Path, file: &str) -> Option<T> {
    fs::read_to_string(d.join(file)).ok()?.trim().parse().ok()
}

pub(super) fn apply(w: &Writer, c: &LinuxCpu) -> Result<()> {
    let bandwidth = c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.realtime_runtime().is_some()
        || c.realtime_period().is_some()
        || c.idle().is_some();
    if bandwidth {
        let (h, d) = w.need("cpu", "cpu")?;
        let cc = CpuController::new(d.to_path_buf(), h.mount.clone(), h.v2);
        if let Some(v) = c.shares() {
            let f = if h.v2 { "cpu.weight" } else { "cpu.shares" };
            w.set(d, f, "cpu.shares", v.to_string(), &|| cc.set_shares(v))?;
            // The kernel clamps out-of-range shares silently; say so rather than lie.
            let got = cc.shares().unwrap_or(v);
            if !h.v2 && got != v {
                return Err(Error::invalid(format!(
                    "{}.cpu.shares: {v} is out of range (the kernel set {got})",
                    w.origin
                )));
            }
        }
        cfs(w, h.v2, d, &cc, c)?;
        realtime(w, d, &cc, c)?;
        if let Some(v) = c.idle() {
            w.put(d, "cpu.idle", "cpu.idle", &v.to_string())?;
        }
    }
    if c.cpus().is_some() || c.mems().is_some() {
        let (h, d) = w.need("cpuset", "cpu.cpus")?;
        let cs = CpuSetController::new(d.to_path_buf(), h.mount.clone(), h.v2);
        if let Some(v) = c.cpus() {
            w.set(d, "cpuset.cpus", "cpu.cpus", v.clone(), &|| cs.set_cpus(v))?;
        }
        if let Some(v) = c.mems() {
            w.set(d, "cpuset.mems", "cpu.mems", v.clone(), &|| cs.set_mems(v))?;
        }
    }
    Ok(())
}

/// The CFS quota and period (cgroup2: one `cpu.max` write, so no order to choose).
fn cfs(w: &Writer, v2: bool, d: &Path, cc: &CpuController, c: &LinuxCpu) -> Result<()> {
    let (q, p) = (c.quota(), c.period());
    if v2 {
        if q.is_none() && p.is_none() {
            return Ok(());
        }
        let text = format!(
            "{} {}",
            q.map_or("(quota kept)".into(), |v| v.to_string()),
            p.map_or("(period kept)".into(), |v| v.to_string())
        );
        return w.set(d, "cpu.max", "cpu.quota", text, &|| {
            cc.set_cfs_quota_and_period(q, p)
        });
    }
    let set_q = |v: i64| {
        w.set(d, "cpu.cfs_quota_us", "cpu.quota", v.to_string(), &|| {
            cc.set_cfs_quota(v)
        })
    };
    let set_p = |v: u64| {
        w.set(d, "cpu.cfs_period_us", "cpu.period", v.to_string(), &|| {
            cc.set_cfs_period(v)
        })
    };
    match (q, p) {
        (Some(q), Some(p)) => {
            let old = (cc.cfs_quota().unwrap_or(-1), cc.cfs_period().unwrap_or(p));
            if first(old, (q, p), true) == First::Budget {
                set_q(q)?;
                set_p(p)
            } else {
                set_p(p)?;
                set_q(q)
            }
        }
        (q, p) => {
            p.map(set_p).transpose()?;
            q.map(set_q).transpose().map(|_| ())
        }
    }
}

/// The realtime runtime and period (v1 only: cgroup2 has no realtime bandwidth files).
fn realtime(w: &Writer, d: &Path, cc: &CpuController, c: &LinuxCpu) -> Result<()> {
    let set_r = |v: i64| {
        w.set(
            d,
            "cpu.rt_runtime_us",
            "cpu.realtimeRuntime",
            v.to_string(),
            &|| cc.set_rt_runtime(v),
        )
    };
    let set_p = |v: u64| {
        w.set(
            d,
            "cpu.rt_period_us",
            "cpu.realtimePeriod",
            v.to_string(),
            &|| cc.set_rt_period_us(v),
        )
    };
    match (c.realtime_runtime(), c.realtime_period()) {
        (Some(r), Some(p)) => {
            let old = (
                read_num(d, "cpu.rt_runtime_us").unwrap_or(0),
                read_num(d, "cpu.rt_period_us").unwrap_or(p),
            );
            if first(old, (r, p), false) == First::Budget {
                set_r(r)?;
                set_p(p)
            } else {
                set_p(p)?;
                set_r(r)
            }
        }
        (r, p) => {
            p.map(set_p).transpose()?;
            r.map(set_r).transpose().map(|_| ())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pair_is_written_in_an_order_the_parent_allows() {
        // update.bats' pod case: 50% at a 1 s period, to 30% at 10 ms.
        assert_eq!(
            first((500_000, 1_000_000), (3_000, 10_000), true),
            First::Budget
        );
        // The reverse: the period must grow first.
        assert_eq!(
            first((3_000, 10_000), (500_000, 1_000_000), true),
            First::Period
        );
        // Removing the quota: first, it is free. An unlimited quota left while the period
        // changes is free too.
        assert_eq!(
            first((500_000, 1_000_000), (-1, 100_000), true),
            First::Budget
        );
        assert_eq!(first((-1, 100_000), (5_000, 10_000), true), First::Period);
        // Realtime: an unlimited runtime is never free.
        assert_eq!(
            first((950_000, 1_000_000), (500_001, 800_001), false),
            First::Budget
        );
        assert_eq!(first((0, 1_000_000), (-1, 1_000_000), false), First::Period);
    }

    #[test]
    fn for_any_pair_one_order_stays_within_the_limit() {
        let within = |q: i64, p: u64, lim: f64| q < 0 || (q as f64 / p as f64) <= lim + 1e-12;
        let lim = 0.5;
        let pairs = [
            (-1, 100_000u64),
            (50_000, 100_000),
            (3_000, 10_000),
            (500_000, 1_000_000),
            (1_000, 1_000_000),
            (40_000, 80_000),
            (9_000, 20_000),
        ];
        for &old in &pairs {
            for &new in &pairs {
                let mid = match first(old, new, true) {
                    First::Budget => (new.0, old.1),
                    First::Period => (old.0, new.1),
                };
                assert!(within(mid.0, mid.1, lim), "{old:?} -> {new:?} via {mid:?}");
            }
        }
    }
}
