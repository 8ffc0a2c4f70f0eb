//! The container's resource counters in runc's `events --stats` shape (libcontainer's
//! `types.Stats`: cpu, memory, pids, blkio, hugetlb), read from whichever hierarchy holds each
//! controller (v1 first, as the limits are written), and the OOM-kill counter `events` watches.
//! runs in: the runtime (`events`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::{Cgroup, Recorded};

/// A counter file: one number; `max` (no limit) reads as u64::MAX, as runc reports it.
fn num(dir: &Path, file: &str) -> Option<u64> {
    parse_num(&fs::read_to_string(dir.join(file)).ok()?)
}

fn parse_num(s: &str) -> Option<u64> {
    match s.trim() {
        "max" => Some(u64::MAX),
        t => t.parse().ok(),
    }
}

fn n(dir: &Path, file: &str) -> u64 {
    num(dir, file).unwrap_or(0)
}

/// A flat-keyed file (`key value` lines: memory.stat, cpu.stat, memory.events…).
fn flat(dir: &Path, file: &str) -> BTreeMap<String, u64> {
    parse_flat(&fs::read_to_string(dir.join(file)).unwrap_or_default())
}

fn parse_flat(s: &str) -> BTreeMap<String, u64> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (k, v) = (it.next()?, it.next()?);
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// A space-separated list of numbers (cpuacct.usage_percpu).
fn list(dir: &Path, file: &str) -> Vec<u64> {
    fs::read_to_string(dir.join(file))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

/// USER_HZ ticks (cpuacct.stat) to nanoseconds.
fn ticks_to_ns(t: u64) -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    t.saturating_mul(1_000_000_000 / hz)
}

/// `{limit, usage, max, failcnt}` from v1 files with prefix `p` (`memory.`, `memory.memsw.`…).
fn mem_entry_v1(dir: &Path, p: &str) -> Value {
    json!({
        "limit": n(dir, &format!("{p}limit_in_bytes")),
        "usage": n(dir, &format!("{p}usage_in_bytes")),
        "max": n(dir, &format!("{p}max_usage_in_bytes")),
        "failcnt": n(dir, &format!("{p}failcnt")),
    })
}

fn cpu(cg: &Cgroup) -> Value {
    let mut usage = json!({"total": 0, "percpu": [], "kernel": 0, "user": 0});
    let mut throttling = json!({"periods": 0, "throttled_periods": 0, "throttled_time": 0});
    if let Some((h, d)) = cg.dir_of("cpuacct").filter(|(h, _)| !h.v2) {
        let _ = h;
        let st = flat(d, "cpuacct.stat");
        usage = json!({
            "total": n(d, "cpuacct.usage"),
            "percpu": list(d, "cpuacct.usage_percpu"),
            "percpu_kernel": list(d, "cpuacct.usage_percpu_sys"),
            "percpu_user": list(d, "cpuacct.usage_percpu_user"),
            "kernel": ticks_to_ns(st.get("system").copied().unwrap_or(0)),
            "user": ticks_to_ns(st.get("user").copied().unwrap_or(0)),
        });
    } else if let Some((_, d)) = cg.dirs.iter().find(|(h, _)| h.v2) {
        // cgroup2 keeps the usage in cpu.stat of every cgroup, controller enabled or not.
        let st = flat(d, "cpu.stat");
        let us = |k: &str| st.get(k).copied().unwrap_or(0).saturating_mul(1000);
        usage = json!({
            "total": us("usage_usec"), "percpu": [], "kernel": us("system_usec"), "user": us("user_usec"),
        });
    }
    if let Some((h, d)) = cg.dir_of("cpu") {
        let st = flat(d, "cpu.stat");
        let g = |k: &str| st.get(k).copied().unwrap_or(0);
        throttling = json!({
            "periods": g("nr_periods"),
            "throttled_periods": g("nr_throttled"),
            "throttled_time": if h.v2 { g("throttled_usec").saturating_mul(1000) } else { g("throttled_time") },
        });
    }
    json!({"usage": usage, "throttling": throttling})
}

fn memory(cg: &Cgroup) -> Value {
    let Some((h, d)) = cg.dir_of("memory") else {
        return json!({});
    };
    let raw = flat(d, "memory.stat");
    if !h.v2 {
        return json!({
            "cache": raw.get("cache").copied().unwrap_or(0),
            "usage": mem_entry_v1(d, "memory."),
            "swap": mem_entry_v1(d, "memory.memsw."),
            "kernel": mem_entry_v1(d, "memory.kmem."),
            "kernelTCP": mem_entry_v1(d, "memory.kmem.tcp."),
            "raw": raw,
        });
    }
    let ev = flat(d, "memory.events");
    let swap_ev = flat(d, "memory.swap.events");
    json!({
        "cache": raw.get("file").copied().unwrap_or(0),
        "usage": {
            "limit": n(d, "memory.max"), "usage": n(d, "memory.current"),
            "max": n(d, "memory.peak"), "failcnt": ev.get("max").copied().unwrap_or(0),
        },
        "swap": {
            "limit": n(d, "memory.swap.max"), "usage": n(d, "memory.swap.current"),
            "max": n(d, "memory.swap.peak"), "failcnt": swap_ev.get("fail").copied().unwrap_or(0),
        },
        "kernel": {"limit": 0, "usage": 0, "max": 0, "failcnt": 0},
        "kernelTCP": {"limit": 0, "usage": 0, "max": 0, "failcnt": 0},
        "raw": raw,
    })
}

fn pids(cg: &Cgroup) -> Value {
    let Some((_, d)) = cg.dir_of("pids") else {
        return json!({"current": 0, "limit": 0});
    };
    // runc reports no limit as 0.
    let limit = num(d, "pids.max").filter(|v| *v != u64::MAX).unwrap_or(0);
    json!({"current": n(d, "pids.current"), "limit": limit})
}

/// `MAJ:MIN Op value` lines (v1 blkio.*_recursive) to runc's entries; `Total` lines dropped.
fn blkio_entries_v1(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, op, v) = match f[..] {
                [dev, op, v] => (dev, op, v),
                [dev, v] => (dev, "", v), // blkio.time_recursive, sectors_recursive
                _ => return None,
            };
            let (ma, mi) = dev.split_once(':')?;
            Some(
                json!({"major": ma.parse::<u64>().ok()?, "minor": mi.parse::<u64>().ok()?,
                        "op": op, "value": v.parse::<u64>().ok()?}),
            )
        })
        .collect()
}

/// v2 io.stat (`MAJ:MIN rbytes=… wbytes=… rios=… wios=…`) to runc's bytes and ios entries.
fn io_stat_v2(text: &str) -> (Vec<Value>, Vec<Value>) {
    let (mut bytes, mut ios) = (vec![], vec![]);
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some((ma, mi)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(ma), Ok(mi)) = (ma.parse::<u64>(), mi.parse::<u64>()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            let (to, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            to.push(json!({"major": ma, "minor": mi, "op": op, "value": v}));
        }
    }
    (bytes, ios)
}

fn blkio(cg: &Cgroup) -> Value {
    if let Some((h, d)) = cg.dir_of("blkio").filter(|(h, _)| !h.v2) {
        let _ = h;
        // The CFQ/BFQ files when the scheduler keeps them, else the throttle layer's (as runc).
        let read = |name: &str| {
            let sched = fs::read_to_string(d.join(format!("blkio.{name}"))).unwrap_or_default();
            if blkio_entries_v1(&sched).is_empty() {
                let t = name.trim_end_matches("_recursive");
                blkio_entries_v1(
                    &fs::read_to_string(d.join(format!("blkio.throttle.{t}"))).unwrap_or_default(),
                )
            } else {
                blkio_entries_v1(&sched)
            }
        };
        let mut m = Map::new();
        for (key, file) in [
            ("ioServiceBytesRecursive", "io_service_bytes_recursive"),
            ("ioServicedRecursive", "io_serviced_recursive"),
        ] {
            m.insert(key.into(), Value::Array(read(file)));
        }
        for (key, file) in [
            ("ioQueueRecursive", "io_queued_recursive"),
            ("ioServiceTimeRecursive", "io_service_time_recursive"),
            ("ioWaitTimeRecursive", "io_wait_time_recursive"),
            ("ioMergedRecursive", "io_merged_recursive"),
            ("ioTimeRecursive", "time_recursive"),
            ("sectorsRecursive", "sectors_recursive"),
        ] {
            let t = fs::read_to_string(d.join(format!("blkio.{file}"))).unwrap_or_default();
            m.insert(key.into(), Value::Array(blkio_entries_v1(&t)));
        }
        return Value::Object(m);
    }
    if let Some((_, d)) = cg.dir_of("io") {
        let (bytes, ios) = io_stat_v2(&fs::read_to_string(d.join("io.stat")).unwrap_or_default());
        return json!({"ioServiceBytesRecursive": bytes, "ioServicedRecursive": ios});
    }
    json!({})
}

fn hugetlb(cg: &Cgroup) -> Value {
    let mut m = Map::new();
    let Some((h, d)) = cg.dir_of("hugetlb") else {
        return Value::Object(m);
    };
    let suffix = if h.v2 { ".current" } else { ".usage_in_bytes" };
    for e in fs::read_dir(d).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|r| r.strip_suffix(suffix))
            .filter(|s| !s.contains('.'))
        else {
            continue;
        };
        let entry = if h.v2 {
            let ev = flat(d, &format!("hugetlb.{size}.events"));
            json!({"usage": n(d, &name), "max": 0, "failcnt": ev.get("max").copied().unwrap_or(0)})
        } else {
            json!({
                "usage": n(d, &name),
                "max": n(d, &format!("hugetlb.{size}.max_usage_in_bytes")),
                "failcnt": n(d, &format!("hugetlb.{size}.failcnt")),
            })
        };
        m.insert(size.to_string(), entry);
    }
    Value::Object(m)
}

/// The `data` of a runc stats event for the container's cgroup.
pub fn stats(rec: &Recorded) -> Value {
    let cg = Cgroup::open(rec, "events");
    json!({
        "cpu": cpu(&cg),
        "memory": memory(&cg),
        "pids": pids(&cg),
        "blkio": blkio(&cg),
        "hugetlb": hugetlb(&cg),
        "intel_rdt": {},
        "network_interfaces": null,
    })
}

/// How many tasks the OOM killer has killed in the container's memory cgroup (v1
/// memory.oom_control `oom_kill`, v2 memory.events `oom_kill`); None without a memory cgroup.
pub fn oom_kills(rec: &Recorded) -> Option<u64> {
    let cg = Cgroup::open(rec, "events");
    let (h, d) = cg.dir_of("memory")?;
    let f = if h.v2 {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    Some(flat(d, f).get("oom_kill").copied().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_files_parse() {
        assert_eq!(parse_num("max\n"), Some(u64::MAX));
        assert_eq!(parse_num("42\n"), Some(42));
        assert_eq!(parse_num("x"), None);
        let m = parse_flat("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
        assert_eq!(m["oom_kill"], 3);
        assert_eq!(m.len(), 3);
        let e = blkio_entries_v1("254:0 Read 4096\n254:0 Write 0\n254:0 Total 4096\nTotal 4096\n");
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[0],
            json!({"major": 254, "minor": 0, "op": "Read", "value": 4096})
        );
        let (b, i) = io_stat_v2("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(
            b[1],
            json!({"major": 8, "minor": 0, "op": "Write", "value": 20})
        );
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn stats_shape_from_a_v1_memory_dir() {
        let d = tempfile::tempdir().unwrap();
        let mem = d.path().join("memory/web");
        fs::create_dir_all(&mem).unwrap();
        for (f, v) in [
            ("memory.limit_in_bytes", "67108864"),
            ("memory.usage_in_bytes", "1024"),
            ("memory.max_usage_in_bytes", "2048"),
            ("memory.failcnt", "1"),
            ("memory.stat", "cache 7\nrss 9\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
            ),
        ] {
            fs::write(mem.join(f), v).unwrap();
        }
        let h = super::super::Hier {
            mount: d.path().join("memory"),
            root: "/".into(),
            v2: false,
            ctrls: vec!["memory".into()],
        };
        let cg = Cgroup {
            dirs: vec![(h, mem.clone())],
            created: vec![],
            origin: "events",
        };
        let m = memory(&cg);
        assert_eq!(
            m["usage"],
            json!({"limit": 67108864, "usage": 1024, "max": 2048, "failcnt": 1})
        );
        assert_eq!(m["cache"], 7);
        assert_eq!(m["raw"]["rss"], 9);
        assert_eq!(pids(&cg), json!({"current": 0, "limit": 0}));
        assert_eq!(cpu(&cg)["usage"]["total"], 0);
    }
}
