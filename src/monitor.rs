//! `events`: runc's event stream for one container: a `stats` object (`--stats`: once), else one
//! every `--interval` plus an `oom` object whenever the OOM killer struck in its memory cgroup,
//! until the container stops. Single-threaded: one sleep/poll loop, no lock held while waiting.
//! runs in: the runtime.

use std::io::Write;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::cgroup;
use crate::error::{Error, Result};
use crate::state::{self, Root, State};

/// How often a stream looks for OOM kills and for the container's end.
const TICK: Duration = Duration::from_millis(100);

pub fn events(root: &Root, id: &str, once: bool, interval: Duration) -> Result<()> {
    let st = {
        let dir = root.open(id)?;
        let st = dir.load_live("events needs a created, running or paused container")?;
        if st.cgroup.paths.is_empty() {
            return Err(Error::invalid(format!(
                "events: container \"{id}\" has no cgroup (created rootless): no statistics"
            )));
        }
        st
    };
    if once {
        emit(&stats_event(&st));
        return Ok(());
    }
    let mut ooms = cgroup::oom_kills(&st.cgroup).unwrap_or(0);
    let mut next = Instant::now() + interval;
    loop {
        std::thread::sleep(TICK.min(next.saturating_duration_since(Instant::now())));
        // OOM first: a killed init still leaves its counter to report.
        if let Some(n) = cgroup::oom_kills(&st.cgroup) {
            if n > ooms {
                emit(&Event {
                    typ: "oom",
                    id: &st.id,
                    data: None,
                });
                ooms = n;
            }
        }
        if !alive(&st) {
            return Ok(());
        }
        if Instant::now() >= next {
            emit(&stats_event(&st));
            next += interval;
        }
    }
}

/// One event, its keys in runc's order: `{"type":…,"id":…,"data":…}`.
#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    typ: &'static str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

fn stats_event(st: &State) -> Event<'_> {
    Event {
        typ: "stats",
        id: &st.id,
        data: Some(cgroup::stats(&st.cgroup)),
    }
}

/// Is the recorded init still the live process it was?
fn alive(st: &State) -> bool {
    state::proc_stat(st.pid).is_some_and(|(s, t)| t == st.pid_start && s != 'Z' && s != 'X')
}

/// One JSON object per line; a reader that went away ends the stream quietly.
fn emit(ev: &Event) {
    let line = serde_json::to_string(ev).expect("event serialises");
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}
