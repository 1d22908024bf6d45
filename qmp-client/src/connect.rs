//! The handshake over any transport, and connectors that spawn the
//! connection task for you.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs, UnixListener, UnixStream};
use tokio::sync::mpsc;
use tracing::{Instrument, debug, warn};

use crate::client::Client;
use crate::config::Config;
use crate::connection::Connection;
use crate::error::{Disconnect, Error, Step};
use crate::shared::Shared;
use crate::transport::Transport;

/// Greets and negotiates over `io`, under [`Config::handshake_timeout`].
///
/// Returns the handle and the connection task, which owns `io`: spawn it
/// (nothing moves until it is polled). Events that arrive during the
/// handshake are kept for [`Client::wait_event`]. Commands can carry file
/// descriptors when the [`Transport`] can (a [`tokio::net::UnixStream`]
/// can); wrap any other `AsyncRead + AsyncWrite` in
/// [`NoFds`](crate::NoFds).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let io = tokio::net::UnixStream::connect("/run/qemu/vm0.qmp").await?;
/// let (client, connection) = qmp_client::handshake(io, &qmp_client::Config::default()).await?;
/// tokio::spawn(connection);
/// client.execute_raw("query-status", None).await?;
/// # Ok(()) }
/// ```
pub async fn handshake<IO>(io: IO, config: &Config) -> Result<(Client, Connection<IO>), Error>
where
    IO: Transport,
{
    handshake_labelled(io, config, "stream").await
}

async fn handshake_labelled<IO>(
    io: IO,
    config: &Config,
    peer: &str,
) -> Result<(Client, Connection<IO>), Error>
where
    IO: Transport,
{
    let shared = Shared::new(config);
    let (ops, receiver) = mpsc::unbounded_channel();
    let span = tracing::debug_span!("qmp_connection", peer = %peer);
    let mut connection = Connection::new(io, config, shared.clone(), receiver, span.clone())
        .map_err(|error| Error::Handshake {
            step: Step::Greeting,
            reason: Disconnect::Io(Arc::new(error)),
        })?;
    let negotiate = std::future::poll_fn(|cx| connection.poll_handshake(cx));
    match within(config.handshake_timeout, negotiate).await {
        Some(Ok(())) => {}
        Some(Err(error)) => return Err(error),
        None => {
            return Err(Error::Timeout {
                step: connection.step(),
                timeout: config.handshake_timeout.unwrap_or_default(),
            });
        }
    }
    let client = Client::new(ops, shared, config, connection.fd_passing());
    span.in_scope(|| debug!(version = %client.greeting().version.qemu, "ready"));
    Ok((client, connection))
}

/// Runs `future` under `timeout`; `None` when it expired.
async fn within<F: Future>(timeout: Option<Duration>, future: F) -> Option<F::Output> {
    match timeout {
        Some(limit) => tokio::time::timeout(limit, future).await.ok(),
        None => Some(future.await),
    }
}

/// Spawns the connection task on the current tokio runtime.
fn spawn<IO>(connection: Connection<IO>)
where
    IO: Transport,
{
    tokio::spawn(
        async move {
            if let Err(error) = connection.await {
                debug!(%error, "connection task ended");
            }
        }
        .in_current_span(),
    );
}

impl Client {
    /// Connects to QEMU's QMP Unix socket at `path` and spawns the
    /// connection task. Commands can carry file descriptors.
    ///
    /// Needs a tokio runtime (with the `time` and `net` drivers).
    pub async fn connect_unix(path: impl AsRef<Path>, config: &Config) -> Result<Client, Error> {
        let path = path.as_ref();
        let step = Step::Connect {
            address: path.display().to_string(),
        };
        let io = match within(config.connect_timeout, UnixStream::connect(path)).await {
            Some(Ok(io)) => io,
            Some(Err(source)) => return Err(Error::Connect { step, source }),
            None => return Err(timeout(step, config.connect_timeout)),
        };
        let (client, connection) =
            handshake_labelled(io, config, &path.display().to_string()).await?;
        spawn(connection);
        Ok(client)
    }

    /// Connects to QEMU's QMP TCP socket at `address` (e.g.
    /// `"127.0.0.1:4444"`) and spawns the connection task.
    pub async fn connect_tcp(
        address: impl ToSocketAddrs + Display,
        config: &Config,
    ) -> Result<Client, Error> {
        let label = address.to_string();
        let step = Step::Connect {
            address: label.clone(),
        };
        let io = match within(config.connect_timeout, TcpStream::connect(address)).await {
            Some(Ok(io)) => io,
            Some(Err(source)) => return Err(Error::Connect { step, source }),
            None => return Err(timeout(step, config.connect_timeout)),
        };
        if let Err(error) = io.set_nodelay(true) {
            warn!(%error, "could not set TCP_NODELAY");
        }
        let (client, connection) = handshake_labelled(io, config, &label).await?;
        spawn(connection);
        Ok(client)
    }

    /// Runs QMP over an already connected stream (for example one end of
    /// [`UnixStream::pair`] whose other end QEMU got as
    /// `-chardev socket,id=mon,fd=N`) and spawns the connection task. A
    /// [`UnixStream`] can carry file descriptors; see [`Transport`].
    pub async fn from_stream<IO>(io: IO, config: &Config) -> Result<Client, Error>
    where
        IO: Transport,
    {
        let (client, connection) = handshake(io, config).await?;
        spawn(connection);
        Ok(client)
    }
}

fn timeout(step: Step, limit: Option<Duration>) -> Error {
    Error::Timeout {
        step,
        timeout: limit.unwrap_or_default(),
    }
}

/// Accept mode: we listen, QEMU connects (`-chardev
/// socket,id=mon,path=...,server=off` or `host=..,port=..,server=off`).
///
/// Bind first, start QEMU, then [`accept`](Listener::accept).
#[derive(Debug)]
pub struct Listener {
    kind: ListenerKind,
    address: String,
}

/// Where a [`Listener`] listens, to name on QEMU's command line
/// (`-chardev socket,path=…` or `host=…,port=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenAddr {
    /// A Unix socket file.
    Unix(PathBuf),
    /// A TCP address, with the real port when port 0 was asked for.
    Tcp(SocketAddr),
}

#[derive(Debug)]
enum ListenerKind {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener, SocketAddr),
}

impl Listener {
    /// Listens on a Unix socket at `path` (which must not exist). The
    /// socket file is removed when the listener is dropped.
    pub fn bind_unix(path: impl AsRef<Path>) -> Result<Listener, Error> {
        let path = path.as_ref().to_path_buf();
        let address = path.display().to_string();
        match UnixListener::bind(&path) {
            Ok(listener) => Ok(Listener {
                kind: ListenerKind::Unix(listener, path),
                address,
            }),
            Err(source) => Err(Error::Connect {
                step: Step::Bind { address },
                source,
            }),
        }
    }

    /// Listens on a TCP address (port 0 picks a free port; see
    /// [`address`](Self::address)).
    pub async fn bind_tcp(address: impl ToSocketAddrs + Display) -> Result<Listener, Error> {
        let label = address.to_string();
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| Error::Connect {
                step: Step::Bind {
                    address: label.clone(),
                },
                source,
            })?;
        let bound = listener.local_addr().map_err(|source| Error::Connect {
            step: Step::Bind { address: label },
            source,
        })?;
        Ok(Listener {
            kind: ListenerKind::Tcp(listener, bound),
            address: bound.to_string(),
        })
    }

    /// The address to give QEMU: the socket path, or `host:port` with the
    /// real port.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The bound address: the socket path, or the TCP address with the
    /// real port.
    pub fn local_addr(&self) -> ListenAddr {
        match &self.kind {
            ListenerKind::Unix(_, path) => ListenAddr::Unix(path.clone()),
            ListenerKind::Tcp(_, address) => ListenAddr::Tcp(*address),
        }
    }

    /// Waits (up to [`Config::connect_timeout`]) for QEMU to connect, runs
    /// the handshake and spawns the connection task.
    pub async fn accept(&self, config: &Config) -> Result<Client, Error> {
        match &self.kind {
            ListenerKind::Unix(listener, _) => {
                let accepted = listener.accept();
                self.serve(config, async { Ok(accepted.await?.0) }).await
            }
            ListenerKind::Tcp(listener, _) => {
                let accepted = listener.accept();
                self.serve(config, async { Ok(accepted.await?.0) }).await
            }
        }
    }

    /// Takes the connection `accepted` gives (under the connect timeout)
    /// and runs QMP over it.
    async fn serve<IO>(
        &self,
        config: &Config,
        accepted: impl Future<Output = std::io::Result<IO>>,
    ) -> Result<Client, Error>
    where
        IO: Transport,
    {
        let step = Step::Accept {
            address: self.address.clone(),
        };
        let io = match within(config.connect_timeout, accepted).await {
            Some(Ok(io)) => io,
            Some(Err(source)) => return Err(Error::Connect { step, source }),
            None => return Err(timeout(step, config.connect_timeout)),
        };
        let (client, connection) = handshake_labelled(io, config, &self.address).await?;
        spawn(connection);
        Ok(client)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let ListenerKind::Unix(_, path) = &self.kind
            && let Err(error) = std::fs::remove_file(path)
        {
            debug!(path = %path.display(), %error, "could not remove the listening socket");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listeners_give_back_their_bound_address() -> Result<(), Box<dyn std::error::Error>> {
        let tcp = Listener::bind_tcp("127.0.0.1:0").await?;
        let ListenAddr::Tcp(address) = tcp.local_addr() else {
            panic!("a TCP listener reported {:?}", tcp.local_addr());
        };
        assert_ne!(address.port(), 0, "the real port, not the one asked for");
        assert_eq!(tcp.address(), address.to_string());

        let dir = tempfile::tempdir()?;
        let path = dir.path().join("qmp.sock");
        let unix = Listener::bind_unix(&path)?;
        assert_eq!(unix.local_addr(), ListenAddr::Unix(path.clone()));
        drop(unix);
        assert!(!path.exists(), "the socket file outlived its listener");
        Ok(())
    }

    #[tokio::test]
    async fn a_listener_that_cannot_bind_says_so_not_that_qemu_never_came() {
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(error) => panic!("{error}"),
        };
        let missing = dir.path().join("no-such-dir").join("qmp.sock");
        let taken = match Listener::bind_tcp("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(error) => panic!("{error}"),
        };
        let failures = [
            Listener::bind_unix(&missing).err(),
            Listener::bind_tcp(taken.address().to_owned()).await.err(),
        ];
        for failure in failures {
            let Some(
                error @ Error::Connect {
                    step: Step::Bind { .. },
                    ..
                },
            ) = failure
            else {
                panic!("expected a bind error, got {failure:?}");
            };
            let message = error.to_string();
            assert!(message.starts_with("failed listening on "), "{message}");
            assert!(!message.contains("waiting for QEMU"), "{message}");
        }
    }
}
