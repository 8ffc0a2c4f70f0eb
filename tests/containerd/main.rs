//! hookrun as the runtime of containerd's runc shim (containerd-shim-runc-v2), driven by `ctr`.
//! Each test starts a private containerd (its own root, state dir, socket and config; nothing of
//! the host's) and imports an image made from the busybox fixture, then runs containers with
//! `ctr run --runc-binary`: output and exit codes, exec, kill, delete, lifecycle hooks declared
//! with `--annotation`/`--label`, a hung PostStart cut off by the caller's deadline, CRI's
//! sandbox marker; and containerd's CRI plugin loads the runtime handler docs/containerd.md shows.
//! Containers' cgroups go below this test's own; everything is removed even when a test fails.
#[path = "../common/mod.rs"]
mod common;
mod daemon;
mod image;

use common::*;
use daemon::Containerd;

use std::path::Path;
use std::time::Duration;

use serde_json::json;

/// A loop that keeps the container running until SIGTERM, then runs `on_term`.
fn until_term(on_term: &str) -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("trap '{on_term}' TERM; while :; do sleep 0.1; done"),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn ctr_run_passes_output_exit_codes_and_errors_through() {
    let Some(c) = Containerd::start() else { return };

    let o = c.run(
        &["--rm"],
        "fg",
        &[
            "/bin/sh",
            "-c",
            "echo hello-$((6*7)); cat /proc/self/cgroup; exit 7",
        ],
    );
    assert_eq!(o.code, Some(7), "{}", c.explain(&o));
    assert!(o.stdout.contains("hello-42"), "{}", c.explain(&o));
    assert!(
        o.stdout.contains(&c.cgroup_of("fg")),
        "not in the cgroup ctr asked for: {}",
        o.stdout
    );

    let o = c.run(&["--rm"], "fg0", &["/bin/true"]);
    assert_eq!(o.code, Some(0), "{}", c.explain(&o));

    // the shim shows the last error line of hookrun's --log (json)
    let o = c.run(&["--rm"], "missing", &["/nonexistent"]);
    assert_ne!(o.code, Some(0));
    assert!(
        o.stderr.contains("OCI runtime create failed")
            && o.stderr.contains("/nonexistent: no such file or directory"),
        "{}",
        c.explain(&o)
    );

    c.assert_nothing_left(&["fg", "fg0", "missing"]);
}

#[test]
fn detached_task_exec_kill_and_delete() {
    let Some(c) = Containerd::start() else { return };

    let cmd = [
        "/bin/sh",
        "-c",
        "echo up > /tmp/up; trap 'exit 3' TERM; while :; do sleep 0.1; done",
    ];
    let o = c.run(&["-d"], "web", &cmd);
    assert_eq!(o.code, Some(0), "{}", c.explain(&o));
    assert_eq!(c.task_status("web").as_deref(), Some("RUNNING"));
    assert!(!c.cgroup_dirs("web").is_empty(), "no cgroup for web");

    let o = c.exec(
        "web",
        "e1",
        &[
            "/bin/sh",
            "-c",
            "while [ ! -f /tmp/up ]; do sleep 0.05; done; cat /tmp/up; exit 5",
        ],
    );
    assert_eq!(o.code, Some(5), "{}", c.explain(&o));
    assert_eq!(o.stdout, "up\n");
    let o = c.exec("web", "e2", &["/nonexistent"]);
    assert!(
        o.code != Some(0) && o.stderr.contains("no such file or directory"),
        "{}",
        c.explain(&o)
    );

    // SIGTERM reaches the entrypoint, which exits 3
    c.ctr_ok(&["task", "kill", "web"]);
    c.wait_task("web", "STOPPED");
    let err = c.remove("web");
    assert!(err.contains("exit code 3"), "task delete: {err}");

    // SIGKILL: 128 + 9
    let o = c.run(&["-d"], "sleeper", &["/bin/sleep", "1000"]);
    assert_eq!(o.code, Some(0), "{}", c.explain(&o));
    c.ctr_ok(&["task", "kill", "--signal", "SIGKILL", "sleeper"]);
    c.wait_task("sleeper", "STOPPED");
    let err = c.remove("sleeper");
    assert!(err.contains("exit code 137"), "task delete: {err}");

    c.assert_nothing_left(&["web", "sleeper"]);
}

#[test]
fn lifecycle_hooks_declared_with_ctr_annotations() {
    let Some(c) = Containerd::start() else { return };
    let out = tempfile::tempdir().unwrap();
    let lc = json!({
        "postStart": {"exec": {"command": ["/bin/sh", "-c", "echo poststart > /tmp/ps"]}},
        "preStop": {"exec": {"command": ["/bin/sh", "-c", "echo prestop > /out/prestop"]}}
    })
    .to_string();
    let annotation = format!("dev.hookrun.lifecycle={lc}");
    let mount = format!(
        "type=bind,src={},dst=/out,options=rbind:rw",
        out.path().display()
    );
    // what the entrypoint sees of PreStop when the stop signal comes
    let cmd = until_term("cat /out/prestop > /out/at-term; exit 0");
    let o = c.run(
        &[
            "-d",
            "--annotation",
            &annotation,
            "--label",
            "dev.hookrun.termination-grace-period-seconds=10",
            "--mount",
            &mount,
        ],
        "hooked",
        &strs(&cmd),
    );
    assert_eq!(o.code, Some(0), "{}", c.explain(&o));

    // `ctr run -d` returned after `hookrun start`, so after PostStart
    let o = c.exec("hooked", "ps", &["/bin/cat", "/tmp/ps"]);
    assert_eq!(o.stdout, "poststart\n", "{}", c.explain(&o));
    let o = c.hookrun(&["state", "hooked"]);
    let state: serde_json::Value = serde_json::from_str(&o.stdout).expect(&o.stderr);
    assert_eq!(state["phase"], "Running");
    assert_eq!(state["annotations"]["dev.hookrun.lifecycle"], lc.as_str());
    assert_eq!(
        state["annotations"]["dev.hookrun.termination-grace-period-seconds"], "10",
        "--label reaches config.json"
    );

    // `ctr task kill` (SIGTERM, the stop signal) returns once PreStop is done
    c.ctr_ok(&["task", "kill", "hooked"]);
    assert_eq!(
        std::fs::read_to_string(out.path().join("prestop")).unwrap_or_default(),
        "prestop\n"
    );
    c.wait_task("hooked", "STOPPED");
    assert_eq!(
        std::fs::read_to_string(out.path().join("at-term")).unwrap_or_default(),
        "prestop\n",
        "the stop signal came before PreStop had finished"
    );
    let d = c.hookrun(&["describe", "hooked"]).stdout;
    assert!(
        d.contains("PostStart (Exec") && d.contains("PreStop (Exec") && !d.contains("Failed"),
        "{d}"
    );
    c.remove("hooked");
    c.assert_nothing_left(&["hooked"]);
}

#[test]
fn hung_poststart_holds_start_until_the_callers_deadline() {
    let Some(c) = Containerd::start() else { return };
    let sleeper = format!("sleep {}", 100_000 + std::process::id());
    let lc =
        json!({"postStart": {"exec": {"command": ["/bin/sh", "-c", format!("exec {sleeper}")]}}})
            .to_string();
    let annotation = format!("dev.hookrun.lifecycle={lc}");
    let cmd = until_term("exit 0");
    // ctr's --timeout is a deadline on the calls, as the kubelet's runtime request timeout is
    let o = c.run_with(
        &["--timeout", "3s"],
        &["-d", "--annotation", &annotation],
        "hung",
        &strs(&cmd),
    );
    assert_ne!(o.code, Some(0), "{}", c.explain(&o));
    assert!(
        o.stderr.contains("context deadline exceeded"),
        "{}",
        c.explain(&o)
    );

    // The shim killed `hookrun start` at the deadline; the entrypoint and the hook run on.
    let gone = wait_until(Duration::from_secs(10), || {
        processes_matching("json start hung").is_empty()
    });
    assert!(gone, "hookrun start outlived the deadline");
    assert!(
        !processes_matching(&sleeper).is_empty(),
        "PostStart is not running"
    );
    let o = c.hookrun(&["state", "hung"]);
    let state: serde_json::Value = serde_json::from_str(&o.stdout).expect(&o.stderr);
    assert_eq!(state["status"], "running");
    assert_eq!(state["phase"], "Starting");

    // What containerd's CRI does next: kill and delete the task.
    let o = c.ctr(&["task", "delete", "--force", "hung"]);
    assert_eq!(o.code, Some(0), "{}", c.explain(&o));
    let gone = wait_until(Duration::from_secs(10), || {
        processes_matching(&sleeper).is_empty()
    });
    assert!(gone, "the PostStart process outlived its container");
    c.ctr_ok(&["container", "delete", "hung"]);
    c.assert_nothing_left(&["hung"]);
}

#[test]
fn cri_sandbox_container_runs_no_lifecycle_hooks() {
    let Some(c) = Containerd::start() else { return };
    let lc = json!({
        "postStart": {"exec": {"command": ["/bin/sh", "-c", "echo boom; exit 3"]}},
        "preStop": {"exec": {"command": ["/nonexistent"]}}
    })
    .to_string();
    let annotation = format!("dev.hookrun.lifecycle={lc}");
    let cmd = until_term("exit 0");

    // CRI's annotations on an application container: its PostStart fails the start, with the
    // kubelet's wording passed up through the shim
    let o = c.run(
        &[
            "-d",
            "--annotation",
            &annotation,
            "--annotation",
            "io.kubernetes.cri.container-type=container",
        ],
        "app",
        &strs(&cmd),
    );
    assert_ne!(o.code, Some(0), "{}", c.explain(&o));
    assert!(
        o.stderr.contains("OCI runtime start failed")
            && o.stderr.contains(
                r#"Exec lifecycle hook ([/bin/sh -c echo boom; exit 3]) for Container "app" failed - error: command exited with 3"#
            ),
        "{}",
        c.explain(&o)
    );
    c.ctr_ok(&["task", "delete", "--force", "app"]);
    c.ctr_ok(&["container", "delete", "app"]);

    // the pod's sandbox gets the same pod annotations: no hooks run there
    let o = c.run(
        &[
            "-d",
            "--annotation",
            &annotation,
            "--annotation",
            "io.kubernetes.cri.container-type=sandbox",
        ],
        "sandbox",
        &strs(&cmd),
    );
    assert_eq!(o.code, Some(0), "{}", c.explain(&o));
    assert_eq!(c.task_status("sandbox").as_deref(), Some("RUNNING"));
    c.ctr_ok(&["task", "kill", "sandbox"]);
    c.wait_task("sandbox", "STOPPED");
    let d = c.hookrun(&["describe", "sandbox"]).stdout;
    assert!(
        d.contains("PostStart:   <none>") && d.contains("PreStop:     <none>"),
        "{d}"
    );
    assert!(!d.contains("FailedPreStopHook"), "{d}");
    c.remove("sandbox");
    c.assert_nothing_left(&["app", "sandbox"]);
}

/// The first ```toml block of docs/containerd.md.
fn documented_handler() -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/containerd.md"))
            .unwrap();
    let (_, rest) = doc.split_once("```toml\n").expect("a toml block");
    let (block, _) = rest.split_once("```").unwrap();
    block.to_string()
}

#[test]
fn cri_plugin_loads_the_documented_runtime_handler() {
    let block = documented_handler();
    let Some(c) = Containerd::launch(Some(&block)) else {
        return;
    };
    let plugins = c.ctr_ok(&["plugins", "ls"]);
    let cri: Vec<&str> = plugins
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() == 4 && f[0] == "io.containerd.grpc.v1" && f[1] == "cri")
        .unwrap_or_default();
    assert_eq!(cri.last(), Some(&"ok"), "{plugins}\n{}", c.log_tail());
    // The plugin logs the configuration it runs with, as it read it.
    let log = std::fs::read_to_string(c.dir.path().join("containerd.log")).unwrap();
    let started = log
        .lines()
        .find(|l| l.contains("Start cri plugin with config"))
        .expect("the CRI plugin's start line");
    let handler = started
        .split_once("hookrun:{")
        .map(|(_, h)| h.split_once("} ").map_or(h, |(h, _)| h))
        .unwrap_or_else(|| panic!("no hookrun runtime in {started}"));
    for want in [
        "Type:io.containerd.runc.v2 ",
        "PodAnnotations:[dev.hookrun.*] ",
        "ContainerAnnotations:[dev.hookrun.*] ",
        "Options:map[BinaryName:/usr/local/bin/hookrun] ",
    ] {
        assert!(handler.contains(want), "{want:?} not in {handler}");
    }
}
