//! The fd-based mount calls (open_tree, move_mount, mount_setattr, fsopen/fsmount) and the
//! `/proc/self/fd/N` name of an fd, for mount(2) calls that must land on exactly that inode.
//! runs in: the runtime (open_tree of bind sources) and the container init.
//!
//! Neither nix nor rustix wraps mount_setattr(2); these are the few raw calls, kept together.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;

use super::options::Attr;

/// The name under which mount(2) reaches the inode behind `fd` (a magic link: the mount lands
/// on that very inode, wherever it is now). Needs a procfs at /proc.
pub fn fd_path(fd: BorrowedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn cstr(p: &Path) -> nix::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

fn owned(rc: libc::c_long) -> nix::Result<OwnedFd> {
    let fd = Errno::result(rc)?;
    // SAFETY: the syscall returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A detached copy of the mount tree at `path` (OPEN_TREE_CLONE): a bind mount not attached
/// anywhere yet, whose source stays reachable through the fd whatever happens to the path.
pub fn clone_tree(path: &Path, recursive: bool) -> nix::Result<OwnedFd> {
    let p = cstr(path)?;
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree(2) with a valid C string; the result is checked.
    owned(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, p.as_ptr(), flags) })
}

/// [`clone_tree`] of what `fd` (an O_PATH handle) is.
pub fn clone_fd(fd: BorrowedFd, recursive: bool) -> nix::Result<OwnedFd> {
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    flags |= libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree(2) on a live fd with an empty path; the result is checked.
    owned(unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) })
}

/// Attach the detached `tree` on top of what `dst` (an O_PATH handle) is.
pub fn move_onto(tree: BorrowedFd, dst: BorrowedFd) -> nix::Result<()> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: move_mount(2) between two live fds with empty paths.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            dst.as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    };
    Errno::result(rc).map(drop)
}

fn setattr_raw(fd: BorrowedFd, attr: &libc::mount_attr, recursive: bool) -> nix::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: mount_setattr(2) on a live fd with a mount_attr of the size passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(rc).map(drop)
}

/// Change the attributes of the mount `fd` is the root of (and, `recursive`, of every mount
/// below it). Only the attributes named change: a flag the kernel locks stays as it is.
pub fn setattr(fd: BorrowedFd, a: Attr, recursive: bool) -> nix::Result<()> {
    if a.is_empty() {
        return Ok(());
    }
    let attr = libc::mount_attr {
        attr_set: a.set,
        attr_clr: a.clr,
        propagation: 0,
        userns_fd: 0,
    };
    setattr_raw(fd, &attr, recursive)
}

/// A propagation change (`MS_PRIVATE`, with `MS_REC` for the whole tree) of the mount at `fd`.
pub fn set_propagation(fd: BorrowedFd, p: MsFlags) -> nix::Result<()> {
    // c_ulong: u32 on 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    let attr = libc::mount_attr {
        attr_set: 0,
        attr_clr: 0,
        propagation: (p & !MsFlags::MS_REC).bits() as u64,
        userns_fd: 0,
    };
    setattr_raw(fd, &attr, p.contains(MsFlags::MS_REC))
}

/// A new read-only, empty tmpfs, detached (for masking a directory).
pub fn empty_ro_tmpfs() -> nix::Result<OwnedFd> {
    // SAFETY: fsopen(2) with a static C string.
    let fs =
        owned(unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), libc::FSOPEN_CLOEXEC) })?;
    // SAFETY: fsconfig(2) FSCONFIG_CMD_CREATE takes no key or value.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(rc)?;
    let attrs = libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
    // SAFETY: fsmount(2) of the configured fs context.
    owned(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_fd().as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attrs | libc::MOUNT_ATTR_NOEXEC,
        )
    })
}
