//! Scenario 8, the guest agent: qemu-ga on a virtio-serial port driven
//! with `qmp_client::agent` (sync, ping, info, exec with captured output),
//! then `guest-shutdown` → `SHUTDOWN` and QEMU exits.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, PoisonError};

use qemu_machine::MachineBuilder;
use qmp_client::Config;
use qmp_client::agent::{Agent, GuestExec};
use qmp_proto::events::Shutdown;

use crate::migration::{BOOT, COMMAND, TestResult, Vm, builder};

/// The fdset that carries QEMU's end of the agent's channel.
const AGENT_FDSET: u32 = 7;

/// The guest with qemu-ga, which its init starts on the virtio-serial
/// port `org.qemu.guest_agent.0`. The port's chardev is one end of a
/// socketpair handed over in an fdset and opened as
/// `pipe,path=/dev/fdset/N` (the `pipe` backend falls back to the path
/// itself, and a read-write fdset descriptor matches a socket): unlike a
/// socket path or `socket,fd=N`, nothing of it changes between launches,
/// so the configuration is booted once and restored. The host's end of
/// the last builder made waits in `host_end`.
fn agent_builder(host_end: &Mutex<Option<UnixStream>>) -> MachineBuilder {
    let mut args = qemukit_tests::guest().args(true);
    let channel = format!("pipe,id=qga0,path=/dev/fdset/{AGENT_FDSET}");
    for arg in [
        "-chardev",
        &channel,
        "-device",
        "virtio-serial-pci",
        "-device",
        "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
    ] {
        args.push(OsString::from(arg));
    }
    let (ours, theirs) = UnixStream::pair().expect("creating the agent's socketpair");
    let mut builder = builder("agent", &args);
    builder.add_fd(OwnedFd::from(theirs), AGENT_FDSET, None);
    *host_end.lock().unwrap_or_else(PoisonError::into_inner) = Some(ours);
    builder
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_agent_pings_runs_commands_and_shuts_the_guest_down() -> TestResult {
    let host_end = Mutex::new(None);
    let vm = Vm::restore_with(|| agent_builder(&host_end)).await?;
    let agent_io = host_end
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .ok_or("the restore made no agent channel")?;
    agent_io.set_nonblocking(true)?;
    let agent_io = tokio::net::UnixStream::from_std(agent_io)?;

    // qemu-ga ran in the guest when it was saved; `connect` syncs (and
    // retries while the agent is still starting, as after a boot).
    let config = Config::default()
        .handshake_timeout(Some(BOOT))
        .command_timeout(Some(COMMAND));
    let mut agent = Agent::connect(agent_io, &config).await?;
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
