//! From the parsed command line to the verb that carries it out, and its exit status.
//! runs in: the runtime.

use std::path::PathBuf;

use crate::cli::{self, Cli, Command};
use crate::container::{create, delete, kill, start, state_doc, stop};
use crate::error::{Error, Result};
use crate::state::Root;

/// The state root for this invocation.
pub fn root_dir(g: &cli::Global) -> PathBuf {
    g.root.clone().unwrap_or_else(crate::rootless::default_root)
}

/// Carry out the verb; `Ok` holds the exit status (a foreground `run` or `exec` passes its
/// process's on).
pub fn run(cli: Cli) -> Result<i32> {
    let root = Root::new(root_dir(&cli.global));
    if matches!(cli.cmd, Command::Check) {
        // Before the owner check: a foreign or open state root is one of the things it reports.
        let rootless = crate::rootless::is_rootless(&cli.global.rootless);
        return Ok(crate::check::run(&root.path, rootless));
    }
    crate::rootless::check_root_owner(&root.path)?;
    let creates = matches!(cli.cmd, Command::Create { .. } | Command::Run { .. });
    if creates && cli.global.systemd_cgroup {
        return Err(Error::invalid(
            "--systemd-cgroup: hookrun has no systemd cgroup driver; run without it to use cgroupfs",
        ));
    }
    let rootless_spec = cli.global.rootless == "true";
    match cli.cmd {
        Command::Create { opts, id } => {
            create(&root, &id, &opts)?;
            Ok(0)
        }
        Command::Start { id } => {
            start(&root, &id)?;
            Ok(0)
        }
        Command::Run {
            opts,
            detach,
            keep,
            id,
        } => crate::foreground::run(&root, &id, &opts, detach, keep),
        Command::Exec { args } => crate::exec::exec(&root, &args),
        Command::State { id } => {
            let dir = root.open(&id)?;
            let st = dir.load()?;
            println!(
                "{}",
                serde_json::to_string_pretty(&state_doc(&dir, &st)).expect("json")
            );
            Ok(0)
        }
        Command::List { format, quiet } => crate::info::list(&root, format, quiet).map(|_| 0),
        Command::Kill { all, id, signal } => {
            let sig = cli::parse_signal(&signal)?;
            kill(&root, &id, sig, all).map(|_| 0)
        }
        Command::Stop { time, id } => stop(&root, &id, time).map(|_| 0),
        Command::Delete { force, id } => delete(&root, &id, force).map(|_| 0),
        Command::Spec { bundle } => crate::info::write_spec(&bundle, rootless_spec).map(|_| 0),
        Command::Describe { format, id } => {
            crate::describe::describe(&root, &id, format).map(|_| 0)
        }
        Command::Ps {
            format,
            id,
            ps_args,
        } => crate::ps::ps(&root, &id, format, &ps_args).map(|_| 0),
        Command::Pause { id } => crate::pause::pause(&root, &id).map(|_| 0),
        Command::Resume { id } => crate::pause::resume(&root, &id).map(|_| 0),
        Command::Update { opts, id } => crate::update::update(&root, &id, &opts).map(|_| 0),
        Command::Events {
            stats,
            interval,
            id,
        } => crate::monitor::events(&root, &id, stats, interval).map(|_| 0),
        Command::Checkpoint { opts, id } => {
            crate::checkpoint::checkpoint(&root, &id, &opts).map(|_| 0)
        }
        Command::Restore { opts, id } => crate::checkpoint::restore(&root, &id, &opts).map(|_| 0),
        Command::Check => unreachable!("handled above"),
        Command::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::info::features()).expect("json")
            );
            Ok(0)
        }
    }
}
