//! The host ports of user-mode networking's forwards (`hostfwd=…`), which
//! QEMU shows only in HMP's `info usernet` (`get_usernet_hostfwd_port` in
//! QEMU's functional tests): with a host port of 0, QEMU picks one.

use serde_json::json;

use crate::error::Error;
use crate::machine::Machine;

/// One `hostfwd` row of `info usernet`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostForward {
    /// The `-netdev user` id it belongs to (from the `(n0)` header), if shown.
    pub netdev: Option<String>,
    /// `"TCP"` or `"UDP"`.
    pub protocol: String,
    /// The host address it listens on (`0.0.0.0` for any).
    pub host_addr: String,
    /// The host port it listens on: the one QEMU chose for a `0`.
    pub host_port: u16,
    /// The guest address it forwards to.
    pub guest_addr: String,
    /// The guest port it forwards to.
    pub guest_port: u16,
}

/// The `hostfwd` rows of an `info usernet` answer, in order. Rows that do
/// not parse are skipped (with a debug log): the layout is slirp's, not an
/// API.
///
/// ```
/// let info = "Hub -1 (n0):\r\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n  \
///             TCP[HOST_FORWARD]  13       127.0.0.1 42051       10.0.2.15  8080     0     0\r\n";
/// let forwards = qemu_machine::parse_info_usernet(info);
/// assert_eq!(forwards[0].host_port, 42051);
/// assert_eq!(forwards[0].guest_port, 8080);
/// assert_eq!(forwards[0].netdev.as_deref(), Some("n0"));
/// ```
pub fn parse_info_usernet(info: &str) -> Vec<HostForward> {
    let mut netdev = None;
    let mut forwards = Vec::new();
    for line in info.lines() {
        let line = line.trim();
        if let Some(id) = header_id(line) {
            netdev = Some(id.to_owned());
            continue;
        }
        let Some((protocol, rest)) = line.split_once("[HOST_FORWARD]") else {
            continue;
        };
        match parse_row(protocol, rest, netdev.clone()) {
            Some(forward) => forwards.push(forward),
            None => tracing::debug!(line, "skipped an `info usernet` row that does not parse"),
        }
    }
    forwards
}

/// `Hub -1 (n0):` (QEMU ≥ 5) or `VLAN -1 (n0):` names the netdev.
fn header_id(line: &str) -> Option<&str> {
    let inner = line.strip_suffix("):")?;
    let (_, id) = inner.rsplit_once('(')?;
    Some(id)
}

fn parse_row(protocol: &str, rest: &str, netdev: Option<String>) -> Option<HostForward> {
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // FD, source address and port, destination address and port, queues.
    let [_fd, host_addr, host_port, guest_addr, guest_port, ..] = fields.as_slice() else {
        return None;
    };
    Some(HostForward {
        netdev,
        protocol: protocol.trim().to_owned(),
        host_addr: (*host_addr).to_owned(),
        host_port: host_port.parse().ok()?,
        guest_addr: (*guest_addr).to_owned(),
        guest_port: guest_port.parse().ok()?,
    })
}

impl Machine {
    /// The `hostfwd` rows of user-mode networking, from HMP's `info usernet`.
    ///
    /// # Errors
    ///
    /// [`Error::Qmp`] when the command fails, [`Error::QmpDisabled`]
    /// without QMP.
    pub async fn usernet_host_forwards(&self) -> Result<Vec<HostForward>, Error> {
        let args = json!({"command-line": "info usernet"});
        let answer = self
            .try_qmp()?
            .execute_raw("human-monitor-command", args.as_object().cloned())
            .await?;
        Ok(parse_info_usernet(answer.as_str().unwrap_or_default()))
    }

    /// The host port forwarded to TCP port `guest_port` of the guest
    /// (`get_usernet_hostfwd_port`), the one QEMU picked when the
    /// `hostfwd` asked for port 0; `None` when no TCP forward goes there.
    ///
    /// ```no_run
    /// # async fn demo(machine: qemu_machine::Machine) -> Result<(), qemu_machine::Error> {
    /// // Launched with `-netdev user,id=n0,hostfwd=tcp:127.0.0.1:0-:22`.
    /// let port = machine.usernet_hostfwd_port(22).await?.expect("a forward to port 22");
    /// let ssh = std::net::TcpStream::connect(("127.0.0.1", port));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`usernet_host_forwards`](Self::usernet_host_forwards).
    pub async fn usernet_hostfwd_port(&self, guest_port: u16) -> Result<Option<u16>, Error> {
        let forwards = self.usernet_host_forwards().await?;
        Ok(forwards
            .iter()
            .find(|forward| forward.protocol == "TCP" && forward.guest_port == guest_port)
            .map(|forward| forward.host_port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As QEMU 7.2 and 10.0 print it (slirp 4.7), two netdevs.
    const INFO: &str = "Hub -1 (n0):\r\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n  TCP[HOST_FORWARD]  13       127.0.0.1 42051       10.0.2.15  8080     0     0\r\n  UDP[HOST_FORWARD]  14         0.0.0.0  5353       10.0.2.15    53     0     0\r\nHub -1 (n1):\r\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n  TCP[HOST_FORWARD]  15       127.0.0.1 40000       10.0.2.15    22     0     0\r\n  TCP[ESTABLISHED]   16       10.0.2.15 51234         1.2.3.4    80     0     0\r\n";

    #[test]
    fn every_forward_is_read_with_its_netdev() {
        let forwards = parse_info_usernet(INFO);
        let summary: Vec<_> = forwards
            .iter()
            .map(|f| {
                (
                    f.netdev.as_deref().unwrap_or("?"),
                    f.protocol.as_str(),
                    f.host_port,
                    f.guest_port,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("n0", "TCP", 42051, 8080),
                ("n0", "UDP", 5353, 53),
                ("n1", "TCP", 40000, 22)
            ]
        );
        assert_eq!(forwards[0].host_addr, "127.0.0.1");
        assert_eq!(forwards[1].host_addr, "0.0.0.0");
        assert_eq!(forwards[2].guest_addr, "10.0.2.15");
    }

    #[test]
    fn rows_that_do_not_parse_are_skipped() {
        assert!(parse_info_usernet("").is_empty());
        assert!(parse_info_usernet("  TCP[HOST_FORWARD]  13  127.0.0.1 port\r\n").is_empty());
        assert_eq!(
            parse_info_usernet(
                "VLAN -1 (n0):\n  TCP[HOST_FORWARD] 1 127.0.0.1 2 10.0.2.15 3 0 0\n"
            )[0]
            .netdev
            .as_deref(),
            Some("n0")
        );
    }
}
