//! The README's main job, run by `cargo xtask demo` (which first installs
//! QEMU if missing and builds the test guest): boot the guest with
//! qemu-machine, talk to it over its console and QMP, hot-plug a disk,
//! power it down, and print what happened with timings.
//!
//! Run it directly with `cargo run -p qemukit-tests --example demo` once
//! `cargo xtask guest` has built the guest.

// The transcript is this program's output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Display;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use qemu_machine::{Accel, ConsoleSpec, Machine, MachineBuilder};
use qemukit_tests::{Guest, KERNEL_APPEND, READY_MARKER};
use serde_json::{Value, json};

type Result<T = ()> = std::result::Result<T, String>;

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
const DISK_ID: &str = "demo-disk";
const DISK_NODE: &str = "demo-node";
const DISK_SIZE: u64 = 16 << 20;
const PATTERN: &str = "hello-from-the-guest";

fn main() -> ExitCode {
    // Both panic with what to do (install QEMU, build the guest) when absent.
    let qemu = qemukit_tests::qemu_binary();
    let guest = qemukit_tests::guest();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("could not start the tokio runtime: {err}"))
        .and_then(|runtime| runtime.block_on(run(&qemu, &guest)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("demo: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Prints each step with the time since the demo started.
struct Transcript {
    started: Instant,
    timings: Vec<(String, Duration)>,
}

impl Transcript {
    fn step(&self, text: impl Display) {
        println!("[{:>7.3}s] {text}", self.started.elapsed().as_secs_f64());
    }

    fn detail(&self, text: impl Display) {
        for line in text.to_string().lines() {
            println!("            | {line}");
        }
    }

    fn timing(&mut self, what: &str, took: Duration) {
        self.timings.push((what.to_owned(), took));
    }
}

async fn run(qemu: &Path, guest: &Guest) -> Result {
    let mut transcript = Transcript {
        started: Instant::now(),
        timings: Vec::new(),
    };
    let workdir = tempfile::tempdir().map_err(|err| format!("creating a temp dir: {err}"))?;

    transcript
        .step("launching QEMU with the test guest (TCG, console on ttyS0, QMP on a socketpair)");
    let launching = Instant::now();
    let machine = MachineBuilder::new()
        .binary(qemu)
        .name("qemukit-demo")
        .machine_type("pc")
        .accel(Accel::tcg())
        .console(ConsoleSpec::serial())
        .args(["-m", "256", "-no-reboot"])
        .arg("-kernel")
        .arg(&guest.kernel)
        .arg("-initrd")
        .arg(&guest.initrd)
        .args(["-append", KERNEL_APPEND])
        .launch()
        .await
        .map_err(|err| format!("launching QEMU failed: {}", report(&err)))?;
    let launched = launching.elapsed();
    transcript.timing("launch → QMP ready", launched);
    transcript.step(format_args!(
        "QEMU pid {} is up, QMP ready after {launched:.2?}",
        machine.pid()
    ));
    transcript.detail(machine.command_line());

    let result = drive(&machine, &mut transcript, workdir.path()).await;
    if let Err(err) = &result {
        transcript.step(format_args!("failed: {err}"));
        if let Some(console) = machine.console() {
            transcript.step("the console's last output:");
            let text = console.transcript_text();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            transcript.detail(tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        // Best effort: the error above is what the user needs to see.
        let _ = machine.kill().await;
        return result;
    }

    println!();
    println!("timings:");
    for (what, took) in &transcript.timings {
        println!("  {what:<44} {took:>10.2?}");
    }
    println!(
        "  {:<44} {:>10.2?}",
        "whole demo",
        transcript.started.elapsed()
    );
    Ok(())
}

async fn drive(machine: &Machine, transcript: &mut Transcript, workdir: &Path) -> Result {
    let console = machine.console().ok_or("the machine has no console")?;
    let booting = Instant::now();
    console
        .expect(READY_MARKER, BOOT_TIMEOUT)
        .await
        .map_err(|err| format!("waiting for the guest's ready line: {}", report(&err)))?;
    let boot = booting.elapsed();
    transcript.timing("QMP ready → guest shell ready", boot);
    transcript.step(format_args!(
        "guest booted to its shell in {boot:.2?} (`{}`)",
        READY_MARKER
    ));

    for command in [
        "uname -sr",
        "cat /proc/cmdline",
        "ip -4 addr show lo | grep inet",
    ] {
        shell(machine, transcript, command).await?;
    }

    for command in ["query-status", "query-version", "query-kvm"] {
        let asked = Instant::now();
        let answer = qmp(machine, command, None).await?;
        transcript.step(format_args!(
            "QMP {command} → {answer} ({:.2?})",
            asked.elapsed()
        ));
    }

    hotplug(machine, transcript, workdir).await?;
    power_down(machine, transcript).await
}

/// Runs `command` in the guest's shell and shows its output.
async fn shell(machine: &Machine, transcript: &mut Transcript, command: &str) -> Result<String> {
    let console = machine.console().ok_or("the machine has no console")?;
    let started = Instant::now();
    let out = console
        .run(command, STEP_TIMEOUT)
        .await
        .map_err(|err| format!("running `{command}` in the guest: {}", report(&err)))?;
    let took = started.elapsed();
    transcript.step(format_args!(
        "guest# {command}   (exit {}, {took:.2?})",
        out.status
    ));
    transcript.detail(out.output.trim_end());
    if out.status != 0 {
        return Err(format!(
            "`{command}` exited with status {} in the guest",
            out.status
        ));
    }
    Ok(out.output)
}

async fn qmp(machine: &Machine, command: &str, args: Option<Value>) -> Result<Value> {
    let args = match args {
        Some(Value::Object(map)) => Some(map),
        Some(other) => return Err(format!("QMP arguments must be an object, not {other}")),
        None => None,
    };
    machine
        .qmp()
        .execute_raw(command, args)
        .await
        .map_err(|err| format!("QMP {command} failed: {}", report(&err)))
}

async fn hotplug(machine: &Machine, transcript: &mut Transcript, workdir: &Path) -> Result {
    let image = workdir.join("disk.img");
    let file = std::fs::File::create(&image)
        .map_err(|err| format!("creating {}: {err}", image.display()))?;
    file.set_len(DISK_SIZE)
        .map_err(|err| format!("sizing {}: {err}", image.display()))?;
    drop(file);
    transcript.step(format_args!(
        "hot-plugging a {} MiB raw image {}",
        DISK_SIZE >> 20,
        image.display()
    ));

    let plugging = Instant::now();
    qmp(
        machine,
        "blockdev-add",
        Some(json!({"driver": "raw", "node-name": DISK_NODE,
                    "file": {"driver": "file", "filename": image}})),
    )
    .await?;
    transcript.step(format_args!("QMP blockdev-add node-name={DISK_NODE} → ok"));
    qmp(
        machine,
        "device_add",
        Some(json!({"driver": "virtio-blk-pci", "drive": DISK_NODE, "id": DISK_ID})),
    )
    .await?;
    transcript.step(format_args!(
        "QMP device_add virtio-blk-pci id={DISK_ID} → ok"
    ));
    // The guest probes the new PCI device asynchronously: wait (bounded) in
    // the guest for the block device to appear.
    let sectors = shell(
        machine,
        transcript,
        "for i in $(seq 100); do [ -e /sys/block/vda ] && break; sleep 0.1; done; cat /sys/block/vda/size",
    )
    .await?;
    let plugged = plugging.elapsed();
    transcript.timing("blockdev-add → /sys/block/vda in the guest", plugged);
    let sectors: u64 = sectors
        .trim()
        .parse()
        .map_err(|_| format!("unexpected size {sectors:?}"))?;
    transcript.step(format_args!(
        "the guest sees /dev/vda: {} MiB, {plugged:.2?} after blockdev-add",
        (sectors * 512) >> 20
    ));

    shell(
        machine,
        transcript,
        &format!("echo {PATTERN} | dd of=/dev/vda conv=fsync 2>/dev/null && echo written"),
    )
    .await?;
    let written =
        std::fs::read(&image).map_err(|err| format!("reading {}: {err}", image.display()))?;
    if !written.starts_with(PATTERN.as_bytes()) {
        return Err(format!(
            "the image does not start with `{PATTERN}` after the guest wrote it"
        ));
    }
    transcript.step(format_args!(
        "the host reads `{PATTERN}` at the start of {}",
        image.display()
    ));

    let unplugging = Instant::now();
    let filter = json!({"data": {"device": DISK_ID}});
    let deleted = machine.qmp().event_waiter("DEVICE_DELETED", Some(&filter));
    qmp(machine, "device_del", Some(json!({"id": DISK_ID}))).await?;
    transcript.step(format_args!(
        "QMP device_del id={DISK_ID} → ok; waiting for DEVICE_DELETED"
    ));
    let event = deleted
        .wait(Some(STEP_TIMEOUT))
        .await
        .map_err(|err| format!("waiting for DEVICE_DELETED: {}", report(&err)))?;
    let unplugged = unplugging.elapsed();
    transcript.timing("device_del → DEVICE_DELETED", unplugged);
    transcript.step(format_args!(
        "event DEVICE_DELETED {} after {unplugged:.2?}",
        Value::Object(event.data)
    ));
    qmp(
        machine,
        "blockdev-del",
        Some(json!({"node-name": DISK_NODE})),
    )
    .await?;
    transcript.step(format_args!("QMP blockdev-del node-name={DISK_NODE} → ok"));
    let gone = shell(
        machine,
        transcript,
        "[ -e /sys/block/vda ] && echo vda is still there || echo vda is gone",
    )
    .await?;
    if !gone.contains("gone") {
        return Err("the guest still has /sys/block/vda after DEVICE_DELETED".into());
    }
    Ok(())
}

async fn power_down(machine: &Machine, transcript: &mut Transcript) -> Result {
    let powering = Instant::now();
    let powerdown = machine.qmp().event_waiter("POWERDOWN", None);
    let shutdown = machine.qmp().event_waiter("SHUTDOWN", None);
    qmp(machine, "system_powerdown", None).await?;
    transcript.step("QMP system_powerdown → ok (the guest's acpid powers it off)");
    for (name, waiter) in [("POWERDOWN", powerdown), ("SHUTDOWN", shutdown)] {
        let event = waiter
            .wait(Some(STEP_TIMEOUT))
            .await
            .map_err(|err| format!("waiting for {name}: {}", report(&err)))?;
        transcript.step(format_args!(
            "event {name} {} after {:.2?}",
            Value::Object(event.data),
            powering.elapsed()
        ));
    }
    let exit = machine
        .wait(STEP_TIMEOUT)
        .await
        .map_err(|err| format!("waiting for QEMU to exit: {}", report(&err)))?;
    let took = powering.elapsed();
    transcript.timing("system_powerdown → QEMU exited", took);
    transcript.step(format_args!(
        "QEMU exited: {exit} ({took:.2?} after system_powerdown)"
    ));
    Ok(())
}

/// An error and its causes on one line.
fn report(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
