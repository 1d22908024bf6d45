//! A port of QEMU's `tests/functional/x86_64/test_hotplug_blk.py`: hot-plug
//! a virtio-blk disk behind a PCIe-to-PCI bridge on q35, see the guest
//! find it, unplug it and see it go.
//!
//! Upstream: 85 lines of Python (qemu/qemu 5fc03d4e). This port: 138 lines
//! of Rust.
//!
//! Differences, each forced by these hosts: our Debian guest replaces the
//! downloaded Fedora kernel and initrd (its shell prompt plays
//! `rd.rescue`'s, its ready marker `Entering emergency mode.`); TCG
//! replaces `-accel kvm` (`require_accelerator('kvm')` would skip here:
//! this host's KVM cannot run a guest); `DEVICE_DELETED` gets 30 s instead
//! of 1 s under TCG on a shared machine. And one by choice: the guest is
//! booted once per test process and restored from a snapshot at its
//! prompt (`qemukit_tests::restore_booted`), since the hot-plug, not the
//! boot, is what this tests.

use std::time::Duration;

use qemu_machine::{ConsoleSpec, Machine, MachineBuilder};
use serde_json::json;

use crate::migration::TestResult;

const BOOT: Duration = Duration::from_secs(120);
const COMMAND: Duration = Duration::from_secs(60);
/// Upstream waits 1 s under KVM.
const DEVICE_DELETED: Duration = Duration::from_secs(30);

/// `LinuxKernelTest.wait_for_console_pattern`: fails on a kernel panic.
async fn wait_for_console_pattern(machine: &Machine, pattern: &str) -> TestResult {
    let console = machine.console().ok_or("no console")?;
    console.wait_for_pattern_or_panic(pattern, BOOT).await?;
    Ok(())
}

/// `exec_command_and_wait_for_pattern(self, command, '# ')`.
async fn exec_and_wait_for_prompt(machine: &Machine, command: &str) -> TestResult {
    let console = machine.console().ok_or("no console")?;
    console
        .exec_and_wait_for_pattern(command, "# ", None, COMMAND)
        .await?;
    Ok(())
}

async fn assert_vda(machine: &Machine) -> TestResult {
    exec_and_wait_for_prompt(
        machine,
        "while ! test -e /sys/block/vda ; do sleep 0.2 ; done",
    )
    .await
}

async fn assert_no_vda(machine: &Machine) -> TestResult {
    exec_and_wait_for_prompt(
        machine,
        "while test -e /sys/block/vda ; do sleep 0.2 ; done",
    )
    .await
}

async fn plug(machine: &Machine) -> TestResult {
    assert_no_vda(machine).await?;
    let args = json!({
        "driver": "virtio-blk-pci",
        "drive": "disk",
        "id": "virtio-disk0",
        "bus": "pci.1",
        "addr": "1",
    });
    machine
        .qmp()
        .execute_raw("device_add", args.as_object().cloned())
        .await?;
    wait_for_console_pattern(machine, "virtio_blk virtio0: [vda]").await?;
    assert_vda(machine).await
}

async fn unplug(machine: &Machine) -> TestResult {
    let args = json!({"id": "virtio-disk0"});
    machine
        .qmp()
        .execute_raw("device_del", args.as_object().cloned())
        .await?;
    let filter = json!({"data": {"device": "virtio-disk0"}});
    machine
        .qmp()
        .wait_event("DEVICE_DELETED", Some(&filter), Some(DEVICE_DELETED))
        .await?;
    assert_no_vda(machine).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functional_hotplug_blk() -> TestResult {
    let guest = qemukit_tests::guest();
    let dir = tempfile::tempdir()?;
    // `quiet` would hide the kernel's `[vda]` line: the guest's command
    // line without it, as upstream's `console=ttyS0 rd.rescue`.
    let make = || {
        let mut builder = MachineBuilder::new();
        builder
            .binary(qemukit_tests::qemu_binary())
            .base_temp_dir(dir.path())
            .machine_type("q35")
            .args(["-device", "pcie-pci-bridge,id=pci.1,bus=pcie.0", "-m", "1G"])
            .args(["-nodefaults", "-no-reboot"])
            .arg("-kernel")
            .arg(&guest.kernel)
            .arg("-initrd")
            .arg(&guest.initrd)
            .args(["-append", "console=ttyS0 no_timer_check panic=-1"])
            .console(ConsoleSpec::serial());
        builder
    };
    // launch_kernel(..., wait_for='Entering emergency mode.'), then '# ':
    // the guest at that prompt, booted once and restored (upstream boots;
    // what it tests is the hot-plug).
    let machine = qemukit_tests::restore_booted(make).await?;
    let outcome = async {
        // blockdev_add
        let args = json!({"driver": "null-co", "size": 1_073_741_824u64, "node-name": "disk"});
        machine
            .qmp()
            .execute_raw("blockdev-add", args.as_object().cloned())
            .await?;
        plug(&machine).await?;
        unplug(&machine).await
    }
    .await;
    if let Err(error) = outcome {
        let transcript = machine
            .console()
            .map(|c| c.transcript_text())
            .unwrap_or_default();
        return Err(format!(
            "{error}\nconsole:\n{transcript}\nQEMU said: {}",
            machine.log()
        )
        .into());
    }
    let exit = machine.shutdown(Duration::from_secs(30)).await?;
    assert!(exit.success(), "{exit}");
    Ok(())
}
