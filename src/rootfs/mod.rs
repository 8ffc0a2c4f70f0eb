//! The container's filesystem: config mounts, /dev, pivot_root, masked and read-only paths.
//! runs in: the container init, in its new mount namespace, before and right after pivot_root.

use std::ffi::CString;
use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{fchdir, pivot_root};
use oci_spec::runtime::Mount;

use crate::error::{Ctx, Error, Result};
use crate::spec::Plan;

mod cgroupfs;
mod dev;

/// Mount options split into flags to set, flags to clear, propagation changes and fs data.
#[derive(Debug, Clone, PartialEq)]
pub struct MountOpts {
    pub flags: MsFlags,
    pub clear: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    pub bind: bool,
}

impl Default for MountOpts {
    fn default() -> Self {
        MountOpts {
            flags: MsFlags::empty(),
            clear: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            bind: false,
        }
    }
}

impl MountOpts {
    pub fn parse(opts: &[String]) -> MountOpts {
        let mut m = MountOpts::default();
        for o in opts {
            let (set, clr) = match o.as_str() {
                "defaults" => (MsFlags::empty(), MsFlags::empty()),
                "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
                "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
                "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
                "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
                "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
                "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
                "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
                "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
                "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
                "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
                "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
                "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
                "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
                "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
                "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
                "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
                "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
                "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
                "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
                "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
                "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
                "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
                "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
                "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
                "bind" => {
                    m.bind = true;
                    (MsFlags::MS_BIND, MsFlags::empty())
                }
                "rbind" => {
                    m.bind = true;
                    (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
                }
                p => {
                    if let Some(f) = propagation_flag(p) {
                        m.propagation.push(f);
                    } else if !matches!(p, "tmpcopyup" | "idmap" | "ridmap" | "nosymfollow") {
                        m.data.push(p.to_string());
                    }
                    continue;
                }
            };
            m.flags.insert(set);
            m.flags.remove(clr);
            m.clear.insert(clr);
        }
        m
    }
}

/// `private`, `rslave`, … as mount(2) flags.
pub fn propagation_flag(p: &str) -> Option<MsFlags> {
    Some(match p {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Resolve `path` inside `root` the way the container will see it: symlinks are followed but can
/// never lead outside `root` (an absolute link restarts at `root`, `..` stops at it).
pub fn secure_join(root: &Path, path: &Path) -> PathBuf {
    let mut todo: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut cur = PathBuf::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let cand = cur.join(&c);
        match fs::symlink_metadata(root.join(&cand)) {
            Ok(md) if md.file_type().is_symlink() && links < 255 => {
                links += 1;
                let target = fs::read_link(root.join(&cand)).unwrap_or_default();
                if target.is_absolute() {
                    cur = PathBuf::new();
                }
                for comp in target.components().rev() {
                    match comp {
                        Component::Normal(s) => todo.push(s.to_os_string()),
                        Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => cur = cand,
        }
    }
    root.join(cur)
}

/// Flags a bind remount must keep: in a user namespace the kernel refuses to clear them.
fn locked_flags(path: &Path) -> MsFlags {
    let Ok(st) = nix::sys::statvfs::statvfs(path) else {
        return MsFlags::empty();
    };
    use nix::sys::statvfs::FsFlags;
    let f = st.flags();
    let mut m = MsFlags::empty();
    for (a, b) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
    ] {
        if f.contains(a) {
            m |= b;
        }
    }
    m
}

pub(crate) fn mnt(
    src: Option<&Path>,
    dst: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    mount(src, dst, fstype, flags, data)
}

/// Paths under /proc that may be bind-mounted over (lxcfs and friends); anything else on /proc
/// is refused (CVE-2019-16884, CVE-2019-19921).
const PROC_OK: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/sys/kernel/ns_last_pid",
];

/// Everything before pivot_root: propagation, the rootfs bind, config mounts, /dev.
/// `userns`: the init is in a new user namespace (device nodes are then bind-mounted).
pub fn prepare(plan: &Plan, userns: bool) -> Result<()> {
    let linux = plan.linux();
    let prop = linux
        .rootfs_propagation()
        .as_deref()
        .and_then(propagation_flag)
        // An unbindable tree cannot give the rootfs bind below: that one is applied to the new
        // root after pivot_root (finish), and rslave serves until then.
        .filter(|p| !p.contains(MsFlags::MS_UNBINDABLE))
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    // Stop our mounts reaching the host (and, for rslave, keep host mounts arriving).
    mnt(None, Path::new("/"), None, prop, None).ctx(|| "make / a private mount tree")?;
    let rootfs = &plan.rootfs;
    if prop.contains(MsFlags::MS_SHARED) {
        // pivot_root refuses a shared parent mount.
        if let Some(parent) = mount_point_of(rootfs.parent().unwrap_or(Path::new("/"))) {
            mnt(None, &parent, None, MsFlags::MS_PRIVATE, None)
                .ctx(|| format!("make {} private", parent.display()))?;
        }
    }
    mnt(
        Some(rootfs),
        rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .ctx(|| format!("bind rootfs {}", rootfs.display()))?;

    let mounts = plan.spec.mounts().clone().unwrap_or_default();
    for m in &mounts {
        mount_one(plan, m)?;
    }
    let dev_bound = mounts.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && MountOpts::parse(m.options().as_deref().unwrap_or(&[])).bind
    });
    if !dev_bound {
        dev::create_devices(plan, userns)?;
        dev::dev_symlinks(rootfs, &mounts)?;
    }
    Ok(())
}

fn mount_one(plan: &Plan, m: &Mount) -> Result<()> {
    let rootfs = &plan.rootfs;
    let o = MountOpts::parse(m.options().as_deref().unwrap_or(&[]));
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if o.bind { "bind" } else { "none" });
    let dst_in = m.destination();
    // The type is named when the source does not say it: an unknown one fails with a bare
    // "no such device" that otherwise points nowhere.
    let shown = || {
        let src = m
            .source()
            .as_deref()
            .map(|s| s.display().to_string())
            .unwrap_or_else(|| typ.to_string());
        if o.bind || src == typ {
            format!("mount {src} on {}", dst_in.display())
        } else {
            format!("mount {src} (type {typ}) on {}", dst_in.display())
        }
    };
    if dst_in.starts_with("/proc")
        && typ != "proc"
        && !PROC_OK.iter().any(|p| Path::new(p) == dst_in)
    {
        return Err(Error::invalid(format!(
            "{}: mounting over /proc is refused (only proc, or binds onto {})",
            shown(),
            PROC_OK.join(", ")
        )));
    }
    let dst = secure_join(rootfs, dst_in);
    if typ == "cgroup" || typ == "cgroup2" {
        let in_cgns = plan
            .ns(oci_spec::runtime::LinuxNamespaceType::Cgroup)
            .is_some();
        return cgroupfs::mount_cgroup(&dst, &o, in_cgns).ctx(shown);
    }
    let src: Option<PathBuf> = m.source().as_ref().map(|s| {
        if o.bind && !s.is_absolute() {
            plan.bundle.join(s)
        } else {
            s.clone()
        }
    });
    // Make the mount point: a file for a bind of a file, else a directory.
    let src_is_file = o.bind
        && src
            .as_ref()
            .and_then(|s| fs::metadata(s).ok())
            .is_some_and(|md| !md.is_dir());
    if o.bind {
        if let Some(s) = &src {
            fs::metadata(s).ctx(shown)?;
        }
    }
    if src_is_file {
        if let Some(p) = dst.parent() {
            fs::create_dir_all(p).ctx(shown)?;
        }
        if !dst.exists() {
            fs::File::create(&dst).ctx(shown)?;
        }
    } else {
        fs::create_dir_all(&dst).ctx(shown)?;
    }
    let data = o.data.join(",");
    let data = (!data.is_empty()).then_some(data);
    if o.bind {
        mnt(
            src.as_deref(),
            &dst,
            None,
            MsFlags::MS_BIND | (o.flags & MsFlags::MS_REC),
            None,
        )
        .ctx(shown)?;
        let extra = o.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() || !o.clear.is_empty() {
            let keep = locked_flags(&dst) & !o.clear & !MsFlags::MS_RDONLY;
            mnt(
                None,
                &dst,
                None,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | extra | keep,
                None,
            )
            .ctx(shown)?;
        }
    } else {
        let src = src.unwrap_or_else(|| PathBuf::from(typ));
        mnt(Some(&src), &dst, Some(typ), o.flags, data.as_deref()).ctx(shown)?;
    }
    for p in &o.propagation {
        mnt(None, &dst, None, *p, None).ctx(shown)?;
    }
    Ok(())
}

/// The mount point that holds `p` (longest mountinfo prefix).
fn mount_point_of(p: &Path) -> Option<PathBuf> {
    let mi = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mi.lines()
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .filter(|mp| p.starts_with(mp))
        .max_by_key(|mp| mp.as_os_str().len())
}

/// Switch to the rootfs: pivot_root, then drop the old root (made rslave first so the detach
/// does not travel back to the host). With `no_pivot`, MS_MOVE + chroot instead.
pub fn enter(plan: &Plan, no_pivot: bool) -> Result<()> {
    let rootfs = &plan.rootfs;
    if no_pivot {
        nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
        mnt(Some(rootfs), Path::new("/"), None, MsFlags::MS_MOVE, None)
            .ctx(|| "move rootfs to /")?;
        nix::unistd::chroot(".").ctx(|| "chroot")?;
        nix::unistd::chdir("/").ctx(|| "chdir /")?;
        return Ok(());
    }
    let old: OwnedFd = fs::File::open("/").ctx(|| "open /")?.into();
    let new: OwnedFd = fs::File::open(rootfs)
        .ctx(|| format!("open {}", rootfs.display()))?
        .into();
    fchdir(&new).ctx(|| "fchdir rootfs")?;
    pivot_root(".", ".").ctx(|| format!("pivot_root {}", rootfs.display()))?;
    fchdir(&old).ctx(|| "fchdir old root")?;
    mnt(
        None,
        Path::new("."),
        None,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
    )
    .ctx(|| "make old root rslave")?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach old root")?;
    nix::unistd::chdir("/").ctx(|| "chdir /")?;
    Ok(())
}

/// After pivot_root: sysctls, read-only and masked paths, root propagation, read-only root.
pub fn finish(plan: &Plan) -> Result<()> {
    let linux = plan.linux();
    for (k, v) in linux.sysctl().iter().flatten() {
        let p = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
        fs::write(&p, v).ctx(|| format!("write sysctl {k}"))?;
    }
    for p in linux.readonly_paths().iter().flatten() {
        let p = Path::new(p);
        match mnt(Some(p), p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None) {
            Err(Errno::ENOENT) => continue,
            r => r.ctx(|| format!("bind readonly path {}", p.display()))?,
        }
        let keep = locked_flags(p);
        mnt(
            None,
            p,
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | keep,
            None,
        )
        .ctx(|| format!("remount {} read-only", p.display()))?;
    }
    for p in linux.masked_paths().iter().flatten() {
        let p = Path::new(p);
        let r = match fs::metadata(p) {
            Err(_) => continue,
            Ok(md) if md.is_dir() => mnt(
                Some(Path::new("tmpfs")),
                p,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
            ),
            Ok(_) => mnt(
                Some(Path::new("/dev/null")),
                p,
                None,
                MsFlags::MS_BIND,
                None,
            ),
        };
        match r {
            Err(Errno::ENOENT) => {}
            r => r.ctx(|| format!("mask {}", p.display()))?,
        }
    }
    if let Some(f) = linux
        .rootfs_propagation()
        .as_deref()
        .and_then(propagation_flag)
    {
        mnt(None, Path::new("/"), None, f, None).ctx(|| "set rootfs propagation")?;
    }
    if plan
        .spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let keep = locked_flags(Path::new("/"));
        mnt(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | keep,
            None,
        )
        .ctx(|| "remount / read-only")?;
    }
    Ok(())
}

/// C string of a path, for the few raw calls that need one.
pub fn cpath(p: &Path) -> CString {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn opts(v: &[&str]) -> MountOpts {
        MountOpts::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, ["mode=755", "size=65536k"]);
        assert!(!o.bind);
        let o = opts(&["rbind", "ro", "rprivate"]);
        assert!(o.bind);
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.propagation, [MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        let o = opts(&["ro", "rw", "exec"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.clear.contains(MsFlags::MS_NOEXEC));
    }

    #[test]
    fn secure_join_stays_inside_root() {
        let root = std::env::temp_dir().join(format!("hookrun-sj-{}", std::process::id()));
        fs::create_dir_all(root.join("a/b")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../..", root.join("a/up")).unwrap();
        symlink("b", root.join("a/rel")).unwrap();
        assert_eq!(
            secure_join(&root, Path::new("/abs/passwd")),
            root.join("etc/passwd")
        );
        assert_eq!(secure_join(&root, Path::new("/a/up/x")), root.join("x"));
        assert_eq!(
            secure_join(&root, Path::new("/a/rel/c")),
            root.join("a/b/c")
        );
        assert_eq!(secure_join(&root, Path::new("/../../x")), root.join("x"));
        fs::remove_dir_all(&root).unwrap();
    }
}
