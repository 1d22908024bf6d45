//! The QEMU end of a console socket pair, and passing it to QEMU.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::Command;

use rustix::io::{FdFlags, fcntl_getfd, fcntl_setfd};

use crate::error::{Error, Result};

/// QEMU's end of a console socket pair, from [`Console::socketpair`](crate::Console::socketpair).
///
/// Like every socket std makes, it is close-on-exec, so it leaks into no
/// other child. [`pass_to`](ChardevFd::pass_to) clears that flag in the QEMU
/// child only, and [`chardev_arg`](ChardevFd::chardev_arg) names it on QEMU's
/// command line. **Drop it once QEMU has been spawned**: while the parent
/// holds a copy, the console never sees EOF when QEMU exits.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use qemu_console::{Console, ConsoleConfig};
///
/// let (console, qemu_end) = Console::socketpair(ConsoleConfig::default())?;
/// let mut qemu = std::process::Command::new("qemu-system-x86_64");
/// qemu.args(["-nodefaults", "-display", "none", "-serial", "chardev:con0"])
///     .arg("-chardev")
///     .arg(qemu_end.chardev_arg("con0"));
/// qemu_end.pass_to(&mut qemu);
/// let child = qemu.spawn()?;
/// drop(qemu_end);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ChardevFd {
    fd: OwnedFd,
}

impl ChardevFd {
    /// `socket,id=ID,fd=N`, the value of QEMU's `-chardev` option for this
    /// end. `id` must be a valid QEMU id (letters, digits, `-`, `.`, `_`).
    pub fn chardev_arg(&self, id: &str) -> String {
        format!("socket,id={id},fd={}", self.fd.as_raw_fd())
    }

    /// Makes `command`'s child inherit this descriptor under the same
    /// number, by clearing close-on-exec between fork and exec (in the child
    /// only, so concurrent spawns do not inherit it). Keep `self` alive
    /// until the child has been spawned.
    pub fn pass_to(&self, command: &mut Command) {
        use std::os::unix::process::CommandExt as _;
        let raw = self.fd.as_raw_fd();
        // SAFETY: the closure runs between fork and exec and only calls
        // fcntl, which is async-signal-safe; it allocates nothing and takes
        // no lock. `raw` stays open in the parent until spawn returns, as
        // documented, so the child has it under the same number.
        unsafe {
            command.pre_exec(move || clear_cloexec(BorrowedFd::borrow_raw(raw)));
        }
    }
}

impl AsFd for ChardevFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for ChardevFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<ChardevFd> for OwnedFd {
    fn from(end: ChardevFd) -> Self {
        end.fd
    }
}

/// Clears close-on-exec on `fd`. Async-signal-safe: usable in a
/// `pre_exec` hook to hand exactly one descriptor to one child.
///
/// # Errors
///
/// The `fcntl` error, e.g. for a closed descriptor.
pub fn clear_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = fcntl_getfd(fd)?;
    fcntl_setfd(fd, flags.difference(FdFlags::CLOEXEC))?;
    Ok(())
}

/// A connected pair: ours (a std stream) and QEMU's.
pub(crate) fn socketpair() -> Result<(UnixStream, ChardevFd)> {
    let (ours, theirs) = UnixStream::pair().map_err(Error::SocketPair)?;
    Ok((ours, ChardevFd { fd: theirs.into() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qemu_end_is_close_on_exec_until_cleared() -> io::Result<()> {
        let (_ours, theirs) = socketpair().map_err(io::Error::other)?;
        assert!(fcntl_getfd(theirs.as_fd())?.contains(FdFlags::CLOEXEC));
        assert_eq!(
            theirs.chardev_arg("con0"),
            format!("socket,id=con0,fd={}", theirs.as_raw_fd())
        );
        clear_cloexec(theirs.as_fd())?;
        assert!(!fcntl_getfd(theirs.as_fd())?.contains(FdFlags::CLOEXEC));
        Ok(())
    }
}
