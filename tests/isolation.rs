//! What a container is isolated from, as seen from inside it (busybox) and from the host's
//! /proc: namespaces (new and joined by path), the root filesystem and its mounts, /dev, masked
//! and read-only paths, sysctls.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// The namespace link (`net:[4026531840]`) of a process.
fn ns_of(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{kind}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// Create and start `sleep 1000` with `edit` applied to the config; returns (ctr, bundle, pid).
fn sleeper(name: &str, edit: impl FnOnce(&mut Value)) -> (Ctr, Bundle, i32) {
    let mut b = Bundle::new(&["/bin/sleep", "1000"]);
    b.edit(edit);
    let c = Ctr::new(name);
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    let pid = c.pid();
    (c, b, pid)
}

/// Remove the namespace of `kind` from the config's list.
fn drop_ns(cfg: &mut Value, kind: &str) {
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != kind);
}

/// Set (add or replace) the namespace of `kind`, with an optional path to join.
fn set_ns(cfg: &mut Value, kind: &str, path: Option<String>) {
    drop_ns(cfg, kind);
    let mut n = json!({ "type": kind });
    if let Some(p) = path {
        n["path"] = json!(p);
    }
    cfg["linux"]["namespaces"].as_array_mut().unwrap().push(n);
}

fn add_mount(cfg: &mut Value, m: Value) {
    cfg["mounts"].as_array_mut().unwrap().push(m);
}

/// Mountinfo lines: (mount point, per-mount options, optional fields, fstype, root).
struct MountLine {
    root: String,
    point: String,
    opts: String,
    optional: String,
    fstype: String,
}

fn parse_mountinfo(text: &str) -> Vec<MountLine> {
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            Some(MountLine {
                root: pre.get(3)?.to_string(),
                point: pre.get(4)?.to_string(),
                opts: pre.get(5)?.to_string(),
                optional: pre[6..].join(" "),
                fstype: post.split(' ').next()?.to_string(),
            })
        })
        .collect()
}

/// The (last, i.e. topmost) mountinfo line for mount point `point`.
fn mount_at<'a>(ms: &'a [MountLine], point: &str) -> &'a MountLine {
    ms.iter()
        .rev()
        .find(|m| m.point == point)
        .unwrap_or_else(|| panic!("no mount at {point}"))
}

fn has_opt(m: &MountLine, o: &str) -> bool {
    m.opts.split(',').any(|x| x == o)
}

/// A mount made on the host for one test, detached again on drop.
struct HostMount(PathBuf);

impl HostMount {
    fn tmpfs(at: &Path) -> HostMount {
        std::fs::create_dir_all(at).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            at,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap();
        HostMount(at.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

// ---- pid, uts, net, time ----------------------------------------------------------------------

#[test]
fn pid_namespace_entrypoint_is_pid_1_and_sees_only_its_own_processes() {
    if !require_root() {
        return;
    }
    // `for` and `echo` are shell builtins, so /proc lists exactly the shell and its sleep.
    let b = sh("echo self=$$; sleep 1000 & echo child=$!; \
                for p in /proc/[0-9]*; do echo pid=${p#/proc/}; done; \
                ps -o pid,comm; kill $!");
    let c = Ctr::new("pidns");
    let out = run_ok(&c, &b);
    assert!(out.contains("self=1\n"), "{out}");
    let child: String = out
        .lines()
        .find_map(|l| l.strip_prefix("child="))
        .expect("child pid")
        .to_string();
    let pids: BTreeSet<&str> = out.lines().filter_map(|l| l.strip_prefix("pid=")).collect();
    assert_eq!(pids, BTreeSet::from(["1", child.as_str()]), "{out}");
    // ps: sh, sleep, ps itself — and nothing from the host.
    let ps: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("PID"))
        .skip(1)
        .collect();
    assert_eq!(ps.len(), 3, "{out}");
    for l in ps {
        let pid: i32 = l.split_whitespace().next().unwrap().parse().unwrap();
        assert!(pid < 10, "unexpected process in the container: {l}");
    }
}

#[test]
fn uts_namespace_has_the_configured_hostname_and_domainname() {
    if !require_root() {
        return;
    }
    let host_before = nix::unistd::gethostname().unwrap();
    let mut b = sh("hostname; cat /proc/sys/kernel/domainname; uname -n");
    b.edit(|c| {
        c["hostname"] = json!("box-uts");
        c["domainname"] = json!("example.test");
    });
    let c = Ctr::new("uts");
    let out = run_ok(&c, &b);
    assert_eq!(out, "box-uts\nexample.test\nbox-uts\n");
    assert_eq!(nix::unistd::gethostname().unwrap(), host_before);
}

#[test]
fn network_namespace_has_only_lo_and_it_is_up() {
    if !require_root() {
        return;
    }
    let b = sh("ls /sys/class/net; ip -o link");
    let c = Ctr::new("netns");
    let out = run_ok(&c, &b);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("lo"), "{out}");
    let links: Vec<&str> = lines.collect();
    assert_eq!(links.len(), 1, "only lo expected: {out}");
    let flags = links[0].split(['<', '>']).nth(1).unwrap_or_default();
    assert!(
        flags.split(',').any(|f| f == "UP"),
        "lo is not up: {}",
        links[0]
    );
}

#[test]
fn time_namespace_applies_the_configured_offsets() {
    if !require_root() {
        return;
    }
    // /proc/uptime follows CLOCK_BOOTTIME; the monotonic offset shows in timens_offsets.
    let mut b = sh("cat /proc/uptime; cat /proc/self/timens_offsets");
    b.edit(|c| {
        set_ns(c, "time", None);
        c["linux"]["timeOffsets"] = json!({
            "monotonic": {"secs": 86400, "nanosecs": 0},
            "boottime": {"secs": 172800, "nanosecs": 0}
        });
    });
    let c = Ctr::new("timens");
    let out = run_ok(&c, &b);
    let up: f64 = out
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{out}"));
    assert!(up >= 172800.0, "uptime {up} lacks the boottime offset");
    let host_up: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The container read its clock first; the host has run on for at most a few seconds since.
    assert!(up - host_up > 172000.0, "uptime {up} vs host {host_up}");
    let offs: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(offs.contains(&vec!["monotonic", "86400", "0"]), "{out}");
    assert!(offs.contains(&vec!["boottime", "172800", "0"]), "{out}");
}

// ---- namespace identity from the host --------------------------------------------------------

#[test]
fn each_requested_namespace_is_new_and_an_unrequested_one_is_the_hosts() {
    if !require_root() {
        return;
    }
    let (_c, _b, pid) = sleeper("nsnew", |c| {
        set_ns(c, "time", None);
        set_ns(c, "cgroup", None);
        drop_ns(c, "network");
    });
    let pid = pid.to_string();
    for kind in ["pid", "mnt", "uts", "ipc", "cgroup", "time"] {
        assert_ne!(
            ns_of(&pid, kind),
            ns_of("self", kind),
            "{kind} namespace is the host's"
        );
    }
    assert_eq!(
        ns_of(&pid, "net"),
        ns_of("self", "net"),
        "net was not requested"
    );
    assert_eq!(
        ns_of(&pid, "user"),
        ns_of("self", "user"),
        "user was not requested"
    );
}

#[test]
fn network_namespace_is_new_when_requested() {
    if !require_root() {
        return;
    }
    let (_c, _b, pid) = sleeper("netnew", |_| {});
    assert_ne!(ns_of(&pid.to_string(), "net"), ns_of("self", "net"));
}

#[test]
fn namespaces_given_by_path_are_joined() {
    if !require_root() {
        return;
    }
    // A leaves a mark in each namespace that B can only see by sharing it.
    let (_a, _ab, apid) = sleeper("joina", |c| {
        c["hostname"] = json!("alpha");
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_default_ttl": "77", "kernel.shmmax": "1234567"});
    });
    let a = apid.to_string();
    let join = |c: &mut Value| {
        c["hostname"] = Value::Null;
        set_ns(c, "network", Some(format!("/proc/{a}/ns/net")));
        set_ns(c, "uts", Some(format!("/proc/{a}/ns/uts")));
        set_ns(c, "ipc", Some(format!("/proc/{a}/ns/ipc")));
    };
    let mut b = sh("hostname; cat /proc/sys/net/ipv4/ip_default_ttl /proc/sys/kernel/shmmax");
    b.edit(join);
    let cb = Ctr::new("joinb");
    let out = run_ok(&cb, &b);
    assert_eq!(
        out, "alpha\n77\n1234567\n",
        "B does not share A's namespaces"
    );

    // From the host: B's init sits in A's namespaces, but has its own mount namespace.
    let (_c2, _b2, bpid) = sleeper("joinb2", join);
    let bpid = bpid.to_string();
    for kind in ["net", "uts", "ipc"] {
        assert_eq!(ns_of(&bpid, kind), ns_of(&a, kind), "{kind} not joined");
    }
    assert_ne!(ns_of(&bpid, "mnt"), ns_of(&a, "mnt"));
}

#[test]
fn a_pid_namespace_given_by_path_is_joined() {
    if !require_root() {
        return;
    }
    let (_a, _ab, apid) = sleeper("pidja", |_| {});
    let a = apid.to_string();
    let mut b =
        sh("cat /proc/1/comm; echo self=$$; for p in /proc/[0-9]*; do echo pid=${p#/proc/}; done");
    b.edit(|c| set_ns(c, "pid", Some(format!("/proc/{a}/ns/pid"))));
    let c = Ctr::new("pidjb");
    let out = run_ok(&c, &b);
    // A's sleep is pid 1 of the shared namespace; B's shell is another member of it.
    assert!(out.starts_with("sleep\n"), "{out}");
    assert!(!out.contains("self=1\n"), "{out}");
    let pids: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("pid=")).collect();
    assert!(pids.contains(&"1") && pids.len() == 2, "{out}");

    let mut b2 = Bundle::new(&["/bin/sleep", "1000"]);
    b2.edit(|c| set_ns(c, "pid", Some(format!("/proc/{a}/ns/pid"))));
    let c2 = Ctr::new("pidjb2");
    c2.create_bg(&b2);
    assert_eq!(ns_of(&c2.pid().to_string(), "pid"), ns_of(&a, "pid"));
}

/// The fixture belongs to host root, which is unmapped in a user namespace: hand it to the
/// mapped root (host 100000).
fn chown_to_mapped_root(b: &Bundle) {
    let st = std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(st.success());
}

/// A user namespace of its own, container 0-65535 = host 100000-165535.
fn in_own_userns(b: &mut Bundle) {
    chown_to_mapped_root(b);
    b.edit(|c| {
        set_ns(c, "user", None);
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
}

#[test]
fn user_namespace_maps_root_to_the_configured_host_ids() {
    if !require_root() {
        return;
    }
    let mut b = sh(
        "id; cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/made; \
                    stat -c '%u %g' /tmp/made; sleep 1000",
    );
    in_own_userns(&mut b);
    let c = Ctr::new("userns");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    let pid = c.pid();
    let made = b.rootfs().join("tmp/made");
    assert!(
        wait_until(Duration::from_secs(10), || made.exists()),
        "entrypoint did not run"
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap()
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
    };
    assert_eq!(line("Uid:"), ["100000"; 4], "{status}");
    assert_eq!(line("Gid:"), ["100000"; 4], "{status}");
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    assert_ne!(ns_of(&pid.to_string(), "user"), ns_of("self", "user"));
    // The file the container's root made belongs to host uid 100000.
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(&made).unwrap();
    assert_eq!((md.uid(), md.gid()), (100000, 100000));
}

#[test]
fn user_namespace_inside_view_is_root_with_the_mapping() {
    if !require_root() {
        return;
    }
    let mut b = sh("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map");
    in_own_userns(&mut b);
    let c = Ctr::new("usernsin");
    let out = run_ok(&c, &b);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec!["0"],
            vec!["0"],
            vec!["0", "100000", "65536"],
            vec!["0", "100000", "65536"]
        ],
        "{out}"
    );
}

// ---- root filesystem and mounts ----------------------------------------------------------------

#[test]
fn mount_namespace_shows_only_the_containers_mounts() {
    if !require_root() {
        return;
    }
    let b = sh("cat /proc/self/mountinfo; echo ---; ls /");
    let c = Ctr::new("mntns");
    let out = run_ok(&c, &b);
    let (mi, ls) = out.split_once("---\n").unwrap();
    assert!(!mi.contains("/work"), "a host path shows inside:\n{mi}");
    assert!(!ls.lines().any(|l| l == "work"), "{ls}");
    let ms = parse_mountinfo(mi);
    // pivot_root: "/" is the bundle's rootfs, and nothing of the host's tree is left mounted.
    let root = mount_at(&ms, "/");
    assert!(
        root.root.ends_with(&format!(
            "{}/rootfs",
            b.path().file_name().unwrap().to_str().unwrap()
        )),
        "/ is not the rootfs: {}",
        root.root
    );
    for m in &ms {
        assert!(
            m.point == "/"
                || ["/proc", "/dev", "/sys"]
                    .iter()
                    .any(|p| m.point.starts_with(p)),
            "unexpected mount {} inside:\n{mi}",
            m.point
        );
    }
}

#[test]
fn the_host_does_not_see_the_containers_mounts() {
    if !require_root() {
        return;
    }
    let (_c, b, _pid) = sleeper("mnthost", |_| {});
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let rootfs = b.rootfs();
    assert!(
        !host.contains(rootfs.to_str().unwrap()),
        "the container's rootfs mount leaked to the host:\n{host}"
    );
}

#[test]
fn no_pivot_runs_in_the_rootfs_too() {
    if !require_root() {
        return;
    }
    let b = sh("cat /proc/self/mountinfo; echo ---; cat /etc/hostname; ls /");
    let c = Ctr::new("nopivot");
    let o = c.run(&["run", "--no-pivot", "-b", bpath(&b), "{id}"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (mi, rest) = out.split_once("---\n").unwrap();
    assert!(rest.starts_with("hookrun\n"), "{rest}");
    assert!(!rest.lines().any(|l| l == "work"), "{rest}");
    assert!(!mi.contains("/work"), "{mi}");
    let ms = parse_mountinfo(mi);
    assert!(mount_at(&ms, "/").root.ends_with("/rootfs"), "{mi}");
    assert!(ms.iter().any(|m| m.point == "/proc" && m.fstype == "proc"));
}

#[test]
fn a_readonly_root_refuses_writes() {
    if !require_root() {
        return;
    }
    let mut b = sh("touch /newfile; echo rc=$?; touch /tmp/newfile; echo rc=$?");
    b.edit(|c| c["root"]["readonly"] = json!(true));
    let c = Ctr::new("rofs");
    let (code, out, err) = c.run_fg(&b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "rc=1\nrc=1\n", "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!b.rootfs().join("newfile").exists());
}

#[test]
fn a_writable_root_accepts_writes() {
    if !require_root() {
        return;
    }
    let b = sh("echo hi > /newfile");
    let c = Ctr::new("rwfs");
    run_ok(&c, &b);
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("newfile")).unwrap(),
        "hi\n"
    );
}

#[test]
fn tmpfs_mount_options_are_applied() {
    if !require_root() {
        return;
    }
    let mut b = sh("grep ' /scratch ' /proc/mounts; stat -c %a /scratch; \
                    grep ' /scratch ' /proc/self/mountinfo");
    b.edit(|c| {
        add_mount(
            c,
            json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=1750"]}),
        )
    });
    let c = Ctr::new("tmpfs");
    let out = run_ok(&c, &b);
    let mut lines = out.lines();
    let mounts = lines.next().unwrap();
    let f: Vec<&str> = mounts.split(' ').collect();
    assert_eq!(&f[..3], ["tmpfs", "/scratch", "tmpfs"], "{out}");
    let o: Vec<&str> = f[3].split(',').collect();
    for want in ["nosuid", "nodev", "noexec", "size=1024k", "mode=1750"] {
        assert!(o.contains(&want), "{want} missing: {mounts}");
    }
    assert_eq!(lines.next(), Some("1750"));
    let ms = parse_mountinfo(&out);
    let m = mount_at(&ms, "/scratch");
    for want in ["nosuid", "nodev", "noexec"] {
        assert!(has_opt(m, want), "{want} missing from {}", m.opts);
    }
}

#[test]
fn bind_mounts_share_files_with_the_host_and_ro_refuses_writes() {
    if !require_root() {
        return;
    }
    let shared = tempfile::tempdir().unwrap();
    let ro = tempfile::tempdir().unwrap();
    std::fs::write(ro.path().join("given"), "from host\n").unwrap();
    let mut b = sh("echo from container > /shared/out; cat /ro/given; \
                    touch /ro/x; echo rc=$?");
    b.edit(|c| {
        add_mount(
            c,
            json!({"destination": "/shared", "type": "bind", "source": shared.path(),
                   "options": ["bind"]}),
        );
        add_mount(
            c,
            json!({"destination": "/ro", "type": "bind", "source": ro.path(),
                   "options": ["bind", "ro"]}),
        );
    });
    let c = Ctr::new("bind");
    let (code, out, err) = c.run_fg(&b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "from host\nrc=1\n", "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert_eq!(
        std::fs::read_to_string(shared.path().join("out")).unwrap(),
        "from container\n"
    );
    assert!(!ro.path().join("x").exists());
}

#[test]
fn bind_mount_flags_show_in_mountinfo() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut b = sh("cat /proc/self/mountinfo");
    b.edit(|c| {
        add_mount(
            c,
            json!({"destination": "/locked", "type": "bind", "source": dir.path(),
                   "options": ["rbind", "nosuid", "nodev", "noexec", "ro"]}),
        );
        add_mount(
            c,
            json!({"destination": "/open", "type": "bind", "source": dir.path(),
                   "options": ["rbind", "rw"]}),
        );
    });
    let c = Ctr::new("bindflags");
    let out = run_ok(&c, &b);
    let ms = parse_mountinfo(&out);
    let locked = mount_at(&ms, "/locked");
    for o in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(has_opt(locked, o), "{o} missing: {}", locked.opts);
    }
    let open = mount_at(&ms, "/open");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(!has_opt(open, o), "{o} unexpectedly set: {}", open.opts);
    }
    assert!(has_opt(open, "rw"), "{}", open.opts);
}

#[test]
fn rbind_carries_submounts_and_bind_does_not() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let _sub = HostMount::tmpfs(&dir.path().join("sub"));
    std::fs::write(dir.path().join("sub/marker"), "in submount\n").unwrap();
    let mut b = sh("cat /r/sub/marker; echo ---; ls -A /b/sub; echo end");
    b.edit(|c| {
        add_mount(
            c,
            json!({"destination": "/r", "type": "bind", "source": dir.path(),
                   "options": ["rbind"]}),
        );
        add_mount(
            c,
            json!({"destination": "/b", "type": "bind", "source": dir.path(),
                   "options": ["bind"]}),
        );
    });
    let c = Ctr::new("rbind");
    let out = run_ok(&c, &b);
    assert_eq!(out, "in submount\n---\nend\n");
}

#[test]
fn mount_propagation_options_are_applied() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut b = sh("cat /proc/self/mountinfo");
    b.edit(|c| {
        for (dst, p) in [
            ("/p-shared", "shared"),
            ("/p-private", "rprivate"),
            ("/p-slave", "rslave"),
        ] {
            add_mount(
                c,
                json!({"destination": dst, "type": "bind", "source": dir.path(),
                       "options": ["rbind", p]}),
            );
        }
    });
    let c = Ctr::new("mountprop");
    let out = run_ok(&c, &b);
    let ms = parse_mountinfo(&out);
    assert!(
        mount_at(&ms, "/p-shared").optional.contains("shared:"),
        "{out}"
    );
    assert!(
        !mount_at(&ms, "/p-private").optional.contains("shared:"),
        "{out}"
    );
    assert!(
        !mount_at(&ms, "/p-slave").optional.contains("shared:"),
        "{out}"
    );
}

#[test]
fn rootfs_propagation_is_applied_to_the_root() {
    if !require_root() {
        return;
    }
    for (prop, shared) in [
        ("shared", true),
        ("private", false),
        ("rslave", false),
        ("unbindable", false),
    ] {
        let mut b = sh("cat /proc/self/mountinfo");
        b.edit(|c| c["linux"]["rootfsPropagation"] = json!(prop));
        let c = Ctr::new("rootprop");
        let out = run_ok(&c, &b);
        let ms = parse_mountinfo(&out);
        let root = mount_at(&ms, "/");
        assert_eq!(
            root.optional.contains("shared:"),
            shared,
            "rootfsPropagation {prop}: / has {:?}",
            root.optional
        );
        if prop == "unbindable" {
            assert!(
                root.optional.contains("unbindable"),
                "/ has {:?}",
                root.optional
            );
        }
    }
}

#[test]
fn default_mounts_proc_dev_mqueue_devpts_cgroup_sysfs() {
    if !require_root() {
        return;
    }
    let b = sh(
        "cat /proc/mounts; echo ---; ls /sys/fs/cgroup/memory | grep -c '^memory\\.'; \
                touch /sys/x; echo rc=$?; mkdir /sys/fs/cgroup/memory/x; echo rc=$?",
    );
    let c = Ctr::new("defmounts");
    let (code, out, err) = c.run_fg(&b);
    assert_eq!(code, 0, "{err}");
    let (mounts, rest) = out.split_once("---\n").unwrap();
    let m: Vec<Vec<&str>> = mounts.lines().map(|l| l.split(' ').collect()).collect();
    let find = |dst: &str| {
        m.iter()
            .rev()
            .find(|f| f[1] == dst)
            .unwrap_or_else(|| panic!("{dst} is not mounted:\n{mounts}"))
    };
    assert_eq!(find("/proc")[2], "proc");
    assert_eq!(find("/dev")[2], "tmpfs");
    assert_eq!(find("/dev/pts")[2], "devpts");
    assert_eq!(find("/dev/mqueue")[2], "mqueue");
    assert_eq!(find("/dev/shm")[2], "tmpfs");
    let sys = find("/sys");
    assert_eq!(sys[2], "sysfs");
    assert!(sys[3].split(',').any(|o| o == "ro"), "{mounts}");
    let memory = find("/sys/fs/cgroup/memory");
    assert_eq!(memory[2], "cgroup");
    assert!(memory[3].split(',').any(|o| o == "ro"), "{mounts}");
    let mut rest = rest.lines();
    let n: u32 = rest.next().unwrap().parse().unwrap();
    assert!(n > 0, "no memory.* files under /sys/fs/cgroup/memory");
    assert_eq!(rest.collect::<Vec<_>>(), ["rc=1", "rc=1"], "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
}

// ---- /dev --------------------------------------------------------------------------------------

#[test]
fn dev_has_the_default_nodes_and_links() {
    if !require_root() {
        return;
    }
    let b = sh("for d in null zero full random urandom tty; do \
                  stat -c '%n %F %a %t:%T' /dev/$d; done; \
                for l in fd stdin stdout stderr ptmx; do echo /dev/$l $(readlink /dev/$l); done; \
                echo x > /dev/null && head -c 4 /dev/zero | wc -c");
    let c = Ctr::new("devs");
    let out = run_ok(&c, &b);
    let want = [
        "/dev/null character special file 666 1:3",
        "/dev/zero character special file 666 1:5",
        "/dev/full character special file 666 1:7",
        "/dev/random character special file 666 1:8",
        "/dev/urandom character special file 666 1:9",
        "/dev/tty character special file 666 5:0",
        "/dev/fd /proc/self/fd",
        "/dev/stdin /proc/self/fd/0",
        "/dev/stdout /proc/self/fd/1",
        "/dev/stderr /proc/self/fd/2",
        "/dev/ptmx pts/ptmx",
        "4",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), want);
}

#[test]
fn configured_devices_get_their_mode_and_owner() {
    if !require_root() {
        return;
    }
    // Root here lacks CAP_DAC_OVERRIDE (default capabilities), so the 0600 mode owned by uid
    // 1000 really keeps it out.
    let mut b = sh("stat -c '%F %a %t:%T %u:%g' /dev/mynull /dev/sub/myzero; \
                    echo hi > /dev/mynull || echo refused");
    b.edit(|c| {
        c["linux"]["devices"] = json!([
            {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
             "fileMode": 0o600, "uid": 1000, "gid": 1000},
            {"path": "/dev/sub/myzero", "type": "c", "major": 1, "minor": 5,
             "fileMode": 0o640, "uid": 0, "gid": 2000}
        ]);
    });
    let c = Ctr::new("mydev");
    let out = run_ok(&c, &b);
    assert_eq!(
        out,
        "character special file 600 1:3 1000:1000\n\
         character special file 640 1:5 0:2000\n\
         refused\n"
    );
}

// ---- masked and read-only paths, sysctl --------------------------------------------------------

#[test]
fn masked_paths_hide_files_and_directories() {
    if !require_root() {
        return;
    }
    // Files the kernel here may lack are masked only when present; /proc/timer_list and
    // /sys/firmware exist on every machine this runs on.
    assert!(!std::fs::read("/proc/timer_list").unwrap().is_empty());
    let b = sh(
        "wc -c < /proc/timer_list; if [ -e /proc/kcore ]; then wc -c < /proc/kcore; \
                else echo 0; fi; ls -A /sys/firmware | wc -l; touch /sys/firmware/x; echo rc=$?; \
                cat /proc/self/mountinfo",
    );
    let c = Ctr::new("masked");
    let (code, out, err) = c.run_fg(&b);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..4], ["0", "0", "0", "rc=1"], "{out}\n{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    let ms = parse_mountinfo(&out);
    let fw = mount_at(&ms, "/sys/firmware");
    assert_eq!(fw.fstype, "tmpfs");
    assert!(has_opt(fw, "ro"), "{}", fw.opts);
    let acpi = mount_at(&ms, "/proc/acpi");
    assert_eq!(acpi.fstype, "tmpfs");
    assert!(has_opt(acpi, "ro"), "{}", acpi.opts);
}

#[test]
fn without_masked_paths_the_files_are_readable() {
    if !require_root() {
        return;
    }
    let mut b = sh("wc -c < /proc/timer_list");
    b.edit(|c| c["linux"]["maskedPaths"] = json!([]));
    let c = Ctr::new("unmasked");
    let out = run_ok(&c, &b);
    assert_ne!(out.trim(), "0");
}

#[test]
fn readonly_paths_refuse_writes() {
    if !require_root() {
        return;
    }
    // The uts namespace is the container's own, so writing its hostname is harmless: refused
    // only by the read-only /proc/sys.
    let script = "echo changed > /proc/sys/kernel/hostname; echo rc=$?; hostname";
    let b = sh(script);
    let c = Ctr::new("ropaths");
    let (code, out, err) = c.run_fg(&b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "rc=1\nhookrun\n", "{err}");
    assert!(err.contains("Read-only file system"), "{err}");

    let mut b = sh(script);
    b.edit(|c| c["linux"]["readonlyPaths"] = json!([]));
    let c = Ctr::new("rwpaths");
    let (code, out, err) = c.run_fg(&b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "rc=0\nchanged\n", "{err}");
}

#[test]
fn sysctls_are_set_inside_only() {
    if !require_root() {
        return;
    }
    let host_shmmax = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let mut b = sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax");
    b.edit(|c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000000"});
    });
    let c = Ctr::new("sysctl");
    let out = run_ok(&c, &b);
    assert_eq!(out, "1\n1000000\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        host_shmmax
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
}

#[test]
fn joining_a_user_namespace_by_path_owns_the_new_namespaces() {
    if !require_root() {
        return;
    }
    // A: a container with its own user namespace.
    let mut a = Bundle::new(&["sleep", "1000"]);
    in_own_userns(&mut a);
    let ca = Ctr::new("userns-a");
    ca.create_bg(&a);
    ca.ok(&["start", "{id}"]);
    let apid = ca.pid();
    // B: joins A's user namespace, with new pid, mount, uts... namespaces of its own, which
    // must belong to A's user namespace (else B's root could not even mount its /proc).
    let mut b = sh("id -u; echo pid=$$; cat /proc/self/uid_map; ls /proc | grep -c '^[0-9]'");
    chown_to_mapped_root(&b);
    let upath = format!("/proc/{apid}/ns/user");
    b.edit(|c| set_ns(c, "user", Some(upath.clone())));
    let cb = Ctr::new("userns-b");
    let out = run_ok(&cb, &b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    assert_eq!(lines[1], "pid=1", "{out}");
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    // sh, ls and grep: B's /proc is its own pid namespace's
    assert!(lines[3].parse::<u32>().unwrap() <= 3, "{out}");
}
