//! The client's own driver for a Unix stream socket, registered for
//! readability only.
//!
//! A tokio socket is registered for writability too, so the runtime wakes
//! up each time the peer has read what we wrote. QEMU reads a command one
//! byte per `recvmsg`; the write space it frees comes back as its own
//! wake-up and `epoll_wait` about every other command, before the reply's.
//! This driver writes straight to the socket (its buffer is nearly always
//! free) and watches writability, through a duplicate descriptor, only
//! while a write would block.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use rustix::net::{RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

use crate::transport::Transport;

/// A connected, non-blocking Unix stream socket: reads wait for
/// readability, writes go straight out.
#[derive(Debug)]
pub(crate) struct UnixSocket {
    read: AsyncFd<OwnedFd>,
    /// A duplicate registered for writability, only while writes block.
    write: Option<AsyncFd<OwnedFd>>,
}

impl UnixSocket {
    /// Registers `fd`, a connected non-blocking Unix stream socket, for
    /// readability. Needs a tokio runtime with I/O enabled.
    fn new(fd: OwnedFd) -> io::Result<Self> {
        Ok(Self {
            read: register(fd, Interest::READABLE).map_err(|e| e.into_parts().1)?,
            write: None,
        })
    }

    /// Sends with `send` (one non-blocking call), waiting for writability
    /// through the duplicate registration only when it would block.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        mut send: impl FnMut(BorrowedFd<'_>) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            match send(self.read.get_ref().as_fd()) {
                Ok(n) => {
                    // Room again: stop watching for it.
                    self.write = None;
                    return Poll::Ready(Ok(n));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Poll::Ready(Err(error)),
            }
            if self.write.is_none() {
                // Registering reports the socket writable at once if it
                // already is, so no wake-up is lost in between.
                let duplicate = self.read.get_ref().try_clone()?;
                let registered =
                    register(duplicate, Interest::WRITABLE).map_err(|e| e.into_parts().1)?;
                self.write = Some(registered);
            }
            let Some(registration) = self.write.as_ref() else {
                continue;
            };
            let mut ready = std::task::ready!(registration.poll_write_ready(cx))?;
            // The next send says whether there is room; if not, the next
            // edge wakes us.
            ready.clear_ready();
        }
    }

    /// Reads what is there into `buf`, like `AsyncRead::poll_read`.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut ready = std::task::ready!(self.read.poll_read_ready(cx))?;
            // SAFETY: `recv` writes only initialised bytes, and only those
            // it reports are marked initialised below.
            let unfilled: &mut [MaybeUninit<u8>] = unsafe { buf.unfilled_mut() };
            let wanted = unfilled.len();
            match rustix::net::recv(ready.get_inner(), unfilled, RecvFlags::empty()) {
                Ok(((filled, _), _)) => {
                    let n = filled.len();
                    // SAFETY: `recv` initialised the first `n` bytes.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    if n > 0 && n < wanted {
                        // A short read drained the socket: skip the read
                        // that would only say so (as tokio's sockets do).
                        ready.clear_ready();
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
                Err(rustix::io::Errno::INTR) => {}
                Err(errno) => return Poll::Ready(Err(errno.into())),
            }
        }
    }

    /// Writes a prefix of `bytes`, like `AsyncWrite::poll_write`.
    fn poll_write(&mut self, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_send(cx, |fd| {
            rustix::net::send(fd, bytes, SendFlags::NOSIGNAL).map_err(io::Error::from)
        })
    }

    /// Writes a prefix of `bytes` with `fds` attached to its first byte.
    fn poll_write_with_fds(
        &mut self,
        cx: &mut Context<'_>,
        bytes: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, |fd| send_with_fds(fd, bytes, fds))
    }

    /// Ends our direction of the stream.
    fn shutdown(&self) -> io::Result<()> {
        rustix::net::shutdown(self.read.get_ref(), rustix::net::Shutdown::Write)
            .map_err(io::Error::from)
    }
}

/// Registers `fd` with the runtime's reactor for `interest`.
fn register(
    fd: OwnedFd,
    interest: Interest,
) -> Result<AsyncFd<OwnedFd>, tokio::io::unix::AsyncFdRegisterError<OwnedFd>> {
    // SAFETY: the `OwnedFd` is moved into the `AsyncFd`, which keeps it
    // open, and always returns the same descriptor, until it is dropped.
    unsafe { AsyncFd::register_with_interest(fd, interest) }
}

/// One non-blocking `sendmsg` of `bytes` with `fds` (SCM_RIGHTS) on the
/// first byte.
pub(crate) fn send_with_fds(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many file descriptors for one message",
        ));
    }
    rustix::net::sendmsg(
        socket,
        &[IoSlice::new(bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map_err(io::Error::from)
}

/// What a connection runs over: our own driver for the Unix socket a
/// transport handed over ([`Transport::into_unix_socket`]), or the
/// transport itself.
#[derive(Debug)]
pub(crate) enum Driven<IO> {
    Unix(UnixSocket),
    Given(IO),
}

impl<IO: Transport> Driven<IO> {
    /// Takes the transport's socket to drive it ourselves when it hands
    /// one over, else keeps the transport.
    pub(crate) fn new(io: IO) -> io::Result<Self> {
        match io.into_unix_socket() {
            Ok(fd) => UnixSocket::new(fd).map(Driven::Unix),
            Err(io) => Ok(Driven::Given(io)),
        }
    }
}

impl<IO: Transport> AsyncRead for Driven<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Driven::Unix(socket) => socket.poll_read(cx, buf),
            Driven::Given(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl<IO: Transport> AsyncWrite for Driven<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Driven::Unix(socket) => socket.poll_write(cx, buf),
            Driven::Given(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Driven::Unix(_) => Poll::Ready(Ok(())),
            Driven::Given(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Driven::Unix(socket) => Poll::Ready(socket.shutdown()),
            Driven::Given(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}

impl<IO: Transport> Transport for Driven<IO> {
    fn can_pass_fds(&self) -> bool {
        match self {
            Driven::Unix(_) => true,
            Driven::Given(io) => io.can_pass_fds(),
        }
    }

    fn poll_write_with_fds(
        &mut self,
        cx: &mut Context<'_>,
        bytes: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Poll<io::Result<usize>> {
        match self {
            Driven::Unix(socket) => socket.poll_write_with_fds(cx, bytes, fds),
            Driven::Given(io) => io.poll_write_with_fds(cx, bytes, fds),
        }
    }
}
