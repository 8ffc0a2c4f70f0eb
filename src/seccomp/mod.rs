//! Seccomp: compile the OCI `linux.seccomp` profile into a BPF program with libseccomp (with
//! runc's -ENOSYS stub in front, see enosys.rs), and load it. runs in: the runtime (compile,
//! while validating config.json, so a bad profile fails `create` before any process exists)
//! and the process that loads it: the container init, as the last step before execve so the
//! profile binds the entrypoint and none of hookrun's own setup, or, for a profile with an
//! SCMP_ACT_NOTIFY listener, before the credentials change (see notify.rs and security.rs).
//!
//! The program is kept as plain BPF instructions, not as a libseccomp context: the init inherits
//! it through clone3 and loads it with one seccomp(2) call, no library state involved.

mod enosys;
mod features;
mod notify;

pub use features::features;
pub use notify::{announce, Agent, Listener};

use std::io::{Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};

use libseccomp::ScmpSyscall;
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use nix::errno::Errno;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op,
};

use crate::error::{Error, Result};

/// seccomp(2) flags (linux/seccomp.h).
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
const FLAG_NEW_LISTENER: u32 = 8;
const FLAG_TSYNC_ESRCH: u32 = 16;
const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// A compiled profile: the BPF program and the flags for seccomp(SECCOMP_SET_MODE_FILTER).
#[derive(Clone)]
pub struct Filter {
    prog: Vec<libc::sock_filter>,
    flags: u32,
    /// Set when a rule uses SCMP_ACT_NOTIFY: loading then yields a listener fd for the agent.
    pub listener: Option<Listener>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Filter({} instructions, flags {:#x}, listener {:?})",
            self.prog.len(),
            self.flags,
            self.listener
        )
    }
}

fn field(f: &str, msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!("config.json: linux.seccomp.{f}: {msg}"))
}

/// The libseccomp action for an OCI action (its errno in field `fe`); the errno defaults to
/// EPERM as in runc.
fn action(a: Act, errno_ret: Option<u32>, fe: &str) -> Result<ScmpAction> {
    let errno = || -> Result<u16> {
        match errno_ret {
            None => Ok(libc::EPERM as u16),
            Some(e) => {
                u16::try_from(e).map_err(|_| field(fe, format!("{e} is out of range (0 to 65535)")))
            }
        }
    };
    Ok(match a {
        Act::ScmpActKill | Act::ScmpActKillThread => ScmpAction::KillThread,
        Act::ScmpActKillProcess => ScmpAction::KillProcess,
        Act::ScmpActTrap => ScmpAction::Trap,
        Act::ScmpActErrno => ScmpAction::Errno(errno()?.into()),
        Act::ScmpActTrace => ScmpAction::Trace(errno()?),
        Act::ScmpActLog => ScmpAction::Log,
        Act::ScmpActAllow => ScmpAction::Allow,
        // Where it is allowed (not the default action, a listenerPath set) is compile's to check.
        Act::ScmpActNotify => ScmpAction::Notify,
    })
}

fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// An argument condition. For SCMP_CMP_MASKED_EQ, `value` is the mask and `valueTwo` the value
/// the masked argument must equal (as runc and libseccomp read it).
fn condition(index: usize, op: Op, value: u64, value_two: u64, f: &str) -> Result<ScmpArgCompare> {
    if index >= 6 {
        return Err(field(
            &format!("{f}.index"),
            format!("{index} is not a syscall argument (0 to 5)"),
        ));
    }
    let (op, datum) = match op {
        Op::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        Op::ScmpCmpLt => (ScmpCompareOp::Less, value),
        Op::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        Op::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        Op::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        Op::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        Op::ScmpCmpMaskedEq => (ScmpCompareOp::MaskedEqual(value), value_two),
    };
    Ok(ScmpArgCompare::new(index as u32, op, datum))
}

fn lib(what: impl std::fmt::Display, e: libseccomp::error::SeccompError) -> Error {
    Error::invalid(format!("{what}: libseccomp: {e}"))
}

/// Compile `linux.seccomp` (None when absent). Errors name the field. Syscall names the
/// running libseccomp does not know are skipped with a debug log, as runc does: a profile
/// written for a newer kernel still loads, and its calls above the highest one known here get
/// ENOSYS (enosys.rs) when the default action is not an allow.
pub fn compile(s: Option<&LinuxSeccomp>) -> Result<Option<Filter>> {
    let Some(s) = s else { return Ok(None) };
    if s.default_action() == Act::ScmpActNotify {
        return Err(field(
            "defaultAction",
            "SCMP_ACT_NOTIFY cannot be used as default action",
        ));
    }
    let default = action(s.default_action(), s.default_errno_ret(), "defaultErrnoRet")?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| lib("linux.seccomp", e))?;
    // libseccomp would set no_new_privs itself on load; that is process.noNewPrivileges' call.
    ctx.set_ctl_nnp(false)
        .map_err(|e| lib("linux.seccomp", e))?;
    // libseccomp's filter always covers the native architecture, and the listed ones.
    let mut archs = vec![ScmpArch::native()];
    for (i, a) in s.architectures().iter().flatten().enumerate() {
        ctx.add_arch(arch(*a)).map_err(|e| {
            field(
                &format!("architectures[{i}]"),
                format!("{a} is not supported here (libseccomp: {e})"),
            )
        })?;
        archs.push(match arch(*a) {
            ScmpArch::Native => ScmpArch::native(),
            other => other,
        });
    }
    let listener = listener(s)?;
    let mut names: Vec<&str> = Vec::new();
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        add_rule(&mut ctx, default, i, sc)?;
        names.extend(sc.names().iter().map(String::as_str));
    }
    let mut prog = export(&ctx).map_err(|e| Error::Child(format!("export seccomp filter: {e}")))?;
    let allows = matches!(
        default,
        ScmpAction::Allow | ScmpAction::Log | ScmpAction::Trace(_)
    );
    if !allows && default != ScmpAction::Errno(libc::ENOSYS) {
        let stub = enosys::stub(&archs, &names)
            .map_err(|e| Error::Child(format!("seccomp -ENOSYS stub: {e}")))?;
        prog.splice(0..0, stub);
    }
    Ok(Some(Filter {
        prog,
        flags: flags(s, listener.is_some()),
        listener,
    }))
}

/// The listener of a profile with SCMP_ACT_NOTIFY rules. As in runc, it needs a listenerPath,
/// and `write` may not be sent to the agent (notify.rs says why).
fn listener(s: &LinuxSeccomp) -> Result<Option<Listener>> {
    let mut first = None;
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        if sc.action() != Act::ScmpActNotify {
            continue;
        }
        if sc.names().iter().any(|n| n == "write") {
            return Err(field(
                &format!("syscalls[{i}]"),
                "SCMP_ACT_NOTIFY cannot be used for the write syscall (the listener is \
                 announced with it, before the agent has it)",
            ));
        }
        first.get_or_insert(i);
    }
    let Some(i) = first else { return Ok(None) };
    let path = s.listener_path().clone().unwrap_or_default();
    if path.as_os_str().is_empty() {
        return Err(field(
            "listenerPath",
            format!("must be set: syscalls[{i}] uses SCMP_ACT_NOTIFY"),
        ));
    }
    Ok(Some(Listener {
        path,
        metadata: s.listener_metadata().clone().unwrap_or_default(),
    }))
}

/// seccomp(2) flags of the profile; a listener adds NEW_LISTENER (and TSYNC_ESRCH with TSYNC,
/// which the kernel wants when both are asked for).
fn flags(s: &LinuxSeccomp, listener: bool) -> u32 {
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        match f {
            Flag::SeccompFilterFlagLog => flags |= FLAG_LOG,
            Flag::SeccompFilterFlagSpecAllow => flags |= FLAG_SPEC_ALLOW,
            Flag::SeccompFilterFlagTsync => flags |= FLAG_TSYNC,
            Flag::SeccompFilterFlagWaitKillableRecv if listener => flags |= FLAG_WAIT_KILLABLE_RECV,
            // The kernel refuses it without a listener.
            Flag::SeccompFilterFlagWaitKillableRecv => {
                crate::log::debug(format!("seccomp: flag {f} ignored (no SCMP_ACT_NOTIFY)"))
            }
        }
    }
    if listener {
        flags |= FLAG_NEW_LISTENER;
        if flags & FLAG_TSYNC != 0 {
            flags |= FLAG_TSYNC_ESRCH;
        }
    }
    flags
}

/// Add the rules of `syscalls[i]` to `ctx`.
fn add_rule(
    ctx: &mut ScmpFilterContext,
    default: ScmpAction,
    i: usize,
    sc: &oci_spec::runtime::LinuxSyscall,
) -> Result<()> {
    let f = format!("syscalls[{i}]");
    let act = action(sc.action(), sc.errno_ret(), &format!("{f}.errnoRet"))?;
    if sc.names().is_empty() {
        return Err(field(&format!("{f}.names"), "must not be empty"));
    }
    let args = sc.args().as_deref().unwrap_or(&[]);
    let mut conds = Vec::with_capacity(args.len());
    for (j, a) in args.iter().enumerate() {
        conds.push(condition(
            a.index(),
            a.op(),
            a.value(),
            a.value_two().unwrap_or(0),
            &format!("{f}.args[{j}]"),
        )?);
    }
    // Two conditions on one argument cannot be ANDed in one libseccomp rule: like runc, give
    // each its own rule then.
    let mut seen = [false; 6];
    let repeated = args
        .iter()
        .any(|a| std::mem::replace(&mut seen[a.index()], true));
    for (j, name) in sc.names().iter().enumerate() {
        if name.is_empty() {
            return Err(field(&format!("{f}.names[{j}]"), "empty syscall name"));
        }
        // libseccomp refuses a rule that repeats the default action; it would change nothing.
        if act == default {
            continue;
        }
        let Ok(nr) = ScmpSyscall::from_name(name) else {
            crate::log::debug(format!("seccomp: unknown syscall {name:?} skipped"));
            continue;
        };
        let what = || format!("config.json: linux.seccomp.{f}.names[{j}] ({name})");
        if repeated {
            for c in &conds {
                ctx.add_rule_conditional(act, nr, std::slice::from_ref(c))
                    .map_err(|e| lib(what(), e))?;
            }
        } else {
            ctx.add_rule_conditional(act, nr, &conds)
                .map_err(|e| lib(what(), e))?;
        }
    }
    Ok(())
}

/// The BPF program libseccomp generates, through a memfd (libseccomp 2.5 has no in-memory
/// export).
fn export(ctx: &ScmpFilterContext) -> std::result::Result<Vec<libc::sock_filter>, String> {
    let fd =
        nix::sys::memfd::memfd_create(c"hookrun-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| e.to_string())?;
    let mut file = std::fs::File::from(fd);
    ctx.export_bpf(&file).map_err(|e| e.to_string())?;
    file.rewind().map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    let n = std::mem::size_of::<libc::sock_filter>();
    if bytes.is_empty() || bytes.len() % n != 0 {
        return Err(format!("{} bytes is not a BPF program", bytes.len()));
    }
    Ok(bytes
        .chunks_exact(n)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

impl Filter {
    /// Number of BPF instructions (for tests and debug logs).
    pub fn len(&self) -> usize {
        self.prog.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prog.is_empty()
    }

    /// Install the filter on this process. The kernel wants no_new_privs set or CAP_SYS_ADMIN
    /// in the effective set (see `Creds::apply` for where each case loads).
    pub fn load(&self) -> Result<Option<OwnedFd>> {
        let prog = libc::sock_fprog {
            len: self.prog.len() as u16,
            filter: self.prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER) reads `prog`, which points into our live
        // Vec for `len` instructions; the kernel copies the program before returning.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        match Errno::result(rc) {
            // With NEW_LISTENER the kernel returns the listener, close-on-exec. Nothing on
            // this path allocates: see notify.rs.
            Ok(fd) if self.flags & FLAG_NEW_LISTENER != 0 => {
                // SAFETY: that fd is new and ours.
                Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
            }
            Ok(_) => Ok(None),
            Err(e @ Errno::EACCES) => Err(Error::sys(
                "load seccomp filter (without process.noNewPrivileges this needs CAP_SYS_ADMIN)",
                e,
            )),
            Err(e) => Err(Error::sys("load seccomp filter", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    fn err(v: serde_json::Value) -> String {
        compile(Some(&profile(v))).unwrap_err().to_string()
    }

    /// The constants (`k`) of the program: arch tokens, syscall numbers, return values.
    fn ks(f: &Filter) -> Vec<u32> {
        f.prog.iter().map(|i| i.k).collect()
    }

    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    const RET_ERRNO: u32 = 0x0005_0000;

    #[test]
    fn actions_translate_with_runcs_errno_defaults() {
        let a = |x, e| action(x, e, "e").unwrap();
        assert_eq!(a(Act::ScmpActErrno, None), ScmpAction::Errno(libc::EPERM));
        assert_eq!(a(Act::ScmpActErrno, Some(38)), ScmpAction::Errno(38));
        assert_eq!(
            a(Act::ScmpActTrace, None),
            ScmpAction::Trace(libc::EPERM as u16)
        );
        assert_eq!(a(Act::ScmpActKill, None), ScmpAction::KillThread);
        assert_eq!(a(Act::ScmpActKillThread, None), ScmpAction::KillThread);
        assert_eq!(a(Act::ScmpActKillProcess, None), ScmpAction::KillProcess);
        assert_eq!(a(Act::ScmpActLog, None), ScmpAction::Log);
        assert_eq!(a(Act::ScmpActTrap, None), ScmpAction::Trap);
        assert_eq!(a(Act::ScmpActAllow, Some(5)), ScmpAction::Allow);
        let e = action(Act::ScmpActErrno, Some(70000), "x.errnoRet").unwrap_err();
        assert_eq!(
            e.to_string(),
            "config.json: linux.seccomp.x.errnoRet: 70000 is out of range (0 to 65535)"
        );
    }

    #[test]
    fn masked_eq_takes_value_as_mask_and_value_two_as_datum() {
        let c = condition(1, Op::ScmpCmpMaskedEq, 0o7, 0o5, "a").unwrap();
        assert_eq!(
            c,
            ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(0o7), 0o5)
        );
        let c = condition(0, Op::ScmpCmpGe, 3, 99, "a").unwrap();
        assert_eq!(c, ScmpArgCompare::new(0, ScmpCompareOp::GreaterEqual, 3));
        let e = condition(6, Op::ScmpCmpEq, 0, 0, "syscalls[2].args[1]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "config.json: linux.seccomp.syscalls[2].args[1].index: 6 is not a syscall argument \
             (0 to 5)"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = err(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
        assert!(
            e.starts_with("config.json: linux.seccomp.defaultAction: SCMP_ACT_NOTIFY"),
            "{e}"
        );
        let e = err(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["write", ""], "action": "SCMP_ACT_ERRNO"}
            ]}),
        );
        assert_eq!(
            e,
            "config.json: linux.seccomp.syscalls[1].names[1]: empty syscall name"
        );
        let e =
            err(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1 << 20}));
        assert!(
            e.starts_with("config.json: linux.seccomp.defaultErrnoRet: "),
            "{e}"
        );
    }

    #[test]
    fn unknown_names_and_default_repeats_are_skipped() {
        let base = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]});
        let plain = compile(Some(&profile(base.clone()))).unwrap().unwrap();
        let mut v = base;
        v["syscalls"][0]["names"] = serde_json::json!(["mkdir", "no_such_syscall_xyz"]);
        v["syscalls"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"names": ["read"], "action": "SCMP_ACT_ALLOW"}));
        let f = compile(Some(&profile(v))).unwrap().unwrap();
        assert_eq!(ks(&f), ks(&plain));
        assert!(ks(&f).contains(&(RET_ERRNO | 38)));
        assert!(ks(&f).contains(&(libc::SYS_mkdir as u32)));
    }

    #[test]
    fn architectures_and_flags() {
        let v = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}
        ]});
        let native = compile(Some(&profile(v.clone()))).unwrap().unwrap();
        assert!(!ks(&native).contains(&AUDIT_ARCH_I386));
        assert_eq!(native.flags, 0);
        let mut v = v;
        v["architectures"] =
            serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
        v["flags"] =
            serde_json::json!(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]);
        let multi = compile(Some(&profile(v))).unwrap().unwrap();
        // The i386 section checks i386 mkdir (39) too.
        assert!(ks(&multi).contains(&AUDIT_ARCH_I386));
        assert!(ks(&multi).contains(&39));
        assert_eq!(multi.flags, FLAG_LOG | FLAG_SPEC_ALLOW);
        assert!(compile(None).unwrap().is_none());
    }

    #[test]
    fn notify_needs_a_listener_path_and_spares_write() {
        let notify = |names: serde_json::Value| {
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                {"names": names, "action": "SCMP_ACT_NOTIFY"}
            ]})
        };
        assert_eq!(
            err(notify(serde_json::json!(["mkdir"]))),
            "config.json: linux.seccomp.listenerPath: must be set: syscalls[1] uses \
             SCMP_ACT_NOTIFY"
        );
        let mut v = notify(serde_json::json!(["mkdir", "write"]));
        v["listenerPath"] = "/run/agent.sock".into();
        assert!(err(v.clone()).starts_with(
            "config.json: linux.seccomp.syscalls[1]: SCMP_ACT_NOTIFY cannot be used for the \
             write syscall"
        ));
        v["syscalls"][1]["names"] = serde_json::json!(["mkdir"]);
        v["listenerMetadata"] = "bar".into();
        v["flags"] = serde_json::json!(["SECCOMP_FILTER_FLAG_TSYNC"]);
        let f = compile(Some(&profile(v.clone()))).unwrap().unwrap();
        assert_eq!(
            f.listener,
            Some(Listener {
                path: "/run/agent.sock".into(),
                metadata: "bar".into()
            })
        );
        assert_eq!(f.flags, FLAG_TSYNC | FLAG_TSYNC_ESRCH | FLAG_NEW_LISTENER);
        // A listenerPath alone, with no SCMP_ACT_NOTIFY rule, asks for nothing (as runc).
        v["syscalls"][1]["action"] = "SCMP_ACT_ERRNO".into();
        let f = compile(Some(&profile(v))).unwrap().unwrap();
        assert_eq!((f.listener.as_ref(), f.flags), (None, FLAG_TSYNC));
    }

    #[test]
    fn enosys_stub_only_where_the_default_refuses() {
        let v = |default: &str, errno: Option<u32>| {
            let mut v = serde_json::json!({"defaultAction": default, "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_LOG"}
            ]});
            if let Some(e) = errno {
                v["defaultErrnoRet"] = e.into();
            }
            compile(Some(&profile(v))).unwrap().unwrap()
        };
        let enosys = RET_ERRNO | libc::ENOSYS as u32;
        let rets_enosys = |f: &Filter| f.prog.iter().any(|i| i.code == 0x06 && i.k == enosys);
        assert!(rets_enosys(&v("SCMP_ACT_ERRNO", None)));
        assert!(rets_enosys(&v("SCMP_ACT_KILL_PROCESS", None)));
        assert!(!rets_enosys(&v("SCMP_ACT_ALLOW", None)));
        assert!(!rets_enosys(&v("SCMP_ACT_LOG", None)));
        // A default of ENOSYS itself needs no stub: the same program as another errno's, less
        // the stub.
        assert!(v("SCMP_ACT_ERRNO", Some(38)).len() < v("SCMP_ACT_ERRNO", Some(39)).len());
    }
}
