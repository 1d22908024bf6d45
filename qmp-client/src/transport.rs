//! What the client runs over, and whether that can carry file descriptors.
//!
//! Passing fds is a property of the transport's type: [`Transport`] says
//! whether a value can carry them and writes them. Unix sockets can; a
//! wrapper around one opts in by implementing the trait; anything else is
//! wrapped in [`NoFds`] (or implements the trait with its defaults). A
//! client whose transport cannot carry fds refuses a command with fds at
//! once, without sending anything.
//!
//! The fds ride on the first byte of the command's own bytes, in the same
//! `sendmsg` (libvirt's way; Python's qemu.qmp sends a separate one-byte
//! message), so QEMU holds them when it reads the command.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::UnixStream;

/// A byte stream a QMP connection runs over.
///
/// Implemented for [`tokio::net::UnixStream`] (which carries fds),
/// [`tokio::net::TcpStream`], [`tokio::io::DuplexStream`], boxes of
/// transports, and [`NoFds`] around any `AsyncRead + AsyncWrite`.
///
/// A wrapper around a Unix socket (for logging, metering…) keeps fd
/// passing by implementing both methods, forwarding to the socket:
///
/// ```
/// use std::io;
/// use std::os::fd::BorrowedFd;
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
/// use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
///
/// struct Metered(tokio::net::UnixStream);
///
/// impl qmp_client::Transport for Metered {
///     fn can_pass_fds(&self) -> bool {
///         true
///     }
///     fn poll_write_with_fds(
///         &mut self,
///         cx: &mut Context<'_>,
///         bytes: &[u8],
///         fds: &[BorrowedFd<'_>],
///     ) -> Poll<io::Result<usize>> {
///         self.0.poll_write_with_fds(cx, bytes, fds)
///     }
/// }
/// # impl AsyncRead for Metered {
/// #     fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>)
/// #         -> Poll<io::Result<()>> { Pin::new(&mut self.0).poll_read(cx, buf) }
/// # }
/// # impl AsyncWrite for Metered {
/// #     fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8])
/// #         -> Poll<io::Result<usize>> { Pin::new(&mut self.0).poll_write(cx, buf) }
/// #     fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
/// #         Pin::new(&mut self.0).poll_flush(cx) }
/// #     fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
/// #         Pin::new(&mut self.0).poll_shutdown(cx) }
/// # }
/// use qmp_client::Transport as _;
/// ```
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Whether [`poll_write_with_fds`](Self::poll_write_with_fds) works.
    /// Read once, when the connection is set up.
    fn can_pass_fds(&self) -> bool {
        false
    }

    /// Writes a prefix of `bytes` with `fds` attached to its first byte,
    /// like `poll_write`. Called only when
    /// [`can_pass_fds`](Self::can_pass_fds) is true, at the first byte of a
    /// command. The default fails with [`io::ErrorKind::Unsupported`].
    fn poll_write_with_fds(
        &mut self,
        cx: &mut Context<'_>,
        bytes: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Poll<io::Result<usize>> {
        let _ = (cx, bytes, fds);
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this transport cannot carry file descriptors",
        )))
    }

    /// Hands over the connected, non-blocking Unix stream socket this
    /// transport is, for the connection to drive itself; the default keeps
    /// the transport (`Err(self)`). A tokio socket wakes the runtime
    /// whenever the peer has read what was written; the connection's own
    /// driver watches only for readability and so saves a wake-up on
    /// about every other command. [`tokio::net::UnixStream`] hands over a
    /// duplicate of its descriptor.
    fn into_unix_socket(self) -> Result<OwnedFd, Self>
    where
        Self: Sized,
    {
        Err(self)
    }
}

impl Transport for UnixStream {
    fn can_pass_fds(&self) -> bool {
        true
    }

    fn poll_write_with_fds(
        &mut self,
        cx: &mut Context<'_>,
        bytes: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Poll<io::Result<usize>> {
        send_with_fds(self, cx, bytes, fds)
    }

    fn into_unix_socket(self) -> Result<OwnedFd, Self> {
        // Dropping `self` deregisters and closes its own descriptor.
        self.as_fd().try_clone_to_owned().map_err(|_| self)
    }
}

impl Transport for tokio::net::TcpStream {}

impl Transport for tokio::io::DuplexStream {}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn can_pass_fds(&self) -> bool {
        (**self).can_pass_fds()
    }

    fn poll_write_with_fds(
        &mut self,
        cx: &mut Context<'_>,
        bytes: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Poll<io::Result<usize>> {
        (**self).poll_write_with_fds(cx, bytes, fds)
    }
}

/// Any `AsyncRead + AsyncWrite` as a [`Transport`] that carries no fds:
/// `Client::from_stream(NoFds(stream), &config)`.
#[derive(Debug, Default)]
pub struct NoFds<IO>(pub IO);

impl<IO> Transport for NoFds<IO> where IO: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<IO: AsyncRead + Unpin> AsyncRead for NoFds<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for NoFds<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// `sendmsg` with SCM_RIGHTS on a tokio Unix socket.
fn send_with_fds(
    stream: &UnixStream,
    cx: &mut Context<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Poll<io::Result<usize>> {
    loop {
        std::task::ready!(stream.poll_write_ready(cx))?;
        let sent = stream.try_io(Interest::WRITABLE, || {
            crate::unix::send_with_fds(stream.as_fd(), bytes, fds)
        });
        match sent {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            sent => return Poll::Ready(sent),
        }
    }
}
