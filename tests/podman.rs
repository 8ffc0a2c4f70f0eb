//! hookrun as podman's OCI runtime (`podman --runtime`), on an image imported from the busybox
//! fixture: run, exit codes, detached run + exec + stop, and lifecycle hooks declared with
//! `--annotation`. Podman keeps its storage in a temp dir; its cgroups go below this test's own
//! memory cgroup, and whatever cgroup directory the run made is removed afterwards. The runtime
//! podman is given is a wrapper that logs each command line before it execs hookrun: podman
//! names a container by its full hex id and (podman 4.3 as root) passes no `--root`, so the
//! state lives in hookrun's default root; the test reads both from what podman really passed.
mod common;
use common::*;

use std::path::PathBuf;
use std::process::Command;

struct Podman {
    store: tempfile::TempDir,
    runtime: PathBuf,
    parent: String,
    made: Vec<PathBuf>,
}

/// The state root hookrun uses as root when not given `--root` (docs/cli.md).
const DEFAULT_ROOT: &str = "/run/hookrun";

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
        let have = Command::new("podman").arg("--version").output().is_ok();
        if !need(
            "podman",
            have,
            "podman is not installed (.ci/run installs it)",
        ) {
            return None;
        }
        let store = tempfile::tempdir().unwrap();
        std::fs::copy(bin(), store.path().join("hookrun.bin")).unwrap();
        let runtime = store.path().join("hookrun");
        std::fs::write(
            &runtime,
            format!(
                "#!/bin/sh\necho \"$*\" >> {log}\nexec {bin} \"$@\"\n",
                log = store.path().join("argv.log").display(),
                bin = store.path().join("hookrun.bin").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
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

    /// The command lines podman ran hookrun with, in order, one string each.
    fn runtime_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.store.path().join("argv.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `podman inspect --format FORMAT name`, trimmed.
    fn inspect(&self, format: &str, name: &str) -> String {
        let o = self
            .cmd(&["inspect", "--format", format, name])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
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

/// The state root of hookrun's calls for container `id`: the `--root` podman passed before the
/// verb, else hookrun's default; and the verbs of those calls, in order.
fn calls_for(calls: &[String], id: &str) -> (PathBuf, Vec<String>) {
    let mut root = None;
    let mut verbs = Vec::new();
    for c in calls.iter().filter(|c| c.split(' ').any(|w| w == id)) {
        let words: Vec<&str> = c.split(' ').collect();
        let mut i = 0;
        // global flags come first; the verb is the first word that is not one
        while i < words.len() && words[i].starts_with('-') {
            let (flag, value) = match words[i].split_once('=') {
                Some((f, v)) => (f, Some(v)),
                None => (words[i], None),
            };
            let takes_value = ["--root", "--log", "--log-format"].contains(&flag);
            let value = value.or_else(|| takes_value.then(|| words.get(i + 1).copied()).flatten());
            if flag == "--root" {
                root = value.map(PathBuf::from);
            }
            i += if takes_value && !words[i].contains('=') {
                2
            } else {
                1
            };
        }
        verbs.extend(words.get(i).map(|v| v.to_string()));
    }
    (root.unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT)), verbs)
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
    let raw = r#"dev.hookrun.lifecycle={"postStart":{"exec":{"command":["/bin/sh","-c","echo poststart > /tmp/ps"]}},"preStop":{"exec":{"command":["/bin/sh","-c","echo prestop > /out/prestop"]}}}"#;
    let lifecycle = format!("\"{}\"", raw.replace('"', "\"\""));
    let out_dir = tempfile::tempdir().unwrap();
    let volume = format!("{}:/out", out_dir.path().display());
    // On TERM the entrypoint notes what PreStop left, then exits 0.
    let (code, out, err) = p.run(
        &[
            "-d",
            "--name",
            "hr-podman",
            "--annotation",
            &lifecycle,
            "-v",
            &volume,
        ],
        &[
            "/bin/sh",
            "-c",
            "trap 'cat /out/prestop > /out/at-term; exit 0' TERM; while :; do sleep 0.1; done",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_string();
    assert!(
        id.len() == 64 && id.bytes().all(|c| c.is_ascii_hexdigit()),
        "podman run -d printed {out:?}, not a container id"
    );
    assert_eq!(p.inspect("{{.Id}}", "hr-podman"), id);

    // What podman asked of hookrun, under that id, and where hookrun keeps it.
    let (root, verbs) = calls_for(&p.runtime_calls(), &id);
    assert_eq!(verbs, ["create", "start"], "{:?}", p.runtime_calls());
    let state_dir = root.join(&id);
    assert!(
        state_dir.join("state.json").is_file(),
        "no state at {}",
        state_dir.display()
    );
    let o = Command::new(bin())
        .arg("--root")
        .arg(&root)
        .args(["state", &id])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(
        st["pid"].to_string(),
        p.inspect("{{.State.Pid}}", "hr-podman")
    );

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
    assert_eq!(p.inspect("{{.State.Status}}", "hr-podman"), "exited");
    // The entrypoint's TERM trap ended it (not a SIGKILL after -t 5), and PreStop came first.
    assert_eq!(p.inspect("{{.State.ExitCode}}", "hr-podman"), "0");
    assert_eq!(
        std::fs::read_to_string(out_dir.path().join("at-term"))
            .ok()
            .as_deref(),
        Some("prestop\n")
    );
    // podman's cleanup of an exited container deletes it in hookrun before `stop` returns.
    let (_, verbs) = calls_for(&p.runtime_calls(), &id);
    assert_eq!(verbs[..4], ["create", "start", "exec", "kill"], "{verbs:?}");
    assert_eq!(
        verbs.last().map(String::as_str),
        Some("delete"),
        "{verbs:?}"
    );
    assert!(
        !state_dir.exists(),
        "{} left after podman stop",
        state_dir.display()
    );
    let o = p.cmd(&["rm", "hr-podman"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        !state_dir.exists(),
        "{} left after podman rm",
        state_dir.display()
    );
}
