//! qemu-machine's supervision against the real QEMU: one builder launching
//! many machines, error chains down to the root cause, QEMU under a
//! wrapper dying with a killed parent, and machines that do not wait for
//! each other.

use std::error::Error as StdError;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use qemu_machine::{Error, ExitInfo, LaunchFailure, Machine, ShutdownCause};
use rustix::process::Signal;
use tokio::time::timeout;

use crate::machine::{
    Holder, assert_first_fdset, assert_no_entries, expect_exit, none_machine, processes_with,
    query_status, signal, unique_marker, watch_exit,
};

const SHUTDOWN: Duration = Duration::from_secs(10);

/// Every error of the chain, from the top, as `Display` shows it.
fn chain(error: &(dyn StdError + 'static)) -> Vec<String> {
    let mut messages = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        messages.push(error.to_string());
        next = error.source();
    }
    messages
}

/// The first error of type `T` in the chain.
fn find<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        next = error.source();
    }
    None
}

/// An executable script in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write the script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("make the script executable");
    path
}

#[tokio::test]
async fn one_builder_launches_three_machines_each_with_its_own_fds() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut builder = none_machine(base.path());
    builder.add_fd(
        OwnedFd::from(tempfile::tempfile().expect("tempfile")),
        3,
        Some("shared"),
    );
    let mut pids = Vec::new();
    for round in 0..3 {
        let machine = builder.launch().await.expect("launch failed");
        assert_first_fdset(&machine, 3, "shared").await;
        pids.push(machine.pid());
        let exit = machine.shutdown(SHUTDOWN).await.expect("shutdown failed");
        assert!(exit.success(), "round {round}: {exit}");
        assert_no_entries(base.path());
    }
    pids.dedup();
    assert_eq!(pids.len(), 3, "{pids:?}");
    // And two at once from the same builder, while it is being changed.
    let first = builder.launch();
    builder.arg("-S");
    let (first, second) = tokio::join!(first, builder.launch());
    let (first, second) = (first.expect("first launch"), second.expect("second launch"));
    assert_eq!(query_status(&first).await, "running");
    assert_eq!(query_status(&second).await, "prelaunch");
    for machine in [first, second] {
        machine.shutdown(SHUTDOWN).await.expect("shutdown failed");
    }
}

#[tokio::test]
async fn a_monitor_peer_that_is_not_qmp_is_named_in_the_error_chain() {
    let base = tempfile::tempdir().expect("tempdir");
    // Stands in for QEMU: says something that is not a QMP greeting on the
    // monitor socket qemu-machine hands it, then hangs.
    let fake = script(
        base.path(),
        "not-qemu",
        "#!/bin/bash\n\
         for arg; do case \"$arg\" in socket,id=qemukit-qmp,fd=*) fd=${arg##*fd=};; esac; done\n\
         echo '{\"hello\": \"I am not QEMU\"}' >&\"$fd\"\n\
         exec sleep 30\n",
    );
    let work = tempfile::tempdir().expect("tempdir");
    let mut builder = none_machine(work.path());
    builder.binary(&fake);
    let error = builder.launch().await.expect_err("the launch must fail");
    let messages = chain(&error);
    let Error::Launch(launch) = &error else {
        panic!("expected a launch error, got {messages:#?}");
    };
    assert!(
        matches!(launch.reason(), LaunchFailure::Qmp(_)),
        "{messages:#?}"
    );
    // qmp-client names a peer that is no QMP monitor with its own error.
    let not_qmp = find::<qmp_client::Error>(&error);
    assert!(
        matches!(not_qmp, Some(qmp_client::Error::NotQmp { .. })),
        "no NotQmp in the chain {messages:#?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("I am not QEMU")),
        "{messages:#?}"
    );
    assert_no_entries(work.path());
}

#[tokio::test]
async fn a_missing_kernel_ends_the_chain_with_qemus_exit() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut builder = none_machine(base.path());
    builder
        .machine_type("pc")
        .args(["-nodefaults", "-kernel", "/nonexistent/vmlinuz"]);
    let error = builder.launch().await.expect_err("the launch must fail");
    let messages = chain(&error);
    let Error::Launch(launch) = &error else {
        panic!("expected a launch error, got {messages:#?}");
    };
    assert!(
        matches!(launch.reason(), LaunchFailure::Exited),
        "{messages:#?}"
    );
    assert!(
        launch.output_tail().contains("/nonexistent/vmlinuz"),
        "{messages:#?}"
    );
    let exit = find::<ExitInfo>(&error);
    assert_eq!(exit.and_then(ExitInfo::code), Some(1), "{messages:#?}");
    assert_eq!(
        messages.last().map(String::as_str),
        Some("exited with code 1"),
        "{messages:#?}"
    );
}

#[tokio::test]
async fn a_shutdown_timeout_is_the_cause_of_the_abnormal_shutdown() {
    let base = tempfile::tempdir().expect("tempdir");
    let machine = none_machine(base.path())
        .launch()
        .await
        .expect("launch failed");
    signal(machine.pid(), Signal::STOP);
    let error = machine
        .shutdown(Duration::from_millis(500))
        .await
        .expect_err("a stopped QEMU cannot quit");
    let messages = chain(&error);
    assert!(
        matches!(error, Error::AbnormalShutdown { .. }),
        "{messages:#?}"
    );
    assert!(
        matches!(
            find::<ShutdownCause>(&error),
            Some(ShutdownCause::Timeout(_))
        ),
        "{messages:#?}"
    );
    assert!(messages[0].contains("killed by signal 9"), "{messages:#?}");
    assert!(messages[1].contains("longer timeout"), "{messages:#?}");
}

#[tokio::test]
async fn a_wrapped_qemu_dies_with_its_killed_parent() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A shell script that forks QEMU and waits for it: QEMU is the
    // wrapper's child, in the same process group, with no death signal.
    let wrapper = script(dir.path(), "wrapper.sh", "#!/bin/sh\n\"$@\"\nexit $?\n");
    let marker = unique_marker("wrapped");
    let holder = Holder::start(&[
        "--wrapper".as_ref(),
        wrapper.as_os_str(),
        "--name".as_ref(),
        marker.as_ref(),
    ])
    .await;
    let wrapper_pid = holder.machine_pid;
    // QEMU itself: the wrapper's child (the helper and its guardian carry
    // the marker on their command lines too).
    let parent_line = format!("PPid:\t{wrapper_pid}\n");
    let qemus: Vec<u32> = processes_with(&marker)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .is_ok_and(|status| status.contains(&parent_line))
        })
        .collect();
    let [qemu_pid] = qemus[..] else {
        panic!("expected one QEMU under wrapper {wrapper_pid}, found {qemus:?}");
    };
    holder.kill_and_expect_gone(watch_exit(qemu_pid)).await;
}

#[tokio::test]
async fn a_stuck_machine_does_not_delay_another_ones_exit() {
    let base = tempfile::tempdir().expect("tempdir");
    let stuck = none_machine(base.path())
        .launch()
        .await
        .expect("launch failed");
    let stuck_pid = stuck.pid();
    signal(stuck_pid, Signal::STOP);
    // Its shutdown waits (up to two minutes) for a QEMU that cannot quit.
    let stuck_shutdown = tokio::spawn(async move {
        let ended = stuck.shutdown(Duration::from_secs(120)).await;
        (stuck, ended)
    });
    let other = none_machine(base.path())
        .launch()
        .await
        .expect("launch failed");
    let exit = timeout(Duration::from_secs(60), other.shutdown(SHUTDOWN))
        .await
        .expect("the other machine waited for the stuck one")
        .expect("shutdown failed");
    assert!(exit.success(), "{exit}");
    let dropped = none_machine(base.path())
        .launch()
        .await
        .expect("launch failed");
    let dropped_exit = watch_exit(dropped.pid());
    drop(dropped);
    let waited = "a dropped machine waited for the stuck one";
    expect_exit(dropped_exit, Duration::from_secs(10), waited).await;
    assert!(
        !stuck_shutdown.is_finished(),
        "the stuck machine was not stuck"
    );

    signal(stuck_pid, Signal::KILL);
    let (stuck, ended) = timeout(Duration::from_secs(30), stuck_shutdown)
        .await
        .expect("the stuck shutdown did not notice the kill")
        .expect("task panicked");
    let exit = ended.expect("a killed QEMU has ended");
    assert!(exit.killed_unexpectedly(), "{exit}");
    assert!(!stuck.is_running());
    assert_no_entries(base.path());
}

#[tokio::test]
async fn a_machine_outlives_the_task_that_launched_it() {
    let base = tempfile::tempdir().expect("tempdir");
    let builder = none_machine(base.path());
    let launched: Machine = tokio::spawn(async move { builder.launch().await })
        .await
        .expect("launching task panicked")
        .expect("launch failed");
    // The task and its builder are gone; QEMU is not.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(launched.is_running());
    assert_eq!(query_status(&launched).await, "running");
    let exit = launched.shutdown(SHUTDOWN).await.expect("shutdown failed");
    assert!(exit.success(), "{exit}");
}
