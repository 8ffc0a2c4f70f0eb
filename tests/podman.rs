//! hookrun as podman's OCI runtime (`podman --runtime`), on an image imported from the busybox
//! fixture: run, exit codes, detached run + exec + stop, and lifecycle hooks declared with
//! `--annotation`. Podman keeps its storage in a temp dir; its cgroups go below this test's own
//! memory cgroup, and whatever cgroup directory the run made is removed afterwards.
mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

struct Podman {
    store: tempfile::TempDir,
    runtime: PathBuf,
    parent: String,
    made: Vec<PathBuf>,
}

/// The cgroup directories a podman run may create along `parent` (absolute cgroupfs path).
fn candidates(parent: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let h = e.path();
        if !h.join("cgroup.procs").exists() {
            continue;
        }
        let mut p = h.clone();
        for comp in parent.trim_start_matches('/').split('/') {
            p = p.join(comp);
            out.push(p.clone());
        }
        out.push(p.join("conmon"));
    }
    out
}

impl Podman {
    fn new() -> Option<Podman> {
        if Command::new("podman").arg("--version").output().is_err() {
            eprintln!("skipped: podman is not installed (.ci/run installs it)");
            return None;
        }
        let store = tempfile::tempdir().unwrap();
        let runtime = store.path().join("hookrun");
        std::fs::copy(bin(), &runtime).unwrap();
        let parent = std::fs::read_to_string("/proc/self/cgroup")
            .unwrap()
            .lines()
            .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))
            .unwrap_or_else(|| "/".into());
        let made = candidates(&parent)
            .into_iter()
            .filter(|p| !p.exists())
            .collect();
        let p = Podman {
            store,
            runtime,
            parent,
            made,
        };
        let tar = Command::new("tar")
            .arg("-C")
            .arg(fixture_rootfs())
            .args(["-c", "."])
            .output()
            .unwrap();
        let mut child = p
            .cmd(&["import", "-", "localhost/hookrun-bb:test"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
        assert!(child.wait().unwrap().success(), "podman import failed");
        Some(p)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(self.store.path().join("root"))
            .arg("--runroot")
            .arg(self.store.path().join("run"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--runtime",
            ])
            .arg(&self.runtime)
            .args(args);
        c
    }

    /// `podman run` with what this host needs: cgroups below ours, and limits within this host's
    /// hard limits (podman asks for 1048576 open files; this host allows 20000).
    fn run(&self, extra: &[&str], cmd: &[&str]) -> (i32, String, String) {
        let mut args = vec![
            "run",
            "--cgroup-parent",
            self.parent.as_str(),
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ];
        args.extend_from_slice(extra);
        args.push("localhost/hookrun-bb:test");
        args.extend_from_slice(cmd);
        let o = self.cmd(&args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "--all", "--force"]).output();
        // deepest first; only what did not exist before, and only when empty
        for p in self.made.iter().rev() {
            let _ = std::fs::remove_dir(p);
        }
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.store.path().join("run"))
            .output();
    }
}

fn exists(p: &Path) -> bool {
    p.exists()
}

#[test]
fn podman_runs_containers_through_hookrun() {
    if !require_root() {
        return;
    }
    let Some(p) = Podman::new() else { return };

    let (code, out, err) = p.run(
        &["--rm"],
        &[
            "/bin/sh",
            "-c",
            "echo hello-$((6*7)); id -u; cat /proc/self/cgroup",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("hello-42"), "{out}");
    assert!(
        out.contains(&format!(":memory:{}/libpod-", p.parent)),
        "cgroup not below ours: {out}"
    );

    let (code, _, _) = p.run(&["--rm"], &["/bin/sh", "-c", "exit 3"]);
    assert_eq!(code, 3);

    // detached, exec into it, stop, remove
    // podman reads --annotation as CSV: quote the field, double the quotes inside.
    let raw = r#"dev.hookrun.lifecycle={"postStart":{"exec":{"command":["/bin/sh","-c","echo poststart > /tmp/ps"]}}}"#;
    let lifecycle = format!("\"{}\"", raw.replace('"', "\"\""));
    let (code, out, err) = p.run(
        &["-d", "--name", "hr-podman", "--annotation", &lifecycle],
        &[
            "/bin/sh",
            "-c",
            "trap 'exit 0' TERM; while :; do sleep 0.1; done",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.trim().is_empty());
    let o = p
        .cmd(&["exec", "hr-podman", "cat", "/tmp/ps"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "poststart\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = p.cmd(&["stop", "-t", "5", "hr-podman"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = p
        .cmd(&["inspect", "--format", "{{.State.Status}}", "hr-podman"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "exited");
    let o = p.cmd(&["rm", "hr-podman"]).output().unwrap();
    assert!(o.status.success());
    assert!(!exists(Path::new("/run/hookrun/hr-podman")));
}
