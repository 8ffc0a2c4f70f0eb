//! `hookrun exec`: the join path places the new process in every namespace and cgroup of the
//! container, with the container's process settings unless overridden.
mod common;
use common::*;

use serde_json::json;

fn running(c: &Ctr, b: &Bundle) -> i32 {
    c.create_bg(b);
    c.ok(&["start", "{id}"]);
    c.pid()
}

fn exec_out(c: &Ctr, args: &[&str]) -> (Option<i32>, String, String) {
    let mut full = vec!["exec"];
    full.extend_from_slice(args);
    let o = c.run_files(&full);
    (o.code, o.stdout, o.stderr)
}

#[test]
fn an_exec_process_shares_every_namespace_and_cgroup_of_the_init() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "mount"}, {"type": "cgroup"}
        ]);
    });
    let c = Ctr::new("execns");
    let init = running(&c, &b);
    let pidfile = c.root.path().join("exec.pid");
    let (code, _, err) = exec_out(
        &c,
        &[
            "-d",
            "--pid-file",
            pidfile.to_str().unwrap(),
            &c.id,
            "sleep",
            "1000",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    assert_ne!(pid, init);
    for ns in ["pid", "net", "ipc", "uts", "mnt", "cgroup", "user", "time"] {
        let a = std::fs::read_link(format!("/proc/{init}/ns/{ns}")).unwrap();
        let b = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_eq!(a, b, "{ns} namespace differs");
        if ns != "user" && ns != "time" {
            assert_ne!(
                a,
                std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap(),
                "{ns} is the host's"
            );
        }
    }
    let cg = |p: i32| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cg(init), cg(pid));
    assert_eq!(
        std::fs::read_link(format!("/proc/{init}/root")).unwrap(),
        std::fs::read_link(format!("/proc/{pid}/root")).unwrap()
    );
}

#[test]
fn exit_status_and_output_come_back() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("execrc");
    running(&c, &b);
    let (code, out, _) = exec_out(
        &c,
        &[&c.id, "sh", "-c", "echo pid=$$ host=$(hostname); exit 7"],
    );
    assert_eq!(code, Some(7));
    assert!(out.contains("host=hookrun"), "{out}");
    assert!(!out.contains("pid=1 "), "{out}");
    let (code, _, _) = exec_out(&c, &[&c.id, "sh", "-c", "kill -9 $$"]);
    assert_eq!(code, Some(137));
}

#[test]
fn settings_are_inherited_unless_overridden() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(&["sleep", "1000"]);
    b.edit(|c| {
        c["process"]["env"] = json!(["PATH=/bin", "FROM_CONFIG=yes"]);
        c["process"]["noNewPrivileges"] = json!(true);
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]
        });
    });
    let c = Ctr::new("execset");
    running(&c, &b);
    let (code, out, err) = exec_out(
        &c,
        &[
            &c.id,
            "sh",
            "-c",
            "echo $FROM_CONFIG; grep -E 'NoNewPrivs|CapBnd' /proc/self/status; id -u; pwd",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("yes"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("CapBnd:\t0000000000000020"), "{out}");
    let (code, out, err) = exec_out(
        &c,
        &[
            "-e",
            "FROM_CONFIG=over",
            "-u",
            "1000:1000",
            "--cwd",
            "/tmp",
            "--cap",
            "CAP_NET_RAW",
            &c.id,
            "sh",
            "-c",
            "echo $FROM_CONFIG; id -u; id -g; pwd; grep CapBnd /proc/self/status",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..4], ["over", "1000", "1000", "/tmp"], "{out}");
    assert!(out.contains("CapBnd:\t0000000000002020"), "{out}");
}

#[test]
fn a_process_json_replaces_the_settings() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("execjson");
    running(&c, &b);
    let pj = c.root.path().join("process.json");
    std::fs::write(
        &pj,
        json!({"args": ["sh", "-c", "echo $ONLY; id -u"], "cwd": "/", "env": ["ONLY=this", "PATH=/bin"],
               "user": {"uid": 65534, "gid": 65534}})
        .to_string(),
    )
    .unwrap();
    let (code, out, err) = exec_out(&c, &["--process", pj.to_str().unwrap(), &c.id]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "this\n65534\n");
    std::fs::write(&pj, r#"{"args": ["sh"], "cwd": 5}"#).unwrap();
    let (code, _, err) = exec_out(&c, &["--process", pj.to_str().unwrap(), &c.id]);
    assert_ne!(code, Some(0));
    assert!(err.contains("cwd"), "{err}");
}

#[test]
fn exec_errors_are_clear() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("execerr");
    running(&c, &b);
    let (code, _, err) = exec_out(&c, &[&c.id, "/no/such/binary"]);
    // runc's status for an exec that could not start, and its wording.
    assert_eq!(code, Some(255));
    assert!(err.contains("exec failed: "), "{err}");
    assert!(
        err.contains("exec /no/such/binary: no such file or directory"),
        "{err}"
    );
    let (code, _, err) = exec_out(&c, &["nope-not-here", "true"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("container \"nope-not-here\" does not exist"),
        "{err}"
    );
    c.ok(&["kill", "{id}", "KILL"]);
    c.wait_status("stopped");
    let (code, _, err) = exec_out(&c, &[&c.id, "true"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("stopped"), "{err}");
}

#[test]
fn exec_with_a_terminal_in_the_foreground() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("exectty");
    running(&c, &b);
    let (code, out, err) = exec_out(&c, &["-t", &c.id, "sh", "-c", "tty; exit 3"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(out.contains("/dev/pts/"), "{out}");
}

#[test]
fn a_process_json_without_user_runs_as_root_with_the_containers_limits() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(&["sleep", "1000"]);
    b.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(true);
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]
        });
    });
    let c = Ctr::new("execbare");
    running(&c, &b);
    let pj = c.root.path().join("process.json");
    // What runc's users write: no user, no capabilities, no env.
    std::fs::write(
        &pj,
        json!({"args": ["/bin/sh", "-c", "id -u; id -g; grep -E 'CapBnd|NoNewPrivs' /proc/self/status"], "cwd": "/"})
            .to_string(),
    )
    .unwrap();
    let (code, out, err) = exec_out(&c, &["-p", pj.to_str().unwrap(), &c.id]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["0", "0"], "{out}");
    // The container's limits, not the runtime's: a bare file gains nothing.
    assert!(out.contains("CapBnd:\t0000000000000020"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    // Overrides and a process.json do not mix.
    let (code, _, err) = exec_out(&c, &["-p", pj.to_str().unwrap(), "-u", "5", &c.id]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("--user cannot be combined with --process"),
        "{err}"
    );
}

/// The container's cgroup directory in the v1 `ctrl` hierarchy, from the init's /proc entry.
fn v1_dir(init: i32, ctrl: &str) -> Option<std::path::PathBuf> {
    let cg = std::fs::read_to_string(format!("/proc/{init}/cgroup")).ok()?;
    let rel = cg.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        ctrls
            .split(',')
            .any(|c| c == ctrl)
            .then(|| path.to_string())
    })?;
    let mount = std::path::Path::new("/sys/fs/cgroup").join(ctrl);
    mount
        .is_dir()
        .then(|| mount.join(rel.trim_start_matches('/')))
}

#[test]
fn paused_containers_are_refused_unless_asked_and_resume_is_not_blocked() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("execpause");
    let init = running(&c, &b);
    let Some(freezer) = v1_dir(init, "freezer") else {
        eprintln!("skipped: no v1 freezer hierarchy on this host");
        return;
    };
    c.ok(&["pause", "{id}"]);
    let (code, _, err) = exec_out(&c, &[&c.id, "echo", "ok"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("exec failed: container \"")
            && err.contains("cannot exec in a paused container (use --ignore-paused to override)"),
        "{err}"
    );
    // With --ignore-paused the process is placed in the frozen cgroup and waits there; the
    // container lock is not held meanwhile, so `resume` goes through and the process runs.
    let bg = c.spawn(&["exec", "--ignore-paused", "{id}", "echo", "ok"]);
    let procs = freezer.join("cgroup.procs");
    assert!(
        wait_until(std::time::Duration::from_secs(10), || {
            std::fs::read_to_string(&procs)
                .unwrap_or_default()
                .lines()
                .count()
                >= 2
        }),
        "the exec process never reached the frozen cgroup"
    );
    let o = c.run_files(&["resume", "{id}"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let o = bg.wait(std::time::Duration::from_secs(20));
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (Some(0), "ok\n"),
        "{}",
        o.stderr
    );
}

#[test]
fn exec_cgroup_joins_a_sub_cgroup_of_the_container() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("execsubcg");
    let init = running(&c, &b);
    let Some(mem) = v1_dir(init, "memory") else {
        eprintln!("skipped: no v1 memory hierarchy on this host");
        return;
    };
    let sub = mem.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let pidfile = c.root.path().join("sub.pid");
    let (code, _, err) = exec_out(
        &c,
        &[
            "-d",
            "--pid-file",
            pidfile.to_str().unwrap(),
            "--cgroup",
            "memory:sub",
            &c.id,
            "sleep",
            "1000",
        ],
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap_or_default()
        .parse()
        .unwrap_or(0);
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let init_cg = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    // SAFETY: kill(2) of the process this test started in the container.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_until(std::time::Duration::from_secs(10), || {
        std::fs::read_to_string(sub.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty())
    });
    std::fs::remove_dir(&sub).unwrap();
    assert_eq!(code, Some(0), "{err}");
    let line = |cg: &str, c: &str| {
        cg.lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|x| x.split(',').any(|y| y == c))
            })
            .map(|l| l.rsplit(':').next().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(
        line(&cg, "memory"),
        format!("{}/sub", line(&init_cg, "memory"))
    );
    // The other hierarchies keep the container's own cgroup.
    assert_eq!(line(&cg, "pids"), line(&init_cg, "pids"));

    for (arg, want) in [
        ("..", "exec failed: --cgroup: .. is not a sub cgroup path"),
        ("cpu:../..", ".. is not a sub cgroup path"),
        ("whaaat:/", "unknown controller whaaat"),
        (
            "nonexistent",
            "/nonexistent/cgroup.procs: no such file or directory",
        ),
    ] {
        let (code, _, err) = exec_out(&c, &["--cgroup", arg, &c.id, "true"]);
        assert_ne!(code, Some(0), "{arg}");
        assert!(err.contains(want), "{arg}: {err}");
        assert!(
            !err.contains("nonexistent") || err.contains(" adding pid "),
            "{err}"
        );
    }
}

#[test]
fn runc_spelled_flags() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("execflags");
    running(&c, &b);
    let (code, out, err) = exec_out(
        &c,
        &[
            "--user",
            "1000:1000",
            "--additional-gids",
            "100",
            "-g",
            "65534",
            "--no-new-privs",
            &c.id,
            "sh",
            "-c",
            "id -G; grep NoNewPrivs /proc/self/status",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "1000 100 65534\nNoNewPrivs:\t1\n");
    for (flag, value, want) in [
        (
            "--apparmor",
            "unconfined",
            "hookrun applies no AppArmor profiles",
        ),
        (
            "--process-label",
            "system_u:x",
            "hookrun applies no SELinux labels",
        ),
    ] {
        let (code, _, err) = exec_out(&c, &[flag, value, &c.id, "true"]);
        assert_ne!(code, Some(0), "{flag}");
        assert!(err.contains(want), "{flag}: {err}");
    }
}

#[test]
fn a_pid_file_that_cannot_be_written_leaves_no_process() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("execpidf");
    running(&c, &b);
    let (code, _, err) = exec_out(
        &c,
        &[
            "-d",
            "--pid-file",
            "/nonexistent/dir/pid",
            &c.id,
            "sleep",
            "4242424",
        ],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("exec failed: "), "{err}");
    assert!(processes_matching("sleep 4242424").is_empty());
}

#[test]
fn capabilities_outside_what_can_be_held_are_refused_clearly() {
    if !require_root() {
        return;
    }
    // Effective but not bounding: execve would take it away.
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| {
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL"], "effective": ["CAP_KILL", "CAP_NET_ADMIN"],
            "permitted": ["CAP_KILL", "CAP_NET_ADMIN"]
        });
    });
    let c = Ctr::new("capbound");
    let o = c.run_files(&["create", "-b", bpath(&b), "{id}"]);
    assert_ne!(o.code, Some(0));
    assert!(
        o.stderr.contains(
            "process.capabilities.effective: CAP_NET_ADMIN not in process.capabilities.bounding"
        ),
        "{}",
        o.stderr
    );
    assert_eq!(std::fs::read_dir(c.root.path()).unwrap().count(), 0);

    // A capability the runtime itself does not have (dropped from its bounding set here, as a
    // host or an outer container may have done): refused at create, naming it.
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| {
        let all = json!(["CAP_KILL", "CAP_SYS_NICE"]);
        c["process"]["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
    });
    const CAP_SYS_NICE: libc::c_ulong = 23;
    let c = Ctr::new("capheld");
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("--root")
        .arg(c.root.path())
        .args(["create", "-b", bpath(&b), &c.id])
        .stdin(std::process::Stdio::null());
    // SAFETY: prctl in the forked child before exec; no allocation.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            if libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_NICE, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let o = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("process.capabilities: CAP_SYS_NICE not held by the runtime here"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(c.root.path()).unwrap().count(), 0);
}
