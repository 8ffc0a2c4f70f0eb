//! `update`: new cgroup limits for a live container, from an OCI LinuxResources document
//! (`--resources FILE|-`) with runc's flags laid over it, written by the same code that applies
//! `linux.resources` at create.
//! runs in: the runtime.

use std::io::Read;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use serde_json::Value;

use crate::cgroup::Cgroup;
use crate::cli::UpdateOpts;
use crate::error::{Error, Result};
use crate::state::Root;

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
    check_supported(&r)?;
    if r == LinuxResources::default() {
        return Err(Error::invalid(
            "update: nothing to change: give --resources FILE (or -) or a limit flag such as --memory",
        ));
    }
    if st.cgroup.paths.is_empty() {
        return Err(Error::invalid(format!(
            "update: container \"{id}\" has no cgroup (created rootless); its limits cannot change"
        )));
    }
    Cgroup::open(&st.cgroup, ORIGIN).update(&r)
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
    if o.memory.is_some() || o.memory_swap.is_some() || o.memory_reservation.is_some() {
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
    }
    let cpu_flags = o.cpu_shares.is_some()
        || o.cpu_quota.is_some()
        || o.cpu_period.is_some()
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

/// Fields the limits code has no writer for are refused rather than silently dropped.
fn check_supported(r: &LinuxResources) -> Result<()> {
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
        assert!(check_supported(&net)
            .unwrap_err()
            .to_string()
            .contains("resources.network: not supported"));
    }
}
