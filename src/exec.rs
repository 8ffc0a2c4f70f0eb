//! `hookrun exec`: run a process in a running container through the one join path
//! (process/join.rs), with the container's process settings unless overridden.
//! runs in: the runtime, which stays the new process's parent in the foreground.

use oci_spec::runtime::{Capability, Process};

use crate::container;
use crate::error::{Ctx, Error, Result};
use crate::process::join::{self, JoinRequest};
use crate::state::{Root, Status};

pub use crate::cli::ExecArgs;

/// The process to run: `--process` as given, else the container's process with the overrides.
pub fn build_process(base: &Process, a: &ExecArgs) -> Result<Process> {
    if let Some(f) = &a.process {
        let data = std::fs::read(f).map_err(|e| Error::io("read", f, e))?;
        let de = &mut serde_json::Deserializer::from_slice(&data);
        return serde_path_to_error::deserialize(de)
            .map_err(|e| Error::invalid(format!("{}: {}: {}", f.display(), e.path(), e.inner())));
    }
    if a.command.is_empty() {
        return Err(Error::invalid("exec: no command given"));
    }
    let mut p = base.clone();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
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
    if !a.additional_gids.is_empty() {
        user.set_additional_gids(Some(a.additional_gids.clone()));
    }
    p.set_user(user);
    if !a.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for c in &a.caps {
            let name = if c.starts_with("CAP_") {
                c.clone()
            } else {
                format!("CAP_{}", c.to_uppercase())
            };
            let cap: Capability =
                serde_json::from_value(serde_json::Value::String(name.clone()))
                    .map_err(|_| Error::invalid(format!("--cap {c:?}: unknown capability")))?;
            for set in [
                caps.bounding().clone(),
                caps.effective().clone(),
                caps.permitted().clone(),
                caps.inheritable().clone(),
            ]
            .iter()
            .enumerate()
            {
                let mut s = set.1.clone().unwrap_or_default();
                s.insert(cap);
                match set.0 {
                    0 => caps.set_bounding(Some(s)),
                    1 => caps.set_effective(Some(s)),
                    2 => caps.set_permitted(Some(s)),
                    _ => caps.set_inheritable(Some(s)),
                };
            }
        }
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

pub fn exec(root: &Root, a: &ExecArgs) -> Result<i32> {
    let dir = root.open(&a.id)?;
    let st = dir.load()?;
    let status = dir.status(&st);
    if !matches!(status, Status::Running | Status::Created) {
        return Err(Error::WrongState {
            id: a.id.clone(),
            status: status.to_string(),
            hint: "exec needs a running container".into(),
        });
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
    let _init = container::open_init(&st)?;
    // Caught from before the clone, so nothing aimed at the process is lost.
    let mask = crate::foreground::handled();
    if !a.detach {
        mask.thread_block().ctx(|| "block signals")?;
    }
    let joined = join::spawn(&JoinRequest {
        init_pid: st.pid,
        id: &a.id,
        spec: &spec,
        process: &process,
        stdio: None,
        preserve_fds: a.preserve_fds,
    })?;
    if let Some(p) = &a.pid_file {
        let p = if p.is_absolute() {
            p.clone()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        crate::state::write_atomic(&p, joined.pid.to_string().as_bytes())?;
    }
    let mut pty = joined.pty;
    if let (Some(sock), Some(m)) = (&a.console_socket, &pty) {
        crate::tty::send_to_console_socket(sock, m)?;
        pty = None;
    }
    drop(dir);
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
            "user": {"uid": 0, "gid": 0},
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
            caps: vec!["NET_RAW".into()],
            no_new_privs: true,
            ..Default::default()
        };
        let p = build_process(&base(), &a).unwrap();
        assert_eq!(p.args().as_deref().unwrap(), ["id", "-u"]);
        assert_eq!(p.env().as_deref().unwrap(), ["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(p.cwd(), std::path::Path::new("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 2000));
        let caps = p.capabilities().as_ref().unwrap();
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::NetRaw));
        assert!(caps
            .effective()
            .as_ref()
            .unwrap()
            .contains(&Capability::Kill));
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
        assert!(build_process(&base(), &a)
            .unwrap_err()
            .to_string()
            .contains("--user \"bob\""));
        a.user = None;
        a.cwd = Some("rel".into());
        assert!(build_process(&base(), &a)
            .unwrap_err()
            .to_string()
            .contains("--cwd rel"));
        a.cwd = None;
        a.caps = vec!["NOPE".into()];
        assert!(build_process(&base(), &a)
            .unwrap_err()
            .to_string()
            .contains("--cap \"NOPE\""));
        a.caps = vec![];
        a.command = vec![];
        assert!(build_process(&base(), &a).is_err());
    }
}
