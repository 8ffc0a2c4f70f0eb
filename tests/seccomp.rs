//! Seccomp with real containers: a profile's actions, errnos and argument conditions are what
//! the entrypoint meets; the i386 `int 0x80` path cannot get around it; podman's default profile
//! loads and is enforced; a bad profile fails `create` naming the field and leaves nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use serde_json::{json, Value};

/// A static helper for the rootfs: `rawsys [-32] NR [ARG…]` makes one raw system call (with
/// `syscall`, or with `int $0x80` through the i386 ABI for `-32`) and prints `ret N` or
/// `errno N`. A non-numeric ARG is passed as a pointer to that string, kept in .bss below 4 GiB
/// (the binary is not PIE) so the i386 ABI can reach it too.
const RAWSYS_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static char bufs[3][256];
int main(int argc, char **argv) {
    int i32 = argc > 1 && strcmp(argv[1], "-32") == 0;
    if (i32) { argv++; argc--; }
    long nr = strtol(argv[1], 0, 0), a[3] = {0, 0, 0};
    for (int i = 0; i < 3 && i + 2 < argc; i++) {
        char *e;
        a[i] = strtol(argv[i + 2], &e, 0);
        if (*e) { strncpy(bufs[i], argv[i + 2], 255); a[i] = (long)bufs[i]; }
    }
    long r;
    if (i32) {
        __asm__ volatile ("int $0x80" : "=a"(r) : "a"(nr), "b"(a[0]), "c"(a[1]), "d"(a[2]) : "memory");
        r = (int)r;
    } else {
        __asm__ volatile ("syscall" : "=a"(r) : "a"(nr), "D"(a[0]), "S"(a[1]), "d"(a[2])
                          : "rcx", "r11", "memory");
    }
    if (r < 0 && r > -4096) { printf("errno %ld\n", -r); return 1; }
    printf("ret %ld\n", r);
    return 0;
}
"#;

// x86_64 and i386 system call numbers used below.
const MKDIR_64: &str = "83";
const MKDIR_32: &str = "39";
const USTAT_64: &str = "136";
const ADD_KEY_64: &str = "248";
const NICE_32: &str = "34";

fn rawsys() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fixtures");
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join(format!("rawsys-{}.c", std::process::id()));
        let bin = dir.join(format!("rawsys-{}", std::process::id()));
        std::fs::write(&src, RAWSYS_C).unwrap();
        let o = Command::new("cc")
            .args(["-O", "-static", "-no-pie", "-o"])
            .arg(&bin)
            .arg(&src)
            .output()
            .expect("run cc (the tests need a C compiler with static glibc)");
        assert!(
            o.status.success(),
            "cc rawsys: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let _ = std::fs::remove_file(&src);
        bin
    })
}

/// A bundle running `sh -c script` with `rawsys` in /bin and `seccomp` as linux.seccomp.
fn bundle(script: &str, seccomp: Value) -> Bundle {
    let mut b = Bundle::new(&["sh", "-c", script]);
    std::fs::copy(rawsys(), b.rootfs().join("bin/rawsys")).unwrap();
    b.edit(|c| c["linux"]["seccomp"] = seccomp);
    b
}

/// Allow everything but `mkdir`/`mkdirat`, which get `action` (with `errnoRet` if given).
fn block_mkdir(action: &str, errno_ret: Option<u32>) -> Value {
    let mut rule = json!({"names": ["mkdir", "mkdirat"], "action": action});
    if let Some(e) = errno_ret {
        rule["errnoRet"] = json!(e);
    }
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
}

fn run(name: &str, b: &Bundle) -> (i32, String, String) {
    let c = Ctr::new(name);
    let r = c.run_fg(b);
    // Nothing left under the root either way.
    c.run(&["delete", "--force", "{id}"]);
    r
}

#[test]
fn blocked_syscall_returns_the_configured_errno() {
    if !require_root() {
        return;
    }
    let b = bundle(
        "touch /tmp/file && mkdir /tmp/dir; echo rc=$?",
        block_mkdir("SCMP_ACT_ERRNO", Some(38)),
    );
    let (code, out, err) = run("sc-errno", &b);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out.trim(), "rc=1", "stderr: {err}");
    assert!(err.contains("Function not implemented"), "stderr: {err}");
    assert!(b.rootfs().join("tmp/file").exists());
    assert!(!b.rootfs().join("tmp/dir").exists());

    // ERRNO without errnoRet is EPERM, as in runc.
    let b = bundle("mkdir /tmp/dir", block_mkdir("SCMP_ACT_ERRNO", None));
    let (code, _, err) = run("sc-eperm", &b);
    assert_eq!(code, 1);
    assert!(err.contains("Operation not permitted"), "stderr: {err}");
}

#[test]
fn default_errno_ret_applies_to_unlisted_syscalls() {
    if !require_root() {
        return;
    }
    // Everything not listed fails with EOPNOTSUPP (95). rawsys runs directly (no shell): the
    // list is what a static glibc binary needs to start, print and exit.
    let allow = [
        "execve",
        "brk",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "readlinkat",
        "getrandom",
        "mprotect",
        "mmap",
        "munmap",
        "uname",
        "fstat",
        "newfstatat",
        "ioctl",
        "write",
        "exit",
        "exit_group",
        // hookrun's own last steps before execve (no_new_privs is false in `hookrun spec`'s
        // config, so the filter loads before capset).
        "prctl",
        "capget",
        "capset",
    ];
    let mut b = bundle(
        "",
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 95,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": allow, "action": "SCMP_ACT_ALLOW"}]
        }),
    );
    b.edit(|c| c["process"]["args"] = json!(["/bin/rawsys", MKDIR_64, "/tmp/d", "0755"]));
    let (code, out, err) = run("sc-deferrno", &b);
    assert_eq!((code, out.trim()), (1, "errno 95"), "stderr: {err}");
    assert!(!b.rootfs().join("tmp/d").exists());
}

#[test]
fn calls_newer_than_the_profile_get_enosys() {
    if !require_root() {
        return;
    }
    // The profile names nothing above rseq (334 on x86_64): clone3 (435) or 1000 is a call it
    // cannot know, and gets ENOSYS (runc's stub), not the default action's EPERM. A lower one
    // it does not allow still gets EPERM.
    let allow = [
        "execve",
        "brk",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "readlinkat",
        "getrandom",
        "mprotect",
        "mmap",
        "munmap",
        "uname",
        "fstat",
        "newfstatat",
        "ioctl",
        "write",
        "exit",
        "exit_group",
        "prctl",
        "capget",
        "capset",
    ];
    for (nr, want) in [
        ("1000", "errno 38"),
        ("435", "errno 38"),
        (USTAT_64, "errno 1"),
    ] {
        let mut b = bundle(
            "",
            json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": allow, "action": "SCMP_ACT_ALLOW"}]
            }),
        );
        b.edit(|c| c["process"]["args"] = json!(["/bin/rawsys", nr]));
        let (code, out, err) = run("sc-enosys", &b);
        assert_eq!((code, out.trim()), (1, want), "nr {nr}: stderr: {err}");
    }
}

#[test]
fn start_container_hooks_run_under_the_filter() {
    if !require_root() {
        return;
    }
    // As in runc: the hook runs after the filter is loaded, so the profile binds it too.
    let mut b = bundle("true", block_mkdir("SCMP_ACT_KILL", None));
    b.edit(|c| {
        c["hooks"] = json!({"startContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", "exec mkdir /tmp/from-hook"]}
        ]});
    });
    let (code, _, err) = run("sc-hook", &b);
    assert_ne!(code, 0);
    assert!(
        err.contains(
            "startContainer hook #0 (/bin/sh): error running hook: killed by signal 31 (bad \
             system call)"
        ),
        "{err}"
    );
    assert!(!b.rootfs().join("tmp/from-hook").exists());
}

#[test]
fn kill_actions_kill_the_process() {
    if !require_root() {
        return;
    }
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
    ] {
        // busybox sh forks its applets; exec so the entrypoint itself makes the call.
        let b = bundle("exec mkdir /tmp/dir", block_mkdir(action, None));
        let (code, out, err) = run("sc-kill", &b);
        // Killed by SIGSYS: 128 + 31.
        assert_eq!(code, 159, "{action}: out {out:?} err {err:?}");
        assert!(!b.rootfs().join("tmp/dir").exists(), "{action}");
    }
}

#[test]
fn masked_eq_argument_condition() {
    if !require_root() {
        return;
    }
    // Refuse mkdir(2) when the "other" permission bits of the mode are exactly r-x.
    let b = bundle(
        &format!(
            "rawsys {MKDIR_64} /tmp/open 0755; rawsys {MKDIR_64} /tmp/closed 0700; \
             rawsys {MKDIR_64} /tmp/all 0777"
        ),
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{
                "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                "args": [{"index": 1, "value": 7, "valueTwo": 5, "op": "SCMP_CMP_MASKED_EQ"}]
            }]
        }),
    );
    let (code, out, err) = run("sc-masked", &b);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["errno 13", "ret 0", "ret 0"],
        "stderr: {err}"
    );
    assert!(!b.rootfs().join("tmp/open").exists());
    assert!(b.rootfs().join("tmp/closed").is_dir());

    // Other operators. Conditions on different arguments are ANDed in one rule; two on the
    // same argument become one rule each (ORed), as in runc.
    let b = bundle(
        &[
            ("a", "0700"),
            ("b", "0750"),
            ("d", "0611"),
            ("e", "0622"),
            ("f", "0633"),
            ("g", "0077"),
        ]
        .map(|(d, m)| format!("rawsys {MKDIR_64} /tmp/{d} {m}; "))
        .concat(),
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{
                "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                "args": [
                    {"index": 1, "value": 0o750, "op": "SCMP_CMP_GE"},
                    {"index": 0, "value": 0, "op": "SCMP_CMP_NE"}
                ]
            }, {
                "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                "args": [
                    {"index": 1, "value": 0o611, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 0o622, "op": "SCMP_CMP_EQ"}
                ]
            }, {
                "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                "args": [{"index": 1, "value": 0o100, "op": "SCMP_CMP_LT"}]
            }]
        }),
    );
    let (code, out, err) = run("sc-ops", &b);
    assert_eq!(code, 1, "stderr: {err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["ret 0", "errno 13", "errno 13", "errno 13", "ret 0", "errno 13"],
        "stderr: {err}"
    );
}

#[test]
fn the_i386_syscall_path_cannot_bypass_the_filter() {
    if !require_root() {
        return;
    }
    let script = format!("rawsys -32 {MKDIR_32} /tmp/d32 0755; rawsys {MKDIR_64} /tmp/d64 0755");

    // Without a filter the i386 path works here (else the checks below prove nothing).
    let b = bundle(&script, Value::Null);
    let (code, out, err) = run("sc-i386-none", &b);
    assert_eq!((code, out.as_str()), (0, "ret 0\nret 0\n"), "stderr: {err}");

    // With x86 in the filter, i386 mkdir (nr 39 via int 0x80) is refused like x86_64 mkdir (83).
    let mut p = block_mkdir("SCMP_ACT_ERRNO", Some(1));
    p["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    let b = bundle(&script, p);
    let (code, out, err) = run("sc-i386-multi", &b);
    assert_eq!(code, 1, "stderr: {err}");
    assert_eq!(out, "errno 1\nerrno 1\n", "stderr: {err}");
    assert!(!b.rootfs().join("tmp/d32").exists());

    // With only the native arch listed, an i386 call matches no arch of the filter and gets
    // libseccomp's bad-arch action: the thread is killed by SIGSYS (rawsys exits 159 through
    // the shell), never run.
    let mut p = block_mkdir("SCMP_ACT_ERRNO", Some(1));
    p["architectures"] = json!(["SCMP_ARCH_X86_64"]);
    let b = bundle(
        &format!("rawsys -32 {MKDIR_32} /tmp/d32 0755; echo rc=$?"),
        p,
    );
    let (code, out, err) = run("sc-i386-native", &b);
    assert_eq!((code, out.trim()), (0, "rc=159"), "stderr: {err}");
    assert!(!b.rootfs().join("tmp/d32").exists());
}

/// podman's default profile (containers-common's seccomp.json) as the OCI profile podman hands
/// the runtime: the x86_64 entry of `archMap`, and the rules whose `includes`/`excludes` (caps,
/// arches) match this container and machine.
fn podman_profile(caps: &[String]) -> Option<Value> {
    let text = std::fs::read_to_string("/usr/share/containers/seccomp.json").ok()?;
    let src: Value = serde_json::from_str(&text).unwrap();
    let arches = src["archMap"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["architecture"] == "SCMP_ARCH_X86_64")
        .map(|m| {
            let mut v = vec![m["architecture"].clone()];
            v.extend(m["subArchitectures"].as_array().unwrap().iter().cloned());
            v
        })
        .unwrap();
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let mut rules = Vec::new();
    for r in src["syscalls"].as_array().unwrap() {
        let inc_caps = strs(&r["includes"]["caps"]);
        let inc_arches = strs(&r["includes"]["arches"]);
        let exc_caps = strs(&r["excludes"]["caps"]);
        let exc_arches = strs(&r["excludes"]["arches"]);
        if !inc_caps.iter().all(|c| caps.contains(c))
            || (!inc_arches.is_empty() && !inc_arches.iter().any(|a| a == "amd64"))
            || exc_caps.iter().any(|c| caps.contains(c))
            || exc_arches.iter().any(|a| a == "amd64")
        {
            continue;
        }
        let mut rule = json!({"names": r["names"], "action": r["action"]});
        if let Some(a) = r["args"].as_array().filter(|a| !a.is_empty()) {
            rule["args"] = json!(a);
        }
        if !r["errnoRet"].is_null() {
            rule["errnoRet"] = r["errnoRet"].clone();
        }
        rules.push(rule);
    }
    Some(json!({
        "defaultAction": src["defaultAction"],
        "defaultErrnoRet": src["defaultErrnoRet"],
        "architectures": arches,
        "syscalls": rules
    }))
}

#[test]
fn podmans_default_profile_loads_and_is_enforced() {
    if !require_root() {
        return;
    }
    let mut b = bundle("", Value::Null);
    let caps = b.config["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    let Some(profile) = podman_profile(&caps) else {
        panic!(
            "/usr/share/containers/seccomp.json is missing: install golang-github-containers-common \
             (.ci/run does)"
        );
    };
    // Ordinary shell work goes through; what the profile refuses fails with its errno:
    // ustat (EPERM, listed), add_key (not listed: the default, ENOSYS), and the i386 nice
    // (EPERM, listed, through int 0x80). Unfiltered, these give EINVAL, EINVAL and 0 here.
    let script = format!(
        "set -e; echo hello > /tmp/f; cat /tmp/f; mkdir -p /tmp/d/e; ls / > /dev/null; \
         ps > /dev/null; wc -l < /etc/passwd > /dev/null; set +e; \
         rawsys {USTAT_64} 0 0; rawsys {ADD_KEY_64} 0 0 0; rawsys -32 {NICE_32} 0; true"
    );
    b.edit(|c| {
        c["linux"]["seccomp"] = profile;
        c["process"]["args"] = json!(["sh", "-c", script]);
    });
    let (code, out, err) = run("sc-podman", &b);
    assert_eq!(code, 0, "stdout {out:?} stderr {err:?}");
    assert_eq!(out, "hello\nerrno 1\nerrno 38\nerrno 1\n", "stderr: {err}");
    assert!(b.rootfs().join("tmp/d/e").is_dir());
}

#[test]
fn the_profile_binds_the_entrypoint_not_hookruns_setup() {
    if !require_root() {
        return;
    }
    // A profile that forbids changing uid/gid: hookrun's own setresuid/setgroups happen before
    // the filter loads (also without no_new_privs, where it loads before the capability drop),
    // so the container starts as uid 1000 — and its entrypoint is then bound.
    let p = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{
            "names": ["setuid", "setresuid", "setreuid", "setgid", "setresgid", "setgroups"],
            "action": "SCMP_ACT_ERRNO"
        }]
    });
    for nnp in [false, true] {
        let mut b = bundle(
            "id -u; grep CapEff /proc/self/status; rawsys 105 0; true",
            p.clone(),
        );
        b.edit(|c| {
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5]});
            c["process"]["noNewPrivileges"] = json!(nnp);
        });
        let (code, out, err) = run("sc-order", &b);
        assert_eq!(code, 0, "nnp={nnp}: stderr {err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "1000", "nnp={nnp}: {out}");
        // CAP_SYS_ADMIN raised for the load is not left behind.
        let eff = u64::from_str_radix(lines[1].split_whitespace().nth(1).unwrap(), 16).unwrap();
        assert_eq!(eff & (1 << 21), 0, "nnp={nnp}: {out}");
        // setuid(0) from the entrypoint: the filter's EPERM.
        assert_eq!(lines[2], "errno 1", "nnp={nnp}: {out}");
    }
}

/// `create` fails with one line naming `field`, and leaves no state dir under the root.
fn create_fails(name: &str, seccomp: Value, want: &[&str]) {
    let b = bundle("true", seccomp);
    let c = Ctr::new(name);
    let o = c.run_files(&["create", "-b", b.path().to_str().unwrap(), "{id}"]);
    assert!(o.code.is_some_and(|c| c != 0), "{name}: {o:?}");
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{name}: {:?}", o.stderr);
    for w in want {
        assert!(
            lines[0].contains(w),
            "{name}: {:?} should contain {w:?}",
            lines[0]
        );
    }
    let left: Vec<_> = std::fs::read_dir(c.root.path())
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{name}: left {left:?}");
}

#[test]
fn a_bad_profile_fails_create_naming_the_field() {
    if !require_root() {
        return;
    }
    let mut p = block_mkdir("SCMP_ACT_ERRNO", None);
    p["syscalls"][0]["action"] = json!("SCMP_ACT_EXPLODE");
    create_fails(
        "sc-bad-action",
        p,
        &[
            "config.json: linux.seccomp.syscalls[0].action:",
            "SCMP_ACT_EXPLODE",
        ],
    );

    let mut p = block_mkdir("SCMP_ACT_ERRNO", None);
    p["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]);
    create_fails(
        "sc-bad-arch",
        p,
        &[
            "config.json: linux.seccomp.architectures[1]:",
            "SCMP_ARCH_Z80",
        ],
    );

    let p = block_mkdir("SCMP_ACT_NOTIFY", None);
    create_fails(
        "sc-notify",
        p,
        &["config.json: linux.seccomp.listenerPath: must be set: syscalls[0] uses SCMP_ACT_NOTIFY"],
    );

    let mut p = block_mkdir("SCMP_ACT_ERRNO", None);
    p["syscalls"][0]["args"] = json!([{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]);
    create_fails(
        "sc-bad-index",
        p,
        &["config.json: linux.seccomp.syscalls[0].args[0].index:"],
    );
}

#[test]
fn unknown_syscall_names_are_skipped() {
    if !require_root() {
        return;
    }
    let mut p = block_mkdir("SCMP_ACT_ERRNO", Some(38));
    p["syscalls"][0]["names"] = json!(["no_such_syscall_xyz", "mkdir", "mkdirat"]);
    let b = bundle("mkdir /tmp/dir; echo rc=$?", p);
    let (code, out, err) = run("sc-unknown", &b);
    assert_eq!((code, out.trim()), (0, "rc=1"), "stderr: {err}");
}

#[test]
fn features_report_seccomp() {
    let o = Command::new(bin()).arg("features").output().unwrap();
    assert!(o.status.success());
    let f: Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = &f["linux"]["seccomp"];
    assert_eq!(s["enabled"], json!(true), "{s}");
    let has = |k: &str, v: &str| s[k].as_array().unwrap().iter().any(|x| x == v);
    assert!(has("actions", "SCMP_ACT_ERRNO") && has("actions", "SCMP_ACT_KILL_PROCESS"));
    assert!(has("actions", "SCMP_ACT_NOTIFY"));
    // This kernel (5.19 and later) takes the listener flag that makes waiting killable.
    assert!(has(
        "supportedFlags",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
    ));
    assert!(has("operators", "SCMP_CMP_MASKED_EQ"));
    assert!(has("archs", "SCMP_ARCH_X86_64") && has("archs", "SCMP_ARCH_X86"));
    assert!(has("archs", "SCMP_ARCH_X32"));
}
