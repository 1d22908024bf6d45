//! Descriptor hygiene in a freshly forked child, with async-signal-safe
//! calls only (no allocation, no lock): `close_range`, or a walk of
//! `/proc/self/fd` into a stack buffer on kernels without it.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use rustix::fs::{Mode, OFlags, RawDir};
use rustix::io::{FdFlags, fcntl_setfd};

/// What to do with the descriptors swept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sweep {
    /// Mark them close-on-exec: they vanish at `exec`, whoever opened them
    /// (a C library in this process may not use `O_CLOEXEC`).
    CloseOnExec,
    /// Close them now (a child that never execs).
    Close,
}

/// Applies `sweep` to every descriptor from `first` up, except those in
/// `keep`. Async-signal-safe.
pub(crate) fn sweep(first: RawFd, keep: &[RawFd], sweep: Sweep) -> io::Result<()> {
    let mut from = first;
    // `keep` is tiny; visit its members in order without sorting (no
    // allocation): each round takes the lowest one not yet passed.
    loop {
        let next_kept = keep.iter().copied().filter(|&fd| fd >= from).min();
        let until = next_kept.map_or(RawFd::MAX, |fd| fd - 1);
        if until >= from {
            sweep_range(from, until, keep, sweep)?;
        }
        match next_kept {
            Some(fd) if fd < RawFd::MAX => from = fd + 1,
            _ => return Ok(()),
        }
    }
}

/// `close_range(first, last)`, or the `/proc` walk where the kernel lacks
/// it (before Linux 5.9, or 5.11 for the close-on-exec flag).
fn sweep_range(first: RawFd, last: RawFd, keep: &[RawFd], sweep: Sweep) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    let flags = match sweep {
        Sweep::CloseOnExec => CLOSE_RANGE_CLOEXEC,
        Sweep::Close => 0,
    };
    // SAFETY: a raw system call with integer arguments; closing descriptors
    // this process (a forked child about to exec or exit) owns.
    let result = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first.unsigned_abs(),
            last.unsigned_abs(),
            flags,
        )
    };
    if result == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::ENOSYS | libc::EINVAL) => walk_proc(first, last, keep, sweep),
        _ => Err(error),
    }
}

/// The fallback: lists `/proc/self/fd` with `getdents64` into a stack
/// buffer and sweeps each descriptor in range.
pub(crate) fn walk_proc(first: RawFd, last: RawFd, keep: &[RawFd], sweep: Sweep) -> io::Result<()> {
    let dir = rustix::fs::open(
        c"/proc/self/fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let dir_fd = dir.as_raw_fd();
    let mut buffer = [MaybeUninit::<u8>::uninit(); 2048];
    let mut entries = RawDir::new(&dir, &mut buffer);
    while let Some(entry) = entries.next() {
        let Some(fd) = fd_number(entry?.file_name().to_bytes()) else {
            continue; // `.` and `..`
        };
        if fd < first || fd > last || fd == dir_fd || keep.contains(&fd) {
            continue;
        }
        match sweep {
            Sweep::CloseOnExec => {
                // SAFETY: `fd` is open in this process (it was listed); a
                // race with a close only makes fcntl fail with EBADF.
                let fd = unsafe { BorrowedFd::borrow_raw(fd) };
                let _marked = fcntl_setfd(fd, FdFlags::CLOEXEC);
            }
            Sweep::Close => {
                // SAFETY: the forked child owns its copies of every
                // descriptor and uses none of these again.
                let _closed = unsafe { libc::close(fd) };
            }
        }
    }
    Ok(())
}

/// A directory entry name that is a descriptor number, parsed without
/// allocating.
fn fd_number(name: &[u8]) -> Option<RawFd> {
    if name.is_empty() {
        return None;
    }
    name.iter().try_fold(0 as RawFd, |number, &digit| {
        let digit = RawFd::from(digit.checked_sub(b'0').filter(|d| *d <= 9)?);
        number.checked_mul(10)?.checked_add(digit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_names_parse_without_allocating() {
        assert_eq!(fd_number(b"17"), Some(17));
        assert_eq!(fd_number(b"."), None);
        assert_eq!(fd_number(b""), None);
        assert_eq!(fd_number(b"99999999999"), None);
    }
}

#[cfg(test)]
mod child_tests {
    use std::os::fd::{AsFd, AsRawFd};
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    use rustix::io::fcntl_getfd;

    use super::*;

    /// Runs `sh` with `hook` between fork and exec, and says whether the
    /// shell saw descriptor `fd`.
    fn child_sees(fd: RawFd, hook: fn() -> io::Result<()>) -> io::Result<bool> {
        let mut command = Command::new("sh");
        command.arg("-c").arg(format!("test -e /proc/self/fd/{fd}"));
        // SAFETY: the hooks tested here are async-signal-safe (that is
        // their point); they only touch descriptors.
        unsafe {
            command.pre_exec(hook);
        }
        Ok(command.status()?.success())
    }

    #[test]
    fn descriptors_opened_without_cloexec_do_not_reach_the_child() -> io::Result<()> {
        let (read, _write) = rustix::pipe::pipe()?;
        // As a C library might open it: inheritable.
        fcntl_setfd(read.as_fd(), FdFlags::empty())?;
        assert!(!fcntl_getfd(read.as_fd())?.contains(FdFlags::CLOEXEC));
        let fd = read.as_raw_fd();
        assert!(
            child_sees(fd, || Ok(()))?,
            "the control child lacks fd {fd}"
        );
        assert!(
            !child_sees(fd, || sweep(3, &[], Sweep::CloseOnExec))?,
            "close_range left fd {fd} open"
        );
        assert!(
            !child_sees(fd, || walk_proc(3, RawFd::MAX, &[], Sweep::CloseOnExec))?,
            "the /proc walk left fd {fd} open"
        );
        Ok(())
    }
}
