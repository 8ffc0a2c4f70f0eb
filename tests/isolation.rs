//! What a container is isolated from, as seen from inside it (busybox) and from the host's
//! /proc: namespaces (new and joined by path) and sysctls. The filesystem (mounts, /dev, masked
//! and read-only paths) is tests/mounts.rs.

mod common;

use std::collections::BTreeSet;
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

// ---- sysctl ------------------------------------------------------------------------------------

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
