//! Scenario 8, the guest agent: qemu-ga on a virtio-serial port driven
//! with `qmp_client::agent` (sync, ping, info, exec with captured output),
//! then `guest-shutdown` → `SHUTDOWN` and QEMU exits.

use qmp_client::Config;
use qmp_client::agent::{Agent, GuestExec};
use qmp_proto::events::Shutdown;

use crate::migration::{BOOT, COMMAND, TestResult, Vm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_agent_pings_runs_commands_and_shuts_the_guest_down() -> TestResult {
    let guest = qemukit_tests::guest();
    // QEMU listens on a socket of its own for the agent's port.
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("qga.sock");
    let mut args = guest.args(true);
    for arg in [
        "-chardev".to_owned(),
        format!(
            "socket,id=qga0,path={},server=on,wait=off",
            socket.display()
        ),
        "-device".to_owned(),
        "virtio-serial-pci".to_owned(),
        "-device".to_owned(),
        "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0".to_owned(),
    ] {
        args.push(arg.into());
    }
    let vm = Vm::launch("agent", args).await?;
    let agent_io = tokio::net::UnixStream::connect(&socket).await?;

    // Sync while the guest boots: the agent starts around the shell
    // prompt, so `connect` retries (its first syncs wait unread in the
    // socket until qemu-ga opens the port, and are answered with stale ids).
    let config = Config::default()
        .handshake_timeout(Some(BOOT))
        .command_timeout(Some(COMMAND));
    let (agent, booted) = tokio::join!(Agent::connect(agent_io, &config), vm.boot());
    booted?;
    let mut agent = agent?;
    agent.ping().await?;

    let info = agent.info().await?;
    assert!(info.version.starts_with("7.2"), "{info:?}");
    assert!(info.supports("guest-exec") && info.supports("guest-shutdown"));
    let shutdown = info
        .supported_commands
        .iter()
        .find(|command| command.name == "guest-shutdown");
    assert_eq!(shutdown.map(|c| c.success_response), Some(false));

    let done = agent
        .exec(
            "/bin/sh",
            ["-c", "echo out-$((40+2)); echo err-$((6*7)) >&2; exit 3"],
        )
        .await?;
    assert_eq!(done.exit_code, Some(3));
    assert_eq!(done.stdout, b"out-42\n");
    assert_eq!(done.stderr, b"err-42\n");
    // Standard input goes in base64 too.
    let mut cat = GuestExec::new("/bin/cat");
    cat.input_data = Some(b"through stdin\n\xff\x00".to_vec());
    cat.capture_output = Some(true);
    let echoed = agent.exec_command(&cat, COMMAND).await?;
    assert!(echoed.success(), "{echoed:?}");
    assert_eq!(echoed.stdout, b"through stdin\n\xff\x00");
    let hostname = agent.exec("/bin/hostname", Vec::<String>::new()).await?;
    assert!(
        hostname.success() && !hostname.stdout.is_empty(),
        "{hostname:?}"
    );

    let shutdown = vm.qmp().event_waiter("SHUTDOWN", None);
    agent.shutdown(None).await?;
    let event = shutdown.wait(Some(COMMAND)).await?;
    let event = event
        .payload::<Shutdown>()
        .ok_or("SHUTDOWN without data")??;
    assert!(event.guest, "{event:?}");
    // QEMU exits (-no-reboot): the agent's stream ends too.
    agent.wait_closed(COMMAND).await?;
    vm.wait_exit().await
}
