//! The container's filesystem as seen from inside it (busybox) and from the host: the rootfs and
//! pivot_root, `mounts[]` (binds, recursive attributes, propagation), /dev. Masked and read-only
//! paths and the attacks a crafted image or config tries are tests/mount_safety.rs.

mod common;
#[path = "common/fs.rs"]
mod fs;

use common::*;
use fs::*;
use serde_json::{json, Value};

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

// ---- recursive attributes, nosymfollow ---------------------------------------------------------

/// A host directory with a tmpfs mounted below it (`sub`), a file in each.
fn volume_with_submount() -> (tempfile::TempDir, HostMount) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("top"), "top\n").unwrap();
    let sub = HostMount::tmpfs(&dir.path().join("sub"));
    std::fs::write(dir.path().join("sub/inner"), "inner\n").unwrap();
    (dir, sub)
}

#[test]
fn rro_makes_every_mount_below_read_only_and_ro_only_the_top() {
    if !require_root() {
        return;
    }
    let (dir, _sub) = volume_with_submount();
    let script = "for f in /v/new /v/sub/new; do touch $f 2>/dev/null && echo w || echo r; done";
    for (opts, want) in [
        (json!(["rbind", "ro"]), "r\nw\n"),
        (json!(["rbind", "rro"]), "r\nr\n"),
        (json!(["rbind", "ro", "rro"]), "r\nr\n"),
        (json!(["rbind", "rro", "rrw"]), "w\nw\n"),
    ] {
        let mut b = sh(script);
        b.edit(|c| {
            add_mount(
                c,
                json!({"destination": "/v", "source": dir.path(), "options": opts}),
            )
        });
        let c = Ctr::new("rro");
        assert_eq!(run_ok(&c, &b), want, "options {opts}");
    }
}

#[test]
fn recursive_attributes_show_on_every_submount() {
    if !require_root() {
        return;
    }
    let (dir, _sub) = volume_with_submount();
    let mut b = sh("cat /proc/self/mountinfo");
    b.edit(|c| {
        add_mount(
            c,
            json!({"destination": "/v", "source": dir.path(),
                   "options": ["rbind", "rnosuid", "rnodev", "rnoexec", "rnoatime", "rnosymfollow"]}),
        )
    });
    let c = Ctr::new("rattr");
    let out = run_ok(&c, &b);
    let ms = parse_mountinfo(&out);
    for point in ["/v", "/v/sub"] {
        let m = mount_at(&ms, point);
        for o in ["nosuid", "nodev", "noexec", "noatime", "nosymfollow"] {
            assert!(has_opt(m, o), "{point}: {o} missing from {}", m.opts);
        }
    }
}

#[test]
fn nosymfollow_refuses_to_follow_links_on_that_mount_only() {
    if !require_root() {
        return;
    }
    let (dir, _sub) = volume_with_submount();
    std::os::unix::fs::symlink("top", dir.path().join("link")).unwrap();
    std::os::unix::fs::symlink("inner", dir.path().join("sub/link")).unwrap();
    let mut b =
        sh("cat /v/link 2>/dev/null || echo refused; cat /v/sub/link 2>/dev/null || echo refused");
    b.edit(|c| {
        add_mount(
            c,
            json!({"destination": "/v", "source": dir.path(), "options": ["rbind", "nosymfollow"]}),
        )
    });
    let c = Ctr::new("nosymfollow");
    assert_eq!(run_ok(&c, &b), "refused\ninner\n");
}

#[test]
fn recursive_attributes_apply_to_other_mount_types_too() {
    if !require_root() {
        return;
    }
    let mut b = sh(
        "touch /scratch/x 2>/dev/null && echo w || echo r; grep ' /scratch ' /proc/self/mountinfo",
    );
    b.edit(|c| {
        add_mount(
            c,
            json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                   "options": ["rro", "rnoexec"]}),
        )
    });
    let c = Ctr::new("rtmpfs");
    let out = run_ok(&c, &b);
    assert!(out.starts_with("r\n"), "{out}");
    let ms = parse_mountinfo(&out);
    let m = mount_at(&ms, "/scratch");
    assert!(has_opt(m, "ro") && has_opt(m, "noexec"), "{}", m.opts);
}

#[test]
fn features_lists_the_recursive_options() {
    let o = std::process::Command::new(bin())
        .arg("features")
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let opts: Vec<&str> = v["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    for o in [
        "rro",
        "rrw",
        "rnosuid",
        "rsuid",
        "rnodev",
        "rdev",
        "rnoexec",
        "rexec",
        "ratime",
        "rnoatime",
        "rstrictatime",
        "rnodiratime",
        "rdiratime",
        "rrelatime",
        "rnorelatime",
        "rnosymfollow",
        "rsymfollow",
        "nosymfollow",
        "symfollow",
        "rbind",
        "ro",
    ] {
        assert!(opts.contains(&o), "{o} not in {opts:?}");
    }
}

// ---- /dev and tmpfs made read-only at the end -------------------------------------------------

#[test]
fn a_read_only_dev_still_gets_its_nodes_and_submounts() {
    if !require_root() {
        return;
    }
    let mut b = sh("grep -E ' /dev(/pts|/shm|/mqueue)? ' /proc/mounts | cut -d' ' -f2,4; \
                    echo x > /dev/null && echo null ok; touch /dev/new 2>/dev/null || echo refused; \
                    readlink /dev/ptmx");
    b.edit(|c| {
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/dev" {
                m["options"].as_array_mut().unwrap().push(json!("ro"));
            }
        }
    });
    let c = Ctr::new("rodev");
    let out = run_ok(&c, &b);
    let mut lines = out.lines();
    let dev = lines.next().unwrap();
    assert!(dev.starts_with("/dev ro,"), "{out}");
    for (point, line) in ["/dev/pts", "/dev/shm", "/dev/mqueue"]
        .iter()
        .zip(lines.by_ref())
    {
        assert!(line.starts_with(&format!("{point} rw,")), "{out}");
    }
    assert_eq!(
        lines.collect::<Vec<_>>(),
        ["null ok", "refused", "pts/ptmx"]
    );
}

#[test]
fn a_read_only_tmpfs_can_hold_later_mount_points() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "bound\n").unwrap();
    let mut b = sh("cat /mnt/sub/f; touch /mnt/x 2>/dev/null || echo refused; stat -c %a /mnt");
    b.edit(|c| {
        add_mount(
            c,
            json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
                   "options": ["ro", "mode=711"]}),
        );
        add_mount(
            c,
            json!({"destination": "/mnt/sub", "source": dir.path(), "options": ["bind"]}),
        );
    });
    let c = Ctr::new("rotmpfs");
    assert_eq!(run_ok(&c, &b), "bound\nrefused\n711\n");
}

// ---- createContainer hooks ---------------------------------------------------------------------

#[test]
fn create_container_hooks_run_in_the_rootfs() {
    if !require_root() {
        return;
    }
    // As runc runs them (its hooks.bats binds a library onto ./lib/…): relative paths in a
    // createContainer hook name the rootfs's files.
    let mut b = sh("cat /made-by-hook");
    let out = b.path().join("hook-cwd");
    let script = format!("pwd > {}; echo from hook > ./made-by-hook", out.display());
    b.edit(|c| {
        c["hooks"] = json!({"createContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", script]}
        ]});
    });
    let c = Ctr::new("cchookcwd");
    assert_eq!(run_ok(&c, &b), "from hook\n");
    let rootfs = std::fs::canonicalize(b.rootfs()).unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().trim_end(),
        rootfs.to_str().unwrap()
    );
}
