//! PostStart after `start`, and the stop sequence every stop goes through (`stop`, `kill` with
//! the stop signal, SIGTERM/SIGINT to a foreground `run`, a failed PostStart): Killing event →
//! PreStop once per stop, bounded by the grace period → stop signal → what is left of the grace
//! period (at least 2 s) → SIGKILL. Hook runs are journaled (at least once) and failures become
//! events. The container's lock is held only between steps, never while a hook runs, so a
//! hung hook never blocks `state`, `kill`, `stop` or `delete -f`.
//! runs in: the runtime.

use std::time::{Duration, Instant};

use super::handlers::{self, Target};
use super::journal::{self, Claim};
use super::lifecycle::{self, Handler, Lifecycle};
use crate::container::{self, open_init, pidfd_signal, wait_exit};
use crate::error::{Error, Result};
use crate::events::{self, Type};
use crate::state::{proc_stat, Phase, Root, State, Status};

/// The container's lifecycle (validated at create; a state written before that parses to none).
pub fn lifecycle_of(st: &State) -> Lifecycle {
    lifecycle::from_annotations(&st.annotations).unwrap_or_else(|_| Lifecycle {
        stop_signal: libc::SIGTERM,
        grace: Duration::from_secs(lifecycle::DEFAULT_GRACE),
        ..Default::default()
    })
}

/// `Exec lifecycle hook ([/bin/sh -c exit 3]) for Container "web" failed - error: …`
pub fn failure_message(h: &Handler, id: &str, error: &str) -> String {
    format!(
        "{} lifecycle hook ({}) for Container {id:?} failed - error: {error}",
        h.kind(),
        h.what()
    )
}

fn record(dir: &std::path::Path, typ: Type, reason: &str, msg: &str) {
    if let Err(e) = events::record(dir, typ, reason, msg) {
        crate::log::warn(format!("record event {reason}: {e}"));
    }
}

/// Run one hook whose run `i` is journaled as begun: handler → end (durably). Returns the
/// outcome and how long.
fn run_journaled(
    dir: &std::path::Path,
    i: usize,
    h: &Handler,
    st: &State,
    spec: &oci_spec::runtime::Spec,
    deadline: Option<Instant>,
) -> Result<(handlers::Outcome, Duration)> {
    let init = match open_init(st) {
        Ok(fd) => fd,
        Err(e) => {
            let msg = "the container was gone before the hook started";
            let _ = journal::finish(dir, i, false, msg, b"", b"", 0);
            return Err(e);
        }
    };
    let t0 = Instant::now();
    let target = Target {
        id: &st.id,
        init_pid: st.pid,
        init: &init,
        spec,
        state: st,
    };
    let out = handlers::run(h, &target, deadline, &mut |pid| {
        let start = proc_stat(pid).map(|s| s.1).unwrap_or(0);
        let _ = journal::update(dir, i, |r| r.hook_pid = Some((pid, start)));
    });
    let took = t0.elapsed();
    journal::finish(
        dir,
        i,
        out.ok,
        &out.error,
        &out.stdout,
        &out.stderr,
        took.as_millis() as u64,
    )?;
    for (reason, msg) in &out.warnings {
        record(dir, Type::Warning, reason, msg);
    }
    Ok((out, took))
}

/// After the entrypoint is released. The caller holds no lock. PostStart failure: event, the
/// stop sequence (PreStop included, as the kubelet does), and the error.
pub fn post_start(root: &Root, id: &str) -> Result<()> {
    let (path, st, spec) = {
        let dir = root.open(id)?;
        (dir.path.clone(), dir.load()?, container::saved_spec(&dir))
    };
    let lc = lifecycle_of(&st);
    let (Some(h), Some(spec)) = (lc.post_start.clone(), spec) else {
        return set_phase(root, id, Phase::Starting, Phase::Running);
    };
    let i = journal::begin(&path, "PostStart", h.kind(), &h.what(), 0)?;
    let (out, _) = run_journaled(&path, i, &h, &st, &spec, None)?;
    if out.ok {
        return set_phase(root, id, Phase::Starting, Phase::Running);
    }
    let msg = failure_message(&h, id, &out.error);
    record(&path, Type::Warning, "FailedPostStartHook", &msg);
    // A stop that began meanwhile (it is what cancelled the hook) goes on without us.
    let stopping = root
        .open(id)
        .and_then(|d| d.load())
        .is_ok_and(|s| s.phase == Phase::Stopping);
    if !stopping {
        if let Err(e) = stop(root, id, &StopOpts::default()) {
            crate::log::warn(format!("stop after failed PostStart: {e}"));
        }
    }
    Err(Error::Child(msg))
}

fn set_phase(root: &Root, id: &str, from: Phase, to: Phase) -> Result<()> {
    let dir = root.open(id)?;
    let mut st = dir.load()?;
    if st.phase == from {
        st.phase = to;
        dir.save(&st)?;
    }
    Ok(())
}

/// How a stop goes.
#[derive(Debug, Default, Clone)]
pub struct StopOpts {
    /// `stop -t`: overrides the container's grace period.
    pub grace: Option<Duration>,
    /// `kill ID SIG`: send this signal after PreStop and stop there (no wait, no SIGKILL).
    pub signal_only: Option<i32>,
    /// A foreground `run` reaps the init itself: send the signals, do not wait for the exit.
    pub no_wait: bool,
}

/// Kill the hook processes of runs still going (a PostStart being cancelled by a stop).
fn cancel_running_hooks(dir: &std::path::Path, hook: &str) {
    for r in journal::load(dir)
        .iter()
        .filter(|r| r.hook == hook && r.is_running())
    {
        if let Some((pid, start)) = r.hook_pid {
            if proc_stat(pid).is_some_and(|s| s.1 == start) {
                // SAFETY: the hook's process group and the hook itself, identity checked by
                // its start time just above.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// SIGKILL every process of the container (its pid namespace, or its cgroup when it has none:
/// then the cgroup is where they are found; with one, what else the cgroup holds is another
/// container's, one made in a non-empty cgroup).
pub fn kill_everything(st: &State) {
    if !st.cgroup.paths.is_empty() && !st.own_pid_ns {
        crate::cgroup::kill_all(&st.cgroup);
    }
    for pid in container::container_pids(st) {
        // SAFETY: kill(2) of the container's own processes.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    if let Ok(init) = open_init(st) {
        let _ = pidfd_signal(&init, libc::SIGKILL);
    }
    // A task frozen by the v1 freezer acts on SIGKILL only once thawed.
    crate::cgroup::thaw(&st.cgroup);
}

/// Wait until the process `runner` (pid, start time) is gone, at most until `deadline`.
fn wait_for_runner(runner: (i32, u64), deadline: Instant) {
    while proc_stat(runner.0).is_some_and(|s| s.1 == runner.1 && s.0 != 'Z')
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The stop sequence. Returns once the container has stopped (or, with `signal_only`, once the
/// signal is sent).
pub fn stop(root: &Root, id: &str, opts: &StopOpts) -> Result<()> {
    // Step 1, locked: mark the stop, count it, cancel a running PostStart.
    let (path, st, spec) = {
        let dir = root.open(id)?;
        let mut st = dir.load()?;
        let status = dir.status(&st);
        if status == Status::Stopped {
            return if opts.signal_only.is_some() {
                Err(Error::NotRunning)
            } else {
                Ok(())
            };
        }
        if st.phase != Phase::Stopping {
            st.stop_seq += 1;
            st.phase = Phase::Stopping;
            dir.save(&st)?;
        }
        record(
            &dir.path,
            Type::Normal,
            "Killing",
            &format!("Stopping container {id}"),
        );
        if status == Status::Paused {
            // A frozen container can neither run PreStop nor act on its stop signal.
            crate::cgroup::thaw(&st.cgroup);
        }
        cancel_running_hooks(&dir.path, "PostStart");
        (dir.path.clone(), st, container::saved_spec(&dir))
    };
    let lc = lifecycle_of(&st);
    let grace = opts.grace.unwrap_or(lc.grace);
    let began = Instant::now();
    let deadline = began + grace;

    // Step 2, unlocked: PreStop, once per stop.
    if let (Some(h), Some(spec)) = (&lc.pre_stop, &spec) {
        loop {
            // Checked and begun in one step: of two racing stops, one runs it.
            match journal::claim(&path, "PreStop", h.kind(), &h.what(), st.stop_seq)? {
                Claim::Done => break,
                Claim::RunningElsewhere(runner) => {
                    // Another command is running this stop's PreStop: wait for it, then look again.
                    wait_for_runner(runner, deadline);
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                Claim::Began(i) => {
                    let (out, _) = run_journaled(&path, i, h, &st, spec, Some(deadline))?;
                    if !out.ok {
                        record(
                            &path,
                            Type::Warning,
                            "FailedPreStopHook",
                            &failure_message(h, id, &out.error),
                        );
                    }
                    break;
                }
            }
        }
    }
    let prestop_took = began.elapsed();

    // Step 3: the stop signal.
    let init = match open_init(&st) {
        Ok(fd) => fd,
        Err(_) => return finish_stop(root, id, &path, opts),
    };
    let sig = opts.signal_only.unwrap_or(lc.stop_signal);
    let _ = pidfd_signal(&init, sig);
    if opts.signal_only.is_some() {
        return Ok(());
    }
    // Step 4: what is left of the grace period (never under 2 s), then SIGKILL.
    let left = lifecycle::after_prestop(grace, prestop_took);
    if opts.no_wait {
        // The foreground runtime reaps; it SIGKILLs when this time is up.
        return Ok(());
    }
    if !wait_exit(&init, Some(left)) {
        kill_everything(&st);
        wait_exit(&init, Some(Duration::from_secs(10)));
    }
    finish_stop(root, id, &path, opts)
}

fn finish_stop(root: &Root, id: &str, path: &std::path::Path, _opts: &StopOpts) -> Result<()> {
    record(
        path,
        Type::Normal,
        "Exited",
        &format!("Container {id} exited"),
    );
    let _ = set_phase(root, id, Phase::Stopping, Phase::Stopped);
    Ok(())
}

/// How long a foreground `run` waits after the stop sequence's signal before SIGKILL.
pub fn kill_after(st: &State, prestop_took: Duration) -> Duration {
    lifecycle::after_prestop(lifecycle_of(st).grace, prestop_took)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_the_kubelet() {
        let h = Handler::Exec {
            command: vec!["/bin/sh".into(), "-c".into(), "exit 3".into()],
        };
        assert_eq!(
            failure_message(&h, "web", "command exited with 3, message: \"boom\\n\""),
            "Exec lifecycle hook ([/bin/sh -c exit 3]) for Container \"web\" failed - error: command exited with 3, message: \"boom\\n\""
        );
        let h = Handler::Sleep { seconds: 5 };
        assert_eq!(
            failure_message(&h, "web", "container terminated before sleep hook finished"),
            "Sleep lifecycle hook (5) for Container \"web\" failed - error: container terminated before sleep hook finished"
        );
    }
}
