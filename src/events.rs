//! Events of one container, aggregated like Kubernetes events (type + reason + message: first
//! seen, last seen, count), stored in the state dir, and the table `describe` prints.
//! runs in: the runtime.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::state::write_atomic;

pub const EVENTS_FILE: &str = "events.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Type {
    Normal,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(rename = "type")]
    pub typ: Type,
    pub reason: String,
    pub message: String,
    pub count: u32,
    /// RFC 3339
    pub first_seen: String,
    pub last_seen: String,
    pub from: String,
}

/// Add one occurrence to `events`: an equal (type, reason, message) is counted, not repeated.
pub fn aggregate(events: &mut Vec<Event>, typ: Type, reason: &str, message: &str, now: &str) {
    if let Some(e) = events
        .iter_mut()
        .find(|e| e.typ == typ && e.reason == reason && e.message == message)
    {
        e.count += 1;
        e.last_seen = now.to_string();
        return;
    }
    events.push(Event {
        typ,
        reason: reason.to_string(),
        message: message.to_string(),
        count: 1,
        first_seen: now.to_string(),
        last_seen: now.to_string(),
        from: "hookrun".to_string(),
    });
}

pub fn load(dir: &Path) -> Vec<Event> {
    std::fs::read(dir.join(EVENTS_FILE))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default()
}

/// Record an event in the container's state dir (callers hold the container's lock, or own the
/// directory as `create` does).
pub fn record(dir: &Path, typ: Type, reason: &str, message: &str) -> Result<()> {
    crate::state::with_file_lock(dir, ".events.lock", || {
        let mut ev = load(dir);
        aggregate(&mut ev, typ, reason, message, &crate::state::now_rfc3339());
        write_atomic(
            &dir.join(EVENTS_FILE),
            &serde_json::to_vec_pretty(&ev).expect("json"),
        )
    })
}

/// A short age like kubectl prints: 45s, 3m12s, 2h5m, 3d.
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s}s"),
        120..=3599 => {
            if s % 60 == 0 || s >= 600 {
                format!("{}m", s / 60)
            } else {
                format!("{}m{}s", s / 60, s % 60)
            }
        }
        3600..=86399 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d", s / 86400),
    }
}

fn since(t: &str, now: SystemTime) -> Duration {
    humantime::parse_rfc3339(t)
        .ok()
        .and_then(|t| now.duration_since(t).ok())
        .unwrap_or_default()
}

/// The Events block of `describe`, in kubectl's layout.
pub fn table(events: &[Event], now: SystemTime) -> String {
    if events.is_empty() {
        return "Events:  <none>\n".to_string();
    }
    let head = ["Type", "Reason", "Age", "From", "Message"];
    let rows: Vec<[String; 5]> = events
        .iter()
        .map(|e| {
            let last = since(&e.last_seen, now);
            let age = if e.count > 1 {
                format!(
                    "{} (x{} over {})",
                    age(last),
                    e.count,
                    age(since(&e.first_seen, now))
                )
            } else {
                age(last)
            };
            [
                format!("{:?}", e.typ),
                e.reason.clone(),
                age,
                e.from.clone(),
                e.message.clone(),
            ]
        })
        .collect();
    // at least as wide as the header and its dashes
    let mut w = head.map(|h| h.len().max(4));
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(4) {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: [&str; 5]| {
        format!(
            "  {:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        )
    };
    let mut out = String::from("Events:\n");
    out.push_str(&line(head));
    out.push_str(&line(["----", "------", "----", "----", "-------"]));
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_events_are_counted_not_repeated() {
        let mut ev = Vec::new();
        aggregate(
            &mut ev,
            Type::Normal,
            "Killing",
            "Stopping container a",
            "2026-01-01T00:00:00Z",
        );
        aggregate(
            &mut ev,
            Type::Warning,
            "FailedPreStopHook",
            "x",
            "2026-01-01T00:00:01Z",
        );
        aggregate(
            &mut ev,
            Type::Normal,
            "Killing",
            "Stopping container a",
            "2026-01-01T00:00:05Z",
        );
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].count, 2);
        assert_eq!(ev[0].first_seen, "2026-01-01T00:00:00Z");
        assert_eq!(ev[0].last_seen, "2026-01-01T00:00:05Z");
        // same reason, other message: its own row
        aggregate(
            &mut ev,
            Type::Normal,
            "Killing",
            "Stopping container b",
            "2026-01-01T00:00:06Z",
        );
        assert_eq!(ev.len(), 3);
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(age(Duration::from_secs(45)), "45s");
        assert_eq!(age(Duration::from_secs(192)), "3m12s");
        assert_eq!(age(Duration::from_secs(900)), "15m");
        assert_eq!(age(Duration::from_secs(7500)), "2h5m");
        assert_eq!(age(Duration::from_secs(3 * 86400 + 5)), "3d");
    }

    #[test]
    fn table_layout() {
        let mut ev = Vec::new();
        aggregate(
            &mut ev,
            Type::Normal,
            "Created",
            "Created container web",
            "2026-01-01T00:00:00Z",
        );
        aggregate(
            &mut ev,
            Type::Warning,
            "FailedPostStartHook",
            "boom",
            "2026-01-01T00:00:00Z",
        );
        aggregate(
            &mut ev,
            Type::Warning,
            "FailedPostStartHook",
            "boom",
            "2026-01-01T00:00:30Z",
        );
        let now = humantime::parse_rfc3339("2026-01-01T00:01:00Z").unwrap();
        let t = table(&ev, now);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "Events:");
        assert_eq!(
            lines[1],
            "  Type     Reason               Age                From     Message"
        );
        assert_eq!(
            lines[2],
            "  ----     ------               ----               ----     -------"
        );
        assert_eq!(
            lines[3],
            "  Normal   Created              60s                hookrun  Created container web"
        );
        assert_eq!(
            lines[4],
            "  Warning  FailedPostStartHook  30s (x2 over 60s)  hookrun  boom"
        );
        assert_eq!(table(&[], now), "Events:  <none>\n");
    }
}
