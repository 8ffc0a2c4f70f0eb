//! Kubernetes-style lifecycle hooks: the `dev.hookrun.lifecycle` and
//! `dev.hookrun.termination-grace-period-seconds` annotations parsed into typed values and
//! validated at create, and the grace-period arithmetic of the stop sequence.
//! runs in: the runtime.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const LIFECYCLE: &str = "dev.hookrun.lifecycle";
pub const GRACE: &str = "dev.hookrun.termination-grace-period-seconds";
pub const DEFAULT_GRACE: u64 = 30;
/// What the container is always left between the stop signal and SIGKILL (the kubelet's
/// minimum).
pub const MIN_AFTER_PRESTOP: Duration = Duration::from_secs(2);
/// The annotations by which containerd's CRI plugin and CRI-O mark the container they make for
/// a pod's sandbox (the "pause" container) with the value `sandbox`.
const CRI_CONTAINER_TYPE: [&str; 2] = [
    "io.kubernetes.cri.container-type",
    "io.kubernetes.cri-o.ContainerType",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawLifecycle {
    post_start: Option<RawHandler>,
    pre_stop: Option<RawHandler>,
    stop_signal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawHandler {
    exec: Option<ExecAction>,
    http_get: Option<HttpGet>,
    sleep: Option<SleepAction>,
    tcp_socket: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExecAction {
    pub command: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Header {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpGet {
    #[serde(default)]
    pub path: Option<String>,
    pub port: serde_json::Value,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub http_headers: Option<Vec<Header>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SleepAction {
    pub seconds: i64,
}

/// One validated handler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Handler {
    Exec { command: Vec<String> },
    HttpGet(HttpTarget),
    Sleep { seconds: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpTarget {
    pub scheme: String,
    pub host: String,
    pub port: u16,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl HttpTarget {
    pub fn url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "{}://{}:{}{}",
            self.scheme.to_lowercase(),
            host,
            self.port,
            self.path
        )
    }
}

impl Handler {
    /// The handler's name in events and describe: Exec, HTTP, Sleep.
    pub fn kind(&self) -> &'static str {
        match self {
            Handler::Exec { .. } => "Exec",
            Handler::HttpGet(_) => "HTTP",
            Handler::Sleep { .. } => "Sleep",
        }
    }

    /// What the kubelet puts in parentheses: `[/bin/sh -c exit 3]`, `/path`, `5`.
    pub fn what(&self) -> String {
        match self {
            Handler::Exec { command } => format!("[{}]", command.join(" ")),
            Handler::HttpGet(t) => t.path.clone(),
            Handler::Sleep { seconds } => seconds.to_string(),
        }
    }
}

/// The lifecycle of one container, validated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    pub post_start: Option<Handler>,
    pub pre_stop: Option<Handler>,
    /// Signal number; SIGTERM unless `stopSignal` says otherwise.
    pub stop_signal: i32,
    pub grace: Duration,
}

fn field(f: &str, msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!(
        "config.json: annotations[\"{LIFECYCLE}\"].{f}: {msg}"
    ))
}

fn handler(name: &str, h: RawHandler) -> Result<Handler> {
    if h.tcp_socket.is_some() {
        return Err(field(
            &format!("{name}.tcpSocket"),
            "not supported for lifecycle hooks (as in Kubernetes); use exec, httpGet or sleep",
        ));
    }
    let n = h.exec.is_some() as u8 + h.http_get.is_some() as u8 + h.sleep.is_some() as u8;
    if n != 1 {
        return Err(field(
            name,
            format!("exactly one of exec, httpGet, sleep must be given ({n} are)"),
        ));
    }
    if let Some(e) = h.exec {
        if e.command.is_empty() || e.command[0].is_empty() {
            return Err(field(&format!("{name}.exec.command"), "must not be empty"));
        }
        return Ok(Handler::Exec { command: e.command });
    }
    if let Some(s) = h.sleep {
        if s.seconds < 0 {
            return Err(field(
                &format!("{name}.sleep.seconds"),
                format!("{} is negative", s.seconds),
            ));
        }
        return Ok(Handler::Sleep {
            seconds: s.seconds as u64,
        });
    }
    let g = h.http_get.expect("one handler");
    let port = match &g.port {
        serde_json::Value::Number(n) => n.as_i64().unwrap_or(-1),
        serde_json::Value::String(s) => {
            return Err(field(
                &format!("{name}.httpGet.port"),
                format!("named port {s:?} is not supported here; give a number"),
            ))
        }
        v => {
            return Err(field(
                &format!("{name}.httpGet.port"),
                format!("{v} is not a port number"),
            ))
        }
    };
    if !(1..=65535).contains(&port) {
        return Err(field(
            &format!("{name}.httpGet.port"),
            format!("{port} is outside 1-65535"),
        ));
    }
    let scheme = g.scheme.unwrap_or_else(|| "HTTP".into()).to_uppercase();
    if scheme != "HTTP" && scheme != "HTTPS" {
        return Err(field(
            &format!("{name}.httpGet.scheme"),
            format!("{scheme:?} is not HTTP or HTTPS"),
        ));
    }
    let mut path = g.path.unwrap_or_default();
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    Ok(Handler::HttpGet(HttpTarget {
        scheme,
        host: g
            .host
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "127.0.0.1".into()),
        port: port as u16,
        path,
        headers: g
            .http_headers
            .unwrap_or_default()
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect(),
    }))
}

/// Parse and validate both annotations (absent ones give the defaults).
pub fn from_annotations(a: &HashMap<String, String>) -> Result<Lifecycle> {
    let grace = match a.get(GRACE) {
        None => DEFAULT_GRACE,
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                Error::invalid(format!(
                "config.json: annotations[\"{GRACE}\"]: {v:?} is not a whole number of seconds >= 0"
            ))
            })? as u64,
    };
    let mut lc = Lifecycle {
        stop_signal: libc::SIGTERM,
        grace: Duration::from_secs(grace),
        ..Default::default()
    };
    let Some(text) = a.get(LIFECYCLE) else {
        return Ok(lc);
    };
    let de = &mut serde_json::Deserializer::from_str(text);
    let raw: RawLifecycle = serde_path_to_error::deserialize(de).map_err(|e| {
        let p = e.path().to_string();
        let inner = e.into_inner();
        if p.is_empty() || p == "." {
            Error::invalid(format!(
                "config.json: annotations[\"{LIFECYCLE}\"]: {inner}"
            ))
        } else {
            field(&p, inner)
        }
    })?;
    if let Some(h) = raw.post_start {
        lc.post_start = Some(handler("postStart", h)?);
    }
    if let Some(h) = raw.pre_stop {
        lc.pre_stop = Some(handler("preStop", h)?);
    }
    if let Some(s) = raw.stop_signal {
        lc.stop_signal = crate::cli::parse_signal(&s)
            .map_err(|_| field("stopSignal", format!("unknown signal {s:?}")))?;
    }
    // CRI copies a pod's allowed annotations into its sandbox container as well as into each of
    // its containers. The hooks are the containers': the pause image has nothing to exec them
    // with, and a failed PostStart there would fail the whole pod. Validated all the same, so a
    // bad annotation fails the pod at its first step.
    if is_cri_sandbox(a) {
        lc.post_start = None;
        lc.pre_stop = None;
    }
    Ok(lc)
}

fn is_cri_sandbox(a: &HashMap<String, String>) -> bool {
    CRI_CONTAINER_TYPE
        .iter()
        .any(|k| a.get(*k).is_some_and(|v| v == "sandbox"))
}

/// How long the container gets between the stop signal and SIGKILL once PreStop took
/// `prestop_took` of the grace period: what is left, but never under the kubelet's 2 s.
pub fn after_prestop(grace: Duration, prestop_took: Duration) -> Duration {
    grace.saturating_sub(prestop_took).max(MIN_AFTER_PRESTOP)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lc: serde_json::Value) -> Result<Lifecycle> {
        let mut a = HashMap::new();
        a.insert(LIFECYCLE.to_string(), lc.to_string());
        from_annotations(&a)
    }

    fn err(lc: serde_json::Value) -> String {
        parse(lc).unwrap_err().to_string()
    }

    #[test]
    fn handlers_parse() {
        let lc = parse(serde_json::json!({
            "postStart": {"exec": {"command": ["/bin/sh", "-c", "exit 3"]}},
            "preStop": {"httpGet": {"path": "x", "port": 8080, "httpHeaders": [{"name": "A", "value": "b"}]}},
            "stopSignal": "SIGQUIT"
        }))
        .unwrap();
        assert_eq!(
            lc.post_start.as_ref().unwrap().what(),
            "[/bin/sh -c exit 3]"
        );
        let Some(Handler::HttpGet(t)) = &lc.pre_stop else {
            panic!()
        };
        assert_eq!(t.url(), "http://127.0.0.1:8080/x");
        assert_eq!(t.headers, [("A".to_string(), "b".to_string())]);
        assert_eq!(lc.stop_signal, libc::SIGQUIT);
        assert_eq!(lc.grace, Duration::from_secs(30));
        let lc = parse(serde_json::json!({"preStop": {"sleep": {"seconds": 5}}})).unwrap();
        assert_eq!(lc.pre_stop, Some(Handler::Sleep { seconds: 5 }));
        assert_eq!(lc.stop_signal, libc::SIGTERM);
    }

    #[test]
    fn bad_declarations_name_the_field() {
        let pre = "config.json: annotations[\"dev.hookrun.lifecycle\"]";
        assert!(err(serde_json::json!({"postStart": {}}))
            .starts_with(&format!("{pre}.postStart: exactly one")));
        assert!(err(
            serde_json::json!({"postStart": {"exec": {"command": ["a"]}, "sleep": {"seconds": 1}}})
        )
        .contains("(2 are)"));
        assert!(
            err(serde_json::json!({"preStop": {"tcpSocket": {"port": 80}}}))
                .starts_with(&format!("{pre}.preStop.tcpSocket: not supported"))
        );
        assert_eq!(
            err(serde_json::json!({"preStop": {"httpGet": {"port": 70000}}})),
            format!("{pre}.preStop.httpGet.port: 70000 is outside 1-65535")
        );
        assert!(
            err(serde_json::json!({"preStop": {"httpGet": {"port": 0}}})).contains("0 is outside")
        );
        assert!(
            err(serde_json::json!({"preStop": {"httpGet": {"port": "http"}}}))
                .contains("named port")
        );
        assert_eq!(
            err(serde_json::json!({"preStop": {"sleep": {"seconds": -1}}})),
            format!("{pre}.preStop.sleep.seconds: -1 is negative")
        );
        assert!(
            err(serde_json::json!({"postStart": {"exec": {"command": []}}}))
                .contains("postStart.exec.command")
        );
        let e = err(serde_json::json!({"postStrat": {}}));
        assert!(e.contains("unknown field `postStrat`"), "{e}");
        let e = err(serde_json::json!({"postStart": {"exec": {"cmd": ["x"]}}}));
        assert!(e.starts_with(&format!("{pre}.postStart.exec")), "{e}");
        assert!(err(serde_json::json!({"stopSignal": "SIGNOPE"})).contains("stopSignal"));
        let mut a = HashMap::new();
        a.insert(LIFECYCLE.to_string(), "{not json".to_string());
        assert!(from_annotations(&a)
            .unwrap_err()
            .to_string()
            .starts_with(pre));
        let mut a = HashMap::new();
        a.insert(GRACE.to_string(), "-5".to_string());
        assert!(from_annotations(&a)
            .unwrap_err()
            .to_string()
            .contains("termination-grace-period-seconds"));
    }

    #[test]
    fn a_cri_sandbox_container_has_no_hooks() {
        let lc = serde_json::json!({
            "postStart": {"exec": {"command": ["/bin/sh", "-c", "true"]}},
            "preStop": {"sleep": {"seconds": 1}}
        });
        for (key, kind, hooks) in [
            ("io.kubernetes.cri.container-type", "sandbox", false),
            ("io.kubernetes.cri-o.ContainerType", "sandbox", false),
            ("io.kubernetes.cri.container-type", "container", true),
        ] {
            let mut a = HashMap::new();
            a.insert(LIFECYCLE.to_string(), lc.to_string());
            a.insert(key.to_string(), kind.to_string());
            let got = from_annotations(&a).unwrap();
            assert_eq!(got.post_start.is_some(), hooks, "{key}={kind}");
            assert_eq!(got.pre_stop.is_some(), hooks, "{key}={kind}");
            // still validated
            a.insert(LIFECYCLE.to_string(), "{not json".to_string());
            assert!(from_annotations(&a).is_err());
        }
    }

    #[test]
    fn grace_period_arithmetic() {
        let s = Duration::from_secs;
        assert_eq!(after_prestop(s(30), s(10)), s(20));
        assert_eq!(after_prestop(s(30), s(29)), s(2));
        assert_eq!(after_prestop(s(30), s(45)), s(2));
        assert_eq!(after_prestop(s(0), s(0)), s(2));
    }
}
