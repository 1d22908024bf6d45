//! `InheritFd`: a descriptor handed to the QEMU child under its own number.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt as _;
use std::process::Command;

use rustix::io::{FdFlags, fcntl_getfd, fcntl_setfd};

use crate::options::{AddFd, Chardev};

/// A descriptor for a child process to inherit under the same number, as
/// QEMU's `fd=N` options expect (`-chardev socket,fd=N`, `-add-fd fd=N`).
///
/// It owns the descriptor. Like everything std opens, the descriptor is
/// close-on-exec, so no other child inherits it;
/// [`pass_to`](Self::pass_to) *moves* it into the command, which clears
/// that flag in its own child only and closes the parent's copy when the
/// command is dropped. Since the command owns it, the number in the child
/// cannot name another file.
///
/// ```no_run
/// # fn demo() -> std::io::Result<()> {
/// use qemu_cmdline::{Cmdline, InheritFd, Mon};
///
/// let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
/// let theirs = InheritFd::from(theirs);
/// let mut cmdline = Cmdline::new();
/// cmdline.chardev(theirs.chardev("mon")).mon(Mon::qmp("mon"));
/// let mut command = cmdline.command().map_err(std::io::Error::other)?;
/// theirs.pass_to(&mut command);
/// let child = command.spawn()?;
/// drop(command); // closes our copy of QEMU's end: QEMU's exit is then EOF on `ours`
/// # drop((ours, child)); Ok(()) }
/// ```
#[derive(Debug)]
pub struct InheritFd {
    fd: OwnedFd,
}

impl InheritFd {
    /// The number the child sees, for its command line.
    pub fn number(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// `-chardev socket,id=ID,fd=N` for this descriptor.
    pub fn chardev(&self, id: impl Into<String>) -> Chardev {
        Chardev::socket_fd(id, self.number())
    }

    /// `-add-fd fd=N,set=SET` for this descriptor.
    pub fn add_fd(&self, set: i64) -> AddFd {
        AddFd::new(self.number(), set)
    }

    /// A new descriptor for the same open file (close-on-exec, under
    /// another number), e.g. to hand one file to several launches.
    ///
    /// # Errors
    ///
    /// The `dup` error (out of descriptors).
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            fd: self.fd.try_clone()?,
        })
    }

    /// Moves the descriptor into `command`: its child inherits it under
    /// [`number`](Self::number) (close-on-exec is cleared between fork and
    /// exec, in that child only), and the parent's copy is closed when
    /// `command` is dropped. Hooks added to `command` before this one run
    /// first, so a hook that marks every descriptor close-on-exec goes
    /// before.
    pub fn pass_to(self, command: &mut Command) {
        let fd = self.fd;
        // SAFETY: the hook runs in the child between fork and exec, where
        // only async-signal-safe work is allowed: it makes two fcntl calls
        // on a descriptor it owns (the command keeps it open until it is
        // dropped, so the number is this file in the child), and neither
        // allocates nor locks.
        unsafe {
            command.pre_exec(move || clear_cloexec(fd.as_fd()));
        }
    }
}

/// Clears close-on-exec on `fd`, with async-signal-safe calls only.
fn clear_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = fcntl_getfd(fd)?;
    fcntl_setfd(fd, flags.difference(FdFlags::CLOEXEC))?;
    Ok(())
}

impl From<OwnedFd> for InheritFd {
    fn from(fd: OwnedFd) -> Self {
        Self { fd }
    }
}

impl From<std::os::unix::net::UnixStream> for InheritFd {
    fn from(stream: std::os::unix::net::UnixStream) -> Self {
        Self { fd: stream.into() }
    }
}

impl From<std::fs::File> for InheritFd {
    fn from(file: std::fs::File) -> Self {
        Self { fd: file.into() }
    }
}

impl From<InheritFd> for OwnedFd {
    fn from(inherit: InheritFd) -> Self {
        inherit.fd
    }
}

impl AsFd for InheritFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for InheritFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    /// Whether `number` is open in this process.
    fn open_here(number: RawFd) -> bool {
        std::path::Path::new(&format!("/proc/self/fd/{number}")).exists()
    }

    fn shell_sees(number: RawFd, command: &mut Command) -> io::Result<bool> {
        let status = command
            .arg("-c")
            .arg(format!("test -e /proc/self/fd/{number}"))
            .status()?;
        Ok(status.success())
    }

    #[test]
    fn only_the_command_it_was_passed_to_inherits_it() -> io::Result<()> {
        let (_ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let theirs = InheritFd::from(theirs);
        let number = theirs.number();
        assert!(fcntl_getfd(theirs.as_fd())?.contains(FdFlags::CLOEXEC));
        assert!(
            !shell_sees(number, &mut Command::new("sh"))?,
            "fd {number} leaked into an unrelated child"
        );
        let mut command = Command::new("sh");
        theirs.pass_to(&mut command);
        assert!(
            shell_sees(number, &mut command)?,
            "the child lacks fd {number}"
        );
        assert!(open_here(number), "the command holds the parent's copy");
        drop(command);
        assert!(!open_here(number), "the parent's copy outlived the command");
        Ok(())
    }

    #[test]
    fn names_itself_on_the_command_line() -> io::Result<()> {
        let file = InheritFd::from(tempfile::tempfile()?);
        let clone = file.try_clone()?;
        assert_ne!(clone.number(), file.number());
        let number = file.number();
        assert_eq!(
            file.chardev("con0").render().map_err(io::Error::other)?,
            OsStr::new(&format!("socket,id=con0,fd={number}"))
        );
        assert_eq!(
            file.add_fd(3)
                .opaque("a,b")
                .render()
                .map_err(io::Error::other)?,
            OsStr::new(&format!("fd={number},set=3,opaque=a,,b"))
        );
        Ok(())
    }
}
