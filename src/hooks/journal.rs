//! The hook journal: every lifecycle hook run is written durably (state dir, atomic rename +
//! fsync) before it starts and when it ends, so a run cut short by a crash is found and fired
//! again (at least once), and `describe` can show each attempt.
//! runs in: the runtime.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::state::{now_rfc3339, proc_stat, with_file_lock, write_durable};

/// Serialises read-modify-write of the journal between commands (start, stop, kill).
const LOCK: &str = ".journal.lock";

pub const JOURNAL_FILE: &str = "hooks.json";
/// Where each run's whole output is kept, `<run index>.stdout` and `.stderr`, in the state dir.
pub const OUTPUT_DIR: &str = "hook-output";
/// How much of each stream the output files keep (the tail).
pub const FILE_CAP: usize = 1024 * 1024;
/// How much of a hook's stdout and stderr the journal keeps (the tail).
pub const OUTPUT_CAP: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// PostStart or PreStop.
    pub hook: String,
    /// Exec, HTTP or Sleep.
    pub handler: String,
    pub what: String,
    pub attempt: u32,
    /// For PreStop: the stop sequence it belongs to (PreStop runs once per stop).
    pub stop: u32,
    pub started: String,
    #[serde(default)]
    pub finished: Option<String>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Running, Succeeded, Failed.
    pub result: String,
    #[serde(default)]
    pub message: String,
    /// The runtime process running the hook, (pid, start time): a Running entry whose runner
    /// is gone was cut short.
    pub runner: (i32, u64),
    /// The hook's own process when it has one (Exec), so a stop can cancel it.
    #[serde(default)]
    pub hook_pid: Option<(i32, u64)>,
    /// The files holding this run's output, relative to the state dir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_files: Option<String>,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
}

impl Run {
    pub fn is_running(&self) -> bool {
        self.finished.is_none()
    }

    /// The runner is still alive (not just a recycled pid).
    pub fn runner_alive(&self) -> bool {
        proc_stat(self.runner.0).is_some_and(|(s, t)| t == self.runner.1 && s != 'Z')
    }
}

pub fn load(dir: &Path) -> Vec<Run> {
    std::fs::read(dir.join(JOURNAL_FILE))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default()
}

fn save(dir: &Path, runs: &[Run]) -> Result<()> {
    write_durable(
        &dir.join(JOURNAL_FILE),
        &serde_json::to_vec_pretty(runs).expect("json"),
    )
}

fn me() -> (i32, u64) {
    let pid = std::process::id() as i32;
    (pid, proc_stat(pid).map(|s| s.1).unwrap_or(0))
}

/// Journal the start of a run; returns its index. The attempt counts earlier runs of the same
/// hook (and, for PreStop, of the same stop).
pub fn begin(dir: &Path, hook: &str, handler: &str, what: &str, stop: u32) -> Result<usize> {
    with_file_lock(dir, LOCK, || begin_unlocked(dir, hook, handler, what, stop))
}

fn begin_unlocked(dir: &Path, hook: &str, handler: &str, what: &str, stop: u32) -> Result<usize> {
    let mut runs = load(dir);
    let attempt = 1 + runs
        .iter()
        .filter(|r| r.hook == hook && r.stop == stop)
        .count() as u32;
    runs.push(Run {
        hook: hook.to_string(),
        handler: handler.to_string(),
        what: what.to_string(),
        attempt,
        stop,
        started: now_rfc3339(),
        finished: None,
        duration_ms: None,
        result: "Running".into(),
        message: String::new(),
        runner: me(),
        hook_pid: None,
        output_files: None,
        stdout: String::new(),
        stderr: String::new(),
    });
    save(dir, &runs)?;
    Ok(runs.len() - 1)
}

/// Update run `i` (hook pid known, or finished).
pub fn update(dir: &Path, i: usize, f: impl FnOnce(&mut Run)) -> Result<()> {
    with_file_lock(dir, LOCK, || update_unlocked(dir, i, f))
}

fn update_unlocked(dir: &Path, i: usize, f: impl FnOnce(&mut Run)) -> Result<()> {
    let mut runs = load(dir);
    if let Some(r) = runs.get_mut(i) {
        f(r);
        save(dir, &runs)?;
    }
    Ok(())
}

/// Journal the end of run `i`.
pub fn finish(
    dir: &Path,
    i: usize,
    ok: bool,
    message: &str,
    stdout: &[u8],
    stderr: &[u8],
    took_ms: u64,
) -> Result<()> {
    // The output as files too, whole up to FILE_CAP (the journal keeps a shorter tail).
    let out_dir = dir.join(OUTPUT_DIR);
    let _ = std::fs::create_dir_all(&out_dir);
    for (ext, data) in [("stdout", stdout), ("stderr", stderr)] {
        let keep = &data[data.len().saturating_sub(FILE_CAP)..];
        let _ = std::fs::write(out_dir.join(format!("{i}.{ext}")), keep);
    }
    update(dir, i, |r| {
        r.output_files = Some(format!("{OUTPUT_DIR}/{i}.stdout, {OUTPUT_DIR}/{i}.stderr"));
        r.finished = Some(now_rfc3339());
        r.duration_ms = Some(took_ms);
        r.result = if ok { "Succeeded" } else { "Failed" }.into();
        r.message = message.to_string();
        r.stdout = tail(stdout);
        r.stderr = tail(stderr);
    })
}

/// The last OUTPUT_CAP bytes, as text.
pub fn tail(b: &[u8]) -> String {
    let b = &b[b.len().saturating_sub(OUTPUT_CAP)..];
    String::from_utf8_lossy(b).into_owned()
}

/// What the journal says about `hook` (in stop `stop`): done, being run by a live runtime, cut
/// short by a crash, or never started.
#[derive(Debug, PartialEq)]
pub enum Progress {
    NotRun,
    Done,
    RunningElsewhere((i32, u64)),
    Interrupted,
}

pub fn progress(runs: &[Run], hook: &str, stop: u32) -> Progress {
    let mine: Vec<&Run> = runs
        .iter()
        .filter(|r| r.hook == hook && r.stop == stop)
        .collect();
    match mine.last() {
        None => Progress::NotRun,
        Some(r) if !r.is_running() => Progress::Done,
        Some(r) if r.runner_alive() => Progress::RunningElsewhere(r.runner),
        Some(_) => Progress::Interrupted,
    }
}

/// What [`claim`] came to.
#[derive(Debug, PartialEq)]
pub enum Claim {
    /// Never run, or cut short by a crash (now marked Interrupted): we began run `.0`.
    Began(usize),
    Done,
    RunningElsewhere((i32, u64)),
}

/// Look at `hook` (in stop `stop`) and, unless it is done or a live runtime runs it, begin a
/// run of it — one step under the journal's lock, so that of two racing commands only one runs
/// it (PreStop once per stop, not once per command).
pub fn claim(dir: &Path, hook: &str, handler: &str, what: &str, stop: u32) -> Result<Claim> {
    with_file_lock(dir, LOCK, || match progress(&load(dir), hook, stop) {
        Progress::Done => Ok(Claim::Done),
        Progress::RunningElsewhere(r) => Ok(Claim::RunningElsewhere(r)),
        Progress::NotRun | Progress::Interrupted => {
            close_interrupted_unlocked(dir)?;
            begin_unlocked(dir, hook, handler, what, stop).map(Claim::Began)
        }
    })
}

/// Mark runs whose runner died as interrupted (so describe does not show them as Running).
pub fn close_interrupted(dir: &Path) -> Result<()> {
    with_file_lock(dir, LOCK, || close_interrupted_unlocked(dir))
}

fn close_interrupted_unlocked(dir: &Path) -> Result<()> {
    let mut runs = load(dir);
    let mut changed = false;
    for r in runs
        .iter_mut()
        .filter(|r| r.is_running() && !r.runner_alive())
    {
        r.finished = Some(now_rfc3339());
        r.result = "Interrupted".into();
        r.message = "the runtime running this hook died; the hook is fired again".into();
        changed = true;
    }
    if changed {
        save(dir, &runs)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_and_progress() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(progress(&load(d.path()), "PostStart", 0), Progress::NotRun);
        let i = begin(d.path(), "PostStart", "Exec", "[true]", 0).unwrap();
        // we are the runner and alive
        assert!(matches!(
            progress(&load(d.path()), "PostStart", 0),
            Progress::RunningElsewhere(_)
        ));
        // a dead runner: interrupted
        update(d.path(), i, |r| r.runner = (i32::MAX - 1, 1)).unwrap();
        assert_eq!(
            progress(&load(d.path()), "PostStart", 0),
            Progress::Interrupted
        );
        close_interrupted(d.path()).unwrap();
        let j = begin(d.path(), "PostStart", "Exec", "[true]", 0).unwrap();
        assert_eq!(load(d.path())[j].attempt, 2);
        finish(d.path(), j, true, "", b"out", b"", 5).unwrap();
        assert_eq!(progress(&load(d.path()), "PostStart", 0), Progress::Done);
        let runs = load(d.path());
        assert_eq!(runs[0].result, "Interrupted");
        assert_eq!(runs[1].result, "Succeeded");
        assert_eq!(runs[1].stdout, "out");
        // PreStop counts per stop
        let k = begin(d.path(), "PreStop", "Sleep", "1", 1).unwrap();
        assert_eq!(load(d.path())[k].attempt, 1);
        assert_eq!(progress(&load(d.path()), "PreStop", 2), Progress::NotRun);
    }

    #[test]
    fn a_claim_begins_a_run_only_when_nobody_runs_it() {
        let d = tempfile::tempdir().unwrap();
        let claim = || claim(d.path(), "PreStop", "Exec", "[x]", 1).unwrap();
        let Claim::Began(i) = claim() else { panic!() };
        // we are alive: a second claim of the same stop waits for us
        assert!(matches!(claim(), Claim::RunningElsewhere(_)));
        // a dead runner: the next claim closes its run and begins attempt 2
        update(d.path(), i, |r| r.runner = (i32::MAX - 1, 1)).unwrap();
        let Claim::Began(j) = claim() else { panic!() };
        let runs = load(d.path());
        assert_eq!(runs[i].result, "Interrupted");
        assert_eq!(runs[j].attempt, 2);
        finish(d.path(), j, true, "", b"", b"", 1).unwrap();
        assert_eq!(claim(), Claim::Done);
    }

    #[test]
    fn output_is_capped_to_its_tail() {
        let big = vec![b'a'; OUTPUT_CAP + 10];
        let mut b2 = big.clone();
        b2.extend_from_slice(b"END");
        let t = tail(&b2);
        assert_eq!(t.len(), OUTPUT_CAP);
        assert!(t.ends_with("END"));
    }
}
