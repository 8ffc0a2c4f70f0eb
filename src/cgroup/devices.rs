//! The v1 device cgroup. A container's rules are its `linux.resources.devices` in order, then the
//! devices every container may use (runc's list); `linux.devices` entries make nodes and grant
//! nothing here, as in runc. The rules are played through a model of what the kernel keeps (a
//! default, allow or deny, and a list of exceptions to it), and the cgroup is moved from what its
//! devices.list shows to that model with the fewest writes, grants before revocations: an
//! `update` never passes through a moment where a device allowed before and after is denied.
//! runs in: the runtime (`create`, `update`).

use std::fs;
use std::path::Path;

use cgroups_rs::fs::devices::{DevicePermissions, DeviceType, DevicesController};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::limits::Writer;
use super::{failed, Hier};
use crate::error::{Error, Result};

/// Character or block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Char,
    Block,
}

/// The devices one exception matches (`None`: any major, any minor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Node {
    kind: Kind,
    major: Option<i64>,
    minor: Option<i64>,
}

impl Node {
    /// The other exceptions that also match every device this one does.
    fn wider(&self) -> impl Iterator<Item = Node> + '_ {
        let k = self.kind;
        [(None, self.minor), (self.major, None), (None, None)]
            .into_iter()
            .map(move |(major, minor)| Node {
                kind: k,
                major,
                minor,
            })
            .filter(move |n| n != self)
    }
}

/// Read, write, mknod: a bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Access(u8);

impl Access {
    const ALL: Access = Access(7);

    /// `rwm` letters; any other letter is left out (runc's own tests pass `rwa`, which the
    /// kernel would refuse if it were ever written).
    fn parse(s: &str) -> Access {
        Access(s.chars().fold(0, |a, c| match c {
            'r' => a | 1,
            'w' => a | 2,
            'm' => a | 4,
            _ => a,
        }))
    }

    fn minus(self, o: Access) -> Access {
        Access(self.0 & !o.0)
    }

    fn union(self, o: Access) -> Access {
        Access(self.0 | o.0)
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn overlaps(self, o: Access) -> bool {
        self.0 & o.0 != 0
    }

    fn perms(self) -> Vec<DevicePermissions> {
        [
            (1, DevicePermissions::Read),
            (2, DevicePermissions::Write),
            (4, DevicePermissions::MkNod),
        ]
        .into_iter()
        .filter(|(b, _)| self.0 & b != 0)
        .map(|(_, p)| p)
        .collect()
    }
}

/// One write to devices.allow or devices.deny; `node: None` is `a`, every device (it resets the
/// default and drops every exception).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    allow: bool,
    node: Option<Node>,
    access: Access,
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        let acc: String = self.access.perms().iter().map(|p| p.to_char()).collect();
        let verb = if self.allow { "allow" } else { "deny" };
        match self.node {
            None => write!(f, "{verb} a *:* {acc}"),
            Some(d) => {
                let k = if d.kind == Kind::Char { 'c' } else { 'b' };
                write!(f, "{verb} {k} {}:{} {acc}", n(d.major), n(d.minor))
            }
        }
    }
}

fn rule(allow: bool, kind: Kind, major: i64, minor: i64, access: &str) -> Rule {
    let n = |v: i64| (v >= 0).then_some(v);
    Rule {
        allow,
        node: Some(Node {
            kind,
            major: n(major),
            minor: n(minor),
        }),
        access: Access::parse(access),
    }
}

/// What the kernel keeps for one cgroup: the default and its exceptions, in the order they were
/// added (devices.list shows them so; merging into an existing one keeps its place).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    allow_rest: bool,
    except: Vec<(Node, Access)>,
}

impl Table {
    fn deny_all() -> Table {
        Table {
            allow_rest: false,
            except: vec![],
        }
    }

    fn get(&self, n: &Node) -> Access {
        self.except
            .iter()
            .find(|(m, _)| m == n)
            .map_or(Access::default(), |(_, a)| *a)
    }

    /// Play one rule as the kernel would; `Err` where the kernel would silently keep access the
    /// rule means to take away.
    fn apply(&mut self, r: &Rule) -> std::result::Result<(), String> {
        let Some(node) = r.node else {
            *self = Table {
                allow_rest: r.allow,
                except: vec![],
            };
            return Ok(());
        };
        if r.allow != self.allow_rest {
            match self.except.iter_mut().find(|(m, _)| *m == node) {
                Some((_, a)) => *a = a.union(r.access),
                None => self.except.push((node, r.access)),
            }
            return Ok(());
        }
        // Back towards the default: the kernel shrinks only an exception for exactly this node;
        // one with a wildcard that covers it stays as it is.
        for w in node.wider() {
            let a = self.get(&w);
            if a.overlaps(r.access) {
                let held = Rule {
                    allow: !r.allow,
                    node: Some(w),
                    access: a,
                };
                return Err(format!(
                    "{r} cannot be applied after {held}: the v1 device cgroup cannot take one \
                     device out of a wildcard rule"
                ));
            }
        }
        if let Some(i) = self.except.iter().position(|(m, _)| *m == node) {
            let left = self.except[i].1.minus(r.access);
            if left.is_empty() {
                self.except.remove(i);
            } else {
                self.except[i].1 = left;
            }
        }
        Ok(())
    }

    /// The table devices.list shows. A cgroup that allows by default lists only `a *:* rwm`
    /// (the kernel does not show its deny exceptions), so its exceptions are unknown here.
    fn from_list(text: &str) -> Table {
        let mut t = Table::deny_all();
        for l in text.lines() {
            let f: Vec<&str> = l.split([' ', ':']).collect();
            let [typ, major, minor, acc] = f[..] else {
                continue;
            };
            let kind = match typ {
                "a" => {
                    return Table {
                        allow_rest: true,
                        except: vec![],
                    }
                }
                "c" => Kind::Char,
                "b" => Kind::Block,
                _ => continue,
            };
            let num = |s: &str| s.parse::<i64>().unwrap_or(-1);
            let _ = t.apply(&rule(true, kind, num(major), num(minor), acc));
        }
        t
    }

    fn sorted(&self) -> Vec<(Node, Access)> {
        let mut v = self.except.clone();
        v.sort_by_key(|(n, _)| *n);
        v
    }
}

/// The writes that take a cgroup from `cur` to `target`. A default that changes, or one that
/// allows (whose deny exceptions devices.list hides), needs the `a` reset first. Then every
/// write that grants, then every write that revokes: in between the cgroup allows the union of
/// before and after, never less than both.
fn transition(cur: &Table, target: &Table) -> Vec<Rule> {
    let mut out = vec![];
    let base = if cur.allow_rest || cur.allow_rest != target.allow_rest {
        out.push(Rule {
            allow: target.allow_rest,
            node: None,
            access: Access::ALL,
        });
        Table::deny_all()
    } else {
        cur.clone()
    };
    // Exceptions to a deny default are allow writes, to an allow default deny writes.
    let gained = target.except.iter().map(|(n, a)| (n, a.minus(base.get(n))));
    let gained = gained.map(|(n, a)| (n, a, !target.allow_rest));
    let dropped = base.except.iter().map(|(n, a)| (n, a.minus(target.get(n))));
    let dropped = dropped.map(|(n, a)| (n, a, target.allow_rest));
    let mut writes: Vec<Rule> = gained
        .chain(dropped)
        .filter(|(_, a, _)| !a.is_empty())
        .map(|(n, access, allow)| Rule {
            allow,
            node: Some(*n),
            access,
        })
        .collect();
    writes.sort_by_key(|r| !r.allow); // stable: grants first, each group in its order
    out.extend(writes);
    out
}

/// Devices every container may use whatever its rules say (runc's list, in its order).
fn default_allowed() -> Vec<Rule> {
    use Kind::{Block, Char};
    vec![
        rule(true, Char, -1, -1, "m"),
        rule(true, Block, -1, -1, "m"),
        rule(true, Char, 1, 3, "rwm"),    // null
        rule(true, Char, 1, 8, "rwm"),    // random
        rule(true, Char, 1, 7, "rwm"),    // full
        rule(true, Char, 5, 0, "rwm"),    // tty
        rule(true, Char, 1, 5, "rwm"),    // zero
        rule(true, Char, 1, 9, "rwm"),    // urandom
        rule(true, Char, 136, -1, "rwm"), // pts/*
        rule(true, Char, 5, 2, "rwm"),    // ptmx
        rule(true, Char, 10, 200, "rwm"), // net/tun
    ]
}

/// `linux.resources.devices[i]` as a rule; a fifo (`p`) is no device to the cgroup.
fn from_spec(d: &LinuxDeviceCgroup) -> Option<Rule> {
    let kind = match d.typ().unwrap_or_default() {
        LinuxDeviceType::A => None,
        LinuxDeviceType::B => Some(Kind::Block),
        LinuxDeviceType::C | LinuxDeviceType::U => Some(Kind::Char),
        LinuxDeviceType::P => return None,
    };
    let access = d.access().clone().unwrap_or_else(|| "rwm".into());
    Some(match kind {
        None => Rule {
            allow: d.allow(),
            node: None,
            access: Access::parse(&access),
        },
        Some(k) => rule(
            d.allow(),
            k,
            d.major().unwrap_or(-1),
            d.minor().unwrap_or(-1),
            &access,
        ),
    })
}

/// The table a container's rules make: deny by default, its rules in order, runc's defaults.
fn target(spec: &[LinuxDeviceCgroup], origin: &str) -> Result<Table> {
    let mut t = Table::deny_all();
    for (i, d) in spec.iter().enumerate() {
        if let Some(r) = from_spec(d) {
            t.apply(&r)
                .map_err(|e| Error::invalid(format!("{origin}.devices[{i}]: {e}")))?;
        }
    }
    for r in default_allowed() {
        t.apply(&r).map_err(|e| {
            Error::invalid(format!("{origin}.devices: the default device rule ({e})"))
        })?;
    }
    Ok(t)
}

/// Is this process in the initial user namespace? Outside it the kernel refuses device cgroup
/// writes to everyone (they need CAP_SYS_ADMIN over the host).
fn initial_user_ns() -> bool {
    fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

/// Move the container's v1 device cgroup to the rules `spec` makes.
pub(super) fn apply(w: &Writer, spec: &[LinuxDeviceCgroup]) -> Result<()> {
    let (h, d) = match w.cg.dir_of("devices") {
        Some((h, d)) if !h.v2 => (h, d),
        _ => {
            if !spec.is_empty() {
                crate::log::debug(
                    "linux.resources.devices: no v1 devices hierarchy (cgroup v2 needs an eBPF \
                     program hookrun does not load yet); device rules not applied",
                );
            }
            return Ok(());
        }
    };
    if !initial_user_ns() {
        crate::log::debug(
            "linux.resources.devices: not applied: hookrun runs in a user namespace, where the \
             kernel takes no device cgroup writes (as runc)",
        );
        return Ok(());
    }
    let target = target(spec, w.origin)?;
    write_transition(h, d, &target)
}

fn write_transition(h: &Hier, d: &Path, target: &Table) -> Result<()> {
    let list = || {
        fs::read_to_string(d.join("devices.list"))
            .map_err(|e| Error::io("read", d.join("devices.list"), e))
    };
    let dc = DevicesController::new(d.to_path_buf(), h.mount.clone());
    for r in transition(&Table::from_list(&list()?), target) {
        let (t, ma, mi) = match r.node {
            None => (DeviceType::All, -1, -1),
            Some(n) => (
                if n.kind == Kind::Char {
                    DeviceType::Char
                } else {
                    DeviceType::Block
                },
                n.major.unwrap_or(-1),
                n.minor.unwrap_or(-1),
            ),
        };
        let perms = r.access.perms();
        let (file, res) = if r.allow {
            ("devices.allow", dc.allow_device(t, ma, mi, &perms))
        } else {
            ("devices.deny", dc.deny_device(t, ma, mi, &perms))
        };
        let text = r.to_string();
        let text = text.split_once(' ').map_or("", |x| x.1);
        res.map_err(|e| failed(d, file, text, e))?;
    }
    // What the kernel keeps must be what was meant: a rule lost here would be access granted.
    let now = Table::from_list(&list()?);
    let same = if target.allow_rest {
        now.allow_rest
    } else {
        !now.allow_rest && now.sorted() == target.sorted()
    };
    if !same {
        return Err(Error::Child(format!(
            "cgroup {}: devices.list does not show the rules written",
            d.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Kind::{Block, Char};

    fn table(rules: &[Rule]) -> Table {
        let mut t = Table::deny_all();
        for r in rules {
            t.apply(r).unwrap();
        }
        t
    }

    fn texts(rs: &[Rule]) -> Vec<String> {
        rs.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn rules_read_and_print_as_the_kernel_does() {
        assert_eq!(
            rule(true, Char, 136, -1, "rw").to_string(),
            "allow c 136:* rw"
        );
        assert_eq!(rule(false, Block, 8, 0, "mr").to_string(), "deny b 8:0 rm");
        assert_eq!(Access::parse("rwa"), Access::parse("rw"));
        let t = Table::from_list("c 1:3 rwm\nc *:* m\nc 1:3 r\nb 8:0 r\n");
        assert!(!t.allow_rest);
        assert_eq!(t.except.len(), 3);
        assert_eq!(
            t.get(&rule(true, Char, 1, 3, "").node.unwrap()),
            Access::ALL
        );
        assert!(Table::from_list("a *:* rwm\n").allow_rest);
        assert_eq!(Table::from_list(""), Table::deny_all());
    }

    #[test]
    fn runcs_default_bundle_and_a_deny_after_it() {
        // `hookrun spec`: deny everything; then a deny of one device is a no-op.
        let spec: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwa"}]"#,
        )
        .unwrap();
        let t = target(&spec, "x").unwrap();
        assert!(!t.allow_rest);
        assert_eq!(t.get(&rule(true, Char, 1, 11, "").node.unwrap()), Access(0));
        assert_eq!(
            t.get(&rule(true, Char, 1, 3, "").node.unwrap()),
            Access::ALL
        );
        // A fresh cgroup allows everything: reset first, then the allows in order.
        let w = transition(&Table::from_list("a *:* rwm\n"), &t);
        assert_eq!(w[0].to_string(), "deny a *:* rwm");
        assert_eq!(w[1].to_string(), "allow c *:* m");
        assert_eq!(w.len(), 1 + default_allowed().len());
        // Applied again, nothing is written.
        let shown: String = t
            .except
            .iter()
            .map(|(n, a)| {
                let r = Rule {
                    allow: true,
                    node: Some(*n),
                    access: *a,
                }
                .to_string();
                format!("{}\n", r.trim_start_matches("allow "))
            })
            .collect();
        assert_eq!(transition(&Table::from_list(&shown), &t), vec![]);
    }

    #[test]
    fn transitions_grant_before_they_revoke() {
        let cur = table(&[rule(true, Char, 1, 3, "rwm"), rule(true, Char, 1, 11, "rw")]);
        let new = table(&[rule(true, Char, 1, 3, "rwm"), rule(true, Char, 1, 12, "r")]);
        assert_eq!(
            texts(&transition(&cur, &new)),
            ["allow c 1:12 r", "deny c 1:11 rw"]
        );
        // Partial changes of one device: only the bits that differ.
        let new = table(&[rule(true, Char, 1, 3, "rw"), rule(true, Char, 1, 11, "rwm")]);
        assert_eq!(
            texts(&transition(&cur, &new)),
            ["allow c 1:11 m", "deny c 1:3 m"]
        );
        // Moving to an allow default must reset; so must starting from one.
        let open = table(&[Rule {
            allow: true,
            node: None,
            access: Access::ALL,
        }]);
        assert_eq!(texts(&transition(&cur, &open)), ["allow a *:* rwm"]);
        assert_eq!(
            texts(&transition(&open, &cur)),
            ["deny a *:* rwm", "allow c 1:3 rwm", "allow c 1:11 rw"]
        );
        // Allow default, deny exceptions: the grants are allow writes, still first.
        let mut a = open.clone();
        a.apply(&rule(false, Block, 8, 0, "rw")).unwrap();
        a.apply(&rule(true, Block, 8, 0, "w")).unwrap();
        assert_eq!(
            a.except,
            [(rule(true, Block, 8, 0, "").node.unwrap(), Access(1))]
        );
    }

    #[test]
    fn a_hole_in_a_wildcard_is_refused() {
        let mut t = table(&[rule(true, Char, -1, -1, "rwm")]);
        let e = t.apply(&rule(false, Char, 1, 11, "rw")).unwrap_err();
        assert!(
            e.contains("cannot take one device out of a wildcard rule"),
            "{e}"
        );
        assert!(
            e.contains("deny c 1:11 rw") && e.contains("allow c *:* rwm"),
            "{e}"
        );
        // No overlap in access: nothing to take away from the wildcard.
        let mut t = table(&[rule(true, Char, -1, -1, "m")]);
        t.apply(&rule(false, Char, 1, 11, "rw")).unwrap();
        let spec: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow": true, "type": "c", "access": "rwm"},
                {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "r"}]"#,
        )
        .unwrap();
        let e = target(&spec, "update: resources").unwrap_err().to_string();
        assert!(
            e.starts_with("update: resources.devices[1]: deny c 1:11 r"),
            "{e}"
        );
    }
}
