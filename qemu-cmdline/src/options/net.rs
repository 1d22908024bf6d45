//! Networking: `-netdev`, `-nic` and user-mode port forwards.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::value::PropValue;

/// A user-mode port forward, `hostfwd=PROTO:HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostFwd {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Host address to listen on (empty: all addresses).
    pub host_addr: String,
    /// Host port (0: any free port).
    pub host_port: u16,
    /// Guest address (empty: the guest's default).
    pub guest_addr: String,
    /// Guest port.
    pub guest_port: u16,
}

impl HostFwd {
    /// TCP from `127.0.0.1:host_port` to guest port `guest_port`.
    pub fn tcp(host_port: u16, guest_port: u16) -> Self {
        Self {
            protocol: "tcp".into(),
            host_addr: "127.0.0.1".into(),
            host_port,
            guest_addr: String::new(),
            guest_port,
        }
    }
    /// UDP from `127.0.0.1:host_port` to guest port `guest_port`.
    pub fn udp(host_port: u16, guest_port: u16) -> Self {
        Self {
            protocol: "udp".into(),
            ..Self::tcp(host_port, guest_port)
        }
    }
    /// Listens on `addr` instead of loopback.
    pub fn host_addr(mut self, addr: impl Into<String>) -> Self {
        self.host_addr = addr.into();
        self
    }
    /// Forwards to `addr` in the guest.
    pub fn guest_addr(mut self, addr: impl Into<String>) -> Self {
        self.guest_addr = addr.into();
        self
    }
}

impl PropValue for HostFwd {
    fn to_os(&self) -> OsString {
        format!(
            "{}:{}:{}-{}:{}",
            self.protocol, self.host_addr, self.host_port, self.guest_addr, self.guest_port
        )
        .into()
    }
    fn from_os(value: &OsStr) -> Option<Self> {
        let text = value.to_str()?;
        let (protocol, rest) = text.split_once(':')?;
        let (host, guest) = rest.split_once('-')?;
        let (host_addr, host_port) = host.rsplit_once(':')?;
        let (guest_addr, guest_port) = guest.rsplit_once(':')?;
        let parsed = Self {
            protocol: protocol.into(),
            host_addr: host_addr.into(),
            host_port: host_port.parse().ok()?,
            guest_addr: guest_addr.into(),
            guest_port: guest_port.parse().ok()?,
        };
        (parsed.to_os() == value).then_some(parsed)
    }
}

keyval_option! {
    /// `-netdev`: a network back end (`user`, `tap`, `socket`, …).
    ///
    /// ```
    /// use qemu_cmdline::{HostFwd, Netdev};
    /// let n = Netdev::user("n0").hostfwd(HostFwd::tcp(0, 22));
    /// assert_eq!(n.render().unwrap(), "user,id=n0,hostfwd=tcp:127.0.0.1:0-:22");
    /// ```
    Netdev { option: "-netdev", implied: Some("type") }
    fields {
        /// The back end: `user`, `tap`, `socket`, `bridge`, …
        kind: String [impl Into<String>] = "type";
        /// The id devices refer to with `netdev=`.
        id: String [impl Into<String>] = "id";
        /// `user`: the guest network, e.g. `10.0.2.0/24`.
        net: String [impl Into<String>] = "net";
        /// `user`: isolate the guest from the host and outside.
        restrict: bool [bool] = "restrict";
        /// `tap`: the interface name.
        ifname: String [impl Into<String>] = "ifname";
        /// `tap`: the set-up script (`no` for none).
        script: PathBuf [impl Into<PathBuf>] = "script";
        /// `tap`: the tear-down script (`no` for none).
        downscript: PathBuf [impl Into<PathBuf>] = "downscript";
        /// `tap`/`socket`: an inherited file descriptor.
        fd: String [impl Into<String>] = "fd";
        /// `socket`: listen on `[host]:port`.
        listen: String [impl Into<String>] = "listen";
        /// `socket`: connect to `host:port`.
        connect: String [impl Into<String>] = "connect";
        /// `socket`: multicast group `addr:port`.
        mcast: String [impl Into<String>] = "mcast";
    }
    lists {
        /// `user`: port forwards.
        hostfwd: HostFwd [HostFwd] = "hostfwd";
    }
}

impl Netdev {
    /// A back end of type `kind` with id `id`.
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Self::default().kind(kind).id(id)
    }
    /// User-mode networking (SLIRP).
    pub fn user(id: impl Into<String>) -> Self {
        Self::new("user", id)
    }
    /// A TAP interface.
    pub fn tap(id: impl Into<String>) -> Self {
        Self::new("tap", id)
    }
    /// A socket back end (add `listen`, `connect`, `mcast` or `fd`).
    pub fn socket(id: impl Into<String>) -> Self {
        Self::new("socket", id)
    }
}

keyval_option! {
    /// `-nic`: a network back end and its NIC in one option.
    Nic { option: "-nic", implied: Some("type") }
    fields {
        /// The back end (`user`, `tap`, `none`, …).
        kind: String [impl Into<String>] = "type";
        /// The NIC model, e.g. `virtio-net-pci`, `e1000`.
        model: String [impl Into<String>] = "model";
        /// The MAC address.
        mac: String [impl Into<String>] = "mac";
    }
    lists {
        /// `user`: port forwards.
        hostfwd: HostFwd [HostFwd] = "hostfwd";
    }
}

impl Nic {
    /// A NIC on back end `kind`.
    pub fn new(kind: impl Into<String>) -> Self {
        Self::default().kind(kind)
    }
}
