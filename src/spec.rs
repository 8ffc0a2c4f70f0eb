//! Load config.json and validate it into a [`Plan`]: everything the parent and the container init
//! need, with the errors a user sees naming the field (`config.json: process.cwd: …`).
//! runs in: the runtime, before any process is created.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// One namespace in the plan: make a new one, or join the one at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ns {
    pub kind: LinuxNamespaceType,
    pub path: Option<PathBuf>,
}

/// A validated config with the bundle-relative paths resolved.
#[derive(Debug, Clone)]
pub struct Plan {
    pub spec: Spec,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub namespaces: Vec<Ns>,
    /// `linux.seccomp`, compiled here so a bad profile fails `create` before any process
    /// exists; the init inherits it and loads it right before execve.
    pub seccomp: Option<crate::seccomp::Filter>,
}

impl Plan {
    pub fn ns(&self, kind: LinuxNamespaceType) -> Option<&Ns> {
        self.namespaces.iter().find(|n| n.kind == kind)
    }
    /// A namespace the init gets a new instance of.
    pub fn new_ns(&self, kind: LinuxNamespaceType) -> bool {
        self.ns(kind).is_some_and(|n| n.path.is_none())
    }
    /// The process, or an empty one when the config has none (then there is nothing to start).
    pub fn process(&self) -> &oci_spec::runtime::Process {
        static NONE: std::sync::OnceLock<oci_spec::runtime::Process> = std::sync::OnceLock::new();
        self.spec.process().as_ref().unwrap_or_else(|| {
            NONE.get_or_init(|| {
                let mut p = oci_spec::runtime::Process::default();
                p.set_args(None);
                p.set_terminal(Some(false));
                p.set_capabilities(None);
                p.set_rlimits(None);
                p
            })
        })
    }
    pub fn linux(&self) -> &oci_spec::runtime::Linux {
        self.spec
            .linux()
            .as_ref()
            .expect("validated: linux present")
    }
    pub fn args(&self) -> &[String] {
        self.process().args().as_deref().unwrap_or(&[])
    }
    pub fn env(&self) -> &[String] {
        self.process().env().as_deref().unwrap_or(&[])
    }
}

fn field(f: &str, msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!("config.json: {f}: {msg}"))
}

/// Read `<bundle>/config.json` and validate it.
pub fn load(bundle: &Path) -> Result<Plan> {
    let bundle = std::fs::canonicalize(bundle).map_err(|e| Error::io("open bundle", bundle, e))?;
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    let spec = parse(&data)?;
    validate(spec, bundle)
}

/// Parse config.json text; a type error names the JSON path of the field.
pub fn parse(data: &[u8]) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let p = e.path().to_string();
        let inner = e.into_inner();
        if p.is_empty() || p == "." {
            Error::invalid(format!("config.json: {inner}"))
        } else {
            field(&p, inner)
        }
    })
}

fn ns_name(k: LinuxNamespaceType) -> &'static str {
    match k {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// Check everything that can be checked before a process exists.
pub fn validate(spec: Spec, bundle: PathBuf) -> Result<Plan> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::invalid("config.json: root: missing"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let rootfs = std::fs::canonicalize(&rootfs)
        .map_err(|e| field("root.path", Error::io("open", &rootfs, e)))?;
    if !rootfs.is_dir() {
        return Err(field(
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        ));
    }

    // The version must be one this runtime speaks (runtime-spec 1.x).
    let v = spec.version();
    let mut parts = v.split(['.', '-', '+']);
    let ok = parts.next() == Some("1")
        && parts.next().is_some_and(|p| p.parse::<u32>().is_ok())
        && parts.next().is_some_and(|p| p.parse::<u32>().is_ok());
    if !ok {
        return Err(field(
            "ociVersion",
            format!("{v:?} is not a runtime-spec 1.x version"),
        ));
    }
    // `process` may be absent at create (OCI: it is needed only by start, which then fails).
    if let Some(process) = spec.process().as_ref() {
        if process.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(field("process.args", "must not be empty"));
        }
        if !process.cwd().is_absolute() {
            return Err(field("process.cwd", "must be an absolute path"));
        }
        for (i, e) in process.env().iter().flatten().enumerate() {
            if !e.contains('=') {
                return Err(field(
                    &format!("process.env[{i}]"),
                    format!("{e:?} is not KEY=VALUE"),
                ));
            }
        }
        let mut seen = HashSet::new();
        for (i, r) in process.rlimits().iter().flatten().enumerate() {
            if r.soft() > r.hard() {
                return Err(field(
                    &format!("process.rlimits[{i}]"),
                    format!("soft limit {} exceeds hard limit {}", r.soft(), r.hard()),
                ));
            }
            if !seen.insert(format!("{:?}", r.typ())) {
                return Err(field(&format!("process.rlimits[{i}].type"), "given twice"));
            }
        }
        if let Some(adj) = process.oom_score_adj() {
            if !(-1000..=1000).contains(&adj) {
                return Err(field(
                    "process.oomScoreAdj",
                    "must be between -1000 and 1000",
                ));
            }
        }
    }

    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::invalid("config.json: linux: missing"))?;
    let mut namespaces: Vec<Ns> = Vec::new();
    for (i, n) in linux.namespaces().iter().flatten().enumerate() {
        if namespaces.iter().any(|x| x.kind == n.typ()) {
            return Err(field(
                &format!("linux.namespaces[{i}].type"),
                format!("namespace {:?} given twice", ns_name(n.typ())),
            ));
        }
        if let Some(p) = n.path() {
            if !p.is_absolute() {
                return Err(field(
                    &format!("linux.namespaces[{i}].path"),
                    "must be absolute",
                ));
            }
            if let Err(e) = std::fs::metadata(p) {
                return Err(field(
                    &format!("linux.namespaces[{i}].path"),
                    Error::io("open", p, e),
                ));
            }
        }
        namespaces.push(Ns {
            kind: n.typ(),
            path: n.path().clone(),
        });
    }
    let has = |k| namespaces.iter().any(|n: &Ns| n.kind == k);
    let new = |k| {
        namespaces
            .iter()
            .any(|n: &Ns| n.kind == k && n.path.is_none())
    };
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if new(LinuxNamespaceType::User) {
        if linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty())
            || linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty())
        {
            return Err(field(
                "linux.uidMappings",
                "a new user namespace needs both uidMappings and gidMappings",
            ));
        }
    } else if maps {
        return Err(field(
            "linux.uidMappings",
            "mappings are given but no new user namespace is requested",
        ));
    }
    // A joined uts namespace may be given a hostname too (it is the container's to set).
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(field(
            "hostname",
            "setting a hostname needs a uts namespace (new or joined)",
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(field(
            "domainname",
            "setting a domainname needs a uts namespace (new or joined)",
        ));
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty())
        && !new(LinuxNamespaceType::Time)
    {
        return Err(field("linux.timeOffsets", "needs a new time namespace"));
    }
    // A namespace is the container's own when it is new, or joined by a path that is not the
    // runtime's (podman hands over a network namespace it made, by path).
    let own = |k: LinuxNamespaceType| {
        namespaces.iter().any(|n: &Ns| {
            n.kind == k
                && match &n.path {
                    None => true,
                    Some(p) => {
                        let kind = match k {
                            LinuxNamespaceType::Network => "net",
                            LinuxNamespaceType::Ipc => "ipc",
                            LinuxNamespaceType::Uts => "uts",
                            _ => return false,
                        };
                        std::fs::read_link(p).ok()
                            != std::fs::read_link(format!("/proc/self/ns/{kind}")).ok()
                    }
                }
        })
    };
    for (k, _) in linux.sysctl().iter().flatten() {
        check_sysctl(k, &own)?;
    }
    if let Some(p) = linux.rootfs_propagation() {
        if ![
            "",
            "private",
            "rprivate",
            "slave",
            "rslave",
            "shared",
            "rshared",
            "unbindable",
            "runbindable",
        ]
        .contains(&p.as_str())
        {
            return Err(field(
                "linux.rootfsPropagation",
                format!("unknown value {p:?}"),
            ));
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(field(
                &format!("mounts[{i}].destination"),
                format!("{:?} must be an absolute path", m.destination()),
            ));
        }
        let bind = crate::rootfs::MountOpts::parse(m.options().as_deref().unwrap_or(&[])).bind;
        if bind && m.source().is_none() {
            return Err(field(
                &format!("mounts[{i}].source"),
                "a bind mount needs a source",
            ));
        }
    }
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        if !d.path().is_absolute() || !d.path().starts_with("/dev") {
            return Err(field(
                &format!("linux.devices[{i}].path"),
                format!("{:?} must be an absolute path under /dev", d.path()),
            ));
        }
    }
    let seccomp = crate::seccomp::compile(linux.seccomp().as_ref())?;
    // The lifecycle hook annotations are part of the contract: checked now, at create.
    crate::hooks::lifecycle::from_annotations(&spec.annotations().clone().unwrap_or_default())?;
    Ok(Plan {
        spec,
        bundle,
        rootfs,
        namespaces,
        seccomp,
    })
}

/// A sysctl is allowed only where it is namespaced and the container has its own such namespace.
fn check_sysctl(k: &str, new: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<()> {
    let f = || format!("linux.sysctl.{k}");
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if ipc.contains(&k) || k.starts_with("fs.mqueue.") {
        if !new(LinuxNamespaceType::Ipc) {
            return Err(field(&f(), "needs an ipc namespace of the container's own"));
        }
    } else if k.starts_with("net.") {
        if !new(LinuxNamespaceType::Network) {
            return Err(field(
                &f(),
                "needs a network namespace of the container's own",
            ));
        }
    } else if k == "kernel.hostname" || k == "kernel.domainname" {
        if !new(LinuxNamespaceType::Uts) {
            return Err(field(&f(), "needs a uts namespace of the container's own"));
        }
    } else {
        return Err(field(
            &f(),
            "not a namespaced sysctl: it would change the host",
        ));
    }
    if k.contains("..") || k.contains('/') {
        return Err(field(&f(), "invalid name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "/"},
            "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}, {"type": "uts"}]}
        })
    }

    fn check(v: serde_json::Value) -> Result<Plan> {
        let spec = parse(&serde_json::to_vec(&v).unwrap())?;
        validate(spec, PathBuf::from("/"))
    }

    fn err(v: serde_json::Value) -> String {
        check(v).unwrap_err().to_string()
    }

    #[test]
    fn good_config_validates() {
        let p = check(base()).unwrap();
        assert!(p.new_ns(LinuxNamespaceType::Pid));
        assert!(!p.new_ns(LinuxNamespaceType::Network));
        assert_eq!(p.args(), ["/bin/true"]);
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = base();
        v["linux"]["namespaces"][2]["type"] = "nett".into();
        let e = err(v);
        assert!(
            e.starts_with("config.json: linux.namespaces[2].type: unknown variant `nett`"),
            "{e}"
        );

        let mut v = base();
        v["process"]["cwd"] = "rel".into();
        assert_eq!(err(v), "config.json: process.cwd: must be an absolute path");

        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        assert_eq!(err(v), "config.json: process.args: must not be empty");

        let mut v = base();
        v["hostname"] = "h".into();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}]);
        assert!(err(v).starts_with("config.json: hostname:"));

        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"});
        assert!(err(v).contains("linux.sysctl.vm.swappiness: not a namespaced sysctl"));

        let mut v = base();
        v["process"]["rlimits"] =
            serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]);
        assert!(err(v).contains("process.rlimits[0]: soft limit 10 exceeds hard limit 5"));

        let mut v = base();
        v["root"]["path"] = "/does/not/exist".into();
        assert!(err(v).starts_with("config.json: root.path: open /does/not/exist: no such file"));

        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "user"}]);
        assert!(err(v).contains("needs both uidMappings and gidMappings"));

        let mut v = base();
        v["mounts"] = serde_json::json!([{"destination": "/x", "options": ["rbind"]}]);
        assert_eq!(
            err(v),
            "config.json: mounts[0].source: a bind mount needs a source"
        );
    }

    #[test]
    fn ipc_and_net_sysctls_need_their_namespace() {
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        assert!(err(v).contains("needs a network namespace of the container's own"));
        let mut v = base();
        v["linux"]["namespaces"] =
            serde_json::json!([{"type": "mount"}, {"type": "network"}, {"type": "ipc"}]);
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "12"});
        assert!(check(v).is_ok());
    }
}
