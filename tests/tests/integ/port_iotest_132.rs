//! A port of QEMU's `tests/qemu-iotests/132` ("Test mirror with unmap"),
//! with the helpers it calls from `iotests.py` (`QMPTestCase.complete_and_wait`,
//! `wait_ready`, `wait_until_completed`, `assert_no_active_block_jobs`,
//! `compare_images`, `VM.hmp_qemu_io`).
//!
//! Upstream: 60 lines of Python (132 at qemu/qemu 103cbc77), plus those
//! helpers. This port: 186 lines of Rust, those helpers
//! included.
//!
//! Differences, each forced by these hosts: iotests' `VM` (a
//! `QEMUQtestMachine`, here `MachineBuilder::qtest`) adds `-accel qtest`,
//! which Debian's QEMU builds lack; the port runs TCG with `-S` instead, so
//! no guest code runs either. Both formats of the
//! original's matrix (raw, qcow2) run; the protocol is `file`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use qemu_machine::{Machine, MachineBuilder};
use serde_json::{Value, json};

use crate::migration::TestResult;

/// `image_len`: 2 MiB.
const IMAGE_LEN: u64 = 2 * 1024 * 1024;
/// iotests' default `wait` of `wait_until_completed` and `event_wait`.
const EVENT_WAIT: Duration = Duration::from_secs(60);

/// `qemu_img(...)` and `qemu_io(...)`: run the tool, fail the test on error.
fn run_tool(tool: &str, args: &[&str]) -> TestResult {
    let output = Command::new(tool).args(args).output().map_err(|error| {
        format!("{tool} could not run ({error}): install it with `apt-get install qemu-utils`")
    })?;
    if !output.status.success() {
        return Err(format!(
            "{tool} {args:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(())
}

/// `iotests.compare_images`: `qemu-img compare` exits 0 when identical.
fn compare_images(format: &str, a: &Path, b: &Path) -> TestResult<bool> {
    let output = Command::new("qemu-img")
        .args(["compare", "-f", format, "-F", format])
        .arg(a)
        .arg(b)
        .output()?;
    Ok(output.status.success())
}

/// `setUp`: the image written with 0x5d, and a VM with it as `drive0`.
async fn set_up(dir: &Path, format: &str) -> TestResult<Machine> {
    let test_img = dir.join("test.img");
    let test_img_str = test_img.to_string_lossy();
    run_tool(
        "qemu-img",
        &[
            "create",
            "-f",
            format,
            &test_img_str,
            &IMAGE_LEN.to_string(),
        ],
    )?;
    run_tool(
        "qemu-io",
        &["-f", format, "-c", "write -P0x5d 0 2M", &test_img_str],
    )?;
    // `VM().add_drive(test_img, 'discard=unmap')`: iotests' `-drive` line.
    let drive = format!(
        "if=virtio,id=drive0,file={},format={format},cache=writeback,aio=threads,discard=unmap",
        test_img.display()
    );
    let machine = MachineBuilder::new()
        .binary(qemukit_tests::qemu_binary())
        .base_temp_dir(dir)
        .machine_type("pc")
        .args(["-S", "-nodefaults", "-drive", &drive])
        // iotests' `VM` is a `QEMUQtestMachine`.
        .qtest(true)
        .launch()
        .await?;
    Ok(machine)
}

/// `assert_no_active_block_jobs`.
async fn assert_no_active_block_jobs(machine: &Machine) -> TestResult {
    let jobs = machine.qmp().execute_raw("query-block-jobs", None).await?;
    assert_eq!(jobs, json!([]), "block jobs still active");
    Ok(())
}

/// `complete_and_wait('drive0')`: `wait_ready`, `block-job-complete`,
/// `wait_until_completed`, and the event's type.
async fn complete_and_wait(machine: &Machine, drive: &str) -> TestResult {
    // wait_ready: BLOCK_JOB_READY of a mirror or commit job on the drive.
    machine
        .events_wait(
            &[
                (
                    "BLOCK_JOB_READY",
                    Some(json!({"data": {"type": "mirror", "device": drive}})),
                ),
                (
                    "BLOCK_JOB_READY",
                    Some(json!({"data": {"type": "commit", "device": drive}})),
                ),
            ],
            EVENT_WAIT,
        )
        .await?;
    let args = json!({"device": drive});
    let result = machine
        .qmp()
        .execute_raw("block-job-complete", args.as_object().cloned())
        .await?;
    assert_eq!(result, json!({}), "block-job-complete");

    // wait_until_completed: drain events until BLOCK_JOB_COMPLETED; every
    // JOB_STATUS_CHANGE on the way must be about this job.
    let completed = loop {
        let events = machine.qmp().wait_events(Some(EVENT_WAIT)).await?;
        let found = events.into_iter().find(|event| {
            if event.name == "JOB_STATUS_CHANGE" {
                assert_eq!(event.data.get("id"), Some(&json!(drive)), "{event:?}");
            }
            event.name == "BLOCK_JOB_COMPLETED"
        });
        if let Some(event) = found {
            break event;
        }
    };
    let data = &completed.data;
    assert_eq!(data.get("device"), Some(&json!(drive)), "{completed:?}");
    assert_eq!(data.get("error"), None, "{completed:?}");
    assert_eq!(data.get("offset"), data.get("len"), "{completed:?}");
    assert_no_active_block_jobs(machine).await?;
    let kind = data.get("type").and_then(Value::as_str);
    assert!(matches!(kind, Some("mirror" | "commit")), "{completed:?}");
    Ok(())
}

/// `test_mirror_discard`.
async fn test_mirror_discard(format: &str) -> TestResult {
    let dir = tempfile::tempdir()?;
    let test_img = dir.path().join("test.img");
    let target_img = dir.path().join("target.img");
    let machine = set_up(dir.path(), format).await?;

    let args = json!({"device": "drive0", "sync": "full", "target": target_img});
    let result = machine
        .qmp()
        .execute_raw("drive-mirror", args.as_object().cloned())
        .await?;
    assert_eq!(result, json!({}), "drive-mirror");
    // `vm.hmp_qemu_io('drive0', 'discard 0 64k')`.
    let hmp = json!({"command-line": "qemu-io drive0 \"discard 0 64k\""});
    machine
        .qmp()
        .execute_raw("human-monitor-command", hmp.as_object().cloned())
        .await?;
    complete_and_wait(&machine, "drive0").await?;
    let exit = machine.shutdown(Duration::from_secs(30)).await?;
    assert!(exit.success(), "{exit}");
    assert!(
        compare_images(format, &test_img, &target_img)?,
        "target image does not match source after mirroring ({format})"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iotest_132_mirror_discard_raw() -> TestResult {
    test_mirror_discard("raw").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iotest_132_mirror_discard_qcow2() -> TestResult {
    test_mirror_discard("qcow2").await
}
