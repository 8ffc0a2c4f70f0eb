//! `hookrun check`: a preflight that looks at this host and says, one line per item, what hookrun
//! can use and how to fix what is missing (`ok|warn|fail  item: detail — fix: …`). As root it
//! checks what root needs; rootless (`--rootless`, or auto as a non-root user) it checks what an
//! unprivileged user needs. Exit status 1 when something needed is missing.
//! runs in: the runtime.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{access, AccessFlags};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub level: Level,
    pub name: &'static str,
    pub detail: String,
    pub fix: Option<String>,
}

impl Item {
    fn ok(name: &'static str, detail: impl Into<String>) -> Item {
        Item {
            level: Level::Ok,
            name,
            detail: detail.into(),
            fix: None,
        }
    }

    fn bad(level: Level, name: &'static str, detail: impl Into<String>, fix: &str) -> Item {
        Item {
            level,
            name,
            detail: detail.into(),
            fix: Some(fix.to_string()),
        }
    }

    pub fn line(&self) -> String {
        let level = match self.level {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "fail",
        };
        let fix = self
            .fix
            .as_ref()
            .map(|f| format!(" — fix: {f}"))
            .unwrap_or_default();
        format!("{level:<4}  {}: {}{fix}", self.name, self.detail)
    }
}

/// Print the report for this host; the exit status (1 when an item failed).
pub fn run(state_root: &Path, rootless: bool) -> i32 {
    let items = items(state_root, rootless);
    for i in &items {
        println!("{}", i.line());
    }
    i32::from(items.iter().any(|i| i.level == Level::Fail))
}

/// Every item, in order. Rootless items that are only needed for some configs (helpers, subids,
/// delegation, seccomp) warn; what every container needs fails.
pub fn items(state_root: &Path, rootless: bool) -> Vec<Item> {
    let uid = nix::unistd::geteuid().as_raw();
    let user = nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = vec![Item::ok(
        "mode",
        if rootless {
            format!("rootless, as {user} (uid {uid})")
        } else {
            format!("as {user} (uid {uid}), with privilege")
        },
    )];
    if rootless {
        out.push(userns_item(
            read_num("/proc/sys/user/max_user_namespaces"),
            read_num("/proc/sys/kernel/unprivileged_userns_clone"),
            read_num("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
            try_userns(),
        ));
        for tool in ["newuidmap", "newgidmap"] {
            out.push(helper_item(tool));
        }
        let (u, g) = (
            fs::read_to_string("/etc/subuid").ok(),
            fs::read_to_string("/etc/subgid").ok(),
        );
        out.push(subid_item("/etc/subuid", u.as_deref(), &user, uid));
        out.push(subid_item("/etc/subgid", g.as_deref(), &user, uid));
    }
    out.push(layout_item(&layout(&mountinfo), rootless));
    if rootless {
        let pc = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        out.push(delegation_item(&mountinfo, &pc, uid, &user));
    }
    out.push(seccomp_item(
        &fs::read_to_string("/proc/self/status").unwrap_or_default(),
    ));
    out.push(state_root_item(state_root, uid));
    out
}

fn read_num(p: &str) -> Option<u64> {
    fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Whether this process may make a user namespace: tried in a throwaway child.
fn try_userns() -> Result<(), String> {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};
    // SAFETY: the runtime is single-threaded; the child only calls unshare(2) and _exit(2).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // SAFETY: plain syscalls in the forked child, which exits without unwinding.
            unsafe {
                let rc = libc::unshare(libc::CLONE_NEWUSER);
                libc::_exit(if rc == 0 {
                    0
                } else {
                    *libc::__errno_location()
                });
            }
        }
        Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(WaitStatus::Exited(_, n)) => {
                Err(crate::error::errno_text(nix::errno::Errno::from_raw(n)))
            }
            r => Err(format!("{r:?}")),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// User namespaces: the sysctls that gate them, and an actual attempt.
pub fn userns_item(
    max: Option<u64>,
    unpriv_clone: Option<u64>,
    apparmor: Option<u64>,
    tried: Result<(), String>,
) -> Item {
    const N: &str = "user namespaces";
    if max == Some(0) {
        return Item::bad(
            Level::Fail,
            N,
            "user.max_user_namespaces is 0",
            "sysctl -w user.max_user_namespaces=15000 (persist it in /etc/sysctl.d/)",
        );
    }
    if unpriv_clone == Some(0) {
        return Item::bad(
            Level::Fail,
            N,
            "kernel.unprivileged_userns_clone is 0",
            "sysctl -w kernel.unprivileged_userns_clone=1 (persist it in /etc/sysctl.d/)",
        );
    }
    if let Err(e) = tried {
        let (detail, fix) = if apparmor.is_some_and(|v| v != 0) {
            (
                format!("AppArmor restricts unprivileged user namespaces (unshare: {e})"),
                "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or give hookrun an \
                 AppArmor profile with `userns,`",
            )
        } else {
            (
                format!("unshare(CLONE_NEWUSER) failed: {e}"),
                "allow unprivileged user namespaces (a seccomp filter or LSM of an outer \
                 container may block them)",
            )
        };
        return Item::bad(Level::Fail, N, detail, fix);
    }
    let mut d = format!(
        "allowed (max_user_namespaces {})",
        max.map_or("unknown".into(), |m| m.to_string())
    );
    if let Some(v) = unpriv_clone {
        d.push_str(&format!(", unprivileged_userns_clone {v}"));
    }
    if let Some(v) = apparmor {
        d.push_str(&format!(", apparmor_restrict_unprivileged_userns {v}"));
    }
    Item::ok(N, d)
}

fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/bin", "/usr/sbin", "/bin", "/sbin"])
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file());
    found
}

/// newuidmap/newgidmap: present and setuid root (or with file capabilities, as Fedora ships them).
fn helper_item(tool: &'static str) -> Item {
    let fix = "apt-get install uidmap (Fedora: shadow-utils); they must be setuid root";
    let Some(p) = find_in_path(tool) else {
        return Item::bad(
            Level::Warn,
            tool,
            "not found: only a single-id mapping (your own uid/gid) is possible",
            fix,
        );
    };
    let Ok(md) = fs::metadata(&p) else {
        return Item::bad(
            Level::Warn,
            tool,
            format!("{}: unreadable", p.display()),
            fix,
        );
    };
    let setuid_root = md.uid() == 0 && md.permissions().mode() & 0o4000 != 0;
    let file_caps = xattr_present(&p, "security.capability");
    if setuid_root || file_caps {
        let how = if setuid_root {
            "setuid root"
        } else {
            "file capabilities"
        };
        Item::ok(tool, format!("{} ({how})", p.display()))
    } else {
        Item::bad(
            Level::Warn,
            tool,
            format!(
                "{} is neither setuid root nor has file capabilities",
                p.display()
            ),
            &format!("chown root {0} && chmod u+s {0}", p.display()),
        )
    }
}

fn xattr_present(p: &Path, name: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(p), Ok(n)) = (
        std::ffi::CString::new(p.as_os_str().as_bytes()),
        std::ffi::CString::new(name),
    ) else {
        return false;
    };
    // SAFETY: NUL-terminated strings; a zero-sized buffer only asks for the value's size.
    unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) > 0 }
}

/// The subordinate id ranges `(start, count)` of a user in /etc/subuid or /etc/subgid text:
/// lines `NAME_OR_UID:START:COUNT`, matched by name or by uid.
pub fn subid_ranges(text: &str, user: &str, uid: u32) -> Vec<(u64, u64)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if f.next().is_some() || (who != user && who != uid.to_string()) {
                return None;
            }
            let (start, count) = (start.trim().parse().ok()?, count.trim().parse().ok()?);
            (count > 0).then_some((start, count))
        })
        .collect()
}

fn subid_item(file: &'static str, text: Option<&str>, user: &str, uid: u32) -> Item {
    let tool = if file.ends_with("subuid") {
        "usermod --add-subuids 100000-165535"
    } else {
        "usermod --add-subgids 100000-165535"
    };
    let fix = format!("as root: {tool} {user}");
    let Some(text) = text else {
        return Item::bad(
            Level::Warn,
            file,
            "missing: only a single-id mapping is possible",
            &fix,
        );
    };
    let r = subid_ranges(text, user, uid);
    if r.is_empty() {
        return Item::bad(
            Level::Warn,
            file,
            format!("no range for {user}: only a single-id mapping is possible"),
            &fix,
        );
    }
    let list: Vec<String> = r
        .iter()
        .map(|(s, c)| format!("{s}-{} ({c} ids)", s + c - 1))
        .collect();
    Item::ok(file, format!("{user}: {}", list.join(", ")))
}

/// How cgroups are mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    None,
    /// Legacy: cgroup v1 hierarchies only.
    V1,
    /// Unified: cgroup2 alone, mounted at the path.
    V2(PathBuf),
    /// cgroup v1 controllers plus a cgroup2 hierarchy (systemd's "hybrid").
    Hybrid(PathBuf),
}

/// The cgroup layout from /proc/self/mountinfo (field 9 is the file system type).
pub fn layout(mountinfo: &str) -> Layout {
    let (mut v1, mut v2) = (false, None);
    for l in mountinfo.lines() {
        let Some((pre, post)) = l.split_once(" - ") else {
            continue;
        };
        let mount = pre.split(' ').nth(4);
        match (post.split(' ').next(), mount) {
            (Some("cgroup"), Some(_)) => v1 = true,
            (Some("cgroup2"), Some(m)) if v2.is_none() => v2 = Some(PathBuf::from(m)),
            _ => {}
        }
    }
    match (v1, v2) {
        (false, None) => Layout::None,
        (true, None) => Layout::V1,
        (false, Some(m)) => Layout::V2(m),
        (true, Some(m)) => Layout::Hybrid(m),
    }
}

fn layout_item(l: &Layout, rootless: bool) -> Item {
    const N: &str = "cgroups";
    match l {
        Layout::None if rootless => Item::bad(
            Level::Warn,
            N,
            "no cgroup file system is mounted: containers asking for limits are refused",
            "mount cgroup2 on /sys/fs/cgroup",
        ),
        Layout::None => Item::bad(
            Level::Fail,
            N,
            "no cgroup file system is mounted",
            "mount -t cgroup2 none /sys/fs/cgroup",
        ),
        Layout::V1 => Item::ok(N, "v1 (legacy hierarchies only)"),
        Layout::V2(m) => Item::ok(N, format!("v2 (unified, at {})", m.display())),
        Layout::Hybrid(m) => Item::ok(
            N,
            format!(
                "hybrid (v1 controllers, cgroup2 at {}; rootless limits can only use the \
                 controllers cgroup2 has)",
                m.display()
            ),
        ),
    }
}

/// This process's cgroup v2 directory: the cgroup2 mount joined with the `0::` line of
/// /proc/self/cgroup.
pub fn own_v2_dir(mountinfo: &str, proc_cgroup: &str) -> Option<PathBuf> {
    let mount = match layout(mountinfo) {
        Layout::V2(m) | Layout::Hybrid(m) => m,
        _ => return None,
    };
    let path = proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim()
        .trim_start_matches('/');
    Some(if path.is_empty() {
        mount
    } else {
        mount.join(path)
    })
}

/// Is the caller's cgroup v2 directory (or its parent, where containers go next to the runtime)
/// delegated to it: owned by it, with cgroup.procs writable?
fn delegation_item(mountinfo: &str, proc_cgroup: &str, uid: u32, user: &str) -> Item {
    const N: &str = "cgroup delegation";
    let fix = format!(
        "run hookrun in a delegated cgroup: `systemd-run --user -p Delegate=yes --scope …` (or \
         Delegate=yes on user@.service), or as root mkdir a cgroup v2 directory, `chown -R \
         {user}` it and move your shell into a child of it; then linux.resources limits work"
    );
    let Some(own) = own_v2_dir(mountinfo, proc_cgroup) else {
        return Item::bad(
            Level::Warn,
            N,
            "no cgroup2 hierarchy: containers asking for linux.resources limits are refused",
            &fix,
        );
    };
    let mine = |d: &Path| {
        fs::metadata(d).is_ok_and(|m| m.uid() == uid)
            && access(&d.join("cgroup.procs"), AccessFlags::W_OK).is_ok()
    };
    let deleg = [own.parent(), Some(own.as_path())]
        .into_iter()
        .flatten()
        .find(|d| mine(d));
    match deleg {
        Some(d) => {
            let ctrls = fs::read_to_string(d.join("cgroup.controllers")).unwrap_or_default();
            let ctrls = ctrls.split_whitespace().collect::<Vec<_>>().join(" ");
            Item::ok(
                N,
                format!(
                    "{} is yours (controllers: {})",
                    d.display(),
                    if ctrls.is_empty() { "none" } else { &ctrls }
                ),
            )
        }
        None => Item::bad(
            Level::Warn,
            N,
            format!(
                "{} is not delegated to you: containers asking for linux.resources limits are \
                 refused",
                own.display()
            ),
            &fix,
        ),
    }
}

/// The `Seccomp:` field of /proc/self/status (present when the kernel has CONFIG_SECCOMP).
pub fn seccomp_mode(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .and_then(|v| v.trim().parse().ok())
}

fn seccomp_item(status: &str) -> Item {
    const N: &str = "seccomp";
    let filters = status.lines().any(|l| l.starts_with("Seccomp_filters:"));
    let lib = libseccomp::ScmpVersion::current()
        .map(|v| format!("libseccomp {}.{}.{}", v.major, v.minor, v.micro))
        .ok();
    match (seccomp_mode(status), lib) {
        (Some(m), Some(lib)) => Item::ok(
            N,
            format!(
                "kernel supports it (this process: mode {m}{}), {lib}",
                if filters { ", filters" } else { "" }
            ),
        ),
        (None, _) => Item::bad(
            Level::Warn,
            N,
            "the kernel has no seccomp (no Seccomp field in /proc/self/status): configs with \
             linux.seccomp are refused",
            "a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER",
        ),
        (Some(_), None) => Item::bad(
            Level::Warn,
            N,
            "libseccomp is not usable: configs with linux.seccomp are refused",
            "apt-get install libseccomp2",
        ),
    }
}

/// The state root: ours and private if it exists, else creatable.
fn state_root_item(root: &Path, uid: u32) -> Item {
    const N: &str = "state root";
    let fix = "give a directory you own with --root, or set XDG_RUNTIME_DIR";
    match fs::symlink_metadata(root) {
        Ok(md) => {
            if !md.is_dir() || md.uid() != uid {
                return Item::bad(
                    Level::Fail,
                    N,
                    format!("{}: owned by uid {}, not by you", root.display(), md.uid()),
                    fix,
                );
            }
            if md.mode() & 0o077 != 0 && uid != 0 {
                return Item::bad(
                    Level::Fail,
                    N,
                    format!(
                        "{}: mode {:o} lets other users in",
                        root.display(),
                        md.mode() & 0o777
                    ),
                    &format!("chmod 700 {}", root.display()),
                );
            }
            if access(root, AccessFlags::W_OK | AccessFlags::X_OK).is_err() {
                return Item::bad(
                    Level::Fail,
                    N,
                    format!("{}: not writable", root.display()),
                    &format!("chmod u+rwx {}", root.display()),
                );
            }
            Item::ok(N, format!("{} (writable)", root.display()))
        }
        Err(_) => {
            let parent = root
                .ancestors()
                .skip(1)
                .find(|p| p.exists())
                .unwrap_or(Path::new("/"));
            if access(parent, AccessFlags::W_OK | AccessFlags::X_OK).is_ok() {
                Item::ok(N, format!("{} (absent; will be created)", root.display()))
            } else {
                Item::bad(
                    Level::Fail,
                    N,
                    format!(
                        "{}: absent, and {} is not writable for you",
                        root.display(),
                        parent.display()
                    ),
                    fix,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn mountinfo_gives_the_layout() {
        assert_eq!(
            layout(HYBRID),
            Layout::Hybrid(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let v2 = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(layout(v2), Layout::V2(PathBuf::from("/sys/fs/cgroup")));
        let v1: String = HYBRID.lines().take(3).map(|l| format!("{l}\n")).collect();
        assert_eq!(layout(&v1), Layout::V1);
        assert_eq!(
            layout("22 1 0:21 / /proc rw - proc proc rw\n"),
            Layout::None
        );
        // Optional fields before the separator do not shift the mount point.
        let opt = "29 23 0:26 / /sys/fs/cgroup rw shared:9 master:2 - cgroup2 cgroup2 rw\n";
        assert_eq!(layout(opt), Layout::V2(PathBuf::from("/sys/fs/cgroup")));
    }

    #[test]
    fn own_cgroup_v2_dir_comes_from_the_0_line() {
        let pc = "4:memory:/x\n0::/user.slice/user-1001.slice/session-3.scope\n";
        assert_eq!(
            own_v2_dir(HYBRID, pc),
            Some(PathBuf::from(
                "/sys/fs/cgroup/unified/user.slice/user-1001.slice/session-3.scope"
            ))
        );
        assert_eq!(
            own_v2_dir(HYBRID, "0::/\n"),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let v1: String = HYBRID.lines().take(3).map(|l| format!("{l}\n")).collect();
        assert_eq!(own_v2_dir(&v1, "0::/\n"), None);
    }

    #[test]
    fn subid_lines_give_ranges_by_name_or_uid() {
        let t = "# comment\nalice:100000:65536\nbob:165536:65536\n1001:300000:1000\n\
                 alice:500000:10\nbroken\nalice:x:1\ncarol:1:0\n";
        assert_eq!(
            subid_ranges(t, "alice", 1000),
            [(100000, 65536), (500000, 10)]
        );
        assert_eq!(subid_ranges(t, "dave", 1001), [(300000, 1000)]);
        assert!(subid_ranges(t, "carol", 7).is_empty());
        assert!(subid_ranges("", "alice", 1000).is_empty());
    }

    #[test]
    fn user_namespace_verdicts() {
        let ok = userns_item(Some(1000), None, None, Ok(()));
        assert_eq!(ok.level, Level::Ok);
        assert_eq!(userns_item(Some(0), None, None, Ok(())).level, Level::Fail);
        let off = userns_item(Some(1000), Some(0), None, Err("x".into()));
        assert_eq!(off.level, Level::Fail);
        assert!(off.fix.unwrap().contains("unprivileged_userns_clone=1"));
        let aa = userns_item(
            Some(1000),
            Some(1),
            Some(1),
            Err("permission denied".into()),
        );
        assert!(aa.detail.contains("AppArmor"), "{}", aa.detail);
        // The restriction sysctl set, yet unshare worked (hookrun has a profile): fine.
        assert_eq!(
            userns_item(Some(1000), None, Some(1), Ok(())).level,
            Level::Ok
        );
    }

    #[test]
    fn lines_read_level_item_detail_fix() {
        let i = Item::bad(
            Level::Warn,
            "newuidmap",
            "not found",
            "apt-get install uidmap",
        );
        assert_eq!(
            i.line(),
            "warn  newuidmap: not found — fix: apt-get install uidmap"
        );
        assert_eq!(Item::ok("seccomp", "yes").line(), "ok    seccomp: yes");
        assert_eq!(seccomp_mode("Name:\tx\nSeccomp:\t2\n"), Some(2));
        assert_eq!(seccomp_mode("Name:\tx\n"), None);
    }
}
