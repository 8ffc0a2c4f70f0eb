//! The command line: clap structs mirroring runc's flags, plus hookrun's own verbs, and signal
//! parsing; help and version in runc's (urfave/cli) layout. runs in: the runtime.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::error::{Error, Result};

/// The runc release whose command line hookrun implements (its bats suite is the yardstick).
pub const RUNC_VERSION: &str = "1.1.5";

#[derive(Debug, Parser)]
#[command(
    name = "hookrun",
    about = "drop-in for \"runc - Open Container Initiative runtime\" that also runs Kubernetes lifecycle hooks (PostStart, PreStop)",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub cmd: Command,
}

const ROOT_HELP: &str = "\
NAME:
   hookrun - {about}

USAGE:
   hookrun [global options] command [command options] [arguments...]

VERSION:
   {version}

COMMANDS:
{subcommands}

GLOBAL OPTIONS:
{options}
";

/// A verb's help, urfave/cli's layout: `NAME:`, then `   hookrun VERB - what it does`.
fn verb_help(name: &str) -> String {
    format!("NAME:\n   hookrun {name} - {{about}}\n\nUSAGE:\n   {{usage}}\n\n{{all-args}}\n")
}

/// `--version` (after `hookrun `): runc's lines — version, `commit:`, `spec:`, `libseccomp:`.
pub fn version_text() -> String {
    let mut v = format!(
        "version {}, compatible with runc version {RUNC_VERSION}\ncommit: {}\nspec: {}",
        crate::VERSION,
        option_env!("HOOKRUN_COMMIT").unwrap_or("unknown"),
        crate::OCI_VERSION
    );
    if let Ok(l) = libseccomp::ScmpVersion::current() {
        v.push_str(&format!(
            "\nlibseccomp: {}.{}.{}",
            l.major, l.minor, l.micro
        ));
    }
    v
}

/// The clap command with runc's help layout and `-v`/`--version`.
pub fn command() -> clap::Command {
    Cli::command()
        // Built once per process; clap keeps only a `&'static str` without its `string` feature.
        .version(&*version_text().leak())
        .help_template(ROOT_HELP)
        .arg(
            clap::Arg::new("version")
                .short('v')
                .long("version")
                .short_alias('V')
                .help("Print the version")
                .action(clap::ArgAction::Version),
        )
        .mut_subcommands(|s| {
            let t = verb_help(s.get_name());
            s.help_template(t)
        })
}

/// Parse the process's arguments; help, version and usage errors print and exit here.
pub fn parse() -> Cli {
    match parse_from(std::env::args_os()) {
        Ok(c) => c,
        Err(ParseError::Clap(e)) => e.exit(),
        Err(ParseError::NoHelpTopic(verb)) => {
            eprintln!("No help topic for '{verb}'");
            std::process::exit(3)
        }
    }
}

/// Why the arguments did not give a [`Cli`].
#[derive(Debug)]
pub enum ParseError {
    /// Help, version, or a usage error, printed and exited on by clap.
    Clap(clap::Error),
    /// `hookrun VERB -h` with an unknown VERB: runc says `No help topic for 'VERB'`, exit 3.
    NoHelpTopic(String),
}

/// [`parse`] on given arguments.
pub fn parse_from<I, T>(args: I) -> std::result::Result<Cli, ParseError>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let mut cmd = command();
    let mut m = match cmd.try_get_matches_from_mut(&args) {
        Ok(m) => m,
        Err(e) => {
            let asks_help = args.iter().skip(1).any(|a| a == "-h" || a == "--help");
            return Err(match e.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(verb))
                    if asks_help && e.kind() == ErrorKind::InvalidSubcommand =>
                {
                    ParseError::NoHelpTopic(verb.clone())
                }
                _ => ParseError::Clap(e),
            });
        }
    };
    Cli::from_arg_matches_mut(&mut m).map_err(|e| ParseError::Clap(e.format(&mut cmd)))
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// State directory (default /run/hookrun as root, $XDG_RUNTIME_DIR/hookrun rootless)
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Write log lines (and the error of a failed command) to FILE
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Format of log lines
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug lines too
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd to manage cgroups (refused: no systemd cgroup driver)
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto (`spec --rootless`: write a rootless config; `check
    /// --rootless`: check what an unprivileged user needs)
    #[arg(long, global = true, value_name = "BOOL", default_value = "auto", num_args = 0..=1,
          default_missing_value = "true", value_parser = ["true", "false", "auto"])]
    pub rootless: String,
    /// Accepted for runc compatibility; checkpointing is not supported
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args, Clone, Default)]
pub struct CreateOpts {
    /// Path to the bundle directory (holding config.json)
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Write the init's pid (decimal, no newline) to FILE
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to (process.terminal)
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Pass N extra fds (3..3+N) to the container process
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Use MS_MOVE + chroot instead of pivot_root
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Set by a foreground `run`: it proxies the terminal itself.
    #[arg(skip)]
    pub foreground: bool,
}

/// `exec`'s command line: runc's flags, spelled as runc spells them.
#[derive(Debug, Args, Clone, Default)]
pub struct ExecArgs {
    /// Path to a process.json (an OCI `process` object) instead of COMMAND; it then decides
    /// everything (`-t` is ignored, the other overrides are refused)
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Return once the process has started
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's host pid to FILE
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Send the pty master to the AF_UNIX socket at PATH (with --tty)
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Allocate a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Working directory in the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// KEY=VALUE, repeatable
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// UID[:GID]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Add a supplementary group (repeatable)
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective and permitted sets (repeatable)
    #[arg(short = 'c', long = "cap", value_name = "CAP")]
    pub caps: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long)]
    pub no_new_privs: bool,
    /// AppArmor profile (refused: hookrun applies no AppArmor profiles)
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// SELinux process label (refused: hookrun applies no SELinux labels)
    #[arg(long, value_name = "LABEL")]
    pub process_label: Option<String>,
    /// Pass N more fds (3 to 3+N-1) to the process
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Run in a sub-cgroup of the container's: SUB for every hierarchy, or CTRL[,CTRL]:SUB
    /// (repeatable)
    #[arg(long = "cgroup", value_name = "[CTRL:]SUB")]
    pub cgroups: Vec<String>,
    /// Allow exec into a paused container (the process starts when it is resumed)
    #[arg(long)]
    pub ignore_paused: bool,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// create a container: namespaces, rootfs, init blocked before exec (as runc create)
    Create {
        #[command(flatten)]
        opts: CreateOpts,
        id: String,
    },
    /// start a created container, then run its PostStart hook (as runc start)
    Start { id: String },
    /// create and start a container; in the foreground, wait for it and exit with its status (as runc run)
    Run {
        #[command(flatten)]
        opts: CreateOpts,
        /// Return once the container is started
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits
        #[arg(long)]
        keep: bool,
        id: String,
    },
    /// run a process inside a running container (as runc exec)
    Exec {
        #[command(flatten)]
        args: ExecArgs,
    },
    /// print the state of a container as JSON (as runc state)
    State { id: String },
    /// list the containers under --root (as runc list)
    #[command(alias = "ls")]
    List {
        /// Output format
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Print only ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// send a signal (default SIGTERM) to a container's init, with --all to all its processes (as runc kill)
    Kill {
        /// Signal every process of the container, not only its init
        #[arg(short, long)]
        all: bool,
        id: String,
        /// A name (KILL, SIGKILL, RTMIN+1) or a number (0 checks that the init is alive)
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// stop a container: PreStop, stop signal, SIGKILL after the grace period (hookrun's own)
    Stop {
        /// Grace period in seconds (default: the container's, else 30)
        #[arg(short = 't', long = "time", value_name = "SECONDS")]
        time: Option<u64>,
        id: String,
    },
    /// delete a stopped container and its resources; --force kills it first (as runc delete)
    Delete {
        /// Kill a created, running or paused container first; an unknown id is not an error
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// show a container, its lifecycle hook runs (with output) and its events (hookrun's own)
    Describe {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        id: String,
    },
    /// write runc's default config.json (as runc spec)
    Spec {
        /// Bundle directory to write config.json into
        #[arg(short, long, default_value = ".", value_name = "DIR")]
        bundle: PathBuf,
    },
    /// print the OCI features document (as runc features)
    Features,
    /// check this host for what hookrun needs; --rootless: as an unprivileged user (hookrun's own)
    Check,
    /// list the processes in a container (as runc ps)
    Ps {
        /// Output format: table (host ps filtered) or json (host pids)
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        id: String,
        /// Arguments for ps(1) instead of -ef (table format only), after `--`
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "PS_ARGS"
        )]
        ps_args: Vec<String>,
    },
    /// freeze every process in a running container (as runc pause)
    Pause { id: String },
    /// thaw a paused container (as runc resume)
    Resume { id: String },
    /// change the cgroup limits of a container (as runc update)
    Update {
        #[command(flatten)]
        opts: UpdateOpts,
        id: String,
    },
    /// print resource statistics once (--stats), or stream them and OOM notices until the container stops (as runc events)
    Events {
        /// Print one stats object and exit
        #[arg(long)]
        stats: bool,
        /// Time between stats objects in a stream
        #[arg(long, default_value = "5s", value_parser = parse_interval)]
        interval: std::time::Duration,
        id: String,
    },
    /// checkpoint a running container (as runc checkpoint; hookrun validates the arguments, then
    /// fails: it has no criu support)
    Checkpoint {
        #[command(flatten)]
        opts: crate::checkpoint::CheckpointOpts,
        id: String,
    },
    /// restore a container from a previous checkpoint (as runc restore; hookrun validates the
    /// arguments, then fails: it has no criu support)
    Restore {
        #[command(flatten)]
        opts: crate::checkpoint::RestoreOpts,
        id: String,
    },
}

/// `update`'s flags, runc's names; each overrides the same field of `--resources`. A value of 0
/// leaves the limit as it is, as in runc.
#[derive(Debug, Args, Clone, Default)]
pub struct UpdateOpts {
    /// An OCI LinuxResources JSON document (`-`: read it from stdin)
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes (k, m, g suffixes accepted; -1: none)
    #[arg(long, value_parser = parse_size, allow_hyphen_values = true, value_name = "BYTES")]
    pub memory: Option<i64>,
    /// Memory plus swap limit in bytes (-1: unlimited swap)
    #[arg(long, value_parser = parse_size, allow_hyphen_values = true, value_name = "BYTES")]
    pub memory_swap: Option<i64>,
    /// Memory soft limit in bytes
    #[arg(long, value_parser = parse_size, allow_hyphen_values = true, value_name = "BYTES")]
    pub memory_reservation: Option<i64>,
    /// Kernel memory limit (obsolete: kernels since 5.16 ignore it)
    #[arg(long, value_parser = parse_size, allow_hyphen_values = true, hide = true)]
    pub kernel_memory: Option<i64>,
    /// Kernel TCP buffer memory limit (obsolete)
    #[arg(long, value_parser = parse_size, allow_hyphen_values = true, hide = true)]
    pub kernel_memory_tcp: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-share", visible_alias = "cpu-shares", value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// CPU CFS quota in microseconds per period (-1: none)
    #[arg(long, allow_hyphen_values = true, value_name = "USEC")]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long, value_name = "USEC")]
    pub cpu_period: Option<u64>,
    /// CPU realtime period in microseconds (cgroup v1)
    #[arg(long, value_name = "USEC")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds per realtime period (cgroup v1)
    #[arg(long, allow_hyphen_values = true, value_name = "USEC")]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs to run on (0-3, 0,1)
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use (0-3, 0,1)
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of tasks (-1: no limit)
    #[arg(long, allow_hyphen_values = true, value_name = "N")]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10-1000)
    #[arg(long, value_name = "N")]
    pub blkio_weight: Option<u16>,
    /// Intel RDT L3 cache schema (not supported: refused)
    #[arg(long, value_name = "SCHEMA")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported: refused)
    #[arg(long, value_name = "SCHEMA")]
    pub mem_bw_schema: Option<String>,
}

/// A byte count: plain bytes or with a k/m/g/t suffix (powers of 1024, `b`/`kb`/`KiB` forms
/// too); `-1` means no limit.
pub fn parse_size(s: &str) -> std::result::Result<i64, String> {
    let bad = || format!("invalid size {s:?}: give bytes, optionally with a k, m, g or t suffix");
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let lower = t.to_ascii_lowercase();
    let num_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    let shift = match unit.trim_start() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    let n: i64 = num.parse().map_err(|_| bad())?;
    n.checked_mul(1i64 << shift).ok_or_else(bad)
}

/// `--interval`: a duration such as `5s`, `500ms`, `1m`; must be above zero.
pub fn parse_interval(s: &str) -> std::result::Result<std::time::Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("the interval must be greater than 0".into()),
        Err(e) => Err(format!("invalid duration {s:?}: {e}")),
    }
}

/// Parse a signal given by name (`KILL`, `SIGKILL`, `sigkill`) or number (`9`, up to SIGRTMAX;
/// `0`, as with kill(2), only checks that the process exists).
pub fn parse_signal(s: &str) -> Result<i32> {
    let bad = || Error::invalid(format!("unknown signal {s:?}"));
    if let Ok(n) = s.parse::<i32>() {
        return if (0..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('+')
                .and_then(|r| r.parse().ok())
                .ok_or_else(bad)?
        };
        let n = libc::SIGRTMIN() + off;
        return if n <= libc::SIGRTMAX() {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('-')
                .and_then(|r| r.parse().ok())
                .ok_or_else(bad)?
        };
        let n = libc::SIGRTMAX() - off;
        return if n >= libc::SIGRTMIN() {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let full = format!("SIG{name}");
    full.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("0").unwrap(), 0);
        assert_eq!(parse_signal("USR1").unwrap(), libc::SIGUSR1);
        assert_eq!(parse_signal("RTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
        assert_eq!(parse_signal("SIGRTMAX").unwrap(), libc::SIGRTMAX());
        for bad in ["-1", "65", "NOPE", "SIG", "RTMIN+99", ""] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_and_intervals() {
        assert_eq!(parse_size("67108864").unwrap(), 67108864);
        assert_eq!(parse_size("64m").unwrap(), 67108864);
        assert_eq!(parse_size("64M").unwrap(), 67108864);
        assert_eq!(parse_size("64MiB").unwrap(), 67108864);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("2kb").unwrap(), 2048);
        assert_eq!(parse_size("-1").unwrap(), -1);
        let too_big = ["99999999999999999999", "8000000000t"];
        for bad in ["", "m", "64x", "-2", "1.5g"].into_iter().chain(too_big) {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_interval("1s").unwrap(),
            std::time::Duration::from_secs(1)
        );
        assert_eq!(
            parse_interval("500ms").unwrap(),
            std::time::Duration::from_millis(500)
        );
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("soon").is_err());
    }

    #[test]
    fn new_verbs_parse_like_runc() {
        let c = Cli::try_parse_from(["hookrun", "ps", "-f", "json", "c1"]).unwrap();
        assert!(
            matches!(c.cmd, Command::Ps { format: ListFormat::Json, ref id, ref ps_args } if id == "c1" && ps_args.is_empty())
        );
        let c = Cli::try_parse_from(["hookrun", "ps", "c1", "--", "-o", "pid,comm"]).unwrap();
        assert!(matches!(c.cmd, Command::Ps { ref ps_args, .. } if ps_args == &["-o", "pid,comm"]));
        let line = "hookrun update -r - --memory 64m --memory-swap -1 --pids-limit 20 c1";
        let c = Cli::try_parse_from(line.split(' ')).unwrap();
        let Command::Update { opts, id } = c.cmd else {
            panic!("not update")
        };
        assert_eq!(id, "c1");
        assert_eq!(opts.resources.as_deref(), Some(std::path::Path::new("-")));
        assert_eq!(
            (opts.memory, opts.memory_swap, opts.pids_limit),
            (Some(67108864), Some(-1), Some(20))
        );
        assert!(Cli::try_parse_from(["hookrun", "update", "--memory", "lots", "c1"]).is_err());
        let c = Cli::try_parse_from(["hookrun", "events", "--interval", "1s", "c1"]).unwrap();
        assert!(
            matches!(c.cmd, Command::Events { stats: false, interval, .. } if interval.as_secs() == 1)
        );
        let c = Cli::try_parse_from(["hookrun", "events", "--stats", "c1"]).unwrap();
        assert!(
            matches!(c.cmd, Command::Events { stats: true, interval, .. } if interval.as_secs() == 5)
        );
    }

    #[test]
    fn runc_style_command_lines_parse() {
        let c = Cli::try_parse_from([
            "hookrun",
            "--root",
            "/r",
            "--log",
            "/l",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "c1",
        ])
        .unwrap();
        assert_eq!(c.global.root.as_deref(), Some(std::path::Path::new("/r")));
        assert!(matches!(c.cmd, Command::Create { ref id, .. } if id == "c1"));
        let c = Cli::try_parse_from(["hookrun", "kill", "--all", "c1", "KILL"]).unwrap();
        assert!(matches!(c.cmd, Command::Kill { all: true, ref signal, .. } if signal == "KILL"));
        let c = Cli::try_parse_from(["hookrun", "delete", "-f", "c1"]).unwrap();
        assert!(matches!(c.cmd, Command::Delete { force: true, .. }));
    }

    #[test]
    fn rootless_takes_only_true_false_or_auto() {
        let r = |args: &[&str]| Cli::try_parse_from(args).map(|c| c.global.rootless);
        assert_eq!(r(&["hookrun", "spec", "--rootless"]).unwrap(), "true");
        assert_eq!(
            r(&["hookrun", "spec", "--rootless", "-b", "/b"]).unwrap(),
            "true"
        );
        assert_eq!(
            r(&["hookrun", "--rootless", "false", "check"]).unwrap(),
            "false"
        );
        assert_eq!(r(&["hookrun", "--rootless=auto", "list"]).unwrap(), "auto");
        assert_eq!(r(&["hookrun", "list"]).unwrap(), "auto");
        for bad in ["yes", "1", "TRUE", ""] {
            let e = r(&["hookrun", &format!("--rootless={bad}"), "list"]).unwrap_err();
            assert!(e.to_string().contains("possible values"), "{bad}: {e}");
        }
    }
}
