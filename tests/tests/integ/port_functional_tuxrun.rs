//! A port of QEMU's `tests/functional/i386/test_tuxrun.py` with its base
//! class `tests/functional/qemu_test/tuxruntest.py` (`TuxRunBaselineTest`:
//! `prepare_run`, `run_tuxtest_tests`, `common_tuxrun`): boot a kernel
//! on q35 with a virtio-blk-pci disk, wait for its command line and its
//! login, run a few commands at the prompt, `halt` and wait for the halt
//! message, each wait failing on a kernel panic, then shut QEMU down.
//!
//! Upstream: 35 + 138 = 173 lines of Python (qemu/qemu 5fc03d4e and
//! 1c491b71). This port: 104 lines of Rust.
//!
//! Differences, each forced by these hosts: our Debian x86-64 guest
//! replaces the downloaded i386 buildroot kernel and ext4 root (so no
//! `-cpu coreduo`, the initramfs is the root and the disk is a scratch raw
//! image; `zstd` and the asset download have nothing to do); the guest has
//! no login prompt, so its ready marker plays `tuxtest login:` and its
//! shell prompt `root@tuxtest:~#`; `halt -f` stands for `halt` (the guest's
//! init is a shell, which ignores busybox's halt signal).

use std::time::Duration;

use qemu_machine::{ConsoleSpec, Machine, MachineBuilder};

use crate::migration::TestResult;

const BOOT: Duration = Duration::from_secs(120);
const COMMAND: Duration = Duration::from_secs(60);

/// `KERNEL_COMMON_COMMAND_LINE` plus `console=ttyS0`, and what our guest
/// needs under TCG (see `qemukit_tests::KERNEL_APPEND`); no `root=`: the
/// initramfs is the root.
const KCMD_LINE: &str = "printk.time=0 console=ttyS0 no_timer_check panic=-1";
const PS1: &str = "# ";
const HALTMSG: &str = "reboot: System halted";

/// `TuxRunBaselineTest.wait_for_console_pattern`: fails on a kernel panic.
async fn wait_for_console_pattern(machine: &Machine, pattern: &str) -> TestResult {
    let console = machine.console().ok_or("no console")?;
    console.wait_for_pattern_or_panic(pattern, BOOT).await?;
    Ok(())
}

/// `exec_command_and_wait_for_pattern(self, command, pattern)`.
async fn exec_and_wait(machine: &Machine, command: &str, pattern: &str) -> TestResult {
    let console = machine.console().ok_or("no console")?;
    console
        .exec_and_wait_for_pattern(command, pattern, None, COMMAND)
        .await?;
    Ok(())
}

/// `run_tuxtest_tests(haltmsg)` with `wait_for_shutdown = False`.
async fn run_tuxtest_tests(machine: &Machine) -> TestResult {
    wait_for_console_pattern(machine, KCMD_LINE).await?;
    wait_for_console_pattern(machine, qemukit_tests::READY_MARKER).await?;
    // `exec_command_and_wait_for_pattern(self, 'root', ps1)`: the login.
    wait_for_console_pattern(machine, PS1).await?;
    exec_and_wait(machine, "cat /proc/interrupts", PS1).await?;
    exec_and_wait(machine, "cat /proc/self/maps", PS1).await?;
    exec_and_wait(machine, "uname -a", PS1).await?;
    exec_and_wait(machine, "halt -f", HALTMSG).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functional_tuxrun_q35() -> TestResult {
    let guest = qemukit_tests::guest();
    let dir = tempfile::tempdir()?;
    // prepare_run: the kernel, its command line, a raw disk on `drive`.
    let disk = dir.path().join("rootfs.raw");
    std::fs::File::create(&disk)?.set_len(1 << 20)?;
    let blockdev = format!(
        "driver=raw,file.driver=file,file.filename={},node-name=hd0",
        disk.display()
    );
    let machine = MachineBuilder::new()
        .binary(qemukit_tests::qemu_binary())
        .base_temp_dir(dir.path())
        .machine_type("q35")
        .args(["-nodefaults", "-m", "256"])
        .arg("-kernel")
        .arg(&guest.kernel)
        .arg("-initrd")
        .arg(&guest.initrd)
        .args(["-append", KCMD_LINE, "-blockdev", &blockdev])
        .args(["-device", "virtio-blk-pci,drive=hd0"])
        .console(ConsoleSpec::serial())
        .launch()
        .await?;
    if let Err(error) = run_tuxtest_tests(&machine).await {
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
    // wait_for_shutdown = False: the guest halted, QEMU is told to quit.
    let exit = machine.shutdown(Duration::from_secs(30)).await?;
    assert!(exit.success(), "{exit}");
    Ok(())
}
