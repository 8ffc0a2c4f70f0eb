//! Block IO limits: weights and throttles, into v1 blkio or cgroup2 io. A v1 blkio whose only
//! weight files are BFQ's (`blkio.bfq.weight`, `blkio.bfq.weight_device`: kernels without CFQ)
//! takes the weights there, as runc writes them.
//! runs in: the runtime (`create`, `update`).

use cgroups_rs::fs::blkio::BlkIoController;
use oci_spec::runtime::LinuxBlockIo;

use super::limits::Writer;
use crate::error::Result;

type Throttle = fn(&BlkIoController, u64, u64, u64) -> cgroups_rs::fs::error::Result<()>;

pub(super) fn apply(w: &Writer, b: &LinuxBlockIo) -> Result<()> {
    let ctrl = if w.cg.dir_of("blkio").is_some() {
        "blkio"
    } else {
        "io"
    };
    let (h, d) = w.need(ctrl, "blockIO")?;
    let bc = BlkIoController::new(d.to_path_buf(), h.mount.clone(), h.v2);
    // cgroups-rs knows only CFQ's v1 names; BFQ's are written here, in the same format.
    let bfq = !h.v2 && !d.join("blkio.weight").exists() && d.join("blkio.bfq.weight").exists();
    if let Some(v) = b.weight() {
        if bfq {
            w.put(d, "blkio.bfq.weight", "blockIO.weight", &v.to_string())?;
        } else {
            let f = if h.v2 {
                "io.bfq.weight"
            } else {
                "blkio.weight"
            };
            w.set(d, f, "blockIO.weight", v.to_string(), &|| {
                bc.set_weight(v as u64)
            })?;
        }
    }
    if let Some(v) = b.leaf_weight() {
        let f = "blkio.leaf_weight";
        w.set(d, f, "blockIO.leafWeight", v.to_string(), &|| {
            bc.set_leaf_weight(v as u64)
        })?;
    }
    for wd in b.weight_device().iter().flatten() {
        let (ma, mi) = (wd.major() as u64, wd.minor() as u64);
        if let Some(v) = wd.weight() {
            let text = format!("{ma}:{mi} {v}");
            if bfq {
                w.put(d, "blkio.bfq.weight_device", "blockIO.weightDevice", &text)?;
            } else {
                let f = if h.v2 {
                    "io.bfq.weight"
                } else {
                    "blkio.weight_device"
                };
                w.set(d, f, "blockIO.weightDevice", text, &|| {
                    bc.set_weight_for_device(ma, mi, v as u64)
                })?;
            }
        }
        if let Some(v) = wd.leaf_weight() {
            let f = "blkio.leaf_weight_device";
            w.set(
                d,
                f,
                "blockIO.weightDevice",
                format!("{ma}:{mi} {v}"),
                &|| bc.set_leaf_weight_for_device(ma, mi, v as u64),
            )?;
        }
    }
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
            w.set(d, file, what, format!("{ma}:{mi} {rate}"), &|| {
                f(&bc, ma, mi, rate)
            })?;
        }
    }
    Ok(())
}
