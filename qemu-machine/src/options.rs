//! The small value types the builder takes.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the QMP monitor lives.
///
/// The default, a socketpair, needs no path and has no accept race: QEMU
/// inherits one end (`-chardev socket,fd=N`). With a Unix path or a TCP
/// address, qemu-machine listens there and QEMU connects to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MonitorAddress {
    /// One end of a socketpair passed to QEMU (the default).
    #[default]
    SocketPair,
    /// A Unix socket path qemu-machine listens on; a relative path is
    /// resolved in the socket directory (by default the machine's private
    /// temporary directory). The socket file is removed at cleanup.
    Unix(PathBuf),
    /// A TCP address qemu-machine listens on (port 0 picks a free port:
    /// [`Machine::monitor_address`](crate::Machine::monitor_address) tells
    /// which).
    Tcp(SocketAddr),
    /// A host name (or IP literal) and port qemu-machine listens on, as
    /// `QEMUMachine`'s `monitor_address=(host, port)`: the name is
    /// resolved, and the first of its addresses that can be bound is used
    /// (port 0 picks a free port). Made by [`MonitorAddress::tcp`].
    TcpHost(String, u16),
}

impl MonitorAddress {
    /// A TCP monitor on `host` (a name such as `localhost`, or an IP
    /// literal) and `port`; 0 picks a free port. `localhost` (and
    /// `*.localhost`) is 127.0.0.1 without asking the resolver, so it works
    /// on systems without `/etc/hosts`.
    ///
    /// ```
    /// use qemu_machine::MonitorAddress;
    /// let address = MonitorAddress::tcp("localhost", 0);
    /// assert_eq!(address, MonitorAddress::TcpHost("localhost".into(), 0));
    /// ```
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        Self::TcpHost(host.into(), port)
    }
}

/// Which guest console qemu-machine attaches to, as `QEMUMachine.set_console`.
///
/// The console is always backed by a socketpair that qemu-machine drains
/// from the start, so QEMU never stalls on a full console socket.
///
/// ```
/// use qemu_machine::ConsoleSpec;
///
/// let first_serial = ConsoleSpec::serial();
/// let virtio = ConsoleSpec::device("virtconsole");
/// let third_serial = ConsoleSpec::serial().index(2);
/// # let _ = (first_serial, virtio, third_serial);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleSpec {
    pub(crate) device_type: Option<String>,
    pub(crate) index: u32,
}

impl ConsoleSpec {
    /// The first serial port (`-serial chardev:…`), the default.
    pub fn serial() -> Self {
        Self::default()
    }

    /// A console device of this type (`-device TYPE,chardev=…`), e.g.
    /// `isa-serial` or `virtconsole`.
    pub fn device(device_type: impl Into<String>) -> Self {
        Self {
            device_type: Some(device_type.into()),
            index: 0,
        }
    }

    /// For the serial console, which port: lower ports get `-serial null`.
    pub fn index(mut self, index: u32) -> Self {
        self.index = index;
        self
    }
}
