//! Filesystem helpers shared by tests/mounts.rs and tests/mount_safety.rs: config edits,
//! mountinfo parsing, host mounts made for a test, user namespace bundles.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::{bpath, Bundle, Ctr};

pub fn add_mount(cfg: &mut Value, m: Value) {
    cfg["mounts"].as_array_mut().unwrap().push(m);
}

/// Mountinfo lines: (mount point, per-mount options, optional fields, fstype, root).
pub struct MountLine {
    pub root: String,
    pub point: String,
    pub opts: String,
    pub optional: String,
    pub fstype: String,
}

pub fn parse_mountinfo(text: &str) -> Vec<MountLine> {
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
pub fn mount_at<'a>(ms: &'a [MountLine], point: &str) -> &'a MountLine {
    ms.iter()
        .rev()
        .find(|m| m.point == point)
        .unwrap_or_else(|| panic!("no mount at {point}"))
}

pub fn has_opt(m: &MountLine, o: &str) -> bool {
    m.opts.split(',').any(|x| x == o)
}

/// A mount made on the host for one test, detached again on drop.
pub struct HostMount(PathBuf);

impl HostMount {
    pub fn tmpfs(at: &Path) -> HostMount {
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

/// `create` that must fail; its stdio are files, so a create that wrongly succeeds cannot keep
/// the test waiting on the container's copy of a pipe. Returns stderr; nothing may be left.
pub fn create_fails(c: &Ctr, b: &Bundle) -> String {
    let o = c.run_files(&["create", "-b", bpath(b), "{id}"]);
    assert_ne!(o.code, Some(0), "create unexpectedly succeeded");
    assert!(!c.state_dir().exists(), "state left behind");
    o.stderr
}

/// The fixture belongs to host root, which is unmapped in a user namespace: hand it to the
/// mapped root (host 100000).
pub fn chown_to_mapped_root(b: &Bundle) {
    let st = std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(st.success());
}

/// A user namespace of its own, container 0-65535 = host 100000-165535.
pub fn in_own_userns(b: &mut Bundle) {
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
