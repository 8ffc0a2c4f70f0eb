//! Log lines for `--log FILE` / `--log-format json` / `--debug`, as containerd and podman expect:
//! json is one object per line with `level`, `msg`, `time` (RFC 3339).
//! runs in: the runtime.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::cli::LogFormat;

struct Logger {
    file: Option<PathBuf>,
    json: bool,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

pub fn init(file: Option<PathBuf>, format: LogFormat, debug: bool) {
    let _ = LOGGER.set(Logger {
        file,
        json: format == LogFormat::Json,
        debug,
    });
}

/// One log line in the chosen format.
pub fn format_line(json: bool, level: &str, msg: &str, time: &str) -> String {
    if json {
        serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
    } else {
        format!("time=\"{time}\" level={level} msg={msg:?}")
    }
}

fn emit(level: &str, msg: &str) {
    let Some(l) = LOGGER.get() else { return };
    let Some(path) = &l.file else {
        if l.debug {
            eprintln!(
                "{}",
                format_line(false, level, msg, &crate::state::now_rfc3339())
            );
        }
        return;
    };
    let line = format_line(l.json, level, msg, &crate::state::now_rfc3339());
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

pub fn debug(msg: impl AsRef<str>) {
    if LOGGER.get().is_some_and(|l| l.debug) {
        emit("debug", msg.as_ref());
    }
}

pub fn warn(msg: impl AsRef<str>) {
    emit("warning", msg.as_ref());
}

/// The one place an error is logged: main, on the way out.
pub fn error(msg: impl AsRef<str>) {
    emit("error", msg.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_level_msg_time() {
        let l = format_line(
            true,
            "error",
            "container \"x\" does not exist",
            "2026-11-25T00:00:00Z",
        );
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist");
        assert_eq!(v["time"], "2026-11-25T00:00:00Z");
        assert!(!l.contains('\n'));
    }
}
