//! The container process as the entrypoint sees it: args, env, cwd, user and groups, umask,
//! capabilities, no_new_privs, rlimits, oom_score_adj, stdio and preserved fds, and the
//! exec.fifo barrier that holds it back until `start`.

mod common;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::json;

/// The fields after `key:` in /proc/self/status text, whitespace-split.
fn status_field<'a>(status: &'a str, key: &str) -> Vec<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in:\n{status}"))
        .split_whitespace()
        .collect()
}

/// Run `cat /proc/self/status` in a container configured by `edit`.
fn status_with(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut b = Bundle::new(&["/bin/cat", "/proc/self/status"]);
    b.edit(edit);
    run_ok(&Ctr::new(name), &b)
}

// ---- args, env, cwd ----------------------------------------------------------------------------

#[test]
fn args_are_passed_verbatim() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&[
        "/bin/sh",
        "-c",
        "for a in \"$@\"; do echo \"[$a]\"; done",
        "argv0",
        "a b",
        "  two  spaces ",
        "$HOME",
        "*",
        "",
        "quote\"d'",
    ]);
    let c = Ctr::new("args");
    assert_eq!(
        run_ok(&c, &b),
        "[a b]\n[  two  spaces ]\n[$HOME]\n[*]\n[]\n[quote\"d']\n"
    );
}

#[test]
fn env_is_passed_and_home_defaults_from_passwd() {
    if !require_root() {
        return;
    }
    let script = "echo \"FOO=$FOO\"; echo \"HOME=$HOME\"; echo \"PATH=$PATH\"";
    let mut b = sh(script);
    b.edit(|c| {
        c["process"]["env"] = json!(["PATH=/bin:/sbin", "FOO=bar  baz=qux"]);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    let c = Ctr::new("env");
    assert_eq!(
        run_ok(&c, &b),
        "FOO=bar  baz=qux\nHOME=/home\nPATH=/bin:/sbin\n"
    );

    // root's home comes from passwd too; an explicit HOME wins over passwd.
    let b = sh("echo $HOME");
    assert_eq!(run_ok(&Ctr::new("envroot"), &b), "/root\n");
    let mut b = sh("echo $HOME");
    b.edit(|c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("HOME=/custom"))
    });
    assert_eq!(run_ok(&Ctr::new("envhome"), &b), "/custom\n");
}

#[test]
fn cwd_is_honoured_and_created_when_missing() {
    if !require_root() {
        return;
    }
    let mut b = sh("pwd; cat index.html");
    b.edit(|c| c["process"]["cwd"] = json!("/var/www"));
    assert_eq!(run_ok(&Ctr::new("cwd"), &b), "/var/www\nhookrun demo\n");

    let mut b = sh("pwd; touch here");
    b.edit(|c| c["process"]["cwd"] = json!("/new/deep/dir"));
    assert!(!b.rootfs().join("new").exists());
    assert_eq!(run_ok(&Ctr::new("cwdnew"), &b), "/new/deep/dir\n");
    assert!(b.rootfs().join("new/deep/dir/here").is_file());
}

// ---- user, umask -------------------------------------------------------------------------------

#[test]
fn uid_gid_and_additional_groups_apply() {
    if !require_root() {
        return;
    }
    let mut b = sh(
        "id; grep -E '^(Uid|Gid|Groups):' /proc/self/status; touch /tmp/mine; \
                    stat -c '%u:%g' /tmp/mine",
    );
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [2000]});
    });
    let out = run_ok(&Ctr::new("user"), &b);
    let mut lines = out.lines();
    let id = lines.next().unwrap();
    assert!(id.starts_with("uid=1000(app) gid=1000(app)"), "{id}");
    let groups = id.split("groups=").nth(1).unwrap_or_default();
    assert!(groups.split(',').any(|g| g == "2000(extra)"), "{id}");
    let rest: String = lines.map(|l| format!("{l}\n")).collect();
    assert_eq!(status_field(&rest, "Uid"), ["1000"; 4]);
    assert_eq!(status_field(&rest, "Gid"), ["1000"; 4]);
    assert_eq!(status_field(&rest, "Groups"), ["2000"]);
    assert!(rest.ends_with("1000:1000\n"), "{rest}");
}

#[test]
fn umask_applies_to_new_files() {
    if !require_root() {
        return;
    }
    let script = "touch /tmp/f; mkdir /tmp/d; stat -c %a /tmp/f /tmp/d";
    let mut b = sh(script);
    b.edit(|c| c["process"]["user"]["umask"] = json!(0o077));
    assert_eq!(run_ok(&Ctr::new("umask"), &b), "600\n700\n");
    // Without one, the usual 022.
    assert_eq!(run_ok(&Ctr::new("umaskdef"), &sh(script)), "644\n755\n");
}

// ---- capabilities, no_new_privs ----------------------------------------------------------------

#[test]
fn capability_sets_are_exactly_the_configured_ones() {
    if !require_root() {
        return;
    }
    let st = status_with("caps", |c| {
        let two = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        c["process"]["capabilities"] = json!({
            "bounding": two, "effective": two, "permitted": two,
            "inheritable": [], "ambient": []
        });
    });
    assert_eq!(status_field(&st, "CapBnd"), ["0000000000000420"]);
    assert_eq!(status_field(&st, "CapPrm"), ["0000000000000420"]);
    assert_eq!(status_field(&st, "CapEff"), ["0000000000000420"]);
    assert_eq!(status_field(&st, "CapInh"), ["0000000000000000"]);
    assert_eq!(status_field(&st, "CapAmb"), ["0000000000000000"]);
}

#[test]
fn ambient_capabilities_survive_a_non_root_user() {
    if !require_root() {
        return;
    }
    let one = json!(["CAP_NET_BIND_SERVICE"]);
    let st = status_with("ambient", |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] = json!({
            "bounding": one, "effective": one, "permitted": one, "inheritable": one,
            "ambient": one
        });
    });
    assert_eq!(status_field(&st, "Uid"), ["1000"; 4]);
    assert_eq!(status_field(&st, "CapAmb"), ["0000000000000400"]);
    assert_eq!(status_field(&st, "CapEff"), ["0000000000000400"]);
    assert_eq!(status_field(&st, "CapPrm"), ["0000000000000400"]);

    // Without the ambient set, exec as uid 1000 leaves nothing effective.
    let st = status_with("noambient", |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] = json!({
            "bounding": one, "effective": one, "permitted": one, "inheritable": one,
            "ambient": []
        });
    });
    assert_eq!(status_field(&st, "CapAmb"), ["0000000000000000"]);
    assert_eq!(status_field(&st, "CapEff"), ["0000000000000000"]);
    assert_eq!(status_field(&st, "CapBnd"), ["0000000000000400"]);
}

#[test]
fn runcs_default_ambient_set_without_inheritable_runs_as_runc_does() {
    if !require_root() {
        return;
    }
    // `runc spec` (and `hookrun spec`) put three capabilities in `ambient` with no inheritable
    // set; the kernel refuses to raise those, and runc passes over them: so does hookrun.
    let three = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let st = status_with("runcamb", |c| {
        assert_eq!(
            c["process"]["capabilities"]["ambient"], three,
            "spec's default"
        );
        assert!(c["process"]["capabilities"].get("inheritable").is_none());
    });
    assert_eq!(status_field(&st, "CapEff"), ["0000000020000420"]);
    assert_eq!(status_field(&st, "CapAmb"), ["0000000000000000"]);
    // What the kernel allows is still raised: one of the three made inheritable.
    let st = status_with("runcamb1", |c| {
        c["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL"]);
    });
    assert_eq!(status_field(&st, "CapAmb"), ["0000000000000020"]);
}

#[test]
fn no_new_privileges_is_set_as_configured() {
    if !require_root() {
        return;
    }
    let st = status_with("nnp1", |c| c["process"]["noNewPrivileges"] = json!(true));
    assert_eq!(status_field(&st, "NoNewPrivs"), ["1"]);
    let st = status_with("nnp0", |c| c["process"]["noNewPrivileges"] = json!(false));
    assert_eq!(status_field(&st, "NoNewPrivs"), ["0"]);
}

// ---- rlimits, oom_score_adj --------------------------------------------------------------------

#[test]
fn rlimits_are_applied() {
    if !require_root() {
        return;
    }
    let mut b = sh("ulimit -n; ulimit -Hn; cat /proc/self/limits");
    b.edit(|c| {
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048},
            {"type": "RLIMIT_CORE", "soft": 1024, "hard": 4096},
            {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400}
        ]);
    });
    let out = run_ok(&Ctr::new("rlimits"), &b);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1024"));
    assert_eq!(lines.next(), Some("2048"));
    let limit = |name: &str| -> Vec<&str> {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{out}"))
            .split_whitespace()
            .collect()
    };
    assert_eq!(limit("Max open files"), ["1024", "2048", "files"]);
    assert_eq!(limit("Max core file size"), ["1024", "4096", "bytes"]);
    assert_eq!(limit("Max processes"), ["300", "400", "processes"]);
}

#[test]
fn oom_score_adj_is_applied() {
    if !require_root() {
        return;
    }
    let mut b = sh("cat /proc/self/oom_score_adj");
    b.edit(|c| c["process"]["oomScoreAdj"] = json!(500));
    assert_eq!(run_ok(&Ctr::new("oom"), &b), "500\n");
}

// ---- stdio and fds -----------------------------------------------------------------------------

#[test]
fn stdout_stderr_and_exit_code_pass_through() {
    if !require_root() {
        return;
    }
    let b = sh("echo to-out; echo to-err >&2; exit 3");
    let (code, out, err) = Ctr::new("stdio").run_fg(&b);
    assert_eq!(code, 3, "{err}");
    assert_eq!(out, "to-out\n");
    assert!(err.lines().any(|l| l == "to-err"), "{err}");
}

#[test]
fn stdin_of_run_is_the_containers_stdin() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["/bin/cat"]);
    let c = Ctr::new("stdin");
    let mut child = Command::new(bin())
        .arg("--root")
        .arg(c.root.path())
        .args(["run", "-b", bpath(&b), &c.id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello\nworld\n")
        .unwrap(); // stdin is closed when dropped here: cat sees EOF
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello\nworld\n");
}

/// `hookrun run [extra…] -b B ID` with two files on fds 3 and 4 of hookrun; returns
/// (exit code, stdout, stderr, what was written to fd 3, to fd 4).
fn run_with_fds(c: &Ctr, b: &Bundle, extra: &[&str]) -> (i32, String, String, String, String) {
    let f3 = tempfile::tempfile().unwrap();
    let f4 = tempfile::tempfile().unwrap();
    // Copies far above 4 (close-on-exec), so placing them on 3 and 4 cannot clobber each other.
    let hi = |f: &std::fs::File| -> OwnedFd {
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a live fd returns a new fd that we then own.
        let fd = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100) };
        assert!(fd >= 100);
        // SAFETY: fd is a fresh fd owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd) }
    };
    let (h3, h4) = (hi(&f3), hi(&f4));
    let (r3, r4) = (h3.as_raw_fd(), h4.as_raw_fd());
    let mut cmd = Command::new(bin());
    cmd.arg("--root")
        .arg(c.root.path())
        .arg("run")
        .args(extra)
        .args(["-b", bpath(b), &c.id])
        .stdin(Stdio::null());
    // SAFETY: only async-signal-safe dup2 calls between fork and exec; dup2 leaves the new fds
    // without close-on-exec, so hookrun inherits them as 3 and 4.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(r3, 3) < 0 || libc::dup2(r4, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    drop((h3, h4));
    let read = |f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut f = f;
        f.rewind().unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        s
    };
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        read(f3),
        read(f4),
    )
}

#[test]
fn only_stdio_is_passed_without_preserve_fds() {
    if !require_root() {
        return;
    }
    // `ls /proc/$$/fd` lists the shell's fds, not those of ls.
    let b = sh("ls /proc/$$/fd; echo via3 >&3; echo via4 >&4; true");
    let c = Ctr::new("nofds");
    let (code, out, err, got3, got4) = run_with_fds(&c, &b, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0\n1\n2\n", "{err}");
    assert_eq!((got3.as_str(), got4.as_str()), ("", ""));
}

#[test]
fn preserve_fds_passes_fds_3_and_4() {
    if !require_root() {
        return;
    }
    let b = sh("ls /proc/$$/fd; echo via3 >&3; echo via4 >&4");
    let c = Ctr::new("fds");
    let (code, out, err, got3, got4) = run_with_fds(&c, &b, &["--preserve-fds", "2"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0\n1\n2\n3\n4\n", "{err}");
    assert_eq!(got3, "via3\n");
    assert_eq!(got4, "via4\n");
}

// ---- the start barrier -------------------------------------------------------------------------

#[test]
fn a_created_init_waits_on_exec_fifo_until_start() {
    if !require_root() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let mut b = sh("touch /out/ran; exec sleep 1000");
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/out", "type": "bind", "source": out.path(), "options": ["bind"]
        }))
    });
    let c = Ctr::new("barrier");
    c.create_bg(&b);
    let pid = c.pid();
    let comm = || std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    let exe = || {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    // Created: the init is still hookrun, blocked, and the entrypoint has had no effect.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.status(), "created");
    assert!(
        !out.path().join("ran").exists(),
        "entrypoint ran before start"
    );
    assert_eq!(comm(), "hookrun\n");
    assert!(exe().ends_with("/hookrun"), "{}", exe());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("create"),
        "{cmdline:?}"
    );
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(status_field(&st, "State")[0], "S", "{st}");

    c.ok(&["start", "{id}"]);
    assert!(
        wait_until(Duration::from_secs(10), || out.path().join("ran").exists()),
        "entrypoint did not run after start"
    );
    assert!(wait_until(Duration::from_secs(10), || comm() == "sleep\n"));
    assert!(exe().ends_with("/busybox"), "{}", exe());
    assert_eq!(c.pid(), pid, "the init itself became the entrypoint");
}
