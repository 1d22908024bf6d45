//! The console's socket pair: our end, and QEMU's end to inherit.

use std::os::unix::net::UnixStream;

use qemu_cmdline::InheritFd;

use crate::error::{Error, Result};

/// A connected pair: ours (a std stream) and QEMU's, which stays
/// close-on-exec until [`InheritFd::pass_to`] hands it to one child.
pub(crate) fn socketpair() -> Result<(UnixStream, InheritFd)> {
    let (ours, theirs) = UnixStream::pair().map_err(Error::SocketPair)?;
    Ok((ours, InheritFd::from(theirs)))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use rustix::io::{FdFlags, fcntl_getfd};

    use super::*;

    #[test]
    fn the_qemu_end_is_close_on_exec() -> std::io::Result<()> {
        let (_ours, theirs) = socketpair().map_err(std::io::Error::other)?;
        assert!(fcntl_getfd(theirs.as_fd())?.contains(FdFlags::CLOEXEC));
        Ok(())
    }
}
