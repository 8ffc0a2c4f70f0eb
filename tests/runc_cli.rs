//! The command line the way runc's own integration suite and runc's clients read it, on real
//! containers: help and version layout, error lines (stderr, `--log` text and json), `--debug`
//! lines of the real steps, `kill` with 0 and numbers and `--all` of a stopped container,
//! `list`'s columns and JSON field order, `ps` of a stopped container, `exec`'s exit codes,
//! `checkpoint`/`restore` argument checks, and foreground runs that print nothing of their own.

mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

/// `hookrun ARGS` with no state root involved (help, version); (code, stdout, stderr).
fn plain(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Non-empty lines, as bats' `lines` array holds them.
fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[test]
fn help_is_laid_out_as_runcs() {
    for flag in ["-h", "--help"] {
        let (code, out, _) = plain(&[flag]);
        assert_eq!(code, 0);
        let l = lines(&out);
        assert_eq!(l[0], "NAME:", "{out}");
        assert!(
            l[1].starts_with(
                "   hookrun - drop-in for \"runc - Open Container Initiative runtime\""
            ),
            "{out}"
        );
        assert!(
            out.contains("COMMANDS:") && out.contains("GLOBAL OPTIONS:"),
            "{out}"
        );
    }
    let runc_verbs = [
        "checkpoint",
        "create",
        "delete",
        "events",
        "exec",
        "features",
        "kill",
        "list",
        "pause",
        "ps",
        "restore",
        "resume",
        "run",
        "spec",
        "start",
        "state",
        "update",
    ];
    for verb in runc_verbs {
        for flag in ["-h", "--help"] {
            let (code, out, err) = plain(&[verb, flag]);
            assert_eq!(code, 0, "{verb} {flag}: {err}");
            let l = lines(&out);
            assert_eq!(l[0], "NAME:", "{verb}: {out}");
            assert!(l[1].starts_with(&format!("   hookrun {verb} - ")), "{out}");
            assert!(
                l[1].contains(&format!("(as runc {verb}")),
                "{verb}: {}",
                l[1]
            );
        }
    }
    for own in ["stop", "describe", "check"] {
        let (_, out, _) = plain(&[own, "-h"]);
        assert!(lines(&out)[1].ends_with("(hookrun's own)"), "{out}");
    }
}

#[test]
fn help_for_an_unknown_verb_says_no_help_topic() {
    let (code, out, err) = plain(&["foo", "-h"]);
    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(err, "No help topic for 'foo'\n");
    // Without -h it is an ordinary usage error.
    let (code, _, err) = plain(&["foo"]);
    assert_eq!(code, 2);
    assert!(err.contains("unrecognized subcommand 'foo'"), "{err}");
}

#[test]
fn version_prints_runcs_lines() {
    for flag in ["-v", "--version"] {
        let (code, out, _) = plain(&[flag]);
        assert_eq!(code, 0);
        let l: Vec<&str> = out.lines().collect();
        assert_eq!(
            l[0],
            format!(
                "hookrun version {}, compatible with runc version 1.1.5",
                env!("CARGO_PKG_VERSION")
            )
        );
        let commit = l[1].strip_prefix("commit: ").expect("commit line");
        assert!(
            commit == "unknown"
                || (commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit())),
            "{commit}"
        );
        assert_eq!(l[2], "spec: 1.2.0");
        let seccomp = l[3].strip_prefix("libseccomp: ").expect("libseccomp line");
        assert_eq!(seccomp.split('.').count(), 3, "{seccomp}");
        assert!(seccomp.split('.').all(|n| n.parse::<u32>().is_ok()));
    }
}

#[test]
fn errors_carry_the_word_error_on_stderr_and_in_the_log() {
    if !require_root() {
        return;
    }
    let c = Ctr::new("errline");
    let err = c.fails(&["state", "{id}"]);
    assert_eq!(
        err,
        format!("hookrun: error: container \"{}\" does not exist\n", c.id)
    );
    // --log text: a runc-style error line in the file, and the same stderr line.
    let log = c.root.path().join("text.log");
    let err = c.fails(&["--log", log.to_str().unwrap(), "kill", "{id}"]);
    assert_eq!(lines(&err).len(), 1, "{err}");
    assert!(err.starts_with("hookrun: error: "), "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    let want = format!(
        "level=error msg=\"container \\\"{}\\\" does not exist\"",
        c.id
    );
    assert!(
        text.starts_with("time=\"") && text.contains(&want),
        "{text}"
    );
}

#[test]
fn log_file_is_created_even_when_nothing_is_logged() {
    if !require_root() {
        return;
    }
    let c = Ctr::new("logempty");
    let log = c.root.path().join("sub-not-made").join("x.log");
    // A log that cannot be opened fails the command, naming the flag and the path.
    let err = c.fails(&["--log", log.to_str().unwrap(), "list"]);
    assert!(err.contains("open --log") && err.contains("x.log"), "{err}");
    let log = c.root.path().join("x.log");
    c.ok(&["--log", log.to_str().unwrap(), "list"]);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "");
    c.ok(&["--log", log.to_str().unwrap(), "--debug", "list"]);
    assert!(log.exists());
}

/// The debug lines of runc's steps (named as runc names them) that a foreground run prints.
const RUN_STEPS: [&str; 3] = [
    "nsexec container setup",
    "child process in init()",
    "init: closing the pipe to signal completion",
];

#[test]
fn debug_lines_of_a_run_go_to_stderr_or_the_log() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["/bin/echo", "Hello World"]);
    let c = Ctr::new("debugrun");
    let o = c.run(&["--debug", "run", "-b", bpath(&b), "{id}"]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}");
    assert_eq!(out, "Hello World\n");
    assert!(err.contains("level=debug"), "{err}");
    for step in RUN_STEPS {
        assert!(err.contains(step), "{step:?} missing from {err}");
    }
    // The init's line comes from the init itself: it names its own host pid.
    assert!(
        err.lines()
            .any(|l| l.contains("child process in init(): container init ")),
        "{err}"
    );

    for format in ["text", "json"] {
        let log = c.root.path().join(format!("{format}.log"));
        let o = c.run(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            format,
            "--debug",
            "run",
            "-b",
            bpath(&b),
            "{id}",
        ]);
        assert!(o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.is_empty(), "{format}: stderr {err:?}");
        let text = std::fs::read_to_string(&log).unwrap();
        for step in RUN_STEPS {
            assert!(
                text.contains(step),
                "{format}: {step:?} missing from {text}"
            );
        }
        if format == "json" {
            for l in text.lines() {
                let v: Value = serde_json::from_str(l).expect("one JSON object per line");
                assert_eq!(v["level"], "debug", "{l}");
            }
        } else {
            assert!(
                text.lines().all(|l| l.contains(" level=debug msg=")),
                "{text}"
            );
        }
        // Nothing written inside the container's root by a child that logged.
        assert!(!b.rootfs().join(log.file_name().unwrap()).exists());
    }
}

#[test]
fn debug_lines_of_an_exec_name_the_join_steps() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("debugexec");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    let o = c.run(&["--debug", "exec", "{id}", "true"]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    for step in [
        "nsexec container setup",
        "child process in init(): joining the",
        "setns_init: about to exec /bin/true",
    ] {
        assert!(err.contains(step), "{step:?} missing from {err}");
    }
    let log = c.root.path().join("exec.log");
    let o = c.run(&[
        "--debug",
        "--log",
        log.to_str().unwrap(),
        "exec",
        "{id}",
        "true",
    ]);
    assert!(o.status.success() && o.stderr.is_empty());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("setns_init: about to exec"), "{text}");
}

#[test]
fn warnings_reach_stderr_without_a_log() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(&["sleep", "1000"]);
    b.edit(|v| v["hooks"] = serde_json::json!({"poststart": [{"path": "/bin/false"}]}));
    let c = Ctr::new("warn");
    c.create_bg(&b);
    let o = c.run_files(&["start", "{id}"]);
    assert_eq!(o.code, Some(0), "a failing poststart hook is not fatal");
    assert_eq!(
        lines(&o.stderr).len(),
        1,
        "one warning line: {:?}",
        o.stderr
    );
    assert!(
        o.stderr
            .starts_with("hookrun: warning: poststart hook #0 (/bin/false)"),
        "{}",
        o.stderr
    );
}

#[test]
fn kill_takes_zero_and_numbers_and_all_reaches_a_stopped_container() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("kill0");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    // 0 only checks: the container goes on running.
    c.ok(&["kill", "{id}", "0"]);
    assert_eq!(c.status(), "running");
    c.ok(&["kill", "{id}", "9"]);
    c.wait_status("stopped");
    let err = c.fails(&["kill", "{id}", "0"]);
    assert!(err.contains("container not running"), "{err}");
    let err = c.fails(&["kill", "{id}", "KILL"]);
    assert!(err.contains("container not running"), "{err}");
    // As runc: --all of a stopped container signals what is left (nothing) and succeeds.
    c.ok(&["kill", "-a", "{id}", "0"]);
    c.ok(&["kill", "--all", "{id}", "KILL"]);
    c.ok(&["delete", "{id}"]);
}

#[test]
fn list_has_runcs_columns_and_json_field_order() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("listrunc");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    let table = c.ok(&["list"]);
    let l: Vec<&str> = table.lines().collect();
    // runc's tabwriter: each column the widest cell plus 3, at least 12 wide.
    let idw = (c.id.len() + 3).max(12);
    let head = format!("{:<idw$}PID         STATUS      BUNDLE", "ID");
    assert!(l[0].starts_with(&head), "{table}");
    assert!(l[0].ends_with("OWNER"), "{table}");
    let pid = c.pid().to_string();
    let row = format!("{:<idw$}{pid:<12}running     {}", c.id, bpath(&b));
    assert!(l[1].starts_with(&row), "{table}\nwant {row}");
    assert!(l[1].ends_with("   root"), "{table}");

    let json = c.ok(&["list", "--format", "json"]);
    assert_eq!(json.lines().count(), 1, "one line: {json}");
    let keys = [
        "\"ociVersion\":",
        "\"id\":",
        "\"pid\":",
        "\"status\":",
        "\"bundle\":",
        "\"rootfs\":",
        "\"created\":",
        "\"annotations\":",
        "\"owner\":",
        "\"phase\":",
    ];
    let at: Vec<usize> = keys
        .iter()
        .map(|k| {
            json.find(k)
                .unwrap_or_else(|| panic!("{k} missing: {json}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "runc's order: {json}");
    assert!(json.starts_with("[{\"ociVersion\":\""), "{json}");
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["id"], c.id.as_str());
    assert_eq!(v[0]["pid"], c.pid());
    // `state` prints the same document, in the same order.
    let st = c.ok(&["state", "{id}"]);
    let at: Vec<usize> = keys.iter().map(|k| st.find(k).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{st}");
}

#[test]
fn ps_of_a_stopped_container_lists_nothing_and_succeeds() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("psstopped");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    let running = c.ok(&["ps", "{id}"]);
    assert_eq!(running.lines().count(), 2, "{running}");
    c.ok(&["kill", "{id}", "KILL"]);
    c.wait_status("stopped");
    let table = c.ok(&["ps", "{id}"]);
    assert_eq!(table.lines().count(), 1, "header only: {table}");
    assert!(table.contains("PID"), "{table}");
    assert_eq!(c.ok(&["ps", "-f", "json", "{id}"]).trim(), "[]");
}

#[test]
fn exec_that_cannot_start_exits_255_else_with_the_process_status() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("execcodes");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    let code = |args: &[&str]| c.run(args).status.code();
    assert_eq!(code(&["exec", "{id}", "false"]), Some(1));
    assert_eq!(code(&["exec", "{id}", "sh", "-c", "exit 42"]), Some(42));
    assert_eq!(
        code(&["exec", "{id}", "sh", "-c", "kill -USR1 $$"]),
        Some(128 + 10)
    );
    for args in [
        &[
            "exec",
            "--pid-file",
            "/non-existent/directory",
            "{id}",
            "true",
        ][..],
        &["exec", "{id}", "no-such-binary"],
        &["exec", "no-such-container", "true"],
        &["exec", "{id}"],
    ] {
        let o = c.run(args);
        assert_eq!(o.status.code(), Some(255), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with("hookrun: error: "), "{args:?}: {err}");
    }
    // Other verbs keep exit status 1 for their errors.
    assert_eq!(code(&["state", "no-such-container"]), Some(1));
}

#[test]
fn checkpoint_checks_its_arguments_as_runc_then_says_it_is_not_implemented() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("ckpt");
    c.create_bg(&b);
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("image-dir");
    let img = images.to_str().unwrap();
    let err = c.fails(&["checkpoint", "--image-path", img, "{id}"]);
    assert!(err.contains("is created"), "{err}");
    c.ok(&["start", "{id}"]);
    let abs = work.path().join("parent-dir");
    let err = c.fails(&[
        "checkpoint",
        "--parent-path",
        abs.to_str().unwrap(),
        "--image-path",
        img,
        "{id}",
    ]);
    assert!(
        err.contains("--parent-path") && err.contains("must be relative"),
        "{err}"
    );
    let err = c.fails(&[
        "checkpoint",
        "--parent-path",
        "./parent-dir",
        "--image-path",
        img,
        "{id}",
    ]);
    assert!(err.contains("invalid --parent-path"), "{err}");
    assert!(!images.exists(), "nothing made on failure");
    std::fs::create_dir_all(images.join("parent-dir")).unwrap();
    let err = c.fails(&[
        "checkpoint",
        "--leave-running",
        "--tcp-established",
        "--parent-path",
        "parent-dir",
        "--image-path",
        img,
        "{id}",
    ]);
    assert_eq!(
        err,
        "hookrun: error: checkpoint: not implemented: hookrun has no checkpoint/restore (criu) support\n"
    );
    assert_eq!(c.status(), "running", "the container is left as it was");

    let r = Ctr::new("restore");
    let err = r.fails(&["restore", "-b", bpath(&b), "--image-path", img, "{id}"]);
    assert!(err.contains("restore: not implemented"), "{err}");
    let err = r.fails(&[
        "restore",
        "-b",
        bpath(&b),
        "--manage-cgroups-mode",
        "loose",
        "--image-path",
        img,
        "{id}",
    ]);
    assert!(err.contains("--manage-cgroups-mode"), "{err}");
    assert!(!r.state_dir().exists());
}

#[test]
fn quick_foreground_runs_print_nothing_of_their_own() {
    if !require_root() {
        return;
    }
    // A container that exits at once used to race a PostStart runner forked for nothing, which
    // then said `container "X" does not exist`.
    let b = Bundle::new(&["true"]);
    let c = Ctr::new("quiet");
    for i in 0..40 {
        let (code, out, err) = c.run_fg(&b);
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""), "run {i}");
    }
    assert!(!c.state_dir().exists());
    // With a PostStart that succeeds, likewise.
    let mut b = Bundle::new(&["sleep", "0.2"]);
    b.edit(|v| {
        v["annotations"] = serde_json::json!({
            "dev.hookrun.lifecycle": r#"{"postStart": {"exec": {"command": ["true"]}}}"#
        })
    });
    for i in 0..5 {
        let (code, out, err) = c.run_fg(&b);
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""), "run {i}");
    }
}
