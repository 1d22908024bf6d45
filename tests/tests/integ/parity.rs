//! `QEMUMachine`'s semantics where qemukit follows them: `wait()` that
//! kills, relaunching one VM, the temporary directory before launch, a TCP
//! monitor by host name, and launch errors a test can read.

use std::time::Duration;

use qemu_machine::{Error, LaunchFailure, MachineBuilder, MonitorAddress, ShutdownCause};

use crate::machine::{entries, none_machine, processes_with, query_status, unique_marker};

const SHUTDOWN: Duration = Duration::from_secs(30);

#[tokio::test]
async fn wait_leaves_qemu_running_and_wait_or_kill_kills_it() {
    let base = tempfile::tempdir().expect("tempdir");
    let marker = unique_marker("wait-or-kill");
    let mut builder = none_machine(base.path());
    builder.args(["-name", &marker]);
    let machine = builder.launch().await.expect("launch failed");

    // The non-destructive wait: QEMU keeps running.
    let waited = machine.wait(Duration::from_millis(200)).await;
    assert!(
        matches!(waited, Err(Error::WaitTimeout { .. })),
        "{waited:?}"
    );
    assert!(machine.is_running());

    // QEMUMachine.wait(): kill on timeout, clean up, report it.
    let error = machine
        .wait_or_kill(Duration::from_millis(200))
        .await
        .expect_err("a machine nobody stops does not exit");
    let Error::AbnormalShutdown {
        cause,
        exit,
        kept_temp_dir,
        ..
    } = &error
    else {
        panic!("expected an abnormal shutdown, got {error:?}");
    };
    assert!(matches!(cause, ShutdownCause::DidNotExit(_)), "{error:?}");
    assert_eq!(exit.signal(), Some(9), "{error:?}");
    assert!(kept_temp_dir.is_none(), "{error:?}");
    assert!(!machine.is_running());
    assert!(processes_with(&marker).is_empty());
    assert!(
        entries(base.path()).is_empty(),
        "{:?}",
        entries(base.path())
    );
    let debug = format!("{error:?}");
    assert!(
        debug.contains("was killed by signal 9") && debug.contains("did not exit by itself"),
        "{debug}"
    );
}

#[tokio::test]
async fn wait_or_kill_returns_the_exit_of_a_qemu_that_quits() {
    let base = tempfile::tempdir().expect("tempdir");
    let machine = none_machine(base.path())
        .launch()
        .await
        .expect("launch failed");
    let quit = machine.qmp().execute_raw("quit", None).await;
    assert!(
        matches!(
            quit,
            Ok(_) | Err(qemu_machine::qmp_client::Error::Disconnected(_))
        ),
        "{quit:?}"
    );
    let exit = machine.wait_or_kill(SHUTDOWN).await;
    assert!(matches!(exit, Ok(exit) if exit.success()), "{exit:?}");
    assert!(
        entries(base.path()).is_empty(),
        "{:?}",
        entries(base.path())
    );
}

#[tokio::test]
async fn a_launch_error_keeps_the_whole_log_and_debug_reads_like_display() {
    let base = tempfile::tempdir().expect("tempdir");
    // `-machine help` prints one line per machine type (over 60) and exits.
    let mut builder = MachineBuilder::new();
    builder
        .binary(qemukit_tests::qemu_binary())
        .base_temp_dir(base.path())
        .args(["-machine", "help"]);
    let error = builder.launch().await.expect_err("QEMU exits at once");
    let Error::Launch(launch) = &error else {
        panic!("expected a launch error, got {error:?}");
    };
    assert!(matches!(launch.reason(), LaunchFailure::Exited), "{error}");
    let log = launch.log();
    assert!(log.starts_with("Supported machines are:"), "{log}");
    assert!(log.lines().count() > 40, "{log}");
    assert!(
        !launch.output_tail().contains("Supported machines"),
        "{error}"
    );
    assert!(
        log.ends_with(&format!("{}\n", launch.output_tail())),
        "{error}"
    );
    assert_eq!(launch.log_path().extension(), Some("log".as_ref()));
    assert!(
        !launch.log_path().exists(),
        "{}",
        launch.log_path().display()
    );
    // `unwrap()` shows the message, not the struct's fields.
    let debug = format!("{error:?}");
    assert!(
        debug.starts_with("QEMU failed to launch: QEMU exited"),
        "{debug}"
    );
    assert!(!debug.contains("LaunchError {"), "{debug}");
    assert!(
        entries(base.path()).is_empty(),
        "{:?}",
        entries(base.path())
    );
}

#[tokio::test]
async fn a_missing_binary_says_why_and_what_to_do() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut builder = none_machine(base.path());
    builder.binary("/nonexistent/qemu-system-x86_64");
    let error = builder.launch().await.expect_err("the launch must fail");
    assert!(matches!(error, Error::Spawn { .. }), "{error:?}");
    let message = error.to_string();
    for part in [
        "/nonexistent/qemu-system-x86_64",
        "No such file or directory",
        "QEMUKIT_QEMU",
        "apt-get install",
    ] {
        assert!(message.contains(part), "{part:?} missing: {message}");
    }
    assert_eq!(format!("{error:?}"), message);
    assert!(
        entries(base.path()).is_empty(),
        "{:?}",
        entries(base.path())
    );
}

/// `wait_event` without a timeout gives up after 60 s, as `event_wait`;
/// `Duration::MAX` still waits as long as it takes. The 60 s pass in
/// tokio's paused clock, once QEMU is up.
#[tokio::test(flavor = "current_thread")]
async fn wait_event_defaults_to_sixty_seconds_and_can_wait_forever() {
    let base = tempfile::tempdir().expect("tempdir");
    let machine = none_machine(base.path())
        .launch()
        .await
        .expect("launch failed");
    let client = machine.qmp();
    tokio::time::pause();
    let never = client.wait_event("NEVER", None, None).await;
    tokio::time::resume();
    assert!(
        matches!(
            &never,
            Err(qemu_machine::qmp_client::Error::EventTimeout { timeout, filter: None, .. })
                if *timeout == Duration::from_secs(60)
        ),
        "{never:?}"
    );
    let message = never.map(drop).unwrap_err().to_string();
    assert!(
        message.starts_with("no `NEVER` event arrived within 60s"),
        "{message}"
    );

    let filter = serde_json::json!({"data": {"reason": "host-qmp-quit"}});
    let waiter = client.wait_event("SHUTDOWN", Some(&filter), Some(Duration::MAX));
    let quit = client.execute_raw("quit", None);
    let (event, quit) = tokio::join!(waiter, quit);
    assert!(
        matches!(&event, Ok(event) if event.name == "SHUTDOWN"),
        "{event:?}"
    );
    assert!(
        matches!(
            quit,
            Ok(_) | Err(qemu_machine::qmp_client::Error::Disconnected(_))
        ),
        "{quit:?}"
    );
    let exit = machine.wait(SHUTDOWN).await;
    assert!(matches!(exit, Ok(exit) if exit.success()), "{exit:?}");
}

/// A wrapper that prints `line` into QEMU's log, then runs QEMU.
fn announcing(line: &str) -> [String; 4] {
    [
        "sh".into(),
        "-c".into(),
        format!("echo {line}; exec \"$@\""),
        "sh".into(),
    ]
}

/// Relaunching one VM after its shutdown, as ~18 iotests do with one
/// `QEMUMachine`: the same name, a fresh temporary directory, and a log
/// of the new run only (in `log_dir`, the same file, rewritten).
#[tokio::test]
async fn a_relaunch_keeps_the_name_with_a_fresh_temp_dir_and_log() {
    let base = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let mut builder = none_machine(base.path());
    let name = builder.get_name().to_owned();
    builder.wrapper(announcing("first-run"));
    let first = builder.launch().await.expect("launch failed");
    let first_dir = first
        .temp_dir()
        .expect("a running machine has its temp dir");
    assert!(first.log().contains("first-run"), "{}", first.log());
    first.shutdown(SHUTDOWN).await.expect("shutdown failed");
    assert!(!first_dir.exists(), "{}", first_dir.display());

    builder.wrapper(announcing("second-run"));
    let second = builder.launch().await.expect("relaunch failed");
    assert_eq!((first.name(), second.name()), (&*name, &*name));
    let second_dir = second
        .temp_dir()
        .expect("a running machine has its temp dir");
    assert_ne!(second_dir, first_dir);
    let log = second.log();
    assert!(
        log.contains("second-run") && !log.contains("first-run"),
        "{log}"
    );
    second.shutdown(SHUTDOWN).await.expect("shutdown failed");

    // With a log_dir: one log file, holding the latest run only.
    builder.name("relaunched").log_dir(logs.path());
    builder.wrapper(announcing("third-run"));
    let third = builder.launch().await.expect("relaunch failed");
    third.shutdown(SHUTDOWN).await.expect("shutdown failed");
    builder.wrapper(announcing("fourth-run"));
    let fourth = builder.launch().await.expect("relaunch failed");
    assert_eq!(fourth.name(), "relaunched");
    assert_eq!(third.log_path(), logs.path().join("relaunched.log"));
    assert_eq!(fourth.log_path(), third.log_path());
    let log = fourth.log();
    assert!(
        log.contains("fourth-run") && !log.contains("third-run"),
        "{log}"
    );
    assert!(third.log().contains("third-run"), "{}", third.log());
    fourth.shutdown(SHUTDOWN).await.expect("shutdown failed");
    assert!(
        entries(base.path()).is_empty(),
        "{:?}",
        entries(base.path())
    );
}

/// Two machines of one builder running at once never write one log file.
#[tokio::test]
async fn machines_of_one_builder_running_at_once_have_their_own_logs() {
    let base = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let mut builder = none_machine(base.path());
    builder.name("twin").log_dir(logs.path());
    let (first, second) = tokio::join!(builder.launch(), builder.launch());
    let (first, second) = (
        first.expect("launch failed"),
        second.expect("launch failed"),
    );
    let mut paths = [first.log_path(), second.log_path()];
    paths.sort();
    assert_eq!(
        paths,
        [logs.path().join("twin-2.log"), logs.path().join("twin.log")]
    );
    for machine in [first, second] {
        machine.shutdown(SHUTDOWN).await.expect("shutdown failed");
    }
}

/// `QEMUMachine.temp_dir` before launch: files placed there are QEMU's to
/// use, the machine then owns the directory, and an unlaunched one is
/// removed with the builder.
#[tokio::test]
async fn the_temp_dir_exists_before_launch_and_becomes_the_machines() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut builder = none_machine(base.path());
    let dir = builder.temp_dir().expect("temp dir");
    assert_eq!(builder.temp_dir().expect("temp dir"), dir);
    assert!(dir.starts_with(base.path()), "{}", dir.display());
    let image = dir.join("disk.img");
    std::fs::write(&image, vec![0u8; 1 << 20]).expect("write the image");
    builder.args([
        "-blockdev".to_owned(),
        format!("driver=file,node-name=disk0,filename={}", image.display()),
    ]);
    let machine = builder.launch().await.expect("launch failed");
    assert_eq!(machine.temp_dir(), Some(dir.clone()));
    let nodes = machine
        .qmp()
        .execute_raw("query-named-block-nodes", None)
        .await
        .expect("query-named-block-nodes failed");
    assert!(
        nodes.as_array().is_some_and(|nodes| nodes.iter().any(
            |node| node["node-name"] == "disk0" && node["file"] == image.display().to_string()
        )),
        "{nodes}"
    );
    machine.shutdown(SHUTDOWN).await.expect("shutdown failed");
    assert!(!dir.exists(), "{}", dir.display());

    // The next launch gets a fresh one; never launched, it goes with the builder.
    let next = builder.temp_dir().expect("temp dir");
    assert_ne!(next, dir);
    assert!(next.is_dir());
    drop(builder);
    assert!(!next.exists(), "{}", next.display());
    assert!(
        entries(base.path()).is_empty(),
        "{:?}",
        entries(base.path())
    );
}

/// `monitor_address=(host, port)`: a host name is accepted (`localhost`
/// is loopback even where no `/etc/hosts` says so, as on a fresh
/// debootstrap), port 0 picks a port, and the machine says which.
#[tokio::test]
async fn a_tcp_monitor_by_host_name_reports_the_port_it_got() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut builder = none_machine(base.path());
    builder.monitor(MonitorAddress::tcp("localhost", 0));
    let machine = builder.launch().await.expect("launch failed");
    let address = match machine.monitor_address() {
        Some(MonitorAddress::Tcp(address)) => *address,
        other => panic!("expected a TCP monitor, got {other:?}"),
    };
    assert!(
        address.ip().is_loopback() && address.port() != 0,
        "{address}"
    );
    assert!(
        machine
            .command_line()
            .contains(&format!("port={}", address.port())),
        "{}",
        machine.command_line()
    );
    assert_eq!(query_status(&machine).await, "running");
    machine.shutdown(SHUTDOWN).await.expect("shutdown failed");

    let default = none_machine(base.path())
        .launch()
        .await
        .expect("launch failed");
    assert_eq!(default.monitor_address(), Some(&MonitorAddress::SocketPair));
    default.shutdown(SHUTDOWN).await.expect("shutdown failed");
    let mut unix = none_machine(base.path());
    unix.monitor(MonitorAddress::Unix("qmp.sock".into()));
    let machine = unix.launch().await.expect("launch failed");
    let temp_dir = machine.temp_dir().expect("temp dir");
    assert_eq!(
        machine.monitor_address(),
        Some(&MonitorAddress::Unix(temp_dir.join("qmp.sock")))
    );
    machine.shutdown(SHUTDOWN).await.expect("shutdown failed");
}
