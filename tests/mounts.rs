//! The container's filesystem as seen from inside it (busybox) and from the host: the rootfs and
//! pivot_root, `mounts[]` (binds, recursive attributes, propagation), /dev, masked and read-only
//! paths, and the attacks a crafted image or config tries through them (each names its CVE).

mod common;

use std::path::{Path, PathBuf};

use common::*;
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

/// `create` that must fail; its stdio are files, so a create that wrongly succeeds cannot keep
/// the test waiting on the container's copy of a pipe. Returns stderr; nothing may be left.
fn create_fails(c: &Ctr, b: &Bundle) -> String {
    let o = c.run_files(&["create", "-b", bpath(b), "{id}"]);
    assert_ne!(o.code, Some(0), "create unexpectedly succeeded");
    assert!(!c.state_dir().exists(), "state left behind");
    o.stderr
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
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
}

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
