//! The guardian of a wrapped QEMU: kills QEMU's process group when this
//! process dies.
//!
//! `PR_SET_PDEATHSIG` reaches only the process we fork. With a wrapper
//! (`strace -f`, `taskset`, a shell script) that is the wrapper; the death
//! signal is cleared in the QEMU the wrapper forks, so QEMU would outlive
//! a crashed supervisor. For each wrapped launch we therefore fork one
//! more small process, the guardian: it joins QEMU's process group, keeps
//! nothing open but the read end of a pipe whose write end only this
//! process holds, and blocks on it. When this process dies, however it
//! dies, the kernel closes the write end, the read returns, and the
//! guardian SIGKILLs the group (itself included). When the machine ends
//! normally, the guardian is killed and reaped like QEMU.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use rustix::process::{Pid, PidfdFlags, Signal};

use crate::child_fds::{self, Sweep};
use crate::reap;

/// A running guardian: our child. Dropping it kills and reaps it.
#[derive(Debug)]
pub(crate) struct Guardian {
    pidfd: Option<OwnedFd>,
}

/// Forks the guardian of the process group `group`.
pub(crate) fn start(group: Pid) -> io::Result<Guardian> {
    let alive = alive_pipe()?.as_raw_fd();
    // SAFETY: fork in a multithreaded process: the child runs `guard`,
    // which makes only async-signal-safe system calls (no allocation, no
    // lock) and never returns.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: we are the forked child; see `guard`.
        unsafe { guard(group, alive) }
    }
    let pid = Pid::from_raw(pid).ok_or_else(io::Error::last_os_error)?;
    // The guardian is our unreaped child: its pid cannot be reused yet.
    let pidfd = match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
        Ok(pidfd) => pidfd,
        Err(error) => {
            let _killed = rustix::process::kill_process(pid, Signal::KILL);
            let _reaped =
                rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
            return Err(error.into());
        }
    };
    Ok(Guardian { pidfd: Some(pidfd) })
}

/// The guardian's whole life, in the forked child.
///
/// # Safety
///
/// Only in a child just forked from this process, which it ends.
unsafe fn guard(group: Pid, alive: RawFd) -> ! {
    let code = match watch(group, alive) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    // SAFETY: ends the forked child without running this process's exit
    // handlers or destructors (they belong to the parent).
    unsafe { libc::_exit(code) }
}

fn watch(group: Pid, alive: RawFd) -> io::Result<()> {
    // Nothing but the pipe: holding a copy of another machine's socket
    // would hide its EOF.
    child_fds::sweep(0, &[alive], Sweep::Close)?;
    rustix::process::setpgid(None, Some(group))?;
    // SAFETY: `alive` is kept open by the sweep above.
    let alive = unsafe { BorrowedFd::borrow_raw(alive) };
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(alive, &mut byte) {
            // EOF: the supervisor is gone. Nobody ever writes.
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    rustix::process::kill_process_group(group, Signal::KILL)?;
    Ok(())
}

/// The read end of the pipe that stays open exactly as long as this
/// process: its write end is never closed (and close-on-exec, so no child
/// keeps it).
fn alive_pipe() -> io::Result<BorrowedFd<'static>> {
    static ALIVE: OnceLock<Option<(OwnedFd, OwnedFd)>> = OnceLock::new();
    let pipe =
        ALIVE.get_or_init(
            || match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
                Ok(ends) => Some(ends),
                Err(error) => {
                    tracing::error!(%error, "could not create the guardian pipe");
                    None
                }
            },
        );
    pipe.as_ref()
        .map(|(read, _write)| read.as_fd())
        .ok_or_else(|| io::Error::other("the guardian pipe could not be created"))
}

impl Drop for Guardian {
    fn drop(&mut self) {
        if let Some(pidfd) = self.pidfd.take() {
            if let Err(error) = rustix::process::pidfd_send_signal(&pidfd, Signal::KILL) {
                tracing::debug!(%error, "could not kill the guardian");
            }
            reap::pidfd_later(pidfd);
        }
    }
}
