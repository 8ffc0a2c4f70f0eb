//! The -ENOSYS stub put in front of a compiled profile: a system call numbered above every call
//! the profile names (per architecture) returns ENOSYS instead of meeting the default action.
//! A program probing for a call newer than the profile (clone3, openat2, …) then falls back as
//! on an older kernel, where the default action's EPERM would read as a refusal and stop it.
//! This is runc's behaviour for profiles whose default action is not an allow.
//! runs in: the runtime (while compiling the profile at `create` or `exec`).

use libseccomp::{ScmpArch, ScmpSyscall};
use libseccomp_sys as sys;

// Classic BPF opcodes (linux/filter.h) and seccomp constants (linux/seccomp.h, linux/audit.h).
const LD_W_ABS: u16 = 0x20;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGT_K: u16 = 0x25;
const JMP_JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
const RET_ERRNO: u32 = 0x0005_0000;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// offsetof(struct seccomp_data, nr), offsetof(struct seccomp_data, arch).
const NR: u32 = 0;
const ARCH: u32 = 4;

/// Where a jump goes: the instruction `n` after the next one, the ENOSYS return, or the first
/// instruction of the profile's own program.
#[derive(Clone, Copy)]
enum To {
    Skip(u8),
    Enosys,
    Filter,
}

struct Ins {
    code: u16,
    k: u32,
    jt: To,
    jf: To,
}

fn ins(code: u16, k: u32, jt: To, jf: To) -> Ins {
    Ins { code, k, jt, jf }
}

/// The AUDIT_ARCH_* value the kernel puts in seccomp_data.arch for `a` (x32 shares x86_64's
/// and sets X32_SYSCALL_BIT in the number instead). libseccomp's arch tokens are these values.
fn audit_arch(a: ScmpArch) -> Option<u32> {
    use ScmpArch::*;
    Some(match a {
        X86 => sys::SCMP_ARCH_X86,
        X8664 | X32 => sys::SCMP_ARCH_X86_64,
        Arm => sys::SCMP_ARCH_ARM,
        Aarch64 => sys::SCMP_ARCH_AARCH64,
        Loongarch64 => sys::SCMP_ARCH_LOONGARCH64,
        M68k => sys::SCMP_ARCH_M68K,
        Mips => sys::SCMP_ARCH_MIPS,
        Mips64 => sys::SCMP_ARCH_MIPS64,
        Mips64N32 => sys::SCMP_ARCH_MIPS64N32,
        Mipsel => sys::SCMP_ARCH_MIPSEL,
        Mipsel64 => sys::SCMP_ARCH_MIPSEL64,
        Mipsel64N32 => sys::SCMP_ARCH_MIPSEL64N32,
        Ppc => sys::SCMP_ARCH_PPC,
        Ppc64 => sys::SCMP_ARCH_PPC64,
        Ppc64Le => sys::SCMP_ARCH_PPC64LE,
        S390 => sys::SCMP_ARCH_S390,
        S390X => sys::SCMP_ARCH_S390X,
        Parisc => sys::SCMP_ARCH_PARISC,
        Parisc64 => sys::SCMP_ARCH_PARISC64,
        Riscv64 => sys::SCMP_ARCH_RISCV64,
        Sh => sys::SCMP_ARCH_SH,
        Sheb => sys::SCMP_ARCH_SHEB,
        _ => return None,
    })
}

/// The highest number among `names` on `arch` (names it does not have are left out).
fn highest(names: &[&str], arch: ScmpArch) -> Option<u32> {
    names
        .iter()
        .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
        .map(i32::from)
        // Negative numbers are libseccomp's stand-ins for calls this arch lacks.
        .filter(|nr| *nr >= 0)
        .max()
        .map(|nr| nr as u32)
}

/// The checks for one AUDIT_ARCH value, entered with the number loaded: jump to ENOSYS above
/// the highest known number, else to the profile. x86_64 and x32 share the value and differ
/// by X32_SYSCALL_BIT in the number.
fn checks(token: u32, maxima: &[(ScmpArch, u32)]) -> Vec<Ins> {
    let above = |max| ins(JMP_JGT_K, max, To::Enosys, To::Skip(0));
    let filter = || ins(JMP_JA, 0, To::Filter, To::Filter);
    let max = |a: ScmpArch| maxima.iter().find(|(x, _)| *x == a).map(|(_, m)| *m);
    if token == sys::SCMP_ARCH_X86_64 {
        return match (max(ScmpArch::X8664), max(ScmpArch::X32)) {
            (Some(m64), Some(m32)) => vec![
                ins(JMP_JSET_K, X32_SYSCALL_BIT, To::Skip(2), To::Skip(0)),
                above(m64),
                filter(),
                above(m32),
                filter(),
            ],
            // Only one of the two is in the profile: the other's calls go to the profile as
            // they are (it decides what an architecture it does not list gets).
            (Some(m64), None) => vec![
                ins(JMP_JSET_K, X32_SYSCALL_BIT, To::Skip(1), To::Skip(0)),
                above(m64),
                filter(),
            ],
            (None, Some(m32)) => vec![
                ins(JMP_JSET_K, X32_SYSCALL_BIT, To::Skip(0), To::Skip(1)),
                above(m32),
                filter(),
            ],
            (None, None) => vec![],
        };
    }
    let Some(&(arch, m)) = maxima.first() else {
        return vec![];
    };
    let mut out = Vec::new();
    if matches!(arch, ScmpArch::S390 | ScmpArch::S390X) {
        // Number 0 is the s390 multiplexer: what it leads to cannot be checked here.
        out.push(ins(JMP_JEQ_K, 0, To::Enosys, To::Skip(0)));
    }
    out.push(above(m));
    out.push(filter());
    out
}

/// The stub for a profile covering `archs` and naming `names`; empty when no architecture has
/// a known name. It ends in `ret ERRNO(ENOSYS)`; the profile's program follows it.
pub fn stub(archs: &[ScmpArch], names: &[&str]) -> Result<Vec<libc::sock_filter>, String> {
    // One section per AUDIT_ARCH value, in the order the architectures were given.
    let mut by_token: Vec<(u32, Vec<(ScmpArch, u32)>)> = Vec::new();
    for &a in archs {
        let (Some(token), Some(max)) = (audit_arch(a), highest(names, a)) else {
            continue;
        };
        match by_token.iter_mut().find(|(t, _)| *t == token) {
            Some((_, v)) if !v.iter().any(|(x, _)| *x == a) => v.push((a, max)),
            Some(_) => {}
            None => by_token.push((token, vec![(a, max)])),
        }
    }
    let mut prog = vec![ins(LD_W_ABS, ARCH, To::Skip(0), To::Skip(0))];
    for (token, maxima) in &by_token {
        let body = checks(*token, maxima);
        if body.is_empty() {
            continue;
        }
        // Not this architecture: past the section, with the arch still in the accumulator.
        let rest = u8::try_from(body.len() + 1).map_err(|_| "section too long".to_string())?;
        prog.push(ins(JMP_JEQ_K, *token, To::Skip(0), To::Skip(rest)));
        prog.push(ins(LD_W_ABS, NR, To::Skip(0), To::Skip(0)));
        prog.extend(body);
    }
    if prog.len() == 1 {
        return Ok(vec![]);
    }
    // No section matched: the profile decides.
    prog.push(ins(JMP_JA, 0, To::Filter, To::Filter));
    prog.push(ins(
        RET_K,
        RET_ERRNO | libc::ENOSYS as u32,
        To::Skip(0),
        To::Skip(0),
    ));
    assemble(&prog)
}

/// Resolve the jumps: ENOSYS is the last instruction, the profile starts right after it.
fn assemble(prog: &[Ins]) -> Result<Vec<libc::sock_filter>, String> {
    let enosys = prog.len() - 1;
    let filter = prog.len();
    let off = |pc: usize, to: To| -> usize {
        match to {
            To::Skip(n) => n as usize,
            To::Enosys => enosys - pc - 1,
            To::Filter => filter - pc - 1,
        }
    };
    prog.iter()
        .enumerate()
        .map(|(pc, i)| {
            if i.code == JMP_JA {
                return Ok(libc::sock_filter {
                    code: i.code,
                    jt: 0,
                    jf: 0,
                    k: off(pc, i.jt) as u32,
                });
            }
            let short = |o: usize| u8::try_from(o).map_err(|_| "jump too long".to_string());
            Ok(libc::sock_filter {
                code: i.code,
                jt: short(off(pc, i.jt))?,
                jf: short(off(pc, i.jf))?,
                k: i.k,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic-BPF interpreter for what the stub uses: returns Some(ret) or None when control
    /// reaches the profile (the instruction after the stub).
    fn run(stub: &[libc::sock_filter], arch: u32, nr: u32) -> Option<u32> {
        let (mut pc, mut acc) = (0usize, 0u32);
        while pc < stub.len() {
            let i = stub[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => acc = if i.k == ARCH { arch } else { nr },
                RET_K => return Some(i.k),
                JMP_JA => pc += i.k as usize,
                c => {
                    let hit = match c {
                        JMP_JEQ_K => acc == i.k,
                        JMP_JGT_K => acc > i.k,
                        JMP_JSET_K => acc & i.k != 0,
                        _ => panic!("unexpected opcode {c:#x}"),
                    };
                    pc += if hit { i.jt } else { i.jf } as usize;
                }
            }
        }
        assert_eq!(
            pc,
            stub.len(),
            "jumped past the profile's first instruction"
        );
        None
    }

    const ENOSYS: Option<u32> = Some(RET_ERRNO | libc::ENOSYS as u32);

    #[test]
    fn numbers_above_the_highest_named_call_get_enosys() {
        // mkdir is 83 on x86_64, 39 on i386; kcmp 312 and 349.
        let s = stub(&[ScmpArch::X8664, ScmpArch::X86], &["mkdir", "kcmp"]).unwrap();
        let (x64, i386) = (sys::SCMP_ARCH_X86_64, sys::SCMP_ARCH_X86);
        assert_eq!(run(&s, x64, 83), None);
        assert_eq!(run(&s, x64, 312), None);
        assert_eq!(run(&s, x64, 313), ENOSYS);
        assert_eq!(run(&s, x64, 1000), ENOSYS);
        assert_eq!(run(&s, i386, 349), None);
        assert_eq!(run(&s, i386, 350), ENOSYS);
        // An architecture the stub does not cover goes to the profile untouched.
        assert_eq!(run(&s, sys::SCMP_ARCH_AARCH64, 5000), None);
        // x32 is not in this profile: its calls (bit 30 set) are the profile's to judge.
        assert_eq!(run(&s, x64, X32_SYSCALL_BIT | 5000), None);
    }

    #[test]
    fn x86_64_and_x32_share_a_section() {
        let s = stub(&[ScmpArch::X8664, ScmpArch::X32], &["read", "kcmp"]).unwrap();
        let x64 = sys::SCMP_ARCH_X86_64;
        assert_eq!(run(&s, x64, 312), None);
        assert_eq!(run(&s, x64, 313), ENOSYS);
        assert_eq!(run(&s, x64, X32_SYSCALL_BIT | 312), None);
        assert_eq!(run(&s, x64, X32_SYSCALL_BIT | 313), ENOSYS);
        let only32 = stub(&[ScmpArch::X32], &["kcmp"]).unwrap();
        assert_eq!(run(&only32, x64, 5000), None);
        assert_eq!(run(&only32, x64, X32_SYSCALL_BIT | 5000), ENOSYS);
    }

    #[test]
    fn nothing_known_gives_no_stub() {
        assert!(stub(&[ScmpArch::X8664], &["no_such_call"])
            .unwrap()
            .is_empty());
        assert!(stub(&[ScmpArch::X8664], &[]).unwrap().is_empty());
    }

    #[test]
    fn s390_multiplexer_gets_enosys() {
        let s = stub(&[ScmpArch::S390X], &["read"]).unwrap();
        assert_eq!(run(&s, sys::SCMP_ARCH_S390X, 0), ENOSYS);
        assert_eq!(run(&s, sys::SCMP_ARCH_S390X, 3), None);
    }
}
