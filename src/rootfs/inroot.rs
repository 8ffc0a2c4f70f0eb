//! Paths inside the rootfs, resolved by fd in the root (pathrs: openat2 RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS, or its safe emulation): a symlink in the image can never lead out of
//! the rootfs, and what a mount or mknod acts on is the inode that was checked.
//! runs in: the container init, before and after pivot_root.

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, mkdirat, FileStat, Mode, SFlag};
use pathrs::error::ErrorKind;
use pathrs::flags::ResolverFlags;

use crate::error::{Ctx, Error, Result};

/// Why an operation inside the root failed: an errno, or pathrs' own words (an attack it saw).
#[derive(Debug)]
pub enum Fail {
    Errno(Errno),
    Other(String),
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Self {
        Fail::Errno(e)
    }
}

impl From<pathrs::error::Error> for Fail {
    fn from(e: pathrs::error::Error) -> Self {
        match e.kind() {
            ErrorKind::OsError(Some(n)) => Fail::Errno(Errno::from_raw(n)),
            _ => Fail::Other(e.to_string()),
        }
    }
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(n) => Fail::Errno(Errno::from_raw(n)),
            None => Fail::Other(e.to_string()),
        }
    }
}

impl Fail {
    /// The error of step `op`: `op: cause`.
    pub fn error(self, op: impl Into<String>) -> Error {
        match self {
            Fail::Errno(n) => Error::sys(op, n),
            Fail::Other(s) => Error::Child(format!("{}: {s}", op.into())),
        }
    }
}

impl<T> Ctx<T> for std::result::Result<T, Fail> {
    fn ctx<S: Into<String>>(self, op: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| e.error(op()))
    }
}

pub type Res<T> = std::result::Result<T, Fail>;

/// Device and inode: what a file *is*, to compare two handles.
pub fn ident(fd: BorrowedFd) -> nix::Result<(u64, u64)> {
    let st = fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

/// `mkdir -p` inside `root`: the deepest part of `p` that exists is resolved (symlinks as
/// `root` resolves them), the rest is made a component at a time (0755 before the umask), each
/// opened O_NOFOLLOW. Not pathrs' mkdir_all: that reopens through a procfs handle it caches,
/// and such an fd must not live on in the init (a procfs of the host's pid namespace, where
/// the container shares it, would lead a `/proc/self/fd/N` cwd out of the container).
fn make_dirs(root: &pathrs::Root, p: &Path) -> Res<OwnedFd> {
    use std::path::Component;
    let comps: Vec<Component> = p
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    let mut have = comps.len();
    let mut dir: OwnedFd = loop {
        let prefix: PathBuf = std::iter::once(Component::RootDir)
            .chain(comps[..have].iter().copied())
            .collect();
        match root.resolve(&prefix).map_err(Fail::from) {
            Ok(h) => break h.into(),
            Err(Fail::Errno(Errno::ENOENT)) if have > 0 => have -= 1,
            Err(e) => return Err(e),
        }
    };
    for c in &comps[have..] {
        let Component::Normal(name) = c else {
            // `..` below a directory that does not exist yet
            return Err(Fail::Errno(Errno::ENOENT));
        };
        match mkdirat(&dir, *name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        dir = openat(
            &dir,
            *name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
    }
    Ok(dir)
}

/// The container's root directory, held open.
pub struct Root {
    inner: pathrs::Root,
    /// The same root with no symlink allowed anywhere on a path.
    strict: pathrs::Root,
}

impl Root {
    pub fn open(path: &Path) -> Result<Root> {
        let what = || format!("open rootfs {}", path.display());
        let inner = pathrs::Root::open(path).map_err(Fail::from).ctx(what)?;
        let strict = inner
            .try_clone()
            .map_err(Fail::from)
            .ctx(what)?
            .with_resolver_flags(ResolverFlags::NO_SYMLINKS);
        Ok(Root { inner, strict })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }

    /// `p`, symlinks followed inside the root; `None` when it does not exist.
    pub fn resolve(&self, p: &Path) -> Res<Option<OwnedFd>> {
        match self.inner.resolve(p).map_err(Fail::from) {
            Ok(h) => Ok(Some(h.into())),
            Err(Fail::Errno(Errno::ENOENT)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Like [`Root::resolve`], but a trailing symlink is the symlink itself.
    pub fn resolve_nofollow(&self, p: &Path) -> Res<Option<OwnedFd>> {
        match self.inner.resolve_nofollow(p).map_err(Fail::from) {
            Ok(h) => Ok(Some(h.into())),
            Err(Fail::Errno(Errno::ENOENT)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The directory `p`, made (with its parents, 0755) where missing. A dangling symlink on
    /// the way is followed to where it points, and that is made (as a mount point's path in an
    /// image may go through `/var/run -> /run` before `/run` exists).
    pub fn dir(&self, p: &Path) -> Res<OwnedFd> {
        let mut p = p.to_path_buf();
        // As many links as the kernel follows in one lookup.
        for _ in 0..40 {
            match make_dirs(&self.inner, &p) {
                Ok(fd) => return Ok(fd),
                Err(Fail::Errno(Errno::ENOTDIR | Errno::ENOENT | Errno::ELOOP)) => {}
                Err(e) => return Err(e),
            }
            match self.through_dangling(&p)? {
                Some(q) => p = q,
                None => return Err(Fail::Errno(Errno::ENOTDIR)),
            }
        }
        Err(Fail::Errno(Errno::ELOOP))
    }

    /// `p` with its first dangling symlink replaced by the link's target; `None` if it has none.
    fn through_dangling(&self, p: &Path) -> Res<Option<PathBuf>> {
        let mut q = PathBuf::from("/");
        let mut rest = p.components();
        while let Some(c) = rest.next() {
            q.push(c);
            let Some(fd) = self.resolve_nofollow(&q)? else {
                return Ok(None);
            };
            if self.resolve(&q)?.is_some() {
                continue;
            }
            let target = PathBuf::from(nix::fcntl::readlinkat(&fd, "")?);
            let base = if target.is_absolute() {
                target
            } else {
                q.parent().unwrap_or(Path::new("/")).join(target)
            };
            return Ok(Some(base.join(rest.as_path())));
        }
        Ok(None)
    }

    /// The parent directory of `p` (made where missing) and the last component's name.
    pub fn parent(&self, p: &Path) -> Res<(OwnedFd, OsString)> {
        let name = p
            .file_name()
            .ok_or(Fail::Errno(Errno::EINVAL))?
            .to_os_string();
        let parent = p.parent().unwrap_or(Path::new("/"));
        Ok((self.dir(parent)?, name))
    }

    /// A file to mount a file on: `p` as it is when it exists, else an empty file made there;
    /// symlinks are followed inside the root, a dangling one to where it points (so a
    /// `/etc/resolv.conf` that points nowhere yet gets its target). Returns (the parent
    /// directory the file is really in, the file).
    pub fn file(&self, p: &Path) -> Res<(OwnedFd, OwnedFd)> {
        let mut p = p.to_path_buf();
        // As many links as the kernel follows in one lookup.
        for _ in 0..40 {
            let (parent, name) = self.parent(&p)?;
            let made = openat(
                &parent,
                name.as_os_str(),
                OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            );
            match made {
                Ok(f) => return Ok((parent, f)),
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
            match nix::fcntl::readlinkat(&parent, name.as_os_str()) {
                Ok(target) => {
                    let target = PathBuf::from(target);
                    p = if target.is_absolute() {
                        target
                    } else {
                        p.parent().unwrap_or(Path::new("/")).join(target)
                    };
                }
                // Not a link: the file that is there.
                Err(Errno::EINVAL) => {
                    let f = openat(
                        &parent,
                        name.as_os_str(),
                        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )?;
                    return Ok((parent, f));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Fail::Errno(Errno::ELOOP))
    }

    /// A directory that `p` names with no symlink on the way and that is a directory itself
    /// (made if missing): where procfs and sysfs may be mounted. `Ok(None)`: something else is
    /// there (a symlink, a file).
    pub fn ordinary_dir(&self, p: &Path) -> Res<Option<OwnedFd>> {
        let parent = p.parent().unwrap_or(Path::new("/"));
        let Some(name) = p.file_name() else {
            return Ok(None);
        };
        let parent: OwnedFd = match make_dirs(&self.strict, parent) {
            Ok(fd) => fd,
            Err(Fail::Errno(Errno::ELOOP | Errno::ENOTDIR | Errno::EEXIST)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let open = || {
            openat(
                &parent,
                name,
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        };
        let fd = match open() {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                match mkdirat(&parent, name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                open()?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(is_dir(&fstat(&fd)?).then_some(fd))
    }

    /// Is `fd` (a directory) `anc` or below it, as `..` walks up to the root?
    pub fn is_within(&self, fd: BorrowedFd, anc: (u64, u64)) -> nix::Result<bool> {
        let top = ident(self.fd())?;
        let mut cur = openat(fd, ".", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())?;
        // Bounded: a path has at most PATH_MAX / 2 components.
        for _ in 0..libc::PATH_MAX / 2 {
            let id = ident(cur.as_fd())?;
            if id == anc {
                return Ok(true);
            }
            if id == top {
                return Ok(false);
            }
            let up = openat(
                &cur,
                "..",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            if ident(up.as_fd())? == id {
                return Ok(false);
            }
            cur = up;
        }
        Ok(false)
    }
}

/// `fd` is on a procfs.
pub fn on_procfs(fd: BorrowedFd) -> bool {
    nix::sys::statfs::fstatfs(fd)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

/// `fd` is a directory.
pub fn fd_is_dir(fd: BorrowedFd) -> nix::Result<bool> {
    Ok(is_dir(&fstat(fd)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("real/conf")).unwrap();
        std::fs::create_dir(t.path().join("proc")).unwrap();
        symlink("/real/conf", t.path().join("conf")).unwrap();
        symlink("/etc", t.path().join("abs")).unwrap();
        symlink("../../../../..", t.path().join("real/up")).unwrap();
        symlink("/run/stub.conf", t.path().join("real/resolv.conf")).unwrap();
        symlink("/elsewhere", t.path().join("sys")).unwrap();
        t
    }

    fn same(fd: &OwnedFd, p: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(p).unwrap();
        ident(fd.as_fd()).unwrap() == (md.dev(), md.ino())
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let t = tree();
        let r = Root::open(t.path()).unwrap();
        let d = r.dir(Path::new("/conf/stack")).unwrap();
        assert!(same(&d, &t.path().join("real/conf/stack")));
        // An absolute link and a climb out both stay in the root.
        let d = r.dir(Path::new("/abs/x")).unwrap();
        assert!(same(&d, &t.path().join("etc/x")));
        let d = r.dir(Path::new("/real/up/y")).unwrap();
        assert!(same(&d, &t.path().join("y")));
        assert!(r.resolve(Path::new("/nope")).unwrap().is_none());
    }

    #[test]
    fn a_file_mount_point_follows_a_dangling_link_to_its_target() {
        let t = tree();
        let r = Root::open(t.path()).unwrap();
        let (parent, f) = r.file(Path::new("/real/resolv.conf")).unwrap();
        let made = t.path().join("run/stub.conf");
        assert!(made.is_file(), "the link's target is made inside the root");
        assert!(same(&f, &made));
        assert!(same(&parent, &t.path().join("run")));
        // An existing file is used as it is.
        std::fs::write(t.path().join("real/given"), "x").unwrap();
        let (_, f) = r.file(Path::new("/real/given")).unwrap();
        assert!(same(&f, &t.path().join("real/given")));
    }

    #[test]
    fn an_ordinary_directory_has_no_symlink_on_its_path() {
        let t = tree();
        let r = Root::open(t.path()).unwrap();
        assert!(r.ordinary_dir(Path::new("/proc")).unwrap().is_some());
        assert!(r.ordinary_dir(Path::new("/newdir")).unwrap().is_some());
        assert!(t.path().join("newdir").is_dir());
        // the last component a symlink, or one on the way
        assert!(r.ordinary_dir(Path::new("/sys")).unwrap().is_none());
        assert!(r.ordinary_dir(Path::new("/conf/x")).unwrap().is_none());
        assert!(!t.path().join("elsewhere").exists());
        std::fs::write(t.path().join("file"), "").unwrap();
        assert!(r.ordinary_dir(Path::new("/file")).unwrap().is_none());
    }

    #[test]
    fn within_walks_up_to_the_root_only() {
        let t = tree();
        std::fs::create_dir_all(t.path().join("proc/sys/kernel")).unwrap();
        let r = Root::open(t.path()).unwrap();
        let proc_id = ident(r.resolve(Path::new("/proc")).unwrap().unwrap().as_fd()).unwrap();
        let k = r.resolve(Path::new("/proc/sys/kernel")).unwrap().unwrap();
        assert!(r.is_within(k.as_fd(), proc_id).unwrap());
        let p = r.resolve(Path::new("/proc")).unwrap().unwrap();
        assert!(r.is_within(p.as_fd(), proc_id).unwrap());
        let c = r.resolve(Path::new("/real/conf")).unwrap().unwrap();
        assert!(!r.is_within(c.as_fd(), proc_id).unwrap());
    }
}
