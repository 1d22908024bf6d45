//! `QEMUMachine`'s semantics where qemukit follows them: `wait()` that
//! kills, relaunching one VM, the temporary directory before launch, a TCP
//! monitor by host name, and launch errors a test can read.

use std::time::Duration;

use qemu_machine::{Error, LaunchFailure, MachineBuilder, ShutdownCause};

use crate::machine::{entries, none_machine, processes_with, unique_marker};

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
