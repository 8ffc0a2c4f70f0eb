//! Rootless hookrun, driven as an unprivileged user: the test (root) makes the users
//! `hookrun-rl` and `hookrun-rl2` (with /etc/subuid and /etc/subgid ranges) when missing, gives
//! each test a bundle and an XDG_RUNTIME_DIR the user owns, and runs
//! `runuser -u USER -- env XDG_RUNTIME_DIR=… hookrun …`. Covers `spec --rootless`, the verbs,
//! exec namespaces, lifecycle hooks (Exec and HTTP), the state root, two users kept apart,
//! cgroup limits with and without a delegated cgroup v2 subtree, multi-range id maps through
//! newuidmap/newgidmap, and `check`.
mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::{bpath, need, wait_until, Bundle};
use serde_json::{json, Value};

const LIFECYCLE: &str = "dev.hookrun.lifecycle";

/// An unprivileged test user.
#[derive(Debug, Clone)]
struct User {
    name: &'static str,
    uid: u32,
    gid: u32,
    /// Its first /etc/subuid and /etc/subgid range.
    subuid: (u64, u64),
    subgid: (u64, u64),
}

fn id_of(name: &str, flag: &str) -> Option<u32> {
    let o = Command::new("id").args([flag, name]).output().ok()?;
    String::from_utf8(o.stdout).ok()?.trim().parse().ok()
}

/// The first `NAME:START:COUNT` range of `name` in `file`, added (after every range there) when
/// missing. Idempotent; serialised by flock against other test binaries.
fn ensure_subids(file: &str, name: &str) -> (u64, u64) {
    let find = |t: &str| {
        t.lines().find_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            (f.len() == 3 && f[0] == name)
                .then(|| Some((f[1].parse().ok()?, f[2].parse().ok()?)))
                .flatten()
        })
    };
    let text = std::fs::read_to_string(file).unwrap_or_default();
    if let Some(r) = find(&text) {
        return r;
    }
    let end = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            Some(f.get(1)?.parse::<u64>().ok()? + f.get(2)?.parse::<u64>().ok()?)
        })
        .max()
        .unwrap_or(100000)
        .max(100000);
    let st = Command::new("flock")
        .arg(file)
        .args(["sh", "-c"])
        .arg(format!(
            "grep -q '^{name}:' {file} || echo '{name}:{end}:65536' >> {file}"
        ))
        .status()
        .unwrap();
    assert!(st.success(), "add {name} to {file}");
    find(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// The user `name`, made with `useradd -m` if missing, with subordinate id ranges.
fn ensure_user(name: &'static str) -> User {
    if id_of(name, "-u").is_none() {
        let o = Command::new("flock")
            .args(["/etc/passwd", "useradd", "-m", "-s", "/bin/sh", name])
            .output()
            .unwrap();
        // Another test binary may have made it meanwhile.
        assert!(
            o.status.success() || id_of(name, "-u").is_some(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    User {
        name,
        uid: id_of(name, "-u").unwrap(),
        gid: id_of(name, "-g").unwrap(),
        subuid: ensure_subids("/etc/subuid", name),
        subgid: ensure_subids("/etc/subgid", name),
    }
}

fn user1() -> &'static User {
    static U: OnceLock<User> = OnceLock::new();
    U.get_or_init(|| ensure_user("hookrun-rl"))
}

fn user2() -> &'static User {
    static U: OnceLock<User> = OnceLock::new();
    U.get_or_init(|| ensure_user("hookrun-rl2"))
}

/// Root (to make the users) and user namespaces: what these tests need. Missing, the test fails
/// unless HOOKRUN_TEST_ALLOW_SKIP allows it (see `common::need`).
fn can_run() -> bool {
    let userns = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .is_ok_and(|s| s.trim() != "0");
    need(
        "root",
        nix::unistd::geteuid().is_root(),
        "the rootless tests need root to make their unprivileged users",
    ) && need(
        "userns",
        userns,
        "user namespaces are disabled (user.max_user_namespaces = 0)",
    )
}

fn chown_r(p: &Path, u: &User) {
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", u.uid, u.gid))
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

/// The hookrun binary where any user may run it: target/ itself when others can reach it, else
/// a 0755 copy (made once per test binary, removed at exit).
fn rl_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let b = Path::new(common::bin());
        let open = b
            .ancestors()
            .skip(1)
            .all(|d| std::fs::metadata(d).is_ok_and(|m| m.mode() & 0o001 != 0))
            && std::fs::metadata(b).is_ok_and(|m| m.mode() & 0o005 == 0o005);
        if open {
            return b.to_path_buf();
        }
        let dir = tempfile::Builder::new()
            .prefix("hookrun-rl-bin-")
            .tempdir()
            .unwrap()
            .keep();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = dir.join("hookrun");
        std::fs::copy(b, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        BIN_DIR.set(dir).unwrap();
        extern "C" fn cleanup() {
            if let Some(d) = BIN_DIR.get() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
        // SAFETY: registers a plain function to run at process exit.
        unsafe { libc::atexit(cleanup) };
        copy
    })
}

static BIN_DIR: OnceLock<PathBuf> = OnceLock::new();

/// A temp dir owned by `u` with `mode`.
fn user_dir(u: &User, prefix: &str, mode: u32) -> tempfile::TempDir {
    let d = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    chown_r(d.path(), u);
    d
}

/// A bundle the user owns, its config written by `hookrun spec --rootless` run as that user, then
/// terminal off, a writable root and `args`.
fn rl_bundle(u: &User, args: &[&str]) -> Bundle {
    Bundle::owned((u.uid, u.gid), args, |dir| {
        as_user(
            u,
            None,
            &["spec", "--rootless", "-b", dir.to_str().unwrap()],
        )
    })
}

/// Declare lifecycle hooks `lc` (and a 10 s grace period) on the bundle.
fn set_lifecycle(b: &mut Bundle, lc: Value) {
    b.edit(|c| c["annotations"] = json!({ LIFECYCLE: lc.to_string(), "dev.hookrun.termination-grace-period-seconds": "10" }));
}

/// `runuser -u USER -- env XDG_RUNTIME_DIR=XDG hookrun ARGS…` (XDG None: unset), stdin closed,
/// stdout and stderr to files (a container that inherits them must not keep us waiting).
fn user_cmd(u: &User, xdg: Option<&Path>, args: &[&str]) -> Command {
    let mut c = Command::new("runuser");
    c.args([
        "-u",
        u.name,
        "--",
        "env",
        "-u",
        "XDG_RUNTIME_DIR",
        "-u",
        "TMPDIR",
    ]);
    if let Some(x) = xdg {
        c.arg(format!("XDG_RUNTIME_DIR={}", x.display()));
    }
    c.arg(rl_bin()).args(args).stdin(Stdio::null());
    c
}

fn as_user(u: &User, xdg: Option<&Path>, args: &[&str]) -> Output {
    output_of(user_cmd(u, xdg, args))
}

/// Run `cmd` to its end (at most 60 s) with stdout and stderr going to files.
fn output_of(mut cmd: Command) -> Output {
    let out = tempfile::NamedTempFile::new().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = cmd
        .stdout(out.reopen().unwrap())
        .stderr(err.reopen().unwrap())
        .spawn()
        .unwrap();
    let mut status = None;
    let done = wait_until(Duration::from_secs(60), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !done {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{cmd:?} hung");
    }
    Output {
        status: status.unwrap(),
        stdout: std::fs::read(out.path()).unwrap(),
        stderr: std::fs::read(err.path()).unwrap(),
    }
}

/// One container of one user, under the default state root of its own XDG_RUNTIME_DIR;
/// `Drop` force-deletes it.
struct RlCtr {
    user: &'static User,
    xdg: tempfile::TempDir,
    id: String,
}

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl RlCtr {
    fn new(user: &'static User, name: &str) -> RlCtr {
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        RlCtr {
            user,
            xdg: user_dir(user, "hookrun-rl-xdg-", 0o700),
            id: format!("{name}-{}-{n}", std::process::id()),
        }
    }

    fn root(&self) -> PathBuf {
        self.xdg.path().join("hookrun")
    }

    fn run(&self, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|a| a.replace("{id}", &self.id)).collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        as_user(self.user, Some(self.xdg.path()), &refs)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "hookrun {args:?} as {} failed ({}): {}",
            self.user.name,
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "hookrun {args:?} unexpectedly succeeded"
        );
        String::from_utf8(o.stderr).unwrap()
    }

    fn state(&self) -> Value {
        serde_json::from_str(&self.ok(&["state", "{id}"])).unwrap()
    }

    fn status(&self) -> String {
        self.state()["status"].as_str().unwrap().to_string()
    }

    fn wait_status(&self, s: &str) {
        assert!(
            wait_until(Duration::from_secs(15), || self.status() == s),
            "container {} never became {s} (is {})",
            self.id,
            self.status()
        );
    }

    fn describe(&self) -> Value {
        serde_json::from_str(&self.ok(&["describe", "--format", "json", "{id}"])).unwrap()
    }

    fn events(&self, reason: &str) -> Vec<Value> {
        self.describe()["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["reason"] == reason)
            .cloned()
            .collect()
    }
}

impl Drop for RlCtr {
    fn drop(&mut self) {
        let _ = self.run(&["delete", "--force", "{id}"]);
    }
}

const LOOP_UNTIL_TERM: &str =
    "trap 'echo term > /got-term; exit 0' TERM; while true; do sleep 0.1; done";

fn ns_of(pid: &str, n: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn spec_rootless_writes_a_config_that_runs_as_the_caller() {
    if !can_run() {
        return;
    }
    let u = user1();
    let mut b = rl_bundle(
        u,
        &[
            "/bin/sh",
            "-c",
            "id -u; id -g; cat /proc/self/uid_map; hostname",
        ],
    );
    let c = &b.config;
    assert_eq!(
        c["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": u.uid, "size": 1}])
    );
    assert_eq!(
        c["linux"]["gidMappings"],
        json!([{"containerID": 0, "hostID": u.gid, "size": 1}])
    );
    let ns: Vec<&str> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    // runc's rootless default: the host's network (no namespace of its own).
    for want in ["user", "pid", "mount", "uts", "ipc"] {
        assert!(ns.contains(&want), "{want} in {ns:?}");
    }
    assert!(!ns.contains(&"network"), "{ns:?}");
    assert!(c["linux"].get("resources").is_none(), "{}", c["linux"]);
    let sys = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sys")
        .unwrap();
    let opts: Vec<&str> = sys["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert!(opts.contains(&"rbind") && opts.contains(&"ro"), "{sys}");
    assert_eq!(c["hostname"], "hookrun");
    // The container's root is the caller on the host.
    b.edit(|_| {});
    let r = RlCtr::new(u, "rl-spec");
    let o = r.run(&["run", "-b", bpath(&b), "{id}"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0"]);
    assert_eq!(lines[1], ["0"]);
    assert_eq!(lines[2], ["0", &u.uid.to_string(), "1"]);
    assert_eq!(lines[3], ["hookrun"]);
    // `run` deleted it.
    assert!(!r.root().join(&r.id).exists());
}

#[test]
fn verbs_work_rootless_and_exec_joins_the_init_namespaces() {
    if !can_run() {
        return;
    }
    let u = user1();
    let b = rl_bundle(u, &["/bin/sh", "-c", LOOP_UNTIL_TERM]);
    let c = RlCtr::new(u, "rl-verbs");
    c.ok(&["create", "-b", bpath(&b), "{id}"]);
    assert_eq!(c.status(), "created");
    // The default state root: $XDG_RUNTIME_DIR/hookrun, private to the user.
    let md = std::fs::metadata(c.root()).unwrap();
    assert_eq!((md.uid(), md.mode() & 0o777), (u.uid, 0o700));
    assert!(c.root().join(&c.id).join("state.json").exists());
    c.ok(&["start", "{id}"]);
    c.wait_status("running");
    let st = c.state();
    let pid = st["pid"].as_i64().unwrap().to_string();
    assert_eq!(st["owner"], u.name);
    // The init's user namespace is the caller's, mapped as asked.
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", &u.uid.to_string(), "1"]
    );
    // exec: in every namespace of the init, the user namespace first.
    let kinds = ["user", "pid", "net", "mnt", "uts", "ipc", "cgroup"];
    let script = kinds
        .iter()
        .map(|n| format!("readlink /proc/self/ns/{n}"))
        .collect::<Vec<_>>()
        .join("; ");
    let out = c.ok(&["exec", "{id}", "/bin/sh", "-c", &script]);
    let got: Vec<&str> = out.lines().collect();
    let want: Vec<String> = kinds.iter().map(|n| ns_of(&pid, n)).collect();
    assert_eq!(got, want);
    assert_eq!(c.ok(&["exec", "{id}", "id", "-u"]).trim(), "0");
    // list shows it, ps lists its init.
    assert!(c.ok(&["list", "-q"]).lines().any(|l| l == c.id));
    let pids: Vec<i64> = serde_json::from_str(&c.ok(&["ps", "--format", "json", "{id}"])).unwrap();
    assert!(pids.contains(&pid.parse().unwrap()), "{pids:?}");
    // kill with a signal whose default is to ignore it leaves it running; stop ends it (TERM).
    c.ok(&["kill", "{id}", "WINCH"]);
    assert_eq!(c.status(), "running");
    c.ok(&["stop", "-t", "10", "{id}"]);
    assert_eq!(c.status(), "stopped");
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("got-term")).unwrap(),
        "term\n"
    );
    let kinds: Vec<String> = c.describe()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect();
    for r in ["Created", "Started", "Killing"] {
        assert!(kinds.iter().any(|k| k == r), "{r} in {kinds:?}");
    }
    c.ok(&["delete", "{id}"]);
    assert!(!c.root().join(&c.id).exists());
    assert!(c.fails(&["state", "{id}"]).contains("does not exist"));
}

#[test]
fn a_failing_post_start_stops_the_container_and_start_fails() {
    if !can_run() {
        return;
    }
    let u = user1();
    let mut b = rl_bundle(u, &["/bin/sh", "-c", LOOP_UNTIL_TERM]);
    set_lifecycle(
        &mut b,
        json!({
            "postStart": {"exec": {"command": ["/bin/sh", "-c", "echo boom; exit 3"]}},
            "preStop": {"exec": {"command": ["/bin/sh", "-c", "echo pre > /prestop-ran"]}}
        }),
    );
    let c = RlCtr::new(u, "rl-psfail");
    c.ok(&["create", "-b", bpath(&b), "{id}"]);
    let err = c.fails(&["start", "{id}"]);
    assert!(err.contains("command exited with 3"), "{err}");
    c.wait_status("stopped");
    let ev = c.events("FailedPostStartHook");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["type"], "Warning");
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("prestop-ran")).unwrap(),
        "pre\n"
    );
}

#[test]
fn pre_stop_runs_on_stop_before_the_term_signal() {
    if !can_run() {
        return;
    }
    let u = user1();
    let mut b = rl_bundle(u, &["/bin/sh", "-c", LOOP_UNTIL_TERM]);
    // The marker says whether TERM had arrived when PreStop ran: it must not have.
    set_lifecycle(
        &mut b,
        json!({
            "preStop": {"exec": {"command": ["/bin/sh", "-c",
                "if [ -e /got-term ]; then echo late; else echo first; fi > /prestop-ran; id -u >> /prestop-ran"]}}
        }),
    );
    let c = RlCtr::new(u, "rl-prestop");
    c.ok(&["create", "-b", bpath(&b), "{id}"]);
    c.ok(&["start", "{id}"]);
    c.ok(&["stop", "{id}"]);
    assert_eq!(c.status(), "stopped");
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("prestop-ran")).unwrap(),
        "first\n0\n"
    );
    assert!(b.rootfs().join("got-term").exists());
    let runs = c.describe()["hookRuns"].clone();
    assert_eq!(runs[0]["hook"], "PreStop", "{runs}");
    assert_eq!(runs[0]["result"], "Succeeded", "{runs}");
    // Written by the container's root, which is the user on the host.
    let md = std::fs::metadata(b.rootfs().join("prestop-ran")).unwrap();
    assert_eq!(md.uid(), u.uid);
}

#[test]
fn an_http_pre_stop_reaches_the_container_loopback() {
    if !can_run() {
        return;
    }
    let u = user1();
    let mut b = rl_bundle(
        u,
        &[
            "/bin/httpd",
            "-f",
            "-vv",
            "-p",
            "127.0.0.1:8080",
            "-h",
            "/www",
        ],
    );
    std::fs::create_dir_all(b.rootfs().join("www")).unwrap();
    std::fs::write(b.rootfs().join("www/quit"), "bye\n").unwrap();
    chown_r(&b.rootfs().join("www"), u);
    set_lifecycle(
        &mut b,
        json!({"preStop": {"httpGet": {"path": "/quit", "port": 8080}}}),
    );
    // A network namespace of its own (made inside the user namespace, so no privilege needed):
    // the hook must reach the container's loopback, not the host's.
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "network"}))
    });
    let c = RlCtr::new(u, "rl-http");
    c.ok(&["create", "-b", bpath(&b), "{id}"]);
    c.ok(&["start", "{id}"]);
    // httpd listens only on the container's own loopback.
    let pid = c.state()["pid"].as_i64().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(format!("/proc/{pid}/net/tcp"))
                .is_ok_and(|t| t.contains("0100007F:1F90"))
        }),
        "httpd never listened"
    );
    c.ok(&["stop", "{id}"]);
    let runs = c.describe()["hookRuns"].clone();
    assert_eq!(runs[0]["hook"], "PreStop", "{runs}");
    assert_eq!(runs[0]["handler"], "HTTP", "{runs}");
    assert_eq!(runs[0]["result"], "Succeeded", "{runs}");
    assert!(c.events("FailedPreStopHook").is_empty());
}

#[test]
fn without_xdg_runtime_dir_the_state_root_is_a_private_temp_dir() {
    if !can_run() {
        return;
    }
    let u = user2();
    let b = rl_bundle(u, &["/bin/true"]);
    let id = format!("rl-noxdg-{}", std::process::id());
    let o = as_user(u, None, &["run", "--keep", "-b", bpath(&b), &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let root = PathBuf::from(format!("/tmp/hookrun-{}", u.uid));
    let md = std::fs::metadata(&root).unwrap();
    assert_eq!((md.uid(), md.mode() & 0o777), (u.uid, 0o700));
    assert!(root.join(&id).is_dir());
    let o = as_user(u, None, &["delete", &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!root.join(&id).exists());
}

#[test]
fn two_users_never_see_each_other() {
    if !can_run() {
        return;
    }
    let (u1, u2) = (user1(), user2());
    let b = rl_bundle(u1, &["/bin/sh", "-c", LOOP_UNTIL_TERM]);
    let c1 = RlCtr::new(u1, "rl-mine");
    c1.ok(&["create", "-b", bpath(&b), "{id}"]);
    let c2 = RlCtr::new(u2, "rl-theirs");
    assert!(!c2.ok(&["list", "-q"]).contains(&c1.id));
    // Pointing --root at the first user's runtime dir or state root is refused.
    for r in [c1.xdg.path().to_path_buf(), c1.root()] {
        let root = r.to_str().unwrap();
        let err = c2.fails(&["--root", root, "list"]);
        assert!(err.contains("state root"), "{err}");
        let err = c2.fails(&["--root", root, "delete", "--force", &c1.id]);
        assert!(err.contains("state root"), "{err}");
    }
    assert_eq!(c1.status(), "created");
}

#[test]
fn limits_without_a_delegated_cgroup_are_refused_at_create() {
    if !can_run() {
        return;
    }
    let u = user1();
    let mut b = rl_bundle(u, &["/bin/true"]);
    b.edit(|c| c["linux"]["resources"] = json!({"pids": {"limit": 32}}));
    let c = RlCtr::new(u, "rl-limits");
    let err = c.fails(&["create", "-b", bpath(&b), "{id}"]);
    assert!(err.contains("linux.resources.pids.limit"), "{err}");
    assert!(err.contains("Delegate=yes"), "{err}");
    assert!(err.contains("chown -R"), "{err}");
    assert!(!c.root().join(&c.id).exists());
}

/// A cgroup v2 directory below the test's own, owned by the user, with a `rt` child for the
/// runtime to run in; removed on drop.
struct Delegated {
    dir: PathBuf,
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for d in ["rt", ""] {
            let _ = std::fs::remove_dir(self.dir.join(d));
        }
    }
}

fn delegate(u: &User) -> Option<Delegated> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let pc = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = hookrun::check::own_v2_dir(&mi, &pc)?;
    let dir = own.join(format!("hookrun-rl-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("rt")).ok()?;
    chown_r(&dir, u);
    Some(Delegated { dir })
}

#[test]
fn limits_go_into_a_delegated_cgroup_v2_subtree() {
    if !can_run() {
        return;
    }
    let u = user1();
    let d = delegate(u);
    if !need("cgroup2", d.is_some(), "no cgroup2 hierarchy to delegate") {
        return;
    }
    let d = d.unwrap();
    let ctrls = std::fs::read_to_string(d.dir.join("cgroup.controllers")).unwrap_or_default();
    let ctrls: Vec<&str> = ctrls.split_whitespace().collect();
    // Run hookrun inside the delegated subtree: root moves the shell that execs runuser.
    let in_rt = |c: &RlCtr, args: &[&str]| -> Output {
        let cmd = user_cmd(c.user, Some(c.xdg.path()), args);
        let quoted: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', r"'\''")))
            .collect();
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs && exec {}",
                d.dir.join("rt").display(),
                quoted.join(" ")
            ))
            .stdin(Stdio::null());
        output_of(sh)
    };
    let hp = Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists();
    if need(
        "hugetlb",
        hp && ctrls.contains(&"hugetlb"),
        "no 2 MB huge pages or no v2 hugetlb controller for the hugetlb part",
    ) {
        let mut b = rl_bundle(u, &["/bin/sh", "-c", "cat /proc/self/cgroup"]);
        b.edit(|c| {
            c["linux"]["resources"] =
                json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]})
        });
        let c = RlCtr::new(u, "rl-deleg");
        let o = in_rt(&c, &["create", "-b", bpath(&b), &c.id]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // Next to the runtime's cgroup (`rt`), in the delegated directory.
        let cg = d.dir.join(&c.id);
        assert_eq!(
            std::fs::read_to_string(cg.join("hugetlb.2MB.max"))
                .unwrap()
                .trim(),
            "4194304"
        );
        let pid = c.state()["pid"].as_i64().unwrap().to_string();
        let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap();
        assert!(procs.lines().any(|l| l == pid), "{procs}");
        let o = in_rt(&c, &["delete", "--force", &c.id]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(!cg.exists());
    }
    // A controller the subtree lacks (on a hybrid host: every one bound to v1) is named.
    let mut b = rl_bundle(u, &["/bin/true"]);
    b.edit(|c| c["linux"]["resources"] = json!({"pids": {"limit": 32}}));
    let c = RlCtr::new(u, "rl-deleg-pids");
    let o = in_rt(&c, &["create", "-b", bpath(&b), &c.id]);
    if ctrls.contains(&"pids") {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            std::fs::read_to_string(d.dir.join(&c.id).join("pids.max"))
                .unwrap()
                .trim(),
            "32"
        );
        let _ = in_rt(&c, &["delete", "--force", &c.id]);
    } else {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(err.contains("linux.resources.pids.limit"), "{err}");
        assert!(err.contains("has no pids controller"), "{err}");
        assert!(!c.root().join(&c.id).exists());
    }
}

#[test]
fn multi_range_maps_are_written_with_newuidmap() {
    if !can_run() {
        return;
    }
    let tools = ["/usr/bin/newuidmap", "/usr/bin/newgidmap"];
    if !need(
        "newuidmap",
        tools.iter().all(|t| Path::new(t).exists()),
        "newuidmap/newgidmap (package uidmap) are not installed",
    ) {
        return;
    }
    let u = user1();
    let mut b = rl_bundle(
        u,
        &[
            "/bin/sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/owned",
        ],
    );
    let (su, sg) = (u.subuid, u.subgid);
    b.edit(|c| {
        // Container ids beyond 0 exist only through the subordinate ranges.
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": u.uid, "size": 1},
            {"containerID": 1, "hostID": su.0, "size": su.1.min(65536)}
        ]);
        c["linux"]["gidMappings"] = json!([
            {"containerID": 0, "hostID": u.gid, "size": 1},
            {"containerID": 1, "hostID": sg.0, "size": sg.1.min(65536)}
        ]);
    });
    let c = RlCtr::new(u, "rl-multi");
    let out = c.ok(&["run", "-b", bpath(&b), "{id}"]);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 4, "{out}");
    assert_eq!(rows[0], ["0", &u.uid.to_string(), "1"]);
    assert_eq!(
        rows[1],
        ["1", &su.0.to_string(), &su.1.min(65536).to_string()]
    );
    assert_eq!(
        rows[3],
        ["1", &sg.0.to_string(), &sg.1.min(65536).to_string()]
    );
    // Container id 1000 is subordinate id start + 999 on the host.
    let md = std::fs::metadata(b.rootfs().join("tmp/owned")).unwrap();
    assert_eq!((md.uid() as u64, md.gid() as u64), (su.0 + 999, sg.0 + 999));
}

#[test]
fn check_reports_the_rootless_items_and_fails_on_a_foreign_root() {
    if !can_run() {
        return;
    }
    let u = user1();
    let c = RlCtr::new(u, "rl-check");
    let out = c.ok(&["check"]);
    for item in [
        "ok    mode: rootless",
        "ok    user namespaces:",
        "ok    /etc/subuid: hookrun-rl:",
        "cgroups:",
        "cgroup delegation:",
        "seccomp:",
        "ok    state root:",
    ] {
        assert!(out.lines().any(|l| l.contains(item)), "{item} in\n{out}");
    }
    for l in out.lines() {
        assert!(
            ["ok    ", "warn  ", "fail  "]
                .iter()
                .any(|p| l.starts_with(p)),
            "{l}"
        );
    }
    let o = c.run(&["--root", "/run", "check"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines().any(
            |l| l.starts_with("fail  state root: /run: owned by uid 0") && l.contains("— fix:")
        ),
        "{out}"
    );
}
