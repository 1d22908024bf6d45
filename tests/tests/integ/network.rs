//! Scenario 7, user networking: a `hostfwd` from an ephemeral loopback
//! port to a TCP server in the guest (`nc -l`), which answers a host
//! connection.

use qmp_proto::commands::HumanMonitorCommand;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::migration::{COMMAND, TestResult, Vm};

/// The host port QEMU chose for the `hostfwd` with port 0, from `info
/// usernet` (QMP has no command for it), e.g.
/// `  TCP[HOST_FORWARD]  13   127.0.0.1 42051  10.0.2.15  8080  0  0`.
fn forwarded_port(usernet: &str) -> Option<u16> {
    usernet
        .lines()
        .filter(|line| line.contains("HOST_FORWARD"))
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at = fields.iter().position(|field| *field == "127.0.0.1")?;
            fields.get(at + 1)?.parse().ok()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_tcp_server_answers_through_hostfwd() -> TestResult {
    let guest = qemukit_tests::guest();
    let mut args = guest.args(false);
    for arg in [
        "-netdev",
        "user,id=n0,hostfwd=tcp:127.0.0.1:0-:8080",
        "-device",
        "virtio-net-pci,netdev=n0",
    ] {
        args.push(arg.into());
    }
    let vm = Vm::launch("network", args).await?;
    vm.boot().await?;

    let usernet = vm
        .qmp()
        .execute(HumanMonitorCommand::new("info usernet"))
        .await?;
    let port = forwarded_port(&usernet).ok_or(format!("no forwarded port in {usernet:?}"))?;
    assert_ne!(port, 0);

    // Listening once the socket shows in /proc/net/tcp or tcp6 (busybox nc
    // binds `::`; 8080 = 0x1F90, state 0A = LISTEN), so the host's
    // connection cannot come too early.
    let serve = "echo from-guest-$((40+2)) > /tmp/payload; \
        { nc -l -p 8080 < /tmp/payload > /tmp/received & }; \
        while ! cat /proc/net/tcp* | grep -q ':1F90 0*:0000 0A'; do :; done";
    assert!(vm.console().run(serve, COMMAND).await?.success());

    let mut stream =
        tokio::time::timeout(COMMAND, TcpStream::connect(("127.0.0.1", port))).await??;
    stream.write_all(b"from-host\n").await?;
    let deadline = Instant::now() + COMMAND;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 256];
    while !String::from_utf8_lossy(&answer).contains("from-guest-42\n") {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await??;
        assert!(n > 0, "the connection closed after {answer:?}");
        answer.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(answer, b"from-guest-42\n");
    drop(stream);

    // nc ends when the host closes; what it received is in the file.
    let received = vm.console().run("wait; cat /tmp/received", COMMAND).await?;
    assert_eq!(received.output, "from-host\n");
    vm.power_off().await
}

#[test]
fn the_forwarded_port_is_read_from_info_usernet() {
    let usernet = "VLAN -1 (n0):\r\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n  TCP[HOST_FORWARD]  13       127.0.0.1 42051       10.0.2.15  8080     0     0\r\n";
    assert_eq!(forwarded_port(usernet), Some(42051));
    assert_eq!(forwarded_port("VLAN -1 (n0):\r\n"), None);
}
