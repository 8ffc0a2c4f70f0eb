//! `mounts[].options` split into what mount(2) takes (flags, fs data), what mount_setattr(2)
//! takes (per-mount attributes, recursive ones), propagation changes and the bind choice.
//! runs in: the runtime (validation, `features`) and the container init (mounting).

use nix::mount::MsFlags;

/// mount_setattr(2) attributes to set and to clear.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attr {
    pub set: u64,
    pub clr: u64,
}

/// The access-time attributes are one choice, not bits: setting one clears the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atime {
    Relatime,
    Noatime,
    Strictatime,
}

impl Attr {
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clr == 0
    }

    fn flag(&mut self, on: bool, bit: u64) {
        if on {
            self.set |= bit;
            self.clr &= !bit;
        } else {
            self.clr |= bit;
            self.set &= !bit;
        }
    }

    /// The kernel wants the whole MOUNT_ATTR__ATIME mask cleared to change the choice.
    fn atime(&mut self, a: Atime) {
        self.set &= !libc::MOUNT_ATTR__ATIME;
        self.clr |= libc::MOUNT_ATTR__ATIME;
        self.set |= match a {
            Atime::Relatime => libc::MOUNT_ATTR_RELATIME,
            Atime::Noatime => libc::MOUNT_ATTR_NOATIME,
            Atime::Strictatime => libc::MOUNT_ATTR_STRICTATIME,
        };
    }

    /// `ro`/`rro` and the like, without the `r` prefix; false for what is not such an option.
    fn apply(&mut self, opt: &str) -> bool {
        let (on, bit) = match opt {
            "ro" => (true, libc::MOUNT_ATTR_RDONLY),
            "rw" => (false, libc::MOUNT_ATTR_RDONLY),
            "nosuid" => (true, libc::MOUNT_ATTR_NOSUID),
            "suid" => (false, libc::MOUNT_ATTR_NOSUID),
            "nodev" => (true, libc::MOUNT_ATTR_NODEV),
            "dev" => (false, libc::MOUNT_ATTR_NODEV),
            "noexec" => (true, libc::MOUNT_ATTR_NOEXEC),
            "exec" => (false, libc::MOUNT_ATTR_NOEXEC),
            "nodiratime" => (true, libc::MOUNT_ATTR_NODIRATIME),
            "diratime" => (false, libc::MOUNT_ATTR_NODIRATIME),
            "nosymfollow" => (true, libc::MOUNT_ATTR_NOSYMFOLLOW),
            "symfollow" => (false, libc::MOUNT_ATTR_NOSYMFOLLOW),
            // Not noatime, not strict: the kernel's default, relatime.
            "atime" | "relatime" | "nostrictatime" => {
                self.atime(Atime::Relatime);
                return true;
            }
            "noatime" => {
                self.atime(Atime::Noatime);
                return true;
            }
            "strictatime" | "norelatime" => {
                self.atime(Atime::Strictatime);
                return true;
            }
            _ => return false,
        };
        self.flag(on, bit);
        true
    }

    /// The per-mount part of mount(2) flags (what a bind remount could change).
    pub fn from_flags(set: MsFlags, clear: MsFlags) -> Attr {
        let mut a = Attr::default();
        for (ms, opt_on, opt_off) in [
            (MsFlags::MS_RDONLY, "ro", "rw"),
            (MsFlags::MS_NOSUID, "nosuid", "suid"),
            (MsFlags::MS_NODEV, "nodev", "dev"),
            (MsFlags::MS_NOEXEC, "noexec", "exec"),
            (MsFlags::MS_NODIRATIME, "nodiratime", "diratime"),
            (MsFlags::MS_NOATIME, "noatime", "atime"),
            (MsFlags::MS_STRICTATIME, "strictatime", "nostrictatime"),
            (MsFlags::MS_RELATIME, "relatime", "norelatime"),
        ] {
            if set.contains(ms) {
                a.apply(opt_on);
            } else if clear.contains(ms) {
                a.apply(opt_off);
            }
        }
        a
    }
}

/// Mount options split into flags to set, flags to clear, attributes, propagation and fs data.
#[derive(Debug, Clone, PartialEq)]
pub struct MountOpts {
    /// mount(2) flags for a new mount (`ro`, `nosuid`, … and `bind`/`rbind`).
    pub flags: MsFlags,
    /// Flags the options turn off (`rw`, `suid`, …).
    pub clear: MsFlags,
    /// The per-mount attributes the plain options ask for (applied to a bind's new mount).
    pub attr: Attr,
    /// `rro`, `rnosuid`, …: applied with AT_RECURSIVE to the mount and every mount below it.
    pub rattr: Attr,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    pub bind: bool,
}

/// Options that are flags of mount(2).
const FLAG_OPTS: &[(&str, MsFlags, bool)] = &[
    ("ro", MsFlags::MS_RDONLY, true),
    ("rw", MsFlags::MS_RDONLY, false),
    ("suid", MsFlags::MS_NOSUID, false),
    ("nosuid", MsFlags::MS_NOSUID, true),
    ("dev", MsFlags::MS_NODEV, false),
    ("nodev", MsFlags::MS_NODEV, true),
    ("exec", MsFlags::MS_NOEXEC, false),
    ("noexec", MsFlags::MS_NOEXEC, true),
    ("sync", MsFlags::MS_SYNCHRONOUS, true),
    ("async", MsFlags::MS_SYNCHRONOUS, false),
    ("dirsync", MsFlags::MS_DIRSYNC, true),
    ("remount", MsFlags::MS_REMOUNT, true),
    ("mand", MsFlags::MS_MANDLOCK, true),
    ("nomand", MsFlags::MS_MANDLOCK, false),
    ("atime", MsFlags::MS_NOATIME, false),
    ("noatime", MsFlags::MS_NOATIME, true),
    ("diratime", MsFlags::MS_NODIRATIME, false),
    ("nodiratime", MsFlags::MS_NODIRATIME, true),
    ("relatime", MsFlags::MS_RELATIME, true),
    ("norelatime", MsFlags::MS_RELATIME, false),
    ("strictatime", MsFlags::MS_STRICTATIME, true),
    ("nostrictatime", MsFlags::MS_STRICTATIME, false),
    ("silent", MsFlags::MS_SILENT, true),
    ("loud", MsFlags::MS_SILENT, false),
];

const PROPAGATION: &[&str] = &[
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

/// Options taken by mount_setattr(2) only (no mount(2) flag says them).
const ATTR_ONLY: &[&str] = &["nosymfollow", "symfollow"];

/// The recursive attributes: `r` + a per-mount attribute option.
const RECURSIVE: &[&str] = &[
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "ratime",
    "rnoatime",
    "rrelatime",
    "rnorelatime",
    "rstrictatime",
    "rnostrictatime",
    "rnodiratime",
    "rdiratime",
    "rnosymfollow",
    "rsymfollow",
];

/// Accepted and dropped: hookrun does not copy a tmpfs's lower contents up, nor idmap.
const DROPPED: &[&str] = &["tmpcopyup", "idmap", "ridmap"];

/// Every option hookrun acts on, for `features` (its `mountOptions`).
pub fn known() -> Vec<&'static str> {
    let mut v: Vec<&str> = FLAG_OPTS.iter().map(|(o, _, _)| *o).collect();
    v.extend(["defaults", "bind", "rbind"]);
    v.extend(PROPAGATION);
    v.extend(ATTR_ONLY);
    v.extend(RECURSIVE);
    v.sort_unstable();
    v
}

impl Default for MountOpts {
    fn default() -> Self {
        MountOpts {
            flags: MsFlags::empty(),
            clear: MsFlags::empty(),
            attr: Attr::default(),
            rattr: Attr::default(),
            propagation: Vec::new(),
            data: Vec::new(),
            bind: false,
        }
    }
}

impl MountOpts {
    pub fn parse(opts: &[String]) -> MountOpts {
        let mut m = MountOpts::default();
        for o in opts {
            let o = o.as_str();
            if let Some((_, f, on)) = FLAG_OPTS.iter().find(|(n, _, _)| *n == o) {
                if *on {
                    m.flags.insert(*f);
                    m.clear.remove(*f);
                } else {
                    m.flags.remove(*f);
                    m.clear.insert(*f);
                }
                m.attr.apply(o);
            } else if ATTR_ONLY.contains(&o) {
                m.attr.apply(o);
            } else if RECURSIVE.contains(&o) {
                m.rattr.apply(&o[1..]);
            } else if let Some(f) = propagation_flag(o) {
                m.propagation.push(f);
            } else if o == "bind" || o == "rbind" {
                m.bind = true;
                m.flags.insert(MsFlags::MS_BIND);
                if o == "rbind" {
                    m.flags.insert(MsFlags::MS_REC);
                }
            } else if o != "defaults" && !DROPPED.contains(&o) {
                m.data.push(o.to_string());
            }
        }
        m
    }

    pub fn recursive(&self) -> bool {
        self.flags.contains(MsFlags::MS_REC)
    }
}

/// `private`, `rslave`, … as mount(2) flags.
pub fn propagation_flag(p: &str) -> Option<MsFlags> {
    Some(match p {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use libc::{
        MOUNT_ATTR_NOATIME as NOATIME, MOUNT_ATTR_NODEV as NODEV, MOUNT_ATTR_NOEXEC as NOEXEC,
        MOUNT_ATTR_NOSUID as NOSUID, MOUNT_ATTR_NOSYMFOLLOW as NOSYMFOLLOW,
        MOUNT_ATTR_RDONLY as RDONLY, MOUNT_ATTR_STRICTATIME as STRICT, MOUNT_ATTR__ATIME as ATIME,
    };

    fn opts(v: &[&str]) -> MountOpts {
        MountOpts::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, ["mode=755", "size=65536k"]);
        assert!(!o.bind);
        let o = opts(&["rbind", "ro", "rprivate"]);
        assert!(o.bind && o.recursive());
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.propagation, [MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        let o = opts(&["ro", "rw", "exec"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.clear.contains(MsFlags::MS_NOEXEC));
        assert!(opts(&["tmpcopyup", "defaults"]).data.is_empty());
    }

    #[test]
    fn plain_options_give_per_mount_attributes() {
        let o = opts(&["bind", "ro", "nosuid", "nodev", "noexec", "nosymfollow"]);
        assert_eq!(o.attr.set, RDONLY | NOSUID | NODEV | NOEXEC | NOSYMFOLLOW);
        assert_eq!(o.attr.clr, 0);
        assert!(o.rattr.is_empty());
        let o = opts(&["bind", "ro", "rw", "suid", "symfollow"]);
        assert_eq!(o.attr.set, 0);
        assert_eq!(o.attr.clr, RDONLY | NOSUID | NOSYMFOLLOW);
        assert!(opts(&["bind", "rprivate", "mode=1"]).attr.is_empty());
    }

    #[test]
    fn recursive_options_are_kept_apart() {
        let o = opts(&["rbind", "ro", "rro", "rnosuid", "rexec"]);
        assert_eq!(o.attr.set, RDONLY);
        assert_eq!(o.rattr.set, RDONLY | NOSUID);
        assert_eq!(o.rattr.clr, NOEXEC);
        assert!(o.data.is_empty());
        // the flags of mount(2) do not see them
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
    }

    #[test]
    fn access_time_is_one_choice_with_the_whole_mask_cleared() {
        let o = opts(&["rnoatime"]);
        assert_eq!((o.rattr.set, o.rattr.clr), (NOATIME, ATIME));
        let o = opts(&["rnoatime", "rstrictatime"]);
        assert_eq!((o.rattr.set, o.rattr.clr), (STRICT, ATIME));
        let o = opts(&["ratime"]);
        assert_eq!((o.rattr.set, o.rattr.clr), (0, ATIME));
        let o = opts(&["rnorelatime"]);
        assert_eq!((o.rattr.set, o.rattr.clr), (STRICT, ATIME));
        let o = opts(&["bind", "noatime", "nodiratime"]);
        assert_eq!(o.attr.set, NOATIME | libc::MOUNT_ATTR_NODIRATIME);
        assert_eq!(o.attr.clr, ATIME);
    }

    #[test]
    fn flags_convert_to_attributes() {
        let a = Attr::from_flags(
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_BIND,
            MsFlags::MS_NOEXEC,
        );
        assert_eq!((a.set, a.clr), (RDONLY | NOSUID, NOEXEC));
    }

    #[test]
    fn known_lists_every_option_once() {
        let k = known();
        for o in [
            "rro",
            "rnosymfollow",
            "nosymfollow",
            "symfollow",
            "rbind",
            "ro",
        ] {
            assert!(k.contains(&o), "{o}");
        }
        let mut d = k.clone();
        d.dedup();
        assert_eq!(d, k);
        assert!(!k.contains(&"tmpcopyup"));
    }
}
