//! Every timeout-taking call of a machine accepts `Duration::MAX`, "wait
//! forever" (Python's `timeout=None`), without panicking.

use std::time::Duration;

use qemu_machine::MachineBuilder;

use crate::migration::TestResult;

async fn none_machine() -> TestResult<qemu_machine::Machine> {
    Ok(MachineBuilder::new()
        .binary(qemukit_tests::qemu_binary())
        .machine_type("none")
        .launch()
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_and_wait_accept_forever() -> TestResult {
    let machine = none_machine().await?;
    let exit = machine.shutdown(Duration::MAX).await?;
    assert!(exit.success(), "{exit}");

    let machine = none_machine().await?;
    let quit = machine.qmp().execute_raw("quit", None).await;
    assert!(
        matches!(
            quit,
            Ok(_) | Err(qemu_machine::qmp_client::Error::Disconnected(_))
        ),
        "{quit:?}"
    );
    let exit = machine.wait(Duration::MAX).await?;
    assert!(exit.success(), "{exit}");

    let machine = none_machine().await?;
    let stop = serde_json::json!({"name": "STOP"});
    machine.qmp().execute_raw("stop", None).await?;
    let event = machine
        .events_wait(&[("STOP", None), ("RESUME", Some(stop))], Duration::MAX)
        .await?;
    assert_eq!(event.name, "STOP");
    machine.shutdown(Duration::MAX).await?;
    Ok(())
}
