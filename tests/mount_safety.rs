//! Masked and read-only paths, and what a crafted image or config tries through the filesystem
//! (each test names the CVE): mounts over procfs, proc and sysfs on symlinks, destinations
//! through symlinks, a fake /dev/null or /proc, --no-pivot's leftover procfs; and bind sources
//! only the caller may reach, in a user namespace.

mod common;
#[path = "common/fs.rs"]
mod fs;

use std::path::Path;

use common::*;
use fs::*;
use serde_json::json;

// ---- masked and read-only paths ---------------------------------------------------------------

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
// ---- /proc and /sys: what may land there (CVE-2019-16884, CVE-2019-19921) ---------------------

/// Replace the rootfs's directory `name` by a symlink to `target`.
fn replace_by_symlink(b: &Bundle, name: &str, target: &str) {
    let p = b.rootfs().join(name);
    std::fs::remove_dir_all(&p).unwrap();
    std::os::unix::fs::symlink(target, &p).unwrap();
}

#[test]
fn proc_and_sys_on_a_symlink_are_refused() {
    if !require_root() {
        return;
    }
    // CVE-2019-19921: an image whose /proc is a symlink (to a volume another container can
    // swap) would get procfs mounted wherever the link points.
    let host_target = tempfile::tempdir().unwrap();
    for (dir, fs) in [("proc", "proc"), ("sys", "sysfs")] {
        let b = sh("true");
        replace_by_symlink(&b, dir, host_target.path().to_str().unwrap());
        let c = Ctr::new("symproc");
        let err = create_fails(&c, &b);
        assert!(
            err.contains(&format!(
                "filesystem \"{fs}\" must be mounted on ordinary directory"
            )),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(host_target.path()).unwrap().count(), 0);
    }
}

#[test]
fn a_symlink_cannot_carry_a_mount_over_procfs() {
    if !require_root() {
        return;
    }
    // CVE-2019-16884: a mount that covers procfs files (here through a symlink the image ships)
    // hides them from the kernel's and the LSMs' view.
    for dst in ["/evil", "/evil/kernel"] {
        let b = sh("true");
        std::os::unix::fs::symlink("/proc/sys", b.rootfs().join("evil")).unwrap();
        let mut b = b;
        b.edit(|c| {
            add_mount(
                c,
                json!({"destination": dst, "type": "tmpfs", "source": "tmpfs"}),
            )
        });
        let c = Ctr::new("symovermount");
        let err = create_fails(&c, &b);
        assert!(
            err.contains("mounting over /proc is refused"),
            "{dst}: {err}"
        );
    }
    // and a plain tmpfs on /proc, after the proc mount or instead of it
    let mut b = sh("true");
    b.edit(|c| {
        add_mount(
            c,
            json!({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"}),
        )
    });
    let c = Ctr::new("tmpfsproc");
    let err = create_fails(&c, &b);
    assert!(
        err.contains("only a procfs may be mounted on /proc"),
        "{err}"
    );
}

#[test]
fn the_files_lxcfs_serves_may_be_bound_over() {
    if !require_root() {
        return;
    }
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), "fake uptime\n").unwrap();
    let mut b = sh("cat /proc/uptime");
    b.edit(|c| {
        add_mount(
            c,
            json!({"destination": "/proc/uptime", "source": f.path(), "options": ["bind", "ro"]}),
        )
    });
    let c = Ctr::new("lxcfs");
    assert_eq!(run_ok(&c, &b), "fake uptime\n");
}

#[test]
fn the_hosts_proc_may_be_bound_on_proc_without_a_pid_namespace() {
    if !require_root() {
        return;
    }
    // runc's start_hello.bats "rootless with host pidns": a real procfs is fine on /proc.
    let mut b = sh(
        "test -d /proc/1 && grep -c . /proc/1/cmdline >/dev/null && echo host pids; \
                    wc -c < /proc/timer_list",
    );
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid");
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["type"] == "proc" {
                *m = json!({"destination": "/proc", "type": "none", "source": "/proc",
                            "options": ["rbind", "nosuid", "nodev", "noexec"]});
            }
        }
    });
    let c = Ctr::new("hostproc");
    // masked paths still apply to the bound procfs
    assert_eq!(run_ok(&c, &b), "host pids\n0\n");
}

// ---- paths through symlinks stay in the rootfs (CVE-2021-30465) -------------------------------

#[test]
fn destinations_through_symlinks_land_inside_the_rootfs() {
    if !require_root() {
        return;
    }
    let marker = format!("hookrun-escape-{}", std::process::id());
    let host_side = Path::new("/tmp").join(&marker);
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), "nameserver 192.0.2.1\n").unwrap();
    let b = sh("cat /etc/resolv.conf; ls /tmp");
    // an absolute link that dangles, and one that climbs out
    let _ = std::fs::remove_file(b.rootfs().join("etc/resolv.conf"));
    std::os::unix::fs::symlink(
        format!("/tmp/{marker}/resolv.conf"),
        b.rootfs().join("etc/resolv.conf"),
    )
    .unwrap();
    std::os::unix::fs::symlink("../../../../../../../../tmp", b.rootfs().join("up")).unwrap();
    let mut b = b;
    b.edit(|c| {
        add_mount(
            c,
            json!({"destination": "/etc/resolv.conf", "source": f.path(), "options": ["bind"]}),
        );
        add_mount(
            c,
            json!({"destination": format!("/up/{marker}-tmpfs"), "type": "tmpfs", "source": "tmpfs"}),
        );
    });
    let c = Ctr::new("symdest");
    let out = run_ok(&c, &b);
    assert!(out.starts_with("nameserver 192.0.2.1\n"), "{out}");
    assert!(out.contains(&format!("{marker}-tmpfs")), "{out}");
    assert!(!host_side.exists(), "a mount point was made on the host");
    assert!(!Path::new("/tmp").join(format!("{marker}-tmpfs")).exists());
    assert!(b
        .rootfs()
        .join(format!("tmp/{marker}/resolv.conf"))
        .is_file());
}

// ---- masking and sysctls act on what the paths really are --------------------------------------

#[test]
fn masking_refuses_a_dev_null_that_is_not_the_null_device() {
    if !require_root() {
        return;
    }
    // /dev bound from a directory whose "null" is a plain file: binding that over /proc/timer_list
    // would show the file's content, not hide anything (CVE-2025-31133).
    let dev = tempfile::tempdir().unwrap();
    std::fs::write(dev.path().join("null"), "not null\n").unwrap();
    let mut b = sh("true");
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
        add_mount(
            c,
            json!({"destination": "/dev", "source": dev.path(), "options": ["rbind"]}),
        );
        c["linux"]["maskedPaths"] = json!(["/proc/timer_list"]);
    });
    let c = Ctr::new("fakenull");
    let err = create_fails(&c, &b);
    assert!(
        err.contains("mask /proc/timer_list: /dev/null is not the null device"),
        "{err}"
    );
}

#[test]
fn a_sysctl_is_written_only_into_a_procfs() {
    if !require_root() {
        return;
    }
    // No proc mount: /proc/sys/... is whatever the image put there.
    let b = sh("true");
    let fake = b.rootfs().join("proc/sys/net/ipv4");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(fake.join("ip_forward"), "0\n").unwrap();
    let mut b = b;
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["type"] != "proc");
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    });
    let c = Ctr::new("fakesysctl");
    let err = create_fails(&c, &b);
    assert!(err.contains("write sysctl net.ipv4.ip_forward:"), "{err}");
    assert!(err.contains("is not on a procfs"), "{err}");
    assert_eq!(
        std::fs::read_to_string(fake.join("ip_forward")).unwrap(),
        "0\n"
    );
}

// ---- --no-pivot --------------------------------------------------------------------------------

#[test]
fn no_pivot_leaves_no_full_procfs_to_mount_a_fresh_one_from() {
    if !require_root() {
        return;
    }
    // runc's no_pivot.bats: with only a chroot, the host's /proc would still be in the mount
    // namespace, fully visible to the kernel, and a user namespace of the container's own could
    // then mount an unmasked procfs (and write /proc/sysrq-trigger).
    let mut b = sh("unshare -mrpf sh -c 'mount -t proc none /proc && echo mounted'");
    b.edit(|c| {
        for set in ["bounding", "permitted", "effective"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SETFCAP"));
        }
    });
    let c = Ctr::new("nopivotproc");
    let o = c.run(&["run", "--no-pivot", "-b", bpath(&b), "{id}"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!out.contains("mounted"), "{out}{err}");
    assert!(err.contains("mount: permission denied"), "{err}");
    // while pivot_root leaves none either
    let c = Ctr::new("pivotproc");
    let o = c.run(&["run", "-b", bpath(&b), "{id}"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("mount: permission denied"));
}

// ---- user namespaces ---------------------------------------------------------------------------
#[test]
fn in_a_user_namespace_sources_only_the_caller_may_enter_are_bound() {
    if !require_root() {
        return;
    }
    // runc's userns.bats "userns with 2 inaccessible mounts" and "+ exec": the sources sit in
    // 0700 directories of host root, which the container's root (host 100000) cannot enter.
    let host = tempfile::tempdir().unwrap();
    for i in 1..=2 {
        let d = host.path().join(format!("s{i}/dir"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("foo.txt"), format!("{i}\n")).unwrap();
    }
    // (tempdirs are made 0755 past the umask)
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(host.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut b = Bundle::new(&["/bin/sleep", "1000"]);
    in_own_userns(&mut b);
    b.edit(|c| {
        for i in 1..=2 {
            add_mount(
                c,
                json!({"destination": format!("/tmp/mount-{i}"),
                       "source": host.path().join(format!("s{i}/dir")),
                       "options": if i == 1 { json!(["bind"]) } else { json!(["bind", "ro"]) }}),
            );
        }
    });
    let c = Ctr::new("usernsbind");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    let out = c.ok(&[
        "exec",
        "{id}",
        "cat",
        "/tmp/mount-1/foo.txt",
        "/tmp/mount-2/foo.txt",
    ]);
    assert_eq!(out, "1\n2\n");
    // the attributes set on the runtime's detached tree hold
    let o = c.run(&["exec", "{id}", "touch", "/tmp/mount-2/new"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("Read-only file system"));
    assert!(!host.path().join("s2/dir/new").exists());
}

#[test]
fn the_created_init_holds_no_fd_of_the_filesystem_setup() {
    if !require_root() {
        return;
    }
    // CVE-2024-21626: an fd left open in the init (a rootfs handle, a detached tree, a procfs
    // of the host's pid namespace) is a way out for a `/proc/self/fd/N` cwd. Sharing the
    // host's pid namespace and with binds made in a user namespace, where most handles are made.
    let host = tempfile::tempdir().unwrap();
    let mut b = Bundle::new(&["/bin/sleep", "1000"]);
    in_own_userns(&mut b);
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid");
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["type"] == "proc" {
                *m = json!({"destination": "/proc", "type": "none", "source": "/proc",
                            "options": ["rbind"]});
            }
        }
        add_mount(
            c,
            json!({"destination": "/v", "source": host.path(), "options": ["rbind", "rro"]}),
        );
    });
    let c = Ctr::new("initfds");
    c.create_bg(&b);
    let pid = c.pid();
    let state = c.state_dir();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let n: i32 = e.file_name().to_str().unwrap().parse().unwrap();
        let target = std::fs::read_link(e.path()).unwrap();
        let t = target.to_string_lossy();
        assert!(
            n <= 2 || t.starts_with("socket:[") || target == state,
            "the init holds fd {n} -> {t}"
        );
    }
}
