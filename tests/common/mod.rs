//! Shared helpers for the integration tests: build the busybox rootfs fixture once, make
//! bundles in temp dirs, run the real `hookrun` binary against a private state root, and clean
//! up (delete --force, temp dirs removed) even when a test fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::{json, Value};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hookrun")
}

/// `rootfs-fixtures/build.sh` into target/fixtures, once per test binary (the script is
/// idempotent and takes a lock-free rename-free path, so parallel binaries are fine).
pub fn fixture_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = manifest.join("target/fixtures");
        let o = Command::new("flock")
            .arg(manifest.join("target/.fixtures.lock"))
            .arg("bash")
            .arg(manifest.join("rootfs-fixtures/build.sh"))
            .arg(&out)
            .stderr(Stdio::inherit())
            .output()
            .expect("run rootfs-fixtures/build.sh");
        assert!(o.status.success(), "fixture build failed");
        PathBuf::from(String::from_utf8(o.stdout).unwrap().trim())
    })
}

/// What a test needs from the machine: true when `have`. Otherwise the test fails with `why`,
/// unless `HOOKRUN_TEST_ALLOW_SKIP` names `what` (a comma list, or `all`): then it says why it
/// skips and returns false. On this project's machines and in CI nothing skips, so a missing
/// tool or privilege is a failure there, never a silent green.
///
/// The names: `root`, `userns` (user namespaces enabled), `podman`, `containerd`, `newuidmap`
/// (package uidmap), `cgroup2` (a cgroup v2 hierarchy to delegate), `hugetlb` (2 MB huge pages
/// and the v2 hugetlb controller). E.g. `HOOKRUN_TEST_ALLOW_SKIP=podman,containerd cargo test`.
pub fn need(what: &str, have: bool, why: &str) -> bool {
    if have {
        return true;
    }
    let allowed = std::env::var("HOOKRUN_TEST_ALLOW_SKIP").unwrap_or_default();
    if allowed
        .split(',')
        .map(str::trim)
        .any(|a| a == what || a == "all")
    {
        eprintln!("skipped: {why} (HOOKRUN_TEST_ALLOW_SKIP={allowed})");
        return false;
    }
    panic!(
        "{why}; this test does not skip unless told to: fix the machine, or set \
         HOOKRUN_TEST_ALLOW_SKIP={what} to let it skip"
    );
}

/// True when the test runs as root (the integration tests start real containers). Not root:
/// the test fails, unless `HOOKRUN_TEST_ALLOW_SKIP` names `root` (see [`need`]); then it
/// returns false and the caller returns early (`if !require_root() { return; }`).
pub fn require_root() -> bool {
    need(
        "root",
        nix::unistd::geteuid().is_root(),
        "this test needs root",
    )
}

/// A bundle in a temp dir: its own copy of the fixture rootfs and a config.json that starts as
/// `hookrun spec` with terminal off and a writable root.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub config: Value,
}

impl Bundle {
    pub fn new(args: &[&str]) -> Bundle {
        Bundle::make(None, args, |dir| {
            Command::new(bin())
                .args(["spec", "-b"])
                .arg(dir)
                .output()
                .unwrap()
        })
    }

    /// A bundle that `owner` (uid, gid) owns, the directory (0755) and its rootfs, with the
    /// config.json `spec` writes given the bundle directory (for a rootless bundle: `hookrun spec
    /// --rootless -b DIR` run as that user, so the id maps are the user's); then terminal off, a
    /// writable root and `args`, as [`Bundle::new`].
    pub fn owned(owner: (u32, u32), args: &[&str], spec: impl FnOnce(&Path) -> Output) -> Bundle {
        Bundle::make(Some(owner), args, spec)
    }

    fn make(
        owner: Option<(u32, u32)>,
        args: &[&str],
        spec: impl FnOnce(&Path) -> Output,
    ) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("hookrun-test-")
            .tempdir()
            .unwrap();
        let st = Command::new("cp")
            .arg("-a")
            .arg(fixture_rootfs())
            .arg(dir.path().join("rootfs"))
            .status()
            .unwrap();
        assert!(st.success());
        if let Some((uid, gid)) = owner {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let st = Command::new("chown")
                .arg("-R")
                .arg(format!("{uid}:{gid}"))
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(
                st.success(),
                "chown -R {uid}:{gid} {}",
                dir.path().display()
            );
        }
        let o = spec(dir.path());
        assert!(
            o.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap())
                .unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        config["root"]["readonly"] = json!(false);
        let b = Bundle { dir, config };
        b.save();
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Write config.json after editing `self.config`.
    pub fn save(&self) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// Edit the config and save it.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) {
        f(&mut self.config);
        self.save();
    }
}

/// A private state root with one container id; `Drop` force-deletes it and removes the root.
pub struct Ctr {
    pub root: tempfile::TempDir,
    pub id: String,
}

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Ctr {
    pub fn new(name: &str) -> Ctr {
        let root = tempfile::Builder::new()
            .prefix("hookrun-root-")
            .tempdir()
            .unwrap();
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ctr {
            root,
            id: format!("{name}-{}-{n}", std::process::id()),
        }
    }

    /// `hookrun --root ROOT ARGS…` with stdin closed; output captured.
    pub fn cmd(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The same, substituting `{id}` in args with this container's id.
    pub fn run(&self, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|a| a.replace("{id}", &self.id)).collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.cmd(&refs)
    }

    /// Like `run` but asserts success and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "hookrun {args:?} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Like `run` but asserts failure and returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "hookrun {args:?} unexpectedly succeeded"
        );
        String::from_utf8(o.stderr).unwrap()
    }

    pub fn create(&self, b: &Bundle) {
        self.ok(&["create", "-b", b.path().to_str().unwrap(), "{id}"]);
    }

    pub fn state(&self) -> Value {
        serde_json::from_str(&self.ok(&["state", "{id}"])).unwrap()
    }

    pub fn status(&self) -> String {
        self.state()["status"].as_str().unwrap().to_string()
    }

    pub fn pid(&self) -> i32 {
        self.state()["pid"].as_i64().unwrap() as i32
    }

    /// Foreground `run` of a bundle: (exit code, stdout, stderr).
    pub fn run_fg(&self, b: &Bundle) -> (i32, String, String) {
        let o = self.run(&["run", "-b", b.path().to_str().unwrap(), "{id}"]);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// Wait (up to 20 s) for the container to reach `status`.
    pub fn wait_status(&self, status: &str) {
        assert!(
            wait_until(std::time::Duration::from_secs(20), || self.status()
                == status),
            "container {} never became {status} (is {})",
            self.id,
            self.status()
        );
    }

    /// Leftovers of this container: its state dir.
    pub fn state_dir(&self) -> PathBuf {
        self.root.path().join(&self.id)
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = self.cmd(&["delete", "--force", &self.id]);
    }
}

/// Processes whose command line contains `needle` (to prove nothing was left running).
pub fn processes_matching(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}

/// What a command run with [`Ctr::spawn`] left: exit code (None if killed by a signal), and its
/// stdout/stderr — which also hold whatever a container that inherited them wrote so far.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A running `hookrun` whose stdout and stderr are files, not pipes: a container that inherits
/// them (`create`, `run -d`) then cannot keep the test waiting for EOF.
pub struct Bg {
    pub child: std::process::Child,
    out: tempfile::NamedTempFile,
    err: tempfile::NamedTempFile,
}

impl Bg {
    /// Start `cmd` with stdout and stderr to files.
    pub fn start(mut cmd: Command) -> Bg {
        let out = tempfile::NamedTempFile::new().unwrap();
        let err = tempfile::NamedTempFile::new().unwrap();
        let child = cmd
            .stdout(out.reopen().unwrap())
            .stderr(err.reopen().unwrap())
            .spawn()
            .unwrap();
        Bg { child, out, err }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Wait up to `limit` for hookrun to exit; past it, SIGKILL this hookrun (our own child) and
    /// panic, so a hang fails the test instead of stalling the run.
    pub fn wait(mut self, limit: std::time::Duration) -> Out {
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "hookrun did not finish within {limit:?}; stderr: {}",
                    std::fs::read_to_string(self.err.path()).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        Out {
            code: status.code(),
            stdout: std::fs::read_to_string(self.out.path()).unwrap_or_default(),
            stderr: std::fs::read_to_string(self.err.path()).unwrap_or_default(),
        }
    }
}

impl Ctr {
    /// `hookrun --root ROOT ARGS…` (with `{id}` substituted), stdin closed, not started yet: for
    /// a test that changes how hookrun runs (say, without a capability) before [`Bg::start`].
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--root")
            .arg(self.root.path())
            .args(args.iter().map(|a| a.replace("{id}", &self.id)))
            .stdin(Stdio::null());
        c
    }

    /// Start `hookrun --root ROOT ARGS…` (with `{id}` substituted) in the background, stdin
    /// closed, stdout and stderr to files.
    pub fn spawn(&self, args: &[&str]) -> Bg {
        Bg::start(self.command(args))
    }

    /// `spawn` and wait (at most 20 s): for commands whose stdio a container may inherit.
    pub fn run_files(&self, args: &[&str]) -> Out {
        self.spawn(args).wait(std::time::Duration::from_secs(20))
    }

    /// `create` of a container that keeps running (its stdio are files); asserts success.
    pub fn create_bg(&self, b: &Bundle) {
        let o = self.run_files(&["create", "-b", b.path().to_str().unwrap(), "{id}"]);
        assert_eq!(o.code, Some(0), "create failed: {}", o.stderr);
    }
}

/// Poll `f` every 50 ms until it holds; false if it did not within `limit`.
pub fn wait_until(limit: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A bundle whose entrypoint is `sh -c SCRIPT`.
pub fn sh(script: &str) -> Bundle {
    Bundle::new(&["/bin/sh", "-c", script])
}

/// The bundle's path as the command line wants it.
pub fn bpath(b: &Bundle) -> &str {
    b.path().to_str().unwrap()
}

/// Foreground run that must exit 0; returns stdout.
pub fn run_ok(c: &Ctr, b: &Bundle) -> String {
    let (code, out, err) = c.run_fg(b);
    assert_eq!(code, 0, "run failed; stdout: {out}\nstderr: {err}");
    out
}
