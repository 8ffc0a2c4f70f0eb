//! `ps`: the processes of a container. json: the host pids in its cgroup; table: the host's
//! `ps -ef` (or the given ps arguments) cut down to the header and the container's lines, as runc.
//! A stopped container has none but what is left in its cgroup (runc's answer too).
//! runs in: the runtime.

use std::process::Command;

use crate::cli::ListFormat;
use crate::error::{Error, Result};
use crate::state::{Root, State, Status};

pub fn ps(root: &Root, id: &str, format: ListFormat, ps_args: &[String]) -> Result<()> {
    // The lock is dropped at once: ps(1) may take a while.
    let pids = {
        let dir = root.open(id)?;
        let st = dir.load()?;
        if dir.status(&st) == Status::Stopped {
            // As runc: what is left in its cgroup (usually nothing), never the dead init's pid.
            let mut p = crate::cgroup::procs(&st.cgroup);
            p.sort_unstable();
            p
        } else {
            pids(&st)
        }
    };
    match format {
        ListFormat::Json => {
            if !ps_args.is_empty() {
                return Err(Error::invalid(
                    "ps: PS_ARGS apply to the table format only; drop them or --format json",
                ));
            }
            println!("{}", serde_json::to_string(&pids).expect("json"));
        }
        ListFormat::Table => {
            let args: Vec<String> = if ps_args.is_empty() {
                vec!["-ef".into()]
            } else {
                ps_args.to_vec()
            };
            let shown = format!("ps {}", args.join(" "));
            let o = Command::new("ps")
                .args(&args)
                .output()
                .map_err(|e| Error::io("run", "ps", e))?;
            if !o.status.success() {
                return Err(Error::Child(format!(
                    "{shown}: {}: {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                )));
            }
            print!(
                "{}",
                filter_table(&String::from_utf8_lossy(&o.stdout), &pids)
                    .map_err(|e| Error::invalid(format!("{shown}: {e}")))?
            );
        }
    }
    Ok(())
}

/// Host pids of every process in the container, sorted: its cgroup's members, or without a
/// cgroup (rootless) the members of its pid namespace.
pub fn pids(st: &State) -> Vec<i32> {
    let mut p = if st.cgroup.paths.is_empty() {
        crate::container::container_pids(st)
    } else {
        crate::cgroup::procs(&st.cgroup)
    };
    p.sort_unstable();
    p
}

/// The header line and the lines whose PID column holds one of `pids`.
fn filter_table(out: &str, pids: &[i32]) -> std::result::Result<String, String> {
    let mut lines = out.lines();
    let head = lines.next().ok_or("no output")?;
    let col = head
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or("no PID column in its output")?;
    let mut s = format!("{head}\n");
    for l in lines {
        let hit = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| pids.contains(&p));
        if hit {
            s.push_str(l);
            s.push('\n');
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_keeps_header_and_container_lines() {
        let out = "UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
root         700       1  0 10:01 ?        00:00:00 sleep 1000
root         701     700  0 10:01 ?        00:00:00 sh -c 700
";
        let t = filter_table(out, &[700]).unwrap();
        assert_eq!(t.lines().count(), 2);
        assert!(t.starts_with("UID"));
        assert!(t.contains("sleep 1000"));
        // A PID column elsewhere (ps -o comm,pid) is found by its header.
        let t = filter_table("COMMAND  PID\nsh  5\nsleep  6\n", &[6]).unwrap();
        assert_eq!(t, "COMMAND  PID\nsleep  6\n");
        assert!(filter_table("COMMAND\nsh\n", &[6]).is_err());
    }
}
