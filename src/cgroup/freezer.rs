//! Pause and resume: the container's cgroup frozen and thawed through cgroups-rs's freezer
//! controller (v1 `freezer.state`, v2 `cgroup.freeze`), and whether it is frozen now, read from
//! the files the kernel updates when freezing is complete (v1 `freezer.state`, v2
//! `cgroup.events`), never from what was asked for.
//! runs in: the runtime (`pause`, `resume`, `state`, `kill`, `delete --force`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cgroups_rs::fs::freezer::FreezerController;

use super::{failed, hierarchies, own_path, Recorded};
use crate::error::{Error, Result};

/// How long the kernel gets to freeze or thaw every task before pause/resume gives up.
const SETTLE: Duration = Duration::from_secs(5);

/// The container's freezer directories: (v1 freezer hierarchy, cgroup2). A v1 freezer cgroup
/// below the root has `freezer.state`, a cgroup2 one below the root has `cgroup.freeze`.
fn freezers(paths: &[PathBuf]) -> (Option<&Path>, Option<&Path>) {
    let v1 = paths.iter().find(|d| d.join("freezer.state").exists());
    let v2 = paths.iter().find(|d| d.join("cgroup.freeze").exists());
    (v1.map(|p| p.as_path()), v2.map(|p| p.as_path()))
}

/// Is the freezing of `dir` complete? v1: `FROZEN` (not `FREEZING`); v2: `frozen 1` in
/// cgroup.events.
fn is_frozen(dir: &Path, v2: bool) -> bool {
    if v2 {
        fs::read_to_string(dir.join("cgroup.events")).is_ok_and(|s| events_frozen(&s))
    } else {
        fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
    }
}

/// Is `dir` frozen, or on its way there (v1 `FREEZING`, v2 `cgroup.freeze` asked for)? A task
/// placed in it would stop at once.
pub(super) fn freezing(dir: &Path, v2: bool) -> bool {
    if v2 {
        let asked = fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
        asked || is_frozen(dir, true)
    } else {
        fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() != "THAWED")
    }
}

fn is_thawed(dir: &Path, v2: bool) -> bool {
    if v2 {
        fs::read_to_string(dir.join("cgroup.events")).is_ok_and(|s| !events_frozen(&s))
    } else {
        fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() == "THAWED")
    }
}

/// `frozen 1` in a cgroup.events file.
fn events_frozen(text: &str) -> bool {
    text.lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["frozen", "1"])
}

fn controller(dir: &Path, v2: bool) -> FreezerController {
    FreezerController::new(dir.to_path_buf(), PathBuf::from("/"), v2)
}

/// True when the container is frozen in either hierarchy. Without a recorded cgroup (an old
/// state.json, rootless) the init's own cgroups from /proc/<pid>/cgroup are looked at.
pub fn frozen(rec: &Recorded, pid: i32) -> bool {
    let own;
    let paths = if rec.paths.is_empty() {
        own = dirs_of_pid(pid);
        &own
    } else {
        &rec.paths
    };
    let (v1, v2) = freezers(paths);
    v1.is_some_and(|d| is_frozen(d, false)) || v2.is_some_and(|d| is_frozen(d, true))
}

/// The cgroup directories of `pid` in every mounted hierarchy.
fn dirs_of_pid(pid: i32) -> Vec<PathBuf> {
    let Ok(pc) = fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return vec![];
    };
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    hierarchies(&mi)
        .iter()
        .map(|h| super::dir_in(h, &super::Target::Root(own_path(h, &pc)), ""))
        .collect()
}

/// Freeze the container: the v1 freezer where the host has one (as runc does on a hybrid host),
/// else cgroup2. Returns once every task really is frozen; a cgroup that does not settle is
/// thawed again and an error returned.
pub fn pause(rec: &Recorded) -> Result<()> {
    let (dir, v2) = match freezers(&rec.paths) {
        (Some(d), _) => (d, false),
        (None, Some(d)) => (d, true),
        (None, None) => {
            return Err(Error::invalid(
                "pause: the container has no freezer cgroup (no v1 freezer hierarchy and no \
                 cgroup2 directory)",
            ))
        }
    };
    let (file, value) = if v2 {
        ("cgroup.freeze", "1")
    } else {
        ("freezer.state", "FROZEN")
    };
    let c = controller(dir, v2);
    let deadline = Instant::now() + SETTLE;
    loop {
        // v1 can stay FREEZING when a task is busy in the kernel: asking again retries it
        // (runc writes FROZEN in a loop too).
        c.freeze().map_err(|e| failed(dir, file, value, e))?;
        if wait(Duration::from_millis(100), || is_frozen(dir, v2)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = c.thaw();
            return Err(Error::Child(format!(
                "pause: cgroup {}: not frozen after {}s (thawed again)",
                dir.display(),
                SETTLE.as_secs()
            )));
        }
    }
}

/// Thaw every hierarchy that is frozen and wait until the kernel reports it thawed.
pub fn resume(rec: &Recorded) -> Result<()> {
    let (v1, v2) = freezers(&rec.paths);
    for (dir, v2) in [(v1, false), (v2, true)] {
        let Some(dir) = dir else { continue };
        if is_thawed(dir, v2) {
            continue;
        }
        let (file, value) = if v2 {
            ("cgroup.freeze", "0")
        } else {
            ("freezer.state", "THAWED")
        };
        controller(dir, v2)
            .thaw()
            .map_err(|e| failed(dir, file, value, e))?;
        if !wait(SETTLE, || is_thawed(dir, v2)) {
            return Err(Error::Child(format!(
                "resume: cgroup {}: not thawed after {}s",
                dir.display(),
                SETTLE.as_secs()
            )));
        }
    }
    Ok(())
}

/// Thaw without waiting or failing (after a SIGKILL, so frozen tasks can die).
pub fn thaw(rec: &Recorded) {
    let (v1, v2) = freezers(&rec.paths);
    for (dir, v2) in [(v1, false), (v2, true)] {
        if let Some(d) = dir.filter(|d| !is_thawed(d, v2)) {
            let _ = controller(d, v2).thaw();
        }
    }
}

/// Poll `f` every 5 ms for up to `limit`.
fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_is_what_the_kernel_reports() {
        assert!(events_frozen("populated 1\nfrozen 1\n"));
        assert!(!events_frozen("populated 1\nfrozen 0\n"));
        assert!(!events_frozen("populated 1\n"));
        let d = tempfile::tempdir().unwrap();
        let (v1, v2) = (d.path().join("v1"), d.path().join("v2"));
        fs::create_dir_all(&v1).unwrap();
        fs::create_dir_all(&v2).unwrap();
        fs::write(v1.join("freezer.state"), "FREEZING\n").unwrap();
        fs::write(v2.join("cgroup.freeze"), "1\n").unwrap();
        fs::write(v2.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        let rec = Recorded {
            paths: vec![v1.clone(), v2.clone()],
            created: vec![],
        };
        assert_eq!(
            freezers(&rec.paths),
            (Some(v1.as_path()), Some(v2.as_path()))
        );
        // Asked for but not complete in either: not paused yet.
        assert!(!frozen(&rec, 0));
        fs::write(v2.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        assert!(frozen(&rec, 0));
        fs::write(v1.join("freezer.state"), "FROZEN\n").unwrap();
        assert!(frozen(&rec, 0));
        // thaw writes through cgroups-rs, to each hierarchy that is frozen.
        thaw(&rec);
        assert_eq!(
            fs::read_to_string(v1.join("freezer.state")).unwrap(),
            "THAWED"
        );
        assert_eq!(fs::read_to_string(v2.join("cgroup.freeze")).unwrap(), "0");
    }
}
