//! Snapshots: a booted guest saved to a file and restored into new QEMUs,
//! on whichever QEMU `QEMUKIT_QEMU` names (10.0 writes a `mapped-ram`
//! file, 7.2 a stream through a descriptor).

use std::path::Path;

use qemu_machine::{
    AfterSave, Error, Machine, MachineBuilder, Mismatch, RestoreOptions, SaveOptions,
    SnapshotFailure,
};
use qemukit_tests::{booted_snapshot, guest, restore_booted};
use qmp_proto::commands::{DeviceAdd, QueryStatus, RunState};

use crate::migration::{COMMAND, TestResult};

fn console(machine: &Machine) -> &qemu_console::Console {
    match machine.console() {
        Some(console) => console,
        None => unreachable!("Guest::builder always asks for a console"),
    }
}

/// Runs `command` in the guest and returns its output (status 0 expected).
async fn run(machine: &Machine, command: &str) -> TestResult<String> {
    let out = console(machine).run(command, COMMAND).await?;
    assert_eq!(out.status, 0, "`{command}` failed: {}", out.output);
    Ok(out.output)
}

fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_guest_comes_back_with_its_tmpfs_in_a_new_qemu() -> TestResult {
    let guest = guest();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("guest's state, saved.snap");

    // The suite's booted guest, itself restored: a restored machine saves
    // again, under the configuration it was restored with (not the
    // restore's `-S -incoming defer`).
    let source = restore_booted(|| {
        let mut builder = guest.builder();
        builder.name("snapshot-source");
        builder
    })
    .await?;
    let wrote = run(
        &source,
        "echo kept-$((40+2)) > /tmp/witness; cat /tmp/witness",
    )
    .await?;
    assert_eq!(wrote, "kept-42\n");
    let options = SaveOptions::new().after(AfterSave::Quit);
    let snapshot = source.save_snapshot_with(&path, &options).await?;
    assert!(!source.is_running(), "AfterSave::Quit left QEMU running");
    let status = source.exit_info();
    assert!(matches!(status, Some(exit) if exit.success()), "{status:?}");
    tracing::info!(
        size = snapshot.data_size(),
        format = snapshot.format_name(),
        qemu = snapshot.qemu_version(),
        "saved"
    );
    assert_eq!(snapshot.console(), Some("serial port 0"));
    assert_eq!(std::fs::metadata(&path)?.len(), snapshot.data_size());

    let base = tempfile::tempdir()?;
    let restored = guest
        .builder()
        .base_temp_dir(base.path())
        .restore_from(&path)
        .await?;
    let status = restored.qmp().execute(QueryStatus).await?;
    assert_eq!(status.status, RunState::Running);
    // The guest's tmpfs came along, and the shell answers on the new console.
    assert_eq!(run(&restored, "cat /tmp/witness").await?, "kept-42\n");
    let exit = restored.shutdown(COMMAND).await?;
    assert!(exit.success(), "{exit}");
    assert_eq!(entries(base.path()), Vec::<std::path::PathBuf>::new());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_can_stay_paused_until_cont() -> TestResult {
    let guest = guest();
    let path = booted_snapshot(&|| guest.builder()).await?;
    let options = RestoreOptions::new().paused(true);
    let (machine, timings) = guest.builder().restore_from_with(&path, &options).await?;
    tracing::info!(?timings, "restored paused");
    let status = machine.qmp().execute(QueryStatus).await?;
    assert_eq!(status.status, RunState::Paused, "{status:?}");
    machine.qmp().execute(qmp_proto::commands::Cont).await?;
    assert_eq!(run(&machine, "echo @@$((1+1))@@").await?, "@@2@@\n");
    machine.shutdown(COMMAND).await?;
    Ok(())
}

/// The refusal must come before QEMU starts: no machine directory appears.
async fn refused(builder: &mut MachineBuilder, path: &Path, base: &Path) -> Mismatch {
    builder.base_temp_dir(base);
    let result = builder.restore_from(path).await;
    assert_eq!(
        entries(base),
        Vec::<std::path::PathBuf>::new(),
        "QEMU was started"
    );
    match result {
        Err(Error::Snapshot(error)) => match error.failure() {
            SnapshotFailure::Mismatch(mismatch) => {
                tracing::info!(%error, "refused");
                mismatch.clone()
            }
            other => panic!("expected a mismatch, got {other:?}: {error}"),
        },
        Err(other) => panic!("expected a snapshot error, got {other:?}"),
        Ok(machine) => panic!("restored a mismatched snapshot: {machine:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatched_restores_are_refused_naming_the_difference() -> TestResult {
    let guest = guest();
    let path = booted_snapshot(&|| guest.builder()).await?;
    let base = tempfile::tempdir()?;

    // Another configuration: more memory.
    let mut bigger = guest.builder();
    bigger.args(["-m", "512"]);
    let mismatch = refused(&mut bigger, &path, base.path()).await;
    assert!(
        matches!(&mismatch, Mismatch::Configuration { only_in_builder, .. }
            if only_in_builder == &["-m 512".to_owned()]),
        "{mismatch:?}"
    );

    // Another QEMU version: the same data, metadata claiming 5.2.0.
    let other = tempfile::tempdir()?;
    let linked = other.path().join("other.snap");
    std::os::unix::fs::symlink(&path, &linked)?;
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path.with_extension("snap.json"))?)?;
    json["qemu_version"] = "5.2.0".into();
    std::fs::write(
        other.path().join("other.snap.json"),
        serde_json::to_vec(&json)?,
    )?;
    let mismatch = refused(&mut guest.builder(), &linked, base.path()).await;
    assert!(
        matches!(&mismatch, Mismatch::QemuVersion { snapshot, .. } if snapshot == "5.2.0"),
        "{mismatch:?}"
    );
    assert!(
        mismatch.to_string().contains("saved by QEMU 5.2.0"),
        "{mismatch}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_plugged_device_is_named_when_the_restore_lacks_it() -> TestResult {
    let guest = guest();
    let path = booted_snapshot(&|| guest.builder()).await?;
    let dir = tempfile::tempdir()?;
    let with_rng = dir.path().join("with-rng.snap");

    let machine = guest.builder().restore_from(&path).await?;
    machine
        .qmp()
        .execute(DeviceAdd::new("virtio-rng-pci").id("rng0"))
        .await?;
    let options = SaveOptions::new().after(AfterSave::Quit);
    let saved = machine.save_snapshot_with(&with_rng, &options).await?;
    assert!(
        saved
            .devices()
            .contains(&"rng0 (virtio-rng-pci)".to_owned()),
        "{:?}",
        saved.devices()
    );

    let base = tempfile::tempdir()?;
    let result = guest
        .builder()
        .base_temp_dir(base.path())
        .restore_from(&with_rng)
        .await;
    let mismatch = match &result {
        Err(Error::Snapshot(error)) => error.mismatch().cloned(),
        _ => None,
    };
    assert!(
        matches!(&mismatch, Some(Mismatch::Devices { only_in_snapshot, only_in_restored })
            if only_in_snapshot == &["rng0 (virtio-rng-pci)".to_owned()] && only_in_restored.is_empty()),
        "{result:?}"
    );
    // The QEMU that was started for the check is gone with its files.
    assert_eq!(entries(base.path()), Vec::<std::path::PathBuf>::new());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_machines_restore_from_one_snapshot_at_once() -> TestResult {
    let guest = guest();
    let make = || guest.builder();
    booted_snapshot(&make).await?;
    let restores = (0..8).map(|_| restore_booted(make));
    let machines = futures::future::try_join_all(restores).await?;
    // Each is its own guest: a file one writes is not seen by another.
    let writes = machines
        .iter()
        .enumerate()
        .map(|(index, machine)| async move {
            run(machine, &format!("echo {index} > /tmp/who; cat /tmp/who")).await
        });
    let wrote = futures::future::try_join_all(writes).await?;
    let expected: Vec<String> = (0..8).map(|index| format!("{index}\n")).collect();
    assert_eq!(wrote, expected);
    let pids: std::collections::HashSet<u32> = machines.iter().map(Machine::pid).collect();
    assert_eq!(pids.len(), 8);
    for machine in machines {
        let exit = machine.shutdown(COMMAND).await?;
        assert!(exit.success(), "{exit}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_snapshot_is_a_file_error_before_qemu_starts() -> TestResult {
    let base = tempfile::tempdir()?;
    let missing = base.path().join("nothing.snap");
    let result = guest()
        .builder()
        .base_temp_dir(base.path())
        .restore_from(&missing)
        .await;
    assert!(
        matches!(&result, Err(Error::Snapshot(error))
            if matches!(error.failure(), SnapshotFailure::File { path, .. } if path.ends_with("nothing.snap.json"))),
        "{result:?}"
    );
    assert_eq!(entries(base.path()), Vec::<std::path::PathBuf>::new());
    Ok(())
}
