//! Scenario 7, user networking: a `hostfwd` from an ephemeral loopback
//! port to a TCP server in the guest (`nc -l`), which answers a host
//! connection.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::migration::{COMMAND, TestResult, Vm};

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
    let vm = Vm::restore("network", args).await?;

    // QEMU picked the host port: `get_usernet_hostfwd_port`.
    let port = vm
        .machine
        .usernet_hostfwd_port(8080)
        .await?
        .ok_or("no forward to guest port 8080 in `info usernet`")?;
    assert_ne!(port, 0);
    assert_eq!(vm.machine.usernet_hostfwd_port(22).await?, None);

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

/// `info usernet` as the two QEMU versions print it, without a guest: two
/// netdevs, TCP and UDP forwards from ports QEMU picks, and a host
/// connection accepted on the TCP one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostfwd_of_every_netdev_is_read_from_info_usernet() -> TestResult {
    let machine = qemu_machine::MachineBuilder::new()
        .binary(qemukit_tests::qemu_binary())
        .machine_type("none")
        .args([
            "-netdev",
            "user,id=n0,hostfwd=tcp:127.0.0.1:0-:8080,hostfwd=udp:127.0.0.1:0-:53",
            "-netdev",
            "user,id=n1,hostfwd=tcp:127.0.0.1:0-:22",
        ])
        .launch()
        .await?;
    let forwards = machine.usernet_host_forwards().await?;
    let summary: Vec<_> = forwards
        .iter()
        .map(|f| (f.netdev.as_deref(), f.protocol.as_str(), f.guest_port))
        .collect();
    assert_eq!(
        summary,
        [
            (Some("n0"), "TCP", 8080),
            (Some("n0"), "UDP", 53),
            (Some("n1"), "TCP", 22)
        ],
        "{forwards:?}"
    );
    assert!(forwards.iter().all(|f| f.host_port != 0), "{forwards:?}");
    let port = machine.usernet_hostfwd_port(22).await?;
    assert_eq!(port, Some(forwards[2].host_port));
    let port = port.ok_or("no port")?;
    tokio::time::timeout(COMMAND, TcpStream::connect(("127.0.0.1", port))).await??;
    let exit = machine.shutdown(COMMAND).await?;
    assert!(exit.success(), "{exit}");
    Ok(())
}
