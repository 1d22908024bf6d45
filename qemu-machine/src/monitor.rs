//! The QMP monitor's transport: a socketpair, or a `qmp_client::Listener`
//! QEMU connects to.

use std::os::unix::net::UnixStream;
use std::path::Path;

use qemu_cmdline::{Chardev, InheritFd};
use qmp_client::{ListenAddr, Listener};

use crate::error::{Error, LaunchFailure};
use crate::options::MonitorAddress;

/// Our side of the monitor, made before QEMU starts.
#[derive(Debug)]
pub(crate) enum MonitorEnd {
    /// A socketpair: `theirs` goes to QEMU at the spawn.
    Pair {
        ours: UnixStream,
        theirs: Option<InheritFd>,
    },
    /// A listening socket QEMU connects to (removed when dropped).
    Listen(Listener),
}

impl MonitorEnd {
    /// Creates the socketpair or binds the listener. Relative Unix paths
    /// are resolved in `sock_dir`.
    pub(crate) async fn prepare(address: &MonitorAddress, sock_dir: &Path) -> Result<Self, Error> {
        match address {
            MonitorAddress::SocketPair => {
                let (ours, theirs) = UnixStream::pair().map_err(|source| Error::Setup {
                    what: "create the QMP socketpair",
                    source,
                })?;
                Ok(Self::Pair {
                    ours,
                    theirs: Some(InheritFd::from(theirs)),
                })
            }
            MonitorAddress::Unix(path) => Listener::bind_unix(sock_dir.join(path))
                .map(Self::Listen)
                .map_err(Error::MonitorSocket),
            MonitorAddress::Tcp(address) => Listener::bind_tcp(*address)
                .await
                .map(Self::Listen)
                .map_err(Error::MonitorSocket),
            MonitorAddress::TcpHost(host, port) => Listener::bind_tcp(host_port(host, *port))
                .await
                .map(Self::Listen)
                .map_err(Error::MonitorSocket),
        }
    }

    /// Where QEMU reaches this end: the socketpair, the socket path, or
    /// the TCP address with the port actually bound.
    pub(crate) fn address(&self) -> MonitorAddress {
        match self {
            Self::Pair { .. } => MonitorAddress::SocketPair,
            Self::Listen(listener) => match listener.local_addr() {
                ListenAddr::Unix(path) => MonitorAddress::Unix(path),
                ListenAddr::Tcp(address) => MonitorAddress::Tcp(address),
                // A kind of listener this crate does not make.
                _ => MonitorAddress::Unix(listener.address().into()),
            },
        }
    }

    /// The `-chardev` that makes QEMU reach this end, with id `id`.
    pub(crate) fn chardev(&self, id: &str) -> Chardev {
        match self {
            Self::Pair { theirs, .. } => {
                Chardev::socket_fd(id, theirs.as_ref().map_or(-1, InheritFd::number))
            }
            Self::Listen(listener) => match listener.local_addr() {
                ListenAddr::Unix(path) => Chardev::socket_path(id, path),
                ListenAddr::Tcp(address) => {
                    Chardev::socket_tcp(id, address.ip().to_string(), address.port())
                }
                // A kind of listener this crate does not make.
                _ => Chardev::socket_path(id, listener.address()),
            },
        }
    }

    /// The descriptor QEMU inherits, if any (once).
    pub(crate) fn take_inherited(&mut self) -> Option<InheritFd> {
        match self {
            Self::Pair { theirs, .. } => theirs.take(),
            Self::Listen(_) => None,
        }
    }

    /// Accepts QEMU's connection if needed, then waits for the greeting and
    /// negotiates. The caller bounds this with the QMP timeout.
    pub(crate) async fn connect(
        self,
        config: &qmp_client::Config,
    ) -> Result<qmp_client::Client, LaunchFailure> {
        let client = match self {
            Self::Pair { ours, .. } => {
                ours.set_nonblocking(true).map_err(LaunchFailure::Io)?;
                let stream = tokio::net::UnixStream::from_std(ours).map_err(LaunchFailure::Io)?;
                qmp_client::Client::from_stream(stream, config).await
            }
            Self::Listen(listener) => listener.accept(config).await,
        };
        client.map_err(LaunchFailure::Qmp)
    }
}

/// `host:port` for the resolver, with an IPv6 literal in brackets.
///
/// `localhost` and its subdomains are the loopback address without asking
/// the resolver (RFC 6761 §6.3, as curl does): a minimal system, a
/// container or a fresh debootstrap often has no `/etc/hosts` to say so.
fn host_port(host: &str, port: u16) -> String {
    let lower = host.to_ascii_lowercase();
    let lower = lower.strip_suffix('.').unwrap_or(&lower);
    if lower == "localhost" || lower.ends_with(".localhost") {
        format!("127.0.0.1:{port}")
    } else if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_literals_are_bracketed_for_the_resolver() {
        assert_eq!(host_port("qemu.example", 0), "qemu.example:0");
        assert_eq!(host_port("::1", 4444), "[::1]:4444");
        assert_eq!(host_port("[::1]", 1), "[::1]:1");
    }

    #[test]
    fn localhost_is_loopback_without_the_resolver() {
        for name in ["localhost", "LocalHost.", "qemu.localhost"] {
            assert_eq!(host_port(name, 7), "127.0.0.1:7", "{name}");
        }
        assert_eq!(host_port("notlocalhost", 7), "notlocalhost:7");
    }
}
