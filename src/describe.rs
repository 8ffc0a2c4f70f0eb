//! `hookrun describe`: the container, its lifecycle declaration, its hook runs (with the tail of
//! their output) and its events, laid out like `kubectl describe`; `--format json` for machines.
//! runs in: the runtime.

use std::time::SystemTime;

use crate::cli::ListFormat;
use crate::error::Result;
use crate::events;
use crate::hooks::journal::{self, Run};
use crate::hooks::lifecycle::Handler;
use crate::hooks::sequence::lifecycle_of;
use crate::state::Root;

/// The last `n` lines of `s`, each indented.
fn tail_lines(s: &str, n: usize, indent: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("{indent}{l}\n"))
        .collect()
}

fn handler_text(h: &Option<Handler>) -> String {
    match h {
        None => "<none>".into(),
        Some(Handler::Exec { command }) => format!("exec {command:?}"),
        Some(Handler::HttpGet(t)) => format!("http-get {}", t.url()),
        Some(Handler::Sleep { seconds }) => format!("sleep {seconds}s"),
    }
}

fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| sig.to_string())
}

pub fn runs_block(runs: &[Run]) -> String {
    if runs.is_empty() {
        return "Hook Runs:  <none>\n".into();
    }
    let mut out = String::from("Hook Runs:\n");
    for r in runs {
        let took = r
            .duration_ms
            .map(|ms| format!("{ms}ms"))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "  {} ({} {}): attempt {}, started {}, took {}, {}\n",
            r.hook, r.handler, r.what, r.attempt, r.started, took, r.result
        ));
        if !r.message.is_empty() {
            out.push_str(&format!("    Error:  {}\n", r.message));
        }
        for (name, text) in [("Stdout", &r.stdout), ("Stderr", &r.stderr)] {
            if !text.trim().is_empty() {
                out.push_str(&format!("    {name} (last lines):\n"));
                out.push_str(&tail_lines(text, 5, "      "));
            }
        }
        if let Some(f) = &r.output_files {
            out.push_str(&format!("    Output files: {f}\n"));
        }
    }
    out
}

pub fn describe(root: &Root, id: &str, format: ListFormat) -> Result<()> {
    let dir = root.open(id)?;
    let st = dir.load()?;
    let state = crate::container::state_json(&dir, &st);
    let lc = lifecycle_of(&st);
    let runs = journal::load(&dir.path);
    let ev = events::load(&dir.path);
    drop(dir);
    if format == ListFormat::Json {
        let doc = serde_json::json!({
            "container": state,
            "lifecycle": lc,
            "hookRuns": runs,
            "events": ev,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        return Ok(());
    }
    let s = |k: &str| match &state[k] {
        serde_json::Value::String(v) => v.clone(),
        v => v.to_string(),
    };
    let mut out = String::new();
    out.push_str(&format!("Name:          {}\n", s("id")));
    out.push_str(&format!("Status:        {}\n", s("status")));
    out.push_str(&format!("Phase:         {}\n", s("phase")));
    out.push_str(&format!("Pid:           {}\n", s("pid")));
    out.push_str(&format!("Bundle:        {}\n", s("bundle")));
    out.push_str(&format!("Created:       {}\n", s("created")));
    out.push_str("Lifecycle:\n");
    out.push_str(&format!(
        "  PostStart:   {}\n",
        handler_text(&lc.post_start)
    ));
    out.push_str(&format!("  PreStop:     {}\n", handler_text(&lc.pre_stop)));
    out.push_str(&format!("  Stop Signal: {}\n", signal_name(lc.stop_signal)));
    out.push_str(&format!(
        "  Termination Grace Period: {}s\n",
        lc.grace.as_secs()
    ));
    out.push_str(&runs_block(&runs));
    out.push_str(&events::table(&ev, SystemTime::now()));
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_show_attempts_errors_and_output_tails() {
        let r = Run {
            hook: "PostStart".into(),
            handler: "Exec".into(),
            what: "[/bin/sh -c exit 3]".into(),
            attempt: 2,
            stop: 0,
            started: "2026-01-01T00:00:00Z".into(),
            finished: Some("2026-01-01T00:00:01Z".into()),
            duration_ms: Some(12),
            result: "Failed".into(),
            message: "command exited with 3".into(),
            runner: (1, 1),
            hook_pid: None,
            output_files: None,
            stdout: "1\n2\n3\n4\n5\n6\n7".into(),
            stderr: String::new(),
        };
        let b = runs_block(&[r]);
        assert!(b.contains("PostStart (Exec [/bin/sh -c exit 3]): attempt 2, started 2026-01-01T00:00:00Z, took 12ms, Failed"), "{b}");
        assert!(b.contains("    Error:  command exited with 3"));
        assert!(
            b.contains("      7\n") && b.contains("      3\n") && !b.contains("      2\n"),
            "{b}"
        );
        assert!(!b.contains("Stderr"));
        assert_eq!(runs_block(&[]), "Hook Runs:  <none>\n");
    }
}
