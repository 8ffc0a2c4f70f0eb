//! Failure is actionable and leaves nothing behind: for each way `create` can fail, it exits
//! non-zero within a bound with one line on stderr naming the problem, and afterwards there is no
//! state dir, no process and no mount left from the attempt.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// A bundle whose entrypoint would leave a trace if it ever ran; its `$0` is the bundle path, so
/// a leftover entrypoint is found by `processes_matching` like a leftover init is.
fn bundle() -> Bundle {
    let mut b = Bundle::new(&["sh"]);
    let me = b.path().to_str().unwrap().to_string();
    b.edit(|c| c["process"]["args"] = json!(["sh", "-c", "touch /tmp/ran; sleep 1000", me]));
    b
}

/// `create` the bundle (after `edit`), and check the failure contract: non-zero exit, one
/// `hookrun: …` line containing every string of `want`, and nothing left behind.
fn fails_cleanly(name: &str, b: &Bundle, want: &[&str]) -> String {
    fails_cleanly_as(name, b, want, |_| {})
}

/// [`fails_cleanly`], with `how` changing the `hookrun create` command before it starts.
fn fails_cleanly_as(
    name: &str,
    b: &Bundle,
    want: &[&str],
    how: impl FnOnce(&mut std::process::Command),
) -> String {
    let c = Ctr::new(name);
    let bundle = b.path().to_str().unwrap();
    let mut cmd = c.command(&["create", "-b", bundle, "{id}"]);
    how(&mut cmd);
    let o = Bg::start(cmd).wait(Duration::from_secs(20));
    assert!(
        o.code.is_some_and(|c| c != 0),
        "{name}: create should fail, got {:?}; stderr: {}",
        o.code,
        o.stderr
    );
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{name}: one line on stderr, got {:?}",
        o.stderr
    );
    let line = lines[0];
    assert!(line.starts_with("hookrun: "), "{name}: {line}");
    for w in want {
        assert!(line.contains(w), "{name}: {line:?} should name {w:?}");
    }
    assert!(o.stdout.is_empty(), "{name}: stdout {:?}", o.stdout);

    // Nothing behind: no state dir, no process, no mount, and the entrypoint never ran.
    let left: Vec<_> = std::fs::read_dir(c.root.path())
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "{name}: left {left:?} under the state root"
    );
    let procs = processes_matching(bundle);
    assert!(procs.is_empty(), "{name}: processes left: {procs:?}");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mi.lines().any(|l| l.contains(bundle)),
        "{name}: mounts left: {mi}"
    );
    let ls = c.ok(&["list", "-q"]);
    assert!(ls.is_empty(), "{name}: list shows {ls:?}");
    assert!(
        !b.rootfs().join("tmp/ran").exists(),
        "{name}: entrypoint ran"
    );
    line.to_string()
}

fn push_mount(b: &mut Bundle, m: Value) {
    b.edit(|c| c["mounts"].as_array_mut().unwrap().push(m));
}

#[test]
fn unknown_namespace_type_names_the_field() {
    if !require_root() {
        return;
    }
    let mut b = bundle();
    b.edit(|c| c["linux"]["namespaces"][0]["type"] = json!("nett"));
    let line = fails_cleanly(
        "nett",
        &b,
        &["config.json", "linux.namespaces[0].type", "nett"],
    );
    assert!(line.contains("unknown"), "{line}");
}

#[test]
fn malformed_json_names_the_file_and_place() {
    if !require_root() {
        return;
    }
    let b = bundle();
    let text = serde_json::to_string_pretty(&b.config).unwrap();
    std::fs::write(b.path().join("config.json"), &text[..text.len() / 2]).unwrap();
    fails_cleanly("badjson", &b, &["config.json", "line"]);
}

#[test]
fn missing_config_json() {
    if !require_root() {
        return;
    }
    let b = bundle();
    std::fs::remove_file(b.path().join("config.json")).unwrap();
    fails_cleanly(
        "noconfig",
        &b,
        &["config.json", "no such file or directory"],
    );
}

#[test]
fn missing_rootfs() {
    if !require_root() {
        return;
    }
    let mut b = bundle();
    b.edit(|c| c["root"]["path"] = json!("no-such-rootfs"));
    fails_cleanly(
        "norootfs",
        &b,
        &["root.path", "no-such-rootfs", "no such file or directory"],
    );
}

#[test]
fn missing_entrypoint() {
    if !require_root() {
        return;
    }
    let mut b = bundle();
    b.edit(|c| c["process"]["args"] = json!(["/bin/no-such-entrypoint", "x"]));
    fails_cleanly(
        "noentry",
        &b,
        &["/bin/no-such-entrypoint", "no such file or directory"],
    );
}

#[test]
fn missing_entrypoint_on_path() {
    if !require_root() {
        return;
    }
    let mut b = bundle();
    b.edit(|c| c["process"]["args"] = json!(["no-such-command"]));
    fails_cleanly(
        "nocmd",
        &b,
        &["no-such-command", "no such file or directory"],
    );
}

#[test]
fn entrypoint_not_executable() {
    if !require_root() {
        return;
    }
    let mut b = bundle();
    assert!(
        b.rootfs().join("bin/notexec").is_file(),
        "fixture has /bin/notexec"
    );
    b.edit(|c| c["process"]["args"] = json!(["/bin/notexec"]));
    fails_cleanly("notexec", &b, &["/bin/notexec", "permission denied"]);
}

#[test]
fn bind_mount_source_missing() {
    if !require_root() {
        return;
    }
    let mut b = bundle();
    let src = b.path().join("no-such-source");
    push_mount(
        &mut b,
        json!({"destination": "/data", "type": "bind", "source": src, "options": ["rbind"]}),
    );
    fails_cleanly(
        "bindsrc",
        &b,
        &["/data", "no-such-source", "no such file or directory"],
    );
}

const CAP_SYS_RESOURCE: u32 = 24;

/// A `pre_exec` step that takes capability `cap` out of every set of the process about to exec
/// (bounding first, so root's exec cannot get it back; then ambient, effective, permitted and
/// inheritable). It runs in the forked child: raw prctl/capget/capset only, no allocation.
fn without_cap(cap: u32) -> impl FnMut() -> std::io::Result<()> {
    move || drop_cap(cap)
}

fn drop_cap(cap: u32) -> std::io::Result<()> {
    const VERSION_3: u32 = 0x2008_0522;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let check = |rc: libc::c_long| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: prctl with integer arguments on this process only.
    check(
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) }
            as libc::c_long,
    )?;
    // SAFETY: as above.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_LOWER as libc::c_ulong,
            cap as libc::c_ulong,
            0,
            0,
        )
    } as libc::c_long)?;
    let mut hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capget fills the two version-3 data structs we own; the header is valid.
    check(unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) })?;
    let (word, bit) = ((cap / 32) as usize, !(1u32 << (cap % 32)));
    data[word].effective &= bit;
    data[word].permitted &= bit;
    data[word].inheritable &= bit;
    // SAFETY: capset with the header and the two structs capget filled, one bit cleared.
    check(unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) })
}

/// The capability sets (`CapBnd:` etc. of /proc/PID/status) of a process started like hookrun
/// is below, with `cap` dropped: which of them still hold it.
fn sets_still_holding(cap: u32) -> Vec<String> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("cat");
    cmd.arg("/proc/self/status");
    // SAFETY: the step only makes prctl/capget/capset syscalls (async-signal-safe).
    unsafe { cmd.pre_exec(without_cap(cap)) };
    let o = cmd.output().unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(":\t")?;
            let bits = u64::from_str_radix(v.trim(), 16).ok()?;
            (k.starts_with("Cap") && bits & (1 << cap) != 0).then(|| k.to_string())
        })
        .collect()
}

#[test]
fn rlimit_above_the_hard_limit() {
    if !require_root() {
        return;
    }
    // Root usually holds CAP_SYS_RESOURCE, with which any hard limit up to fs.nr_open can be
    // raised: hookrun runs without it, so the init's setrlimit really fails.
    assert_eq!(sets_still_holding(CAP_SYS_RESOURCE), Vec::<String>::new());
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills a struct we own.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    let hard = (lim.rlim_max + 1).max(1_048_576);
    let mut b = bundle();
    b.edit(|c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard}])
    });
    fails_cleanly_as(
        "rlimit",
        &b,
        &[
            "setrlimit RLIMIT_NOFILE",
            &format!("hard {hard}"),
            "operation not permitted",
            &format!("the hard limit here is {}", lim.rlim_max),
            "CAP_SYS_RESOURCE",
        ],
        |cmd| {
            use std::os::unix::process::CommandExt;
            // SAFETY: the step only makes prctl/capget/capset syscalls (async-signal-safe).
            unsafe { cmd.pre_exec(without_cap(CAP_SYS_RESOURCE)) };
        },
    );
}

#[test]
fn sysctl_that_is_not_namespaced() {
    if !require_root() {
        return;
    }
    let mut b = bundle();
    b.edit(|c| c["linux"]["sysctl"] = json!({"vm.swappiness": "10"}));
    fails_cleanly("sysctl", &b, &["linux.sysctl.vm.swappiness", "namespaced"]);
}

#[test]
fn unknown_filesystem_type() {
    if !require_root() {
        return;
    }
    let mut b = bundle();
    push_mount(
        &mut b,
        json!({"destination": "/x", "type": "nosuchfs", "source": "none"}),
    );
    fails_cleanly("nosuchfs", &b, &["/x", "nosuchfs"]);
}

#[test]
fn hostname_without_a_uts_namespace() {
    if !require_root() {
        return;
    }
    let mut b = bundle();
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "uts");
        c["hostname"] = json!("web");
    });
    fails_cleanly("hostname", &b, &["hostname", "uts namespace"]);
}

#[test]
fn a_file_where_a_mount_point_directory_must_go() {
    if !require_root() {
        return;
    }
    // Found only inside the init, after the namespaces and the first mounts exist.
    let mut b = bundle();
    push_mount(
        &mut b,
        json!({"destination": "/etc/passwd/sub", "type": "tmpfs", "source": "tmpfs"}),
    );
    fails_cleanly(
        "fileinway",
        &b,
        &["mount", "/etc/passwd/sub", "not a directory"],
    );
}

#[test]
fn a_device_path_taken_by_a_directory() {
    if !require_root() {
        return;
    }
    // /dev/pts is a directory (the devpts mount) by the time devices are made.
    let mut b = bundle();
    b.edit(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/pts", "type": "c", "major": 1, "minor": 3}])
    });
    fails_cleanly("devconflict", &b, &["device", "/dev/pts", "directory"]);
}

#[test]
fn a_bind_over_proc_is_refused() {
    if !require_root() {
        return;
    }
    let mut b = bundle();
    push_mount(
        &mut b,
        json!({"destination": "/proc/sys", "type": "bind", "source": "/tmp", "options": ["rbind"]}),
    );
    fails_cleanly("overproc", &b, &["/proc/sys", "refused"]);
}

#[test]
fn pid_file_in_a_missing_directory() {
    if !require_root() {
        return;
    }
    // The last step of create, after the init is ready and state.json is written: all undone.
    let b = bundle();
    let c = Ctr::new("pidfile");
    let bundle = b.path().to_str().unwrap();
    let pidfile = b.path().join("no-such-dir/init.pid");
    let o = c.run_files(&[
        "create",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "-b",
        bundle,
        "{id}",
    ]);
    assert_eq!(o.code, Some(1), "{o:?}");
    let line = o.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains("no-such-dir") && line.contains("no such file or directory"),
        "{line}"
    );
    assert!(std::fs::read_dir(c.root.path()).unwrap().next().is_none());
    assert!(processes_matching(bundle).is_empty());
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(bundle));
}

#[test]
fn missing_bundle_directory() {
    if !require_root() {
        return;
    }
    let b = bundle();
    let gone = b.path().join("not-here");
    let c = Ctr::new("nobundle");
    let o = c.run_files(&["create", "-b", gone.to_str().unwrap(), "{id}"]);
    assert_eq!(o.code, Some(1), "{o:?}");
    let line = o.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains("not-here") && line.contains("no such file or directory"),
        "{line}"
    );
    assert!(std::fs::read_dir(c.root.path()).unwrap().next().is_none());
}

#[test]
fn a_failed_create_does_not_block_a_good_one_with_the_same_id() {
    if !require_root() {
        return;
    }
    // After a failure inside the init, the id is free again and the root is usable.
    let mut b = bundle();
    b.edit(|c| c["process"]["args"] = json!(["/bin/notexec"]));
    let c = Ctr::new("retry");
    let o = c.run_files(&["create", "-b", b.path().to_str().unwrap(), "{id}"]);
    assert_eq!(o.code, Some(1), "{o:?}");
    b.edit(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    c.create_bg(&b);
    assert_eq!(c.status(), "created");
}

#[test]
fn run_fails_like_create_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let mut b = bundle();
    b.edit(|c| c["process"]["args"] = json!(["/bin/no-such-entrypoint"]));
    let c = Ctr::new("runfail");
    let o = c.run_files(&["run", "-b", b.path().to_str().unwrap(), "{id}"]);
    assert_ne!(o.code, Some(0), "{o:?}");
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{o:?}");
    assert!(lines[0].contains("no such file or directory"), "{o:?}");
    assert!(!c.state_dir().exists());
    assert!(processes_matching(b.path().to_str().unwrap()).is_empty());
}
