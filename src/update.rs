//! `update`: new cgroup limits for a live container, from an OCI LinuxResources document
//! (`--resources FILE|-`, its field names matched as runc's Go decoder matches them) with runc's
//! flags laid over it, written by the same code that applies `linux.resources` at create, then
//! kept in the saved config.json.
//! runs in: the runtime.

use std::io::Read;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use serde_json::Value;

use crate::cgroup::Cgroup;
use crate::cli::UpdateOpts;
use crate::error::{Error, Result};
use crate::state::{self, ContainerDir, Root};

/// How errors name a field: `update: resources.memory.limit: …`.
const ORIGIN: &str = "update: resources";

pub fn update(root: &Root, id: &str, opts: &UpdateOpts) -> Result<()> {
    let dir = root.open(id)?;
    let st = dir.load_live("only a created, running or paused container can be updated")?;
    let mut r = match &opts.resources {
        Some(p) => parse(&read_source(p)?)?,
        None => LinuxResources::default(),
    };
    overlay(&mut r, opts);
    check_supported(&r, opts)?;
    if opts.resources.is_none() && r == LinuxResources::default() {
        return Err(Error::invalid(
            "update: nothing to change: give --resources FILE (or -) or a limit flag such as --memory",
        ));
    }
    drop_zeroes(&mut r);
    if r == LinuxResources::default() {
        return Ok(()); // only values runc reads as "unchanged"
    }
    if st.cgroup.paths.is_empty() {
        return Err(Error::invalid(format!(
            "update: container \"{id}\" has no cgroup (created rootless); its limits cannot change"
        )));
    }
    if r.memory()
        .as_ref()
        .is_some_and(|m| m.kernel().is_some() || m.kernel_tcp().is_some())
    {
        crate::log::warn(
            "update: kernel memory limits are obsolete (kernels since 5.16 ignore them)",
        );
    }
    Cgroup::open(&st.cgroup, ORIGIN).update(&r)?;
    save_back(&dir, &r)
}

/// Keep the new limits in the saved config.json, over what it had (as runc keeps them in its
/// state), so it tells what the container runs with.
fn save_back(dir: &ContainerDir, r: &LinuxResources) -> Result<()> {
    let path = dir.file(state::CONFIG_FILE);
    let data = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    let mut spec: Value = serde_json::from_slice(&data)
        .map_err(|e| Error::invalid(format!("{}: {e}", path.display())))?;
    let new = serde_json::to_value(r).expect("resources serialise");
    merge(&mut spec["linux"]["resources"], new);
    state::write_atomic(&path, &serde_json::to_vec(&spec).expect("spec serialises"))
}

/// `new` laid over `old`: objects merge key by key, anything else replaces.
fn merge(old: &mut Value, new: Value) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (k, v) in n.into_iter().filter(|(_, v)| !v.is_null()) {
                merge(o.entry(k).or_insert(Value::Null), v);
            }
        }
        (_, Value::Null) => {}
        (o, n) => *o = n,
    }
}

fn read_source(p: &Path) -> Result<Vec<u8>> {
    if p == Path::new("-") {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .map_err(|e| Error::io("read", "stdin", e))?;
        Ok(b)
    } else {
        std::fs::read(p).map_err(|e| Error::io("read", p, e))
    }
}

/// Parse a LinuxResources document; a wrong type or an unknown field is named by its path.
pub fn parse(data: &[u8]) -> Result<LinuxResources> {
    let v: Value = serde_json::from_slice(data)
        .map_err(|e| Error::invalid(format!("{ORIGIN}: not JSON: {e}")))?;
    let v = go_names(v, "");
    if !v.is_object() {
        return Err(Error::invalid(format!(
            "{ORIGIN}: expected a JSON object (an OCI LinuxResources)"
        )));
    }
    let r: LinuxResources = serde_path_to_error::deserialize(&v).map_err(|e| {
        let path = e.path().to_string();
        Error::invalid(format!("{ORIGIN}.{path}: {}", e.into_inner()))
    })?;
    // serde ignores fields it does not know: what did not survive the round trip was unknown.
    let back = serde_json::to_value(&r).expect("resources serialise");
    if let Some(path) = unknown(&v, &back, "") {
        return Err(Error::invalid(format!("{ORIGIN}.{path}: unknown field")));
    }
    Ok(r)
}

/// The field names at each level of an OCI LinuxResources (array items under the array's path);
/// `None` below `unified` and `rdma`, whose keys are file and device names.
fn fields(path: &str) -> Option<&'static [&'static str]> {
    Some(match path {
        "" => &[
            "devices",
            "memory",
            "cpu",
            "pids",
            "blockIO",
            "hugepageLimits",
            "network",
            "rdma",
            "unified",
        ],
        "devices" => &["allow", "type", "major", "minor", "access"],
        "memory" => &[
            "limit",
            "reservation",
            "swap",
            "kernel",
            "kernelTCP",
            "swappiness",
            "disableOOMKiller",
            "useHierarchy",
            "checkBeforeUpdate",
        ],
        "cpu" => &[
            "shares",
            "quota",
            "burst",
            "period",
            "realtimeRuntime",
            "realtimePeriod",
            "cpus",
            "mems",
            "idle",
        ],
        "pids" => &["limit"],
        "blockIO" => &[
            "weight",
            "leafWeight",
            "weightDevice",
            "throttleReadBpsDevice",
            "throttleWriteBpsDevice",
            "throttleReadIOPSDevice",
            "throttleWriteIOPSDevice",
        ],
        "blockIO.weightDevice" => &["major", "minor", "weight", "leafWeight"],
        "blockIO.throttleReadBpsDevice"
        | "blockIO.throttleWriteBpsDevice"
        | "blockIO.throttleReadIOPSDevice"
        | "blockIO.throttleWriteIOPSDevice" => &["major", "minor", "rate"],
        "hugepageLimits" => &["pageSize", "limit"],
        "network" => &["classID", "priorities"],
        "network.priorities" => &["name", "priority"],
        _ => return None,
    })
}

/// Field names as runc's Go decoder matches them: an exact name first, else the same name in
/// another case (`{"CPU": {"Cpus": "1"}}` is `cpu.cpus`). A field given in two spellings merges
/// as Go decodes both into one struct, except that where both set the same value the exact
/// spelling wins (Go takes the later one, but the order of keys is gone once parsed).
fn go_names(v: Value, path: &str) -> Value {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Object(o) => {
            let Some(names) = fields(path) else {
                return Value::Object(o);
            };
            let mut out = serde_json::Map::new();
            let (exact, other): (Vec<_>, Vec<_>) = o
                .into_iter()
                .partition(|(k, _)| names.contains(&k.as_str()));
            for (k, val) in other.into_iter().chain(exact) {
                let name = names
                    .iter()
                    .find(|n| n.eq_ignore_ascii_case(&k))
                    .map_or(k, |n| n.to_string());
                let val = go_names(val, &join(&name));
                merge(out.entry(name).or_insert(Value::Null), val);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(|x| go_names(x, path)).collect()),
        v => v,
    }
}

/// The first key of `input` (nulls aside) that `parsed` lacks, as a dotted path.
fn unknown(input: &Value, parsed: &Value, at: &str) -> Option<String> {
    let join = |k: &str| {
        if at.is_empty() {
            k.to_string()
        } else {
            format!("{at}.{k}")
        }
    };
    match (input, parsed) {
        (Value::Object(i), Value::Object(p)) => i.iter().find_map(|(k, v)| match p.get(k) {
            _ if v.is_null() => None,
            None => Some(join(k)),
            Some(pv) => unknown(v, pv, &join(k)),
        }),
        (Value::Array(i), Value::Array(p)) => i
            .iter()
            .zip(p)
            .enumerate()
            .find_map(|(n, (iv, pv))| unknown(iv, pv, &format!("{at}[{n}]"))),
        _ => None,
    }
}

/// runc's flags override the document's fields.
fn overlay(r: &mut LinuxResources, o: &UpdateOpts) {
    let mem_flags = o.memory.is_some()
        || o.memory_swap.is_some()
        || o.memory_reservation.is_some()
        || o.kernel_memory.is_some()
        || o.kernel_memory_tcp.is_some();
    if mem_flags {
        let m = r.memory_mut().get_or_insert_with(LinuxMemory::default);
        if let Some(v) = o.memory {
            m.set_limit(Some(v));
        }
        if let Some(v) = o.memory_swap {
            m.set_swap(Some(v));
        }
        if let Some(v) = o.memory_reservation {
            m.set_reservation(Some(v));
        }
        if let Some(v) = o.kernel_memory {
            m.set_kernel(Some(v));
        }
        if let Some(v) = o.kernel_memory_tcp {
            m.set_kernel_tcp(Some(v));
        }
    }
    let cpu_flags = o.cpu_shares.is_some()
        || o.cpu_quota.is_some()
        || o.cpu_period.is_some()
        || o.cpu_rt_period.is_some()
        || o.cpu_rt_runtime.is_some()
        || o.cpuset_cpus.is_some()
        || o.cpuset_mems.is_some();
    if cpu_flags {
        let c = r.cpu_mut().get_or_insert_with(LinuxCpu::default);
        if let Some(v) = o.cpu_shares {
            c.set_shares(Some(v));
        }
        if let Some(v) = o.cpu_quota {
            c.set_quota(Some(v));
        }
        if let Some(v) = o.cpu_period {
            c.set_period(Some(v));
        }
        if let Some(v) = o.cpu_rt_period {
            c.set_realtime_period(Some(v));
        }
        if let Some(v) = o.cpu_rt_runtime {
            c.set_realtime_runtime(Some(v));
        }
        if let Some(v) = &o.cpuset_cpus {
            c.set_cpus(Some(v.clone()));
        }
        if let Some(v) = &o.cpuset_mems {
            c.set_mems(Some(v.clone()));
        }
    }
    if let Some(v) = o.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(v);
        r.set_pids(Some(p));
    }
    if let Some(v) = o.blkio_weight {
        r.block_io_mut()
            .get_or_insert_with(LinuxBlockIo::default)
            .set_weight(Some(v));
    }
}

/// What runc reads as "leave it as it is": a zero limit (its flags and documents default to 0),
/// an empty cpuset. Such fields are dropped before anything is written.
fn drop_zeroes(r: &mut LinuxResources) {
    if let Some(m) = r.memory_mut() {
        let z = |v: Option<i64>| v.filter(|v| *v != 0);
        m.set_limit(z(m.limit()));
        m.set_reservation(z(m.reservation()));
        m.set_swap(z(m.swap()));
        m.set_kernel(z(m.kernel()));
        m.set_kernel_tcp(z(m.kernel_tcp()));
    }
    if let Some(c) = r.cpu_mut() {
        c.set_shares(c.shares().filter(|v| *v != 0));
        c.set_quota(c.quota().filter(|v| *v != 0));
        c.set_period(c.period().filter(|v| *v != 0));
        c.set_realtime_runtime(c.realtime_runtime().filter(|v| *v != 0));
        c.set_realtime_period(c.realtime_period().filter(|v| *v != 0));
        c.set_cpus(c.cpus().clone().filter(|v| !v.is_empty()));
        c.set_mems(c.mems().clone().filter(|v| !v.is_empty()));
    }
    if let Some(b) = r.block_io_mut() {
        b.set_weight(b.weight().filter(|v| *v != 0));
    }
    if r.pids().is_some_and(|p| p.limit() == 0) {
        r.set_pids(None);
    }
    // What is left empty is no change at all.
    let empty = |v: &Value| v.as_object().is_some_and(|o| o.is_empty());
    let mut v = serde_json::to_value(&*r).expect("resources serialise");
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, x| !empty(x));
    }
    *r = serde_json::from_value(v).expect("resources round-trip");
}

/// Fields the limits code has no writer for are refused rather than silently dropped.
fn check_supported(r: &LinuxResources, o: &UpdateOpts) -> Result<()> {
    if let Some(f) = [
        (o.l3_cache_schema.is_some(), "--l3-cache-schema"),
        (o.mem_bw_schema.is_some(), "--mem-bw-schema"),
    ]
    .iter()
    .find_map(|(set, f)| set.then_some(f))
    {
        return Err(Error::invalid(format!(
            "update: {f}: Intel RDT is not supported by hookrun"
        )));
    }
    let unsupported = [
        (r.network().is_some(), "network"),
        (r.rdma().as_ref().is_some_and(|m| !m.is_empty()), "rdma"),
        (
            r.cpu().as_ref().is_some_and(|c| c.burst().is_some()),
            "cpu.burst",
        ),
    ];
    match unsupported.iter().find(|(set, _)| *set) {
        Some((_, f)) => Err(Error::invalid(format!(
            "{ORIGIN}.{f}: not supported by hookrun"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_parse_and_bad_fields_are_named() {
        let r = parse(br#"{"pids": {"limit": 20}, "memory": {"limit": 1048576, "swap": null}}"#)
            .unwrap();
        assert_eq!(r.pids().unwrap().limit(), 20);
        assert_eq!(r.memory().unwrap().limit(), Some(1048576));
        let e = parse(br#"{"memory": {"limit": "lots"}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("update: resources.memory.limit: invalid type"),
            "{e}"
        );
        let e = parse(br#"{"memory": {"limitt": 1}}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "update: resources.memory.limitt: unknown field");
        let e = parse(br#"{"pidz": {"limit": 1}}"#).unwrap_err().to_string();
        assert_eq!(e, "update: resources.pidz: unknown field");
        let e = parse(br#"{"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "wieght": 5}]}}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "update: resources.blockIO.weightDevice[0].wieght: unknown field"
        );
        assert!(parse(b"[1]").is_err());
        assert!(parse(b"{").unwrap_err().to_string().contains("not JSON"));
    }

    #[test]
    fn flags_override_the_document() {
        let mut r =
            parse(br#"{"memory": {"limit": 1, "reservation": 5}, "pids": {"limit": 3}}"#).unwrap();
        let o = UpdateOpts {
            memory: Some(67108864),
            cpu_quota: Some(-1),
            pids_limit: Some(9),
            ..Default::default()
        };
        overlay(&mut r, &o);
        let m = r.memory().unwrap();
        assert_eq!((m.limit(), m.reservation()), (Some(67108864), Some(5)));
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(-1));
        assert_eq!(r.pids().unwrap().limit(), 9);
        let mut net = LinuxResources::default();
        net.set_network(Some(Default::default()));
        assert!(check_supported(&net, &o)
            .unwrap_err()
            .to_string()
            .contains("resources.network: not supported"));
    }

    #[test]
    fn field_names_match_as_gos_decoder_matches_them() {
        // update.bats' document, and a field in two spellings merging in order.
        let r = parse(br#"{"CPU": {"Cpus": "1"}}"#).unwrap();
        assert_eq!(r.cpu().as_ref().unwrap().cpus().as_deref(), Some("1"));
        let r = parse(br#"{"cpu": {"shares": 5, "cpus": "0"}, "CPU": {"CPUS": "1", "Mems": "0"}}"#)
            .unwrap();
        let c = r.cpu().clone().unwrap();
        assert_eq!(
            (c.shares(), c.cpus().as_deref(), c.mems().as_deref()),
            (Some(5), Some("0"), Some("0"))
        );
        let r = parse(br#"{"BlockIO": {"WeightDevice": [{"Major": 8, "minor": 0, "WEIGHT": 5}]}}"#)
            .unwrap();
        assert_eq!(
            r.block_io()
                .as_ref()
                .unwrap()
                .weight_device()
                .as_ref()
                .unwrap()[0]
                .weight(),
            Some(5)
        );
        // Keys below unified are file names: kept as given.
        let r = parse(br#"{"Unified": {"Memory.Max": "1"}}"#).unwrap();
        assert!(r.unified().as_ref().unwrap().contains_key("Memory.Max"));
        // Unknown in any case is still unknown.
        let e = parse(br#"{"CPU": {"Cpuz": "1"}}"#).unwrap_err().to_string();
        assert_eq!(e, "update: resources.cpu.Cpuz: unknown field");
    }

    #[test]
    fn every_field_oci_spec_knows_is_in_the_table() {
        let full =
            br#"{"devices": [{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"}],
            "memory": {"limit": 1, "reservation": 1, "swap": 1, "kernel": 1, "kernelTCP": 1,
                "swappiness": 1, "disableOOMKiller": true, "useHierarchy": true,
                "checkBeforeUpdate": true},
            "cpu": {"shares": 1, "quota": 1, "burst": 1, "period": 1, "realtimeRuntime": 1,
                "realtimePeriod": 1, "cpus": "0", "mems": "0", "idle": 1},
            "pids": {"limit": 1},
            "blockIO": {"weight": 10, "leafWeight": 10,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 10, "leafWeight": 10}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 1}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 1}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 1}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 1}],
            "network": {"classID": 1, "priorities": [{"name": "eth0", "priority": 1}]},
            "unified": {"a": "b"}}"#;
        let r = parse(full).unwrap();
        fn walk(v: &Value, path: &str) {
            match v {
                Value::Object(o) => {
                    let Some(names) = fields(path) else { return };
                    for (k, x) in o {
                        assert!(names.contains(&k.as_str()), "{path}.{k}");
                        walk(
                            x,
                            &if path.is_empty() {
                                k.clone()
                            } else {
                                format!("{path}.{k}")
                            },
                        );
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, path)),
                _ => {}
            }
        }
        walk(&serde_json::to_value(&r).unwrap(), "");
        // Upper-cased, the same document means the same.
        let upper = String::from_utf8_lossy(full)
            .replace("\"cpu\"", "\"CPU\"")
            .replace("\"limit\"", "\"Limit\"");
        assert_eq!(parse(upper.as_bytes()).unwrap(), r);
    }

    #[test]
    fn zeroes_mean_unchanged_as_in_runc() {
        let mut r = parse(
            br#"{"memory": {"limit": 0, "reservation": 0, "swap": 0},
            "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0,
                "realtimePeriod": 0, "cpus": "", "mems": ""},
            "blockIO": {"weight": 0}, "pids": {"limit": 0}}"#,
        )
        .unwrap();
        drop_zeroes(&mut r);
        assert_eq!(r, LinuxResources::default());
        let mut r =
            parse(br#"{"memory": {"limit": -1, "swap": 0}, "cpu": {"quota": 0, "period": 5}}"#)
                .unwrap();
        drop_zeroes(&mut r);
        assert_eq!(r.memory().unwrap().limit(), Some(-1));
        assert_eq!(r.memory().unwrap().swap(), None);
        assert_eq!(r.cpu().as_ref().unwrap().quota(), None);
        assert_eq!(r.cpu().as_ref().unwrap().period(), Some(5));
    }

    #[test]
    fn runcs_flag_names_parse() {
        use clap::Parser;
        let line = "hookrun update --cpu-share 200 --cpu-rt-period 900001 --cpu-rt-runtime 600001 \
                    --kernel-memory 1m c1";
        let crate::cli::Command::Update { opts, .. } =
            crate::cli::Cli::try_parse_from(line.split_whitespace())
                .unwrap()
                .cmd
        else {
            panic!("not update")
        };
        let mut r = LinuxResources::default();
        overlay(&mut r, &opts);
        let c = r.cpu().clone().unwrap();
        assert_eq!(c.shares(), Some(200));
        assert_eq!(
            (c.realtime_period(), c.realtime_runtime()),
            (Some(900001), Some(600001))
        );
        assert_eq!(r.memory().unwrap().kernel(), Some(1 << 20));
        let c = crate::cli::Cli::try_parse_from(["hookrun", "update", "--cpu-shares", "3", "c1"]);
        assert!(c.is_ok(), "the old spelling still parses");
        let o = UpdateOpts {
            l3_cache_schema: Some("L3:0=f".into()),
            ..Default::default()
        };
        let e = check_supported(&r, &o).unwrap_err().to_string();
        assert_eq!(
            e,
            "update: --l3-cache-schema: Intel RDT is not supported by hookrun"
        );
    }

    #[test]
    fn new_limits_are_laid_over_the_saved_ones() {
        let mut old = serde_json::json!({"memory": {"limit": 1, "swap": 2}, "devices": [1, 2]});
        merge(
            &mut old,
            serde_json::json!({"memory": {"limit": 3}, "devices": [4], "pids": null}),
        );
        assert_eq!(
            old,
            serde_json::json!({"memory": {"limit": 3, "swap": 2}, "devices": [4]})
        );
        let mut none = Value::Null;
        merge(&mut none, serde_json::json!({"pids": {"limit": 5}}));
        assert_eq!(none["pids"]["limit"], 5);
    }
}
