//! Connectors: a Unix socket path, TCP, an already connected Unix socket.

use std::future::Future;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;

use crate::config::ConsoleConfig;
use crate::console::Console;
use crate::error::{Error, Result};
use qemu_cmdline::InheritFd;

use crate::socketpair::socketpair;

/// The longest pause between two connection attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_millis(100);

impl Console {
    /// Connects to QEMU's `-chardev socket,path=…,server=on` and attaches.
    /// Retries while the socket does not exist yet or refuses connections
    /// (QEMU still starting), until `timeout`.
    ///
    /// With `wait=off`, QEMU drops what the guest prints before the
    /// connection: prefer [`Console::socketpair`] or start QEMU with `-S`.
    ///
    /// # Errors
    ///
    /// [`Error::ConnectTimeout`], [`Error::Connect`] for errors retrying
    /// cannot fix, and those of [`attach`](Console::attach).
    pub async fn connect_unix(
        path: impl AsRef<Path>,
        config: ConsoleConfig,
        timeout: Duration,
    ) -> Result<Self> {
        let path = path.as_ref();
        let stream = retry(path.display().to_string(), timeout, || {
            UnixStream::connect(path)
        })
        .await?;
        Self::attach(stream, config)
    }

    /// Connects to QEMU's `-chardev socket,host=…,port=…,server=on` and
    /// attaches, retrying refused connections until `timeout`.
    ///
    /// # Errors
    ///
    /// As [`connect_unix`](Console::connect_unix).
    pub async fn connect_tcp(
        addr: SocketAddr,
        config: ConsoleConfig,
        timeout: Duration,
    ) -> Result<Self> {
        let stream = retry(addr.to_string(), timeout, || TcpStream::connect(addr)).await?;
        // Keystrokes should not wait for Nagle.
        stream.set_nodelay(true).map_err(Error::Socket)?;
        Self::attach(stream, config)
    }

    /// Attaches to an already connected Unix stream socket, e.g. one end of
    /// a socket pair made by the caller.
    ///
    /// # Errors
    ///
    /// [`Error::Socket`] when the socket cannot be made non-blocking, and
    /// those of [`attach`](Console::attach).
    pub fn from_std_unix(
        stream: std::os::unix::net::UnixStream,
        config: ConsoleConfig,
    ) -> Result<Self> {
        stream.set_nonblocking(true).map_err(Error::Socket)?;
        let stream = UnixStream::from_std(stream).map_err(Error::Socket)?;
        Self::attach(stream, config)
    }

    /// Makes a socket pair, attaches to one end and returns the other for
    /// QEMU: name it with [`InheritFd::chardev`] (`-chardev
    /// socket,id=ID,fd=N`) and hand it over with [`InheritFd::pass_to`].
    /// Nothing QEMU writes is lost: there is no connection to wait for.
    ///
    /// # Errors
    ///
    /// [`Error::SocketPair`], and those of [`from_std_unix`](Console::from_std_unix).
    pub fn socketpair(config: ConsoleConfig) -> Result<(Self, InheritFd)> {
        let (ours, theirs) = socketpair()?;
        Ok((Self::from_std_unix(ours, config)?, theirs))
    }
}

/// Calls `connect` until it succeeds, fails for good, or `timeout` passes.
async fn retry<S, F, Fut>(target: String, timeout: Duration, mut connect: F) -> Result<S>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = io::Result<S>>,
{
    let started = Instant::now();
    let deadline = crate::deadline::deadline(started, timeout);
    let mut delay = Duration::from_millis(5);
    loop {
        let last_error = match tokio::time::timeout_at(deadline, connect()).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(error)) if retryable(&error) => error,
            Ok(Err(source)) => return Err(Error::Connect { target, source }),
            Err(_) => io::Error::new(
                ErrorKind::TimedOut,
                "the connection attempt did not complete",
            ),
        };
        if Instant::now() + delay >= deadline {
            return Err(Error::ConnectTimeout {
                target,
                waited: started.elapsed(),
                last_error,
            });
        }
        tracing::trace!(%target, error = %last_error, "console socket not ready, retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
}

/// Errors of a socket QEMU has not created or not started listening on yet.
fn retryable(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::NotFound | ErrorKind::ConnectionRefused | ErrorKind::TimedOut
    )
}
