//! `hookrun exec`: run a process in a running container through the one join path
//! (process/join.rs), with the container's process settings unless overridden.
//! runs in: the runtime, which stays the new process's parent in the foreground.

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{Capability, Process};

use crate::container;
use crate::error::{Ctx, Error, Result};
use crate::process::join::{self, JoinRequest};
use crate::state::{Root, Status};

pub use crate::cli::ExecArgs;

/// The process to run: `--process` (with what it leaves out taken from the container), else
/// the container's process with the overrides.
pub fn build_process(base: &Process, a: &ExecArgs) -> Result<Process> {
    if let Some(f) = &a.process {
        return from_file(f, base, a);
    }
    if a.command.is_empty() {
        return Err(Error::invalid(
            "exec: no command given (give one, or --process FILE)",
        ));
    }
    let mut p = base.clone();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let Some((k, _)) = kv.split_once('=') else {
            return Err(Error::invalid(format!("--env {kv:?}: expected KEY=VALUE")));
        };
        env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        if !cwd.is_absolute() {
            return Err(Error::invalid(format!(
                "--cwd {}: must be an absolute path",
                cwd.display()
            )));
        }
        p.set_cwd(cwd.clone());
    }
    let mut user = p.user().clone();
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        let num = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| Error::invalid(format!("--user {u:?}: expected UID[:GID] in numbers")))
        };
        user.set_uid(num(uid)?);
        if let Some(g) = gid {
            user.set_gid(num(g)?);
        }
    }
    // Added to the container's own, as runc does.
    let mut gids = user.additional_gids().clone().unwrap_or_default();
    gids.extend(&a.additional_gids);
    user.set_additional_gids((!gids.is_empty()).then_some(gids));
    p.set_user(user);
    add_caps(&mut p, &a.caps)?;
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

/// `--cap`: into the bounding, effective and permitted sets (runc's). Ambient too when the
/// process has an inheritable set at all, as current runc does; the kernel raises it only when
/// the capability is inheritable as well.
fn add_caps(p: &mut Process, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let mut caps = p.capabilities().clone().unwrap_or_default();
    for c in names {
        let name = if c.to_uppercase().starts_with("CAP_") {
            c.to_uppercase()
        } else {
            format!("CAP_{}", c.to_uppercase())
        };
        let cap: Capability = serde_json::from_value(serde_json::Value::String(name))
            .map_err(|_| Error::invalid(format!("--cap {c:?}: unknown capability")))?;
        let add = |set: &Option<oci_spec::runtime::Capabilities>| {
            let mut s = set.clone().unwrap_or_default();
            s.insert(cap);
            Some(s)
        };
        caps.set_bounding(add(caps.bounding()));
        caps.set_effective(add(caps.effective()));
        caps.set_permitted(add(caps.permitted()));
        if caps.inheritable().is_some() {
            caps.set_ambient(add(caps.ambient()));
        }
    }
    p.set_capabilities(Some(caps));
    Ok(())
}

/// A process.json: an OCI `process` object, which decides everything about the process.
/// Like runc, `user` may be left out (uid and gid 0), and what the file does not set of
/// capabilities, noNewPrivileges and rlimits comes from the container's process.
fn from_file(f: &Path, base: &Process, a: &ExecArgs) -> Result<Process> {
    let given = [
        ("--cwd", a.cwd.is_some()),
        ("--env", !a.env.is_empty()),
        ("--user", a.user.is_some()),
        ("--additional-gids", !a.additional_gids.is_empty()),
        ("--cap", !a.caps.is_empty()),
        ("--no-new-privs", a.no_new_privs),
        ("a command", !a.command.is_empty()),
    ];
    if let Some((flag, _)) = given.iter().find(|(_, set)| *set) {
        return Err(Error::invalid(format!(
            "exec --process {}: {flag} cannot be combined with --process (set it in the file)",
            f.display()
        )));
    }
    let bad = |what: String| Error::invalid(format!("{}: {what}", f.display()));
    let data = std::fs::read(f).map_err(|e| Error::io("read", f, e))?;
    let mut v: serde_json::Value = serde_json::from_slice(&data).map_err(|e| bad(e.to_string()))?;
    let Some(obj) = v.as_object_mut() else {
        return Err(bad("expected a JSON object (an OCI process)".into()));
    };
    if obj.get("user").is_none_or(|u| u.is_null()) {
        obj.insert("user".into(), serde_json::json!({}));
    }
    if obj.get("cwd").is_none_or(|c| c.is_null()) {
        return Err(bad("cwd: must be set (an absolute path)".into()));
    }
    let mut p: Process = serde_path_to_error::deserialize(v)
        .map_err(|e| bad(format!("{}: {}", e.path(), e.inner())))?;
    if !p.cwd().is_absolute() {
        return Err(bad("cwd: must be an absolute path".into()));
    }
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(bad("args: must not be empty".into()));
    }
    if p.capabilities().is_none() {
        p.set_capabilities(base.capabilities().clone());
    }
    if p.no_new_privileges().is_none() {
        p.set_no_new_privileges(base.no_new_privileges());
    }
    if p.rlimits().as_ref().is_none_or(|r| r.is_empty()) {
        p.set_rlimits(base.rlimits().clone());
    }
    Ok(p)
}

/// The cgroup directories for the process: the container's recorded ones, or with `--cgroup`
/// (runc's syntax: `SUB` alone for every hierarchy, or `CTRL[,CTRL]:SUB`, repeatable) the
/// sub-cgroups named below them.
fn cgroup_dirs(rec: &crate::cgroup::Recorded, args: &[String]) -> Result<Vec<PathBuf>> {
    if args.is_empty() {
        return Ok(rec.paths.clone());
    }
    if rec.paths.is_empty() {
        return Err(Error::invalid(
            "--cgroup: the container has no cgroup of its own (created rootless)",
        ));
    }
    let hiers = crate::cgroup::controllers(rec);
    let mut subs: Vec<Option<&str>> = vec![None; hiers.len()];
    for arg in args {
        let bad = |m: String| Error::invalid(format!("--cgroup {arg}: {m}"));
        let (ctrls, sub) = match arg.split_once(':') {
            None if args.len() > 1 => {
                return Err(bad("give CTRL:SUB when --cgroup is repeated".into()))
            }
            None => (None, arg.as_str()),
            Some((_, rest)) if rest.contains(':') => {
                return Err(bad("expected [CTRL[,CTRL]:]SUB".into()))
            }
            Some((c, rest)) => (Some(c), rest),
        };
        let Some(ctrls) = ctrls else {
            subs.iter_mut().for_each(|s| *s = Some(sub));
            continue;
        };
        for c in ctrls.split(',') {
            let Some(i) = hiers.iter().position(|(cs, _)| cs.iter().any(|x| x == c)) else {
                return Err(bad(format!("unknown controller {c}")));
            };
            if subs[i].is_some_and(|s| s != sub) {
                return Err(bad(format!(
                    "{c} shares a hierarchy with a controller given another path"
                )));
            }
            subs[i] = Some(sub);
        }
    }
    hiers
        .iter()
        .zip(subs)
        .map(|((_, dir), sub)| match sub {
            None => Ok(dir.clone()),
            Some(s) => below(dir, s),
        })
        .collect()
}

/// `base/sub`, taken lexically; refused when `sub` climbs out of `base`.
fn below(base: &Path, sub: &str) -> Result<PathBuf> {
    let mut out = base.to_path_buf();
    let mut depth = 0;
    for c in Path::new(sub).components() {
        match c {
            Component::Normal(n) => {
                out.push(n);
                depth += 1;
            }
            Component::ParentDir if depth > 0 => {
                out.pop();
                depth -= 1;
            }
            Component::ParentDir => {
                return Err(Error::invalid(format!(
                    "--cgroup: {sub} is not a sub cgroup path"
                )))
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Run `exec`; every failure comes back as [`Error::Exec`] (runc's "exec failed: …").
pub fn exec(root: &Root, a: &ExecArgs) -> Result<i32> {
    run(root, a).map_err(|e| Error::Exec(Box::new(e)))
}

fn run(root: &Root, a: &ExecArgs) -> Result<i32> {
    let dir = root.open(&a.id)?;
    let st = dir.load()?;
    let status = dir.status(&st);
    let refused = match status {
        Status::Running | Status::Created => None,
        Status::Paused if a.ignore_paused => None,
        Status::Paused => {
            Some("cannot exec in a paused container (use --ignore-paused to override)")
        }
        _ => Some("exec needs a running container"),
    };
    if let Some(hint) = refused {
        return Err(Error::WrongState {
            id: a.id.clone(),
            status: status.to_string(),
            hint: hint.into(),
        });
    }
    if let Some(p) = &a.apparmor {
        return Err(Error::invalid(format!(
            "--apparmor {p}: hookrun applies no AppArmor profiles (features: apparmor disabled)"
        )));
    }
    if let Some(l) = &a.process_label {
        return Err(Error::invalid(format!(
            "--process-label {l}: hookrun applies no SELinux labels (features: selinux disabled)"
        )));
    }
    let spec = container::saved_spec(&dir).ok_or_else(|| {
        Error::Child(format!(
            "{}: saved config is unreadable",
            dir.path.display()
        ))
    })?;
    let base = spec.process().clone().unwrap_or_default();
    let process = build_process(&base, a)?;
    if process.terminal().unwrap_or(false) && a.detach && a.console_socket.is_none() {
        return Err(Error::invalid(
            "exec: a detached process with a terminal needs --console-socket",
        ));
    }
    let cgroups = cgroup_dirs(&st.cgroup, &a.cgroups)?;
    let _init = container::open_init(&st)?;
    // Caught from before the clone, so nothing aimed at the process is lost.
    let mask = crate::foreground::handled();
    if !a.detach {
        mask.thread_block().ctx(|| "block signals")?;
    }
    let req = JoinRequest {
        state: &st,
        spec: &spec,
        process: &process,
        stdio: None,
        preserve_fds: a.preserve_fds,
        cgroups: &cgroups,
        explicit_cgroup: !a.cgroups.is_empty(),
    };
    let joined = join::spawn(&req, move || drop(dir))?;
    if let Some(p) = &a.pid_file {
        let p = if p.is_absolute() {
            p.clone()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        if let Err(e) = crate::state::write_atomic(&p, joined.pid.to_string().as_bytes()) {
            // Nobody could find or wait for it: it does not outlive the failed exec.
            // SAFETY: pidfd_send_signal on the pidfd of our own unreaped child.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    std::os::fd::AsRawFd::as_raw_fd(&joined.pidfd),
                    libc::SIGKILL,
                    0,
                    0,
                )
            };
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(joined.pid), None);
            return Err(e);
        }
    }
    let mut pty = joined.pty;
    if let (Some(sock), Some(m)) = (&a.console_socket, &pty) {
        crate::tty::send_to_console_socket(sock, m)?;
        pty = None;
    }
    if a.detach {
        return Ok(0);
    }
    crate::foreground::supervise(&mask, joined.pid, &joined.pidfd, pty, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Process {
        serde_json::from_value(serde_json::json!({
            "args": ["sh"], "cwd": "/", "env": ["PATH=/bin", "A=1"],
            "user": {"uid": 0, "gid": 0, "additionalGids": [10]},
            "noNewPrivileges": true,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 64, "soft": 64}],
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
        }))
        .unwrap()
    }

    #[test]
    fn overrides_apply_on_top_of_the_container_process() {
        let a = ExecArgs {
            command: vec!["id".into(), "-u".into()],
            env: vec!["A=2".into(), "B=3".into()],
            cwd: Some("/tmp".into()),
            user: Some("1000:2000".into()),
            additional_gids: vec![100],
            caps: vec!["NET_RAW".into()],
            no_new_privs: true,
            ..Default::default()
        };
        let p = build_process(&base(), &a).unwrap();
        assert_eq!(p.args().as_deref().unwrap(), ["id", "-u"]);
        assert_eq!(p.env().as_deref().unwrap(), ["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 2000));
        assert_eq!(p.user().additional_gids().as_deref(), Some(&[10, 100][..]));
        let caps = p.capabilities().as_ref().unwrap();
        for set in [caps.bounding(), caps.effective(), caps.permitted()] {
            assert!(set.as_ref().unwrap().contains(&Capability::NetRaw));
        }
        // No inheritable set in the container's process: no ambient either (the kernel could
        // not raise it).
        assert!(caps.ambient().is_none());
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(p.terminal(), Some(false));
    }

    #[test]
    fn bad_overrides_are_named() {
        let mut a = ExecArgs {
            command: vec!["x".into()],
            user: Some("bob".into()),
            ..Default::default()
        };
        let msg = |a: &ExecArgs| build_process(&base(), a).unwrap_err().to_string();
        assert!(msg(&a).contains("--user \"bob\""));
        a.user = None;
        a.cwd = Some("rel".into());
        assert!(msg(&a).contains("--cwd rel"));
        a.cwd = None;
        a.caps = vec!["NOPE".into()];
        assert!(msg(&a).contains("--cap \"NOPE\""));
        a.caps = vec![];
        a.command = vec![];
        assert!(msg(&a).contains("no command given"));
    }

    #[test]
    fn a_process_json_may_leave_out_what_runc_lets_it() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("process.json");
        let a = ExecArgs {
            process: Some(f.clone()),
            ..Default::default()
        };
        std::fs::write(
            &f,
            r#"{"args": ["true"], "cwd": "/", "terminal": true,
            "consoleSize": {"height": 10, "width": 110}}"#,
        )
        .unwrap();
        let p = build_process(&base(), &a).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
        assert_eq!(p.console_size().unwrap().width(), 110);
        // Left out: from the container's process, so a bare file is not more privileged.
        assert_eq!(p.capabilities(), base().capabilities());
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(p.rlimits(), base().rlimits());
        assert!(p.env().is_none());

        let err = |text: &str| {
            std::fs::write(&f, text).unwrap();
            build_process(&base(), &a).unwrap_err().to_string()
        };
        assert!(err(r#"{"args": ["true"]}"#).ends_with("cwd: must be set (an absolute path)"));
        assert!(err(r#"{"args": [], "cwd": "/"}"#).ends_with("args: must not be empty"));
        assert!(err(r#"{"args": ["true"], "cwd": "rel"}"#).ends_with("must be an absolute path"));
        assert!(err(r#"{"args": ["true"], "cwd": 5}"#).contains(": cwd: "));

        let both = ExecArgs {
            process: Some(f.clone()),
            env: vec!["A=1".into()],
            ..Default::default()
        };
        let e = build_process(&base(), &both).unwrap_err().to_string();
        assert!(e.contains("--env cannot be combined with --process"), "{e}");
    }

    #[test]
    fn sub_cgroup_paths_stay_below_the_container() {
        let b = Path::new("/sys/fs/cgroup/memory/ctr");
        assert_eq!(below(b, "sub").unwrap(), b.join("sub"));
        assert_eq!(below(b, "/").unwrap(), b);
        assert_eq!(below(b, "/a/b/../c").unwrap(), b.join("a/c"));
        for bad in ["..", "../x", "a/../..", "/../ctr"] {
            let e = below(b, bad).unwrap_err().to_string();
            assert_eq!(e, format!("--cgroup: {bad} is not a sub cgroup path"));
        }
    }

    #[test]
    fn cgroup_arguments_are_read_as_runc_reads_them() {
        let none = crate::cgroup::Recorded::default();
        assert!(cgroup_dirs(&none, &[]).unwrap().is_empty());
        let e = cgroup_dirs(&none, &["x".into()]).unwrap_err().to_string();
        assert!(e.contains("no cgroup of its own"), "{e}");
        // Checks that need no real hierarchy: they fail before the controllers are looked at.
        let rec = crate::cgroup::Recorded {
            paths: vec!["/nonexistent/cgroup/dir".into()],
            created: vec![],
        };
        let e = cgroup_dirs(&rec, &["a".into(), "b".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("give CTRL:SUB"), "{e}");
        let e = cgroup_dirs(&rec, &["a:b:c".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected [CTRL[,CTRL]:]SUB"), "{e}");
        let e = cgroup_dirs(&rec, &["whaaat:/".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--cgroup whaaat:/: unknown controller whaaat");
    }
}
