//! The QMP monitor's transport: a socketpair, or a socket QEMU connects to.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::argv::MonitorChardev;
use crate::options::MonitorAddress;

/// Our side of the monitor, made before QEMU starts.
#[derive(Debug)]
pub(crate) enum MonitorEnd {
    /// A socketpair: `theirs` is inherited by QEMU, then closed here.
    Pair {
        ours: std::os::unix::net::UnixStream,
        theirs: Option<OwnedFd>,
    },
    /// A listening Unix socket QEMU connects to.
    Unix {
        listener: tokio::net::UnixListener,
        path: PathBuf,
    },
    /// A listening TCP socket QEMU connects to.
    Tcp {
        listener: tokio::net::TcpListener,
        addr: SocketAddr,
    },
}

impl MonitorEnd {
    /// Creates the socketpair or binds the listener. Relative Unix paths
    /// are resolved in `sock_dir`.
    pub(crate) async fn prepare(address: &MonitorAddress, sock_dir: &Path) -> io::Result<Self> {
        match address {
            MonitorAddress::SocketPair => {
                let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
                Ok(Self::Pair {
                    ours,
                    theirs: Some(theirs.into()),
                })
            }
            MonitorAddress::Unix(path) => {
                let path = sock_dir.join(path);
                let listener = tokio::net::UnixListener::bind(&path)?;
                Ok(Self::Unix { listener, path })
            }
            MonitorAddress::Tcp(addr) => {
                let listener = tokio::net::TcpListener::bind(addr).await?;
                let addr = listener.local_addr()?;
                Ok(Self::Tcp { listener, addr })
            }
        }
    }

    /// How QEMU's command line names this monitor.
    pub(crate) fn chardev(&self) -> MonitorChardev {
        match self {
            Self::Pair { theirs, .. } => {
                MonitorChardev::Fd(theirs.as_ref().map_or(-1, AsRawFd::as_raw_fd))
            }
            Self::Unix { path, .. } => MonitorChardev::Unix(path.clone()),
            Self::Tcp { addr, .. } => MonitorChardev::Tcp(*addr),
        }
    }

    /// The descriptor QEMU inherits, if any.
    pub(crate) fn child_fd(&self) -> Option<RawFd> {
        match self {
            Self::Pair { theirs, .. } => theirs.as_ref().map(AsRawFd::as_raw_fd),
            _ => None,
        }
    }

    /// Closes our copy of QEMU's end once QEMU has it, so that QEMU's exit
    /// is seen as EOF.
    pub(crate) fn close_child_end(&mut self) {
        if let Self::Pair { theirs, .. } = self {
            *theirs = None;
        }
    }

    /// The socket file to remove at cleanup.
    pub(crate) fn socket_path(&self) -> Option<PathBuf> {
        match self {
            Self::Unix { path, .. } => Some(path.clone()),
            _ => None,
        }
    }
}
