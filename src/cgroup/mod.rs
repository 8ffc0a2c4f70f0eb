//! The container's cgroup: resolve `linux.cgroupsPath`, make the cgroup in every mounted hierarchy
//! (each v1 one and the cgroup2 one, so hybrid hosts work), place the init in it, and later list,
//! signal and remove what is in it; [`limits`] writes `linux.resources` into it. A thin adapter
//! over cgroups-rs, whose controllers do the directory and limit-file work ([`cpu`], [`blkio`] and
//! [`devices`] for those controllers). [`freezer`] pauses and resumes it, [`stats`] reads its
//! counters for `events`.
//! runs in: the runtime (`create`, `run`, `kill`, `delete`, `update`, `pause`, `events`).

mod blkio;
mod cpu;
mod delegated;
mod devices;
mod freezer;
mod limits;
mod stats;

pub use freezer::{frozen, pause, resume, thaw};
pub use stats::{oom_kills, stats};

use std::fs;
use std::path::{Component, Path, PathBuf};

use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::systemd::SystemdController;
use cgroups_rs::fs::Controller;
use cgroups_rs::CgroupPid;
use serde::{Deserialize, Serialize};

use crate::error::{errno_text, Error, Result};
use crate::spec::Plan;

/// What state.json keeps about the container's cgroup (absent in an old state.json: no cgroup).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recorded {
    /// The container's cgroup directory in every hierarchy.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// The directories `create` made, deepest first: the only ones `delete` removes.
    #[serde(default)]
    pub created: Vec<PathBuf>,
}

/// One mounted hierarchy, from /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hier {
    mount: PathBuf,
    /// The hierarchy path shown at `mount` (field 4 of mountinfo; `/` unless bind-mounted).
    root: PathBuf,
    v2: bool,
    /// `cpu`, `cpuacct`, `name=systemd`…; empty for cgroup2.
    ctrls: Vec<String>,
}

fn hierarchies(mountinfo: &str) -> Vec<Hier> {
    let mut out: Vec<Hier> = Vec::new();
    for l in mountinfo.lines() {
        let Some((pre, post)) = l.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 || !matches!(post[0], "cgroup" | "cgroup2") {
            continue;
        }
        let v2 = post[0] == "cgroup2";
        let ctrls = if v2 {
            vec![]
        } else {
            let known = [
                "rw",
                "ro",
                "clone_children",
                "noprefix",
                "xattr",
                "cpuset_v2_mode",
            ];
            post[2]
                .split(',')
                .filter(|o| !known.contains(o) && !o.starts_with("release_agent="))
                .map(str::to_string)
                .collect()
        };
        let h = Hier {
            mount: PathBuf::from(pre[4]),
            root: PathBuf::from(pre[3]),
            v2,
            ctrls,
        };
        // The same hierarchy mounted twice: the first mount is enough.
        if !out.iter().any(|o| o.v2 == h.v2 && o.ctrls == h.ctrls) {
            out.push(h);
        }
    }
    // blkio before memory: cgroup writeback wants the blkcg set when the memcg is (as runc).
    out.sort_by_key(|h| !h.ctrls.iter().any(|c| c == "blkio"));
    out
}

/// The cgroup of this process in `h`, relative to the hierarchy's root, from /proc/self/cgroup.
fn own_path(h: &Hier, proc_cgroup: &str) -> PathBuf {
    for line in proc_cgroup.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let hit = if h.v2 {
            ctrls.is_empty()
        } else {
            !ctrls.is_empty() && ctrls.split(',').all(|c| h.ctrls.iter().any(|x| x == c))
        };
        if hit {
            return PathBuf::from(path.trim_start_matches('/'));
        }
    }
    PathBuf::new()
}

/// Where `linux.cgroupsPath` puts the container, relative to something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Absolute: below each hierarchy's root.
    Root(PathBuf),
    /// Relative or absent: below the runtime's own cgroup in each hierarchy.
    Own(PathBuf),
}

fn field(msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!("config.json: linux.cgroupsPath: {msg}"))
}

/// Resolve `linux.cgroupsPath` (default: the container id below the runtime's own cgroup).
pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Target> {
    let Some(p) = cgroups_path.filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(Target::Own(PathBuf::from(id)));
    };
    let s = p.to_string_lossy();
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() == 3 && !parts[0].contains('/') {
        return Err(field(format!(
            "{s:?} is systemd's slice:prefix:name form, but hookrun has no systemd cgroup \
             driver; give a cgroupfs path such as \"/hookrun/{}\"",
            parts[2]
        )));
    }
    let mut clean = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => clean.push(n),
            Component::RootDir | Component::CurDir => {}
            // Would leave the hierarchy (or the runtime's cgroup) behind.
            Component::ParentDir | Component::Prefix(_) => {
                return Err(field(format!("{s:?} must not contain \"..\"")))
            }
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(field(format!("{s:?} names the hierarchy root itself")));
    }
    Ok(if p.is_absolute() {
        Target::Root(clean)
    } else {
        Target::Own(clean)
    })
}

/// The container's directory in `h`.
fn dir_in(h: &Hier, t: &Target, proc_cgroup: &str) -> PathBuf {
    // A path inside the hierarchy, seen through a mount of `h.root`.
    let below_mount = |p: PathBuf| -> PathBuf {
        let root = h.root.strip_prefix("/").unwrap_or(&h.root);
        h.mount.join(p.strip_prefix(root).unwrap_or(&p))
    };
    match t {
        Target::Root(p) => below_mount(p.clone()),
        Target::Own(p) => below_mount(own_path(h, proc_cgroup).join(p)),
    }
}

/// The container's cgroup while `create` makes it (or, reopened from state.json, while `update`
/// writes new limits into it).
pub struct Cgroup {
    dirs: Vec<(Hier, PathBuf)>,
    created: Vec<PathBuf>,
    /// How errors name a resource field: `config.json: linux.resources` at create, `update` later.
    origin: &'static str,
}

/// A failed cgroup write: `cgroup <dir>: write "<value>" to <file>: <cause>`.
fn failed(dir: &Path, file: &str, value: &str, e: impl std::error::Error + 'static) -> Error {
    let mut src: Option<&dyn std::error::Error> = Some(&e);
    let mut cause = e.to_string();
    while let Some(s) = src {
        if let Some(n) = s
            .downcast_ref::<std::io::Error>()
            .and_then(|i| i.raw_os_error())
        {
            cause = errno_text(nix::errno::Errno::from_raw(n));
            break;
        }
        src = s.source();
    }
    Error::Child(format!(
        "cgroup {}: write {value:?} to {file}: {cause}",
        dir.display()
    ))
}

/// cgroups-rs's name=systemd controller does nothing controller-specific, so it serves for the
/// plain directory operations (mkdir, cgroup.procs, rmdir with retries) in any hierarchy; cpuset
/// needs its own, which copies cpuset.cpus/mems from the parent before any task can join.
fn plain(h: &Hier, dir: &Path) -> Box<dyn Controller> {
    let (d, m) = (dir.to_path_buf(), h.mount.clone());
    if h.ctrls.iter().any(|c| c == "cpuset") {
        Box::new(CpuSetController::new(d, m, h.v2))
    } else {
        Box::new(SystemdController::new(d, m, h.v2))
    }
}

impl Cgroup {
    /// Resolve, refuse a frozen cgroup (warn about a shared one), make the directories and apply
    /// the limits. None when rootless without limits (then no cgroup is made). On error nothing
    /// made is left behind.
    pub fn create(plan: &Plan, id: &str) -> Result<Option<Cgroup>> {
        let l = plan.linux();
        let res = l.resources().clone().unwrap_or_default();
        if !nix::unistd::geteuid().is_root() {
            return delegated::create(plan, id);
        }
        let target = resolve(l.cgroups_path().as_deref(), id)?;
        let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let pc = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let dirs: Vec<(Hier, PathBuf)> = hierarchies(&mi)
            .into_iter()
            .map(|h| {
                let d = dir_in(&h, &target, &pc);
                (h, d)
            })
            .collect();
        check_reuse(&dirs)?;
        Cgroup::make_and_apply(dirs, &res).map(Some)
    }

    /// Make `dirs` and apply the config's limits; on error remove what was made.
    fn make_and_apply(
        dirs: Vec<(Hier, PathBuf)>,
        res: &oci_spec::runtime::LinuxResources,
    ) -> Result<Cgroup> {
        let mut cg = Cgroup {
            dirs,
            created: vec![],
            origin: "config.json: linux.resources",
        };
        // The device cgroup is always set: no rules still means deny all but runc's defaults.
        let mut res = res.clone();
        res.set_devices(Some(res.devices().clone().unwrap_or_default()));
        if let Err(e) = cg.make().and_then(|()| cg.apply(&res)) {
            let _ = remove(&cg.recorded());
            return Err(e);
        }
        Ok(cg)
    }

    fn make(&mut self) -> Result<()> {
        for (h, d) in &self.dirs {
            let mut new = vec![];
            let mut p = d.as_path();
            while !p.exists() && p.starts_with(&h.mount) {
                new.push(p.to_path_buf());
                p = p.parent().unwrap_or(&h.mount);
            }
            plain(h, d)
                .create()
                .map_err(|e| failed(d, "", "mkdir", e))?;
            if h.v2 && !new.is_empty() {
                // Hand the controllers down to the new directories, top-down, parents only (a
                // cgroup2 leaf with controllers enabled could not hold processes).
                let avail =
                    fs::read_to_string(h.mount.join("cgroup.controllers")).unwrap_or_default();
                for dir in [p]
                    .into_iter()
                    .chain(new.iter().skip(1).rev().map(|n| n.as_path()))
                {
                    for c in avail.split_whitespace() {
                        let _ = fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
                    }
                }
            }
            self.created.extend(new);
        }
        Ok(())
    }

    /// Place the init in the cgroup of every hierarchy (before sync 1: the init unshares its
    /// cgroup namespace after it, so the namespace is rooted here).
    pub fn enter(&self, pid: i32) -> Result<()> {
        for (h, d) in &self.dirs {
            plain(h, d)
                .add_task_by_tgid(&CgroupPid::from(pid as u64))
                .map_err(|e| failed(d, "cgroup.procs", &pid.to_string(), e))?;
        }
        Ok(())
    }

    /// The recorded cgroup of a created container, each directory matched again to its mounted
    /// hierarchy (the longest mount point it lies below).
    pub fn open(rec: &Recorded, origin: &'static str) -> Cgroup {
        let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Cgroup {
            dirs: match_hierarchies(&hierarchies(&mi), &rec.paths),
            created: rec.created.clone(),
            origin,
        }
    }

    /// Write `r` into the running container's cgroup (`update`): the same code as at create;
    /// device rules only when `r` has some.
    pub fn update(&self, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
        self.apply(r)
    }

    pub fn recorded(&self) -> Recorded {
        Recorded {
            paths: self.dirs.iter().map(|(_, d)| d.clone()).collect(),
            created: self.created.clone(),
        }
    }
}

/// Each recorded directory with its hierarchy's controllers (none for cgroup2), for `exec
/// --cgroup CTRL:SUB`.
pub fn controllers(rec: &Recorded) -> Vec<(Vec<String>, PathBuf)> {
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    match_hierarchies(&hierarchies(&mi), &rec.paths)
        .into_iter()
        .map(|(h, d)| (h.ctrls, d))
        .collect()
}

/// An existing cgroup may be reused. A frozen one (or one below a frozen parent) would freeze the
/// init before it ran a line: refused, in runc's words. One that holds processes is shared with
/// them, which runc allows with a warning; `delete` then leaves the processes and the directory
/// that are not the container's.
fn check_reuse(dirs: &[(Hier, PathBuf)]) -> Result<()> {
    for (h, d) in dirs {
        let probe = d
            .ancestors()
            .find(|a| a.exists())
            .filter(|a| a.starts_with(&h.mount) && *a != h.mount);
        if let Some(p) = probe.filter(|p| freezer::freezing(p, h.v2)) {
            let (file, thawed) = if h.v2 {
                ("cgroup.freeze", "0")
            } else {
                ("freezer.state", "THAWED")
            };
            return Err(Error::invalid(format!(
                "cgroup {}: container's cgroup unexpectedly frozen (thaw it with `echo {thawed} \
                 > {}`, or give another linux.cgroupsPath)",
                p.display(),
                p.join(file).display()
            )));
        }
    }
    let mut pids: Vec<u64> = dirs
        .iter()
        .filter(|(_, d)| d.exists())
        .flat_map(|(h, d)| plain(h, d).procs())
        .map(|p| p.pid)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    if let (false, Some((_, d))) = (pids.is_empty(), dirs.first()) {
        crate::log::warn(format!(
            "container's cgroup is not empty: {} process(es) found in {} (they share the \
             container's limits)",
            pids.len(),
            d.display()
        ));
    }
    Ok(())
}

/// Each recorded directory with the hierarchy it belongs to (directories under no mounted
/// hierarchy any more are left out).
fn match_hierarchies(hs: &[Hier], paths: &[PathBuf]) -> Vec<(Hier, PathBuf)> {
    paths
        .iter()
        .filter_map(|d| {
            hs.iter()
                .filter(|h| d.starts_with(&h.mount))
                .max_by_key(|h| h.mount.components().count())
                .map(|h| (h.clone(), d.clone()))
        })
        .collect()
}

/// Live pids in the container's cgroup (every hierarchy, deduplicated).
pub fn procs(rec: &Recorded) -> Vec<i32> {
    let mut out: Vec<i32> = vec![];
    for d in &rec.paths {
        for l in fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
        {
            if let Ok(p) = l.trim().parse::<i32>() {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    out
}

fn in_cgroup(rec: &Recorded, pid: i32) -> bool {
    rec.paths.iter().any(|d| {
        fs::read_to_string(d.join("cgroup.procs"))
            .is_ok_and(|s| s.lines().any(|l| l.trim() == pid.to_string()))
    })
}

/// Signal every process in the cgroup. Each is pinned by a pidfd and checked to be still in the
/// cgroup before it is signalled, so a recycled pid is never hit. `skip` (the init, which the
/// caller signals through its own pidfd) is left out. Returns how many were signalled.
pub fn signal_all(rec: &Recorded, sig: i32, skip: i32) -> usize {
    let mut n = 0;
    for pid in procs(rec).into_iter().filter(|p| *p != skip) {
        // SAFETY: pidfd_open returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            continue;
        }
        // SAFETY: a fresh fd we own.
        let fd =
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        if in_cgroup(rec, pid) && crate::container::pidfd_signal(&fd, sig).is_ok() {
            n += 1;
        }
    }
    n
}

/// SIGKILL what is left in the cgroup and wait (up to 5 s) until it is empty. A paused
/// container is thawed after the signal: a task frozen by the v1 freezer never acts on a SIGKILL
/// until then (as runc does).
pub fn kill_all(rec: &Recorded) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !procs(rec).is_empty() && std::time::Instant::now() < deadline {
        signal_all(rec, libc::SIGKILL, 0);
        thaw(rec);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Remove the directories `create` made, deepest first (an rmdir is retried: the kernel may keep
/// a cgroup busy briefly after its last process died). Directories it did not make stay.
pub fn remove(rec: &Recorded) -> Result<()> {
    let mut first_err = None;
    for d in &rec.created {
        if !rec.paths.contains(d) {
            // An intermediate directory: plain rmdir, never recursive, so a sibling container's
            // cgroup below it is left alone (and so is the directory, then).
            let _ = fs::remove_dir(d);
            continue;
        }
        let c = SystemdController::new(d.clone(), PathBuf::from("/"), false);
        let left = c.procs().len();
        if left > 0 {
            // Another container's (it was made in this non-empty cgroup): theirs to leave.
            crate::log::warn(format!(
                "cgroup {}: not removed: {left} process(es) of another container are in it",
                d.display()
            ));
            continue;
        }
        if let Err(e) = c.delete() {
            if d.exists() && first_err.is_none() {
                first_err = Some(failed(d, "", "rmdir", e));
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd,release_agent=/x
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
99 31 0:32 /deep /mnt/mem rw,relatime - cgroup cgroup rw,memory";
    const PC: &str = "9:name=systemd:/
7:blkio:/
4:memory:/process_api/abc
1:cpu,cpuacct:/
0::/";

    #[test]
    fn hierarchies_from_mountinfo() {
        let hs = hierarchies(MI);
        let names: Vec<String> = hs.iter().map(|h| h.ctrls.join(",")).collect();
        assert_eq!(
            names,
            ["blkio", "cpu,cpuacct", "memory", "name=systemd", ""]
        );
        assert!(hs[4].v2);
        assert_eq!(hs[2].mount, Path::new("/sys/fs/cgroup/memory"));
    }

    #[test]
    fn resolve_paths() {
        assert_eq!(resolve(None, "web").unwrap(), Target::Own("web".into()));
        assert_eq!(
            resolve(Some(Path::new("")), "web").unwrap(),
            Target::Own("web".into())
        );
        assert_eq!(
            resolve(Some(Path::new("a/b")), "web").unwrap(),
            Target::Own("a/b".into())
        );
        assert_eq!(
            resolve(Some(Path::new("/a/./b/")), "web").unwrap(),
            Target::Root("a/b".into())
        );
        let e = resolve(Some(Path::new("system.slice:docker:abc")), "w")
            .unwrap_err()
            .to_string();
        assert!(e.contains("systemd's slice:prefix:name form"), "{e}");
        assert!(resolve(Some(Path::new("../x")), "w")
            .unwrap_err()
            .to_string()
            .contains("\"..\""));
        assert!(resolve(Some(Path::new("/")), "w").is_err());
    }

    #[test]
    fn directories_per_hierarchy() {
        let hs = hierarchies(MI);
        let mem = &hs[2];
        let own = Target::Own("web".into());
        assert_eq!(
            dir_in(mem, &own, PC),
            Path::new("/sys/fs/cgroup/memory/process_api/abc/web")
        );
        assert_eq!(
            dir_in(&hs[1], &own, PC),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/web")
        );
        assert_eq!(
            dir_in(&hs[4], &own, PC),
            Path::new("/sys/fs/cgroup/unified/web")
        );
        let abs = Target::Root("hr/web".into());
        assert_eq!(
            dir_in(mem, &abs, PC),
            Path::new("/sys/fs/cgroup/memory/hr/web")
        );
        // A hierarchy bind-mounted from a subdirectory: paths are relative to what it shows.
        let deep = Hier {
            mount: "/mnt/mem".into(),
            root: "/deep".into(),
            v2: false,
            ctrls: vec!["memory".into()],
        };
        assert_eq!(
            dir_in(&deep, &Target::Root("deep/x".into()), PC),
            Path::new("/mnt/mem/x")
        );
    }

    #[test]
    fn recorded_dirs_find_their_hierarchy_again() {
        let hs = hierarchies(MI);
        let rec = [
            PathBuf::from("/sys/fs/cgroup/memory/x/web"),
            PathBuf::from("/sys/fs/cgroup/unified/web"),
            PathBuf::from("/gone/web"),
        ];
        let m = match_hierarchies(&hs, &rec);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0.ctrls, ["memory"]);
        assert!(m[1].0.v2);
    }

    #[test]
    fn old_state_without_cgroup_loads() {
        let r: Recorded = serde_json::from_str("{}").unwrap();
        assert_eq!(r, Recorded::default());
    }
}
