//! What `features` reports under `linux.seccomp`: the actions, operators and flags hookrun
//! handles, and the architectures and flags this libseccomp and kernel take.
//! runs in: the runtime (`hookrun features`).

use libseccomp::{ScmpAction, ScmpFilterContext};
use nix::errno::Errno;
use oci_spec::runtime::{
    Arch, LinuxSeccompAction as Act, LinuxSeccompFilterFlag as Flag, LinuxSeccompOperator as Op,
};

use super::{
    arch, FLAG_LOG, FLAG_NEW_LISTENER, FLAG_SPEC_ALLOW, FLAG_TSYNC, FLAG_WAIT_KILLABLE_RECV,
};

/// What `features` reports under `linux.seccomp`.
pub fn features() -> serde_json::Value {
    let actions = [
        Act::ScmpActAllow,
        Act::ScmpActErrno,
        Act::ScmpActKill,
        Act::ScmpActKillProcess,
        Act::ScmpActKillThread,
        Act::ScmpActLog,
        Act::ScmpActNotify,
        Act::ScmpActTrace,
        Act::ScmpActTrap,
    ];
    let ops = [
        Op::ScmpCmpEq,
        Op::ScmpCmpGe,
        Op::ScmpCmpGt,
        Op::ScmpCmpLe,
        Op::ScmpCmpLt,
        Op::ScmpCmpMaskedEq,
        Op::ScmpCmpNe,
    ];
    // The architectures the installed libseccomp can build a filter for.
    let archs: Vec<String> = ALL_ARCHS
        .iter()
        .filter(|a| {
            ScmpFilterContext::new(ScmpAction::Allow)
                .and_then(|mut c| c.add_arch(arch(**a)).map(drop))
                .is_ok()
        })
        .map(|a| a.to_string())
        .collect();
    let flags = [
        (Flag::SeccompFilterFlagLog, FLAG_LOG),
        (Flag::SeccompFilterFlagSpecAllow, FLAG_SPEC_ALLOW),
        (Flag::SeccompFilterFlagTsync, FLAG_TSYNC),
        (
            Flag::SeccompFilterFlagWaitKillableRecv,
            FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV,
        ),
    ];
    let name = |f: &(Flag, u32)| f.0.to_string();
    serde_json::json!({
        "enabled": true,
        "actions": actions.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "operators": ops.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
        "archs": archs,
        "knownFlags": flags.iter().map(name).collect::<Vec<_>>(),
        "supportedFlags": flags.iter().filter(|f| kernel_takes(f.1)).map(name).collect::<Vec<_>>(),
    })
}

/// Whether this kernel knows the seccomp(2) filter flags `flags`: with no program it answers
/// EFAULT for flags it knows (it got as far as reading the program) and EINVAL otherwise.
fn kernel_takes(flags: u32) -> bool {
    // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER) with a null program installs nothing: the
    // kernel checks the flags, then fails reading the program.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    rc == -1 && Errno::last() == Errno::EFAULT
}

const ALL_ARCHS: [Arch; 23] = [
    Arch::ScmpArchX86,
    Arch::ScmpArchX86_64,
    Arch::ScmpArchX32,
    Arch::ScmpArchArm,
    Arch::ScmpArchAarch64,
    Arch::ScmpArchMips,
    Arch::ScmpArchMips64,
    Arch::ScmpArchMips64n32,
    Arch::ScmpArchMipsel,
    Arch::ScmpArchMipsel64,
    Arch::ScmpArchMipsel64n32,
    Arch::ScmpArchPpc,
    Arch::ScmpArchPpc64,
    Arch::ScmpArchPpc64le,
    Arch::ScmpArchS390,
    Arch::ScmpArchS390x,
    Arch::ScmpArchParisc,
    Arch::ScmpArchParisc64,
    Arch::ScmpArchRiscv64,
    Arch::ScmpArchLoongarch64,
    Arch::ScmpArchM68k,
    Arch::ScmpArchSh,
    Arch::ScmpArchSheb,
];

#[cfg(test)]
mod tests {
    use super::super::action;
    use super::*;

    #[test]
    fn features_list_what_compiles() {
        let f = features();
        assert_eq!(f["enabled"], true);
        for a in f["actions"].as_array().unwrap() {
            let a: Act = serde_json::from_value(a.clone()).unwrap();
            action(a, None, "e").unwrap();
        }
        assert_eq!(f["operators"].as_array().unwrap().len(), 7);
        assert!(f["archs"]
            .as_array()
            .unwrap()
            .contains(&"SCMP_ARCH_X86".into()));
    }
}
