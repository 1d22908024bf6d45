//! Passing file descriptors with a command (SCM_RIGHTS on Unix sockets).
//!
//! The fds ride on the first byte of the command's own bytes, in the same
//! `sendmsg` (libvirt's way; Python's qemu.qmp sends a separate one-byte
//! message), so QEMU holds them when it reads the command.

use std::any::Any;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::task::{Context, Poll};

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use tokio::io::Interest;
use tokio::net::UnixStream;

/// Writes bytes with fds attached to the first one.
pub(crate) type SendFds<IO> =
    fn(&mut IO, &mut Context<'_>, &[u8], &[OwnedFd]) -> Poll<io::Result<usize>>;

/// The fd-passing writer for `IO`, if `IO` can carry fds.
pub(crate) fn send_fds_for<IO: 'static>() -> Option<SendFds<IO>> {
    if std::any::TypeId::of::<IO>() == std::any::TypeId::of::<UnixStream>() {
        Some(send_any::<IO>)
    } else {
        None
    }
}

fn send_any<IO: 'static>(
    io: &mut IO,
    cx: &mut Context<'_>,
    bytes: &[u8],
    fds: &[OwnedFd],
) -> Poll<io::Result<usize>> {
    match (io as &mut dyn Any).downcast_mut::<UnixStream>() {
        Some(stream) => send_unix(stream, cx, bytes, fds),
        None => Poll::Ready(Err(io::Error::from(io::ErrorKind::Unsupported))),
    }
}

fn send_unix(
    stream: &UnixStream,
    cx: &mut Context<'_>,
    bytes: &[u8],
    fds: &[OwnedFd],
) -> Poll<io::Result<usize>> {
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
    let mut space =
        vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(borrowed.len()))];
    loop {
        std::task::ready!(stream.poll_write_ready(cx))?;
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(&borrowed)) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "too many file descriptors for one message",
            )));
        }
        let sent = stream.try_io(Interest::WRITABLE, || {
            rustix::net::sendmsg(
                stream,
                &[IoSlice::new(bytes)],
                &mut control,
                SendFlags::NOSIGNAL,
            )
            .map_err(io::Error::from)
        });
        match sent {
            Ok(n) => return Poll::Ready(Ok(n)),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            Err(error) => return Poll::Ready(Err(error)),
        }
    }
}
