//! A private containerd for the tests: its own root, state dir, socket and config, started
//! and, even when a test fails, stopped and removed with whatever its shims and hookrun left;
//! `ctr` and `hookrun` calls against it. runs in: the test process.

use crate::common::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub const NS: &str = "hookrun-test";
pub const IMAGE: &str = "docker.io/library/hookrun-bb:test";
/// Where containerd 1.6's shims put their sockets, whatever containerd's state dir is.
const SHIM_SOCKETS: &str = "/run/containerd/s";
const RUN_CONTAINERD: &str = "/run/containerd";
/// What any one `ctr` call may take before the test calls it hung.
const CTR_LIMIT: Duration = Duration::from_secs(60);

/// How many private containerds of this test binary are up, and whether /run/containerd was
/// absent when the first came up: the last one down removes what the shims made there, never
/// while another instance's shim may be using it.
static LIVE: Mutex<(usize, bool)> = Mutex::new((0, false));
static SEQ: AtomicU32 = AtomicU32::new(0);

pub struct Containerd {
    pub dir: tempfile::TempDir,
    daemon: Child,
    /// This test's own cgroup (memory hierarchy, else cgroup2), as /proc/self/cgroup says.
    parent: String,
    /// Prefix of this instance's container cgroups, below `parent`.
    prefix: String,
}

/// This process's cgroup: the memory controller's path on v1 and hybrid hosts, else cgroup2's.
fn own_cgroup() -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let find = |key: &str| {
        text.lines()
            .find_map(|l| l.split_once(key).map(|(_, p)| p.to_string()))
    };
    find(":memory:")
        .or_else(|| find("0::"))
        .unwrap_or_else(|| "/".into())
}

/// Mount points of the cgroup hierarchies.
fn cgroup_mounts() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            let point = pre.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(point))
        })
        .collect()
}

fn out_of(o: std::process::Output) -> Out {
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Run `cmd` with stdout and stderr in files; past `limit`, SIGKILL it (our own child): `Err`
/// with what it printed on stderr.
fn try_run_limited(cmd: &mut Command, limit: Duration) -> Result<Out, String> {
    let out = tempfile::NamedTempFile::new().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.reopen().unwrap())
        .stderr(err.reopen().unwrap())
        .spawn()
        .unwrap();
    let mut status = None;
    wait_until(limit, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let read = |f: &tempfile::NamedTempFile| std::fs::read_to_string(f.path()).unwrap_or_default();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(read(&err));
    };
    Ok(Out {
        code: status.code(),
        stdout: read(&out),
        stderr: read(&err),
    })
}

/// The same, but a hang fails the test instead of stalling the run.
fn run_limited(cmd: &mut Command, limit: Duration) -> Out {
    try_run_limited(cmd, limit)
        .unwrap_or_else(|e| panic!("{cmd:?} did not finish within {limit:?}; stderr: {e}"))
}

/// `config.toml` for a containerd whose every path is inside `d`. The CRI plugin's CNI
/// directories are moved too, since the plugin makes its conf_dir when it loads.
fn config(d: &Path, cri: bool) -> String {
    let d = d.display();
    // Snapshotters this host cannot serve, and the `opt` plugin, which makes /opt/containerd.
    let mut off = vec![
        "io.containerd.snapshotter.v1.aufs",
        "io.containerd.snapshotter.v1.btrfs",
        "io.containerd.snapshotter.v1.devmapper",
        "io.containerd.snapshotter.v1.zfs",
        "io.containerd.internal.v1.opt",
    ];
    if !cri {
        off.push("io.containerd.grpc.v1.cri");
    }
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = {off:?}
[grpc]
  address = "{d}/containerd.sock"
[debug]
  level = "debug"
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{d}/cni/bin"
  conf_dir = "{d}/cni/net.d"
"#
    )
}

impl Containerd {
    /// A private containerd without the CRI plugin, with the fixture image imported.
    pub fn start() -> Option<Containerd> {
        let c = Containerd::launch(None)?;
        c.import_image();
        Some(c)
    }

    /// A private containerd; with `cri`, the CRI plugin too, this TOML appended to its config.
    pub fn launch(cri: Option<&str>) -> Option<Containerd> {
        if !require_root() {
            return None;
        }
        let have = Command::new("containerd").arg("--version").output().is_ok();
        if !need(
            "containerd",
            have,
            "containerd is not installed (.ci/run installs it)",
        ) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("hookrun-containerd-")
            .tempdir()
            .unwrap();
        let mut text = config(dir.path(), cri.is_some());
        text.push_str(cri.unwrap_or_default());
        std::fs::write(dir.path().join("config.toml"), text).unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        {
            // before any shim of this instance can exist
            let mut live = LIVE.lock().unwrap();
            if live.0 == 0 {
                live.1 = !Path::new(RUN_CONTAINERD).exists();
            }
            live.0 += 1;
        }
        let c = Containerd {
            dir,
            daemon,
            parent: own_cgroup().trim_end_matches('/').to_string(),
            prefix: format!("hookrun-ctrd-{}-{n}-", std::process::id()),
        };
        let up = wait_until(Duration::from_secs(20), || {
            c.ctr(&["version"]).code == Some(0)
        });
        assert!(up, "containerd did not come up:\n{}", c.log_tail());
        Some(c)
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// hookrun's state root: the shim's `--runc-root` plus the namespace.
    fn hookrun_root(&self) -> PathBuf {
        self.dir.path().join("hookrun").join(NS)
    }

    pub fn log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// What to show when a `ctr` call did not do what was expected.
    pub fn explain(&self, o: &Out) -> String {
        format!(
            "ctr exited {:?}\nstdout: {}\nstderr: {}\ncontainerd log (tail):\n{}",
            o.code,
            o.stdout,
            o.stderr,
            self.log_tail()
        )
    }

    fn ctr_cmd(&self, global: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.sock())
            .args(["--namespace", NS]);
        c.args(global);
        c
    }

    /// `ctr ARGS…` against this containerd.
    pub fn ctr(&self, args: &[&str]) -> Out {
        run_limited(self.ctr_cmd(&[]).args(args), CTR_LIMIT)
    }

    /// `ctr` that must succeed; returns stdout.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let o = self.ctr(args);
        assert_eq!(o.code, Some(0), "ctr {args:?}: {}", self.explain(&o));
        o.stdout
    }

    /// `ctr [GLOBAL…] run FLAGS… --runc-binary hookrun … IMAGE ID CMD…`, the container's cgroup
    /// below this test's.
    pub fn run_with(&self, global: &[&str], flags: &[&str], id: &str, cmd: &[&str]) -> Out {
        let mut c = self.ctr_cmd(global);
        c.arg("run").args(flags);
        c.arg("--runc-binary").arg(bin());
        c.arg("--runc-root").arg(self.dir.path().join("hookrun"));
        c.arg("--fifo-dir").arg(self.dir.path().join("fifo"));
        c.arg("--cgroup").arg(self.cgroup_of(id));
        c.arg(IMAGE).arg(id).args(cmd);
        run_limited(&mut c, CTR_LIMIT)
    }

    pub fn run(&self, flags: &[&str], id: &str, cmd: &[&str]) -> Out {
        self.run_with(&[], flags, id, cmd)
    }

    pub fn exec(&self, id: &str, exec_id: &str, cmd: &[&str]) -> Out {
        let fifo = self.dir.path().join("fifo");
        let mut args = vec![
            "task",
            "exec",
            "--exec-id",
            exec_id,
            "--fifo-dir",
            fifo.to_str().unwrap(),
            id,
        ];
        args.extend_from_slice(cmd);
        self.ctr(&args)
    }

    /// The container's `cgroupsPath`.
    pub fn cgroup_of(&self, id: &str) -> String {
        format!("{}/{}{id}", self.parent, self.prefix)
    }

    /// The container's cgroup directories that exist, in every hierarchy.
    pub fn cgroup_dirs(&self, id: &str) -> Vec<PathBuf> {
        let rel = self.cgroup_of(id);
        cgroup_mounts()
            .into_iter()
            .map(|m| m.join(rel.trim_start_matches('/')))
            .filter(|p| p.exists())
            .collect()
    }

    /// The task's status as `ctr task ls` shows it (RUNNING, STOPPED, …).
    pub fn task_status(&self, id: &str) -> Option<String> {
        self.ctr_ok(&["task", "ls"]).lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| f.get(2).unwrap_or(&"").to_string())
        })
    }

    pub fn wait_task(&self, id: &str, status: &str) {
        let ok = wait_until(Duration::from_secs(20), || {
            self.task_status(id).as_deref() == Some(status)
        });
        assert!(
            ok,
            "task {id} never became {status} (is {:?})\n{}",
            self.task_status(id),
            self.log_tail()
        );
    }

    /// `hookrun --root <the shim's root> ARGS…`.
    pub fn hookrun(&self, args: &[&str]) -> Out {
        out_of(
            Command::new(bin())
                .arg("--root")
                .arg(self.hookrun_root())
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    }

    /// `ctr task delete` of a stopped task, then the container; returns the delete's stderr
    /// (where ctr names a non-zero exit code).
    pub fn remove(&self, id: &str) -> String {
        let o = self.ctr(&["task", "delete", id]);
        assert_eq!(o.code, Some(0), "{}", self.explain(&o));
        self.ctr_ok(&["container", "delete", id]);
        o.stderr
    }

    /// Nothing of any container is left: not in containerd, not in hookrun's root, no cgroup.
    pub fn assert_nothing_left(&self, ids: &[&str]) {
        assert_eq!(self.ctr_ok(&["container", "ls", "-q"]).trim(), "");
        assert_eq!(self.ctr_ok(&["task", "ls", "-q"]).trim(), "");
        let o = self.hookrun(&["list", "-q"]);
        assert_eq!(o.stdout.trim(), "", "{}", o.stderr);
        for id in ids {
            assert_eq!(
                self.cgroup_dirs(id),
                Vec::<PathBuf>::new(),
                "cgroup of {id}"
            );
        }
    }

    /// Whatever is still mounted inside this instance's directory (rootfs snapshots of shims
    /// that did not get to unmount them), deepest first.
    fn unmount_below_dir(&self) {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|p| Path::new(p).starts_with(self.dir.path()))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Through containerd first, so the shims exit and unmount the rootfs snapshots.
        // No panics here: this may run while a failed test unwinds.
        let ctr = |args: &[&str]| try_run_limited(self.ctr_cmd(&[]).args(args), CTR_LIMIT);
        if let Ok(o) = ctr(&["container", "ls", "-q"]) {
            for id in o.stdout.split_whitespace() {
                let _ = ctr(&["task", "delete", "--force", id]);
                let _ = ctr(&["container", "delete", id]);
            }
        }
        // Whatever a dead shim left in hookrun's root.
        for id in self.hookrun(&["list", "-q"]).stdout.split_whitespace() {
            let _ = self.hookrun(&["delete", "--force", id]);
        }
        let pid = Pid::from_raw(self.daemon.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let daemon = &mut self.daemon;
        if !wait_until(Duration::from_secs(10), || {
            daemon.try_wait().ok().flatten().is_some()
        }) {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        // Shims outlive containerd by design; these name its socket, so they are ours.
        let shims = processes_matching(&format!("-address {}", self.sock().display()));
        for p in shims {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        self.unmount_below_dir();
        for m in cgroup_mounts() {
            let Ok(dir) = std::fs::read_dir(m.join(self.parent.trim_start_matches('/'))) else {
                continue;
            };
            for e in dir.flatten() {
                if e.file_name().to_string_lossy().starts_with(&self.prefix) {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.0 -= 1;
        if live.0 == 0 && live.1 {
            for d in [SHIM_SOCKETS, "/run/containerd/fifo", RUN_CONTAINERD] {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
}
