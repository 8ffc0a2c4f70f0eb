//! The six OCI hooks: prestart, createRuntime (runtime namespace, during create),
//! createContainer (container namespaces, before pivot_root), startContainer (container, just
//! before exec), poststart (runtime, in start), poststop (runtime, in delete). Each gets the
//! state JSON on stdin, its own `env`, and is killed after `timeout` seconds.
//! runs in: the runtime (prestart, createRuntime, poststart, poststop) and the container init
//! (createContainer, startContainer).

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    pub fn of(self, h: &Hooks) -> Vec<Hook> {
        #[allow(deprecated)]
        let v = match self {
            Kind::Prestart => h.prestart(),
            Kind::CreateRuntime => h.create_runtime(),
            Kind::CreateContainer => h.create_container(),
            Kind::StartContainer => h.start_container(),
            Kind::Poststart => h.poststart(),
            Kind::Poststop => h.poststop(),
        };
        v.clone().unwrap_or_default()
    }
}

/// The hooks of `kind` in the config, if any.
pub fn hooks(spec: &oci_spec::runtime::Spec, kind: Kind) -> Vec<Hook> {
    spec.hooks()
        .as_ref()
        .map(|h| kind.of(h))
        .unwrap_or_default()
}

/// The state document a hook reads on stdin.
pub fn state_doc(
    id: &str,
    status: &str,
    pid: i32,
    bundle: &std::path::Path,
    annotations: &std::collections::HashMap<String, String>,
) -> String {
    serde_json::json!({
        "ociVersion": crate::OCI_VERSION,
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
        "annotations": annotations,
    })
    .to_string()
}

/// Run every hook of `kind` in order; the first failure is returned, naming the kind and index.
/// Each hook gets only its own `env`.
pub fn run_all(kind: Kind, hooks: &[Hook], state: &str) -> Result<()> {
    run_all_with_env(kind, hooks, state, None)
}

/// `run_all`, where a hook that gives no `env` at all gets `inherit` (startContainer hooks get
/// the container process's environment, as runc gives it). `"env": []` still means none.
pub fn run_all_with_env(
    kind: Kind,
    hooks: &[Hook],
    state: &str,
    inherit: Option<&[String]>,
) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state, inherit).map_err(|e| {
            Error::Child(format!(
                "{} hook #{i} ({}): {e}",
                kind.name(),
                h.path().display()
            ))
        })?;
    }
    Ok(())
}

fn run_one(h: &Hook, state: &str, inherit: Option<&[String]>) -> std::result::Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some(a0) = args.first() {
        cmd.arg0(a0);
    }
    // Output goes to memory files, not pipes: a chatty hook can never fill a pipe nobody
    // reads while we wait for it.
    let (out, err) = (memfd("oci-hook-stdout")?, memfd("oci-hook-stderr")?);
    cmd.args(args.iter().skip(1))
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out.try_clone().map_err(|e| e.to_string())?))
        .stderr(Stdio::from(err.try_clone().map_err(|e| e.to_string())?))
        // its own process group, so a timeout takes its children too
        .process_group(0);
    for kv in h.env().as_deref().or(inherit).into_iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| crate::error::Error::io("exec", h.path(), e).to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE. The state is small (well
        // under a pipe's 64 KiB), so this write does not wait on the hook.
        let _ = stdin.write_all(state.as_bytes());
    }
    let pid = child.id() as i32;
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(0) as u64));
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // SAFETY: kill(2) of the hook's own process group; the hook is our unreaped child.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", h.timeout().unwrap_or(0)));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&tail(err)).trim().to_string();
    if text.is_empty() {
        text = String::from_utf8_lossy(&tail(out)).trim().to_string();
    }
    // "error running hook" is runc's wording, which clients and runc's tests look for.
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("error running hook: exit status {c}"),
        (_, Some(s)) => format!(
            "error running hook: killed by signal {s} ({})",
            signal_text(s)
        ),
        _ => "error running hook: failed".to_string(),
    };
    Err(if text.is_empty() {
        how
    } else {
        format!("{how}: {text}")
    })
}

/// strsignal(3) in lowercase: "bad system call" for SIGSYS.
fn signal_text(sig: i32) -> String {
    // SAFETY: strsignal returns a pointer to a static or thread-local string (or NULL).
    let p = unsafe { libc::strsignal(sig) };
    if p.is_null() {
        return format!("signal {sig}");
    }
    // SAFETY: a NUL-terminated string from strsignal, copied at once.
    let s = unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy();
    s.to_lowercase()
}

fn memfd(name: &str) -> std::result::Result<OwnedFd, String> {
    let c = std::ffi::CString::new(name).expect("no NUL");
    // SAFETY: memfd_create with a valid name; a new fd we own.
    let fd = unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The last 4 KiB a hook wrote (enough for an error message).
fn tail(fd: OwnedFd) -> Vec<u8> {
    let mut f = std::fs::File::from(fd);
    let len = f.seek(SeekFrom::End(0)).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut v = Vec::new();
    let _ = f.read_to_end(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: serde_json::Value) -> Hook {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn state_goes_to_stdin_and_env_is_the_hooks_own() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}; echo \"$X\" >> {}", out.display(), out.display())],
            "env": ["X=from-env"]
        }));
        run_all(Kind::Poststart, &[h], "{\"id\":\"c\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"c\"}from-env\n"
        );
    }

    #[test]
    fn a_hook_without_env_inherits_what_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!("echo \"[$FROM_PROCESS]\" >> {}", out.display());
        let bare = hook(serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", script]}));
        let empty = hook(serde_json::json!({
            "path": "/bin/sh", "args": ["sh", "-c", script], "env": []
        }));
        let inherit = ["FROM_PROCESS=yes".to_string()];
        run_all_with_env(Kind::StartContainer, &[bare, empty], "{}", Some(&inherit)).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "[yes]\n[]\n");
    }

    #[test]
    fn a_hook_killed_by_a_signal_says_which() {
        let h = hook(serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "kill -SYS $$"]}));
        let e = run_all(Kind::StartContainer, &[h], "{}")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "startContainer hook #0 (/bin/sh): error running hook: killed by signal 31 (bad \
             system call)"
        );
    }

    #[test]
    fn a_chatty_hook_cannot_block() {
        let h = hook(serde_json::json!({
            "path": "/bin/sh", "args": ["sh", "-c", "head -c 1000000 /dev/zero; echo last words >&2; exit 1"], "timeout": 10
        }));
        let e = run_all(Kind::Poststart, &[h], "{}")
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("error running hook: exit status 1: last words"),
            "{e}"
        );
    }

    #[test]
    fn failures_name_kind_index_and_output() {
        let ok = hook(serde_json::json!({"path": "/bin/true"}));
        let bad = hook(
            serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"]}),
        );
        let e = run_all(Kind::CreateRuntime, &[ok, bad], "{}")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "createRuntime hook #1 (/bin/sh): error running hook: exit status 3: nope"
        );
        let slow =
            hook(serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}));
        let t = Instant::now();
        let e = run_all(Kind::Prestart, &[slow], "{}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("timed out after 1s"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(4));
        let missing = hook(serde_json::json!({"path": "/no/such/hook"}));
        let e = run_all(Kind::Poststop, &[missing], "{}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such file or directory"), "{e}");
    }
}
