//! Boots the qemukit test guest (built by `cargo xtask guest`) to a shell,
//! runs a command on its serial console, asks QMP about the machine and
//! powers the guest off from inside.
//!
//! ```text
//! cargo xtask guest
//! cargo run -p qemu-machine --example boot_guest
//! ```
//!
//! `QEMUKIT_GUEST_DIR` points at another guest directory.

// An example program reports on stdout.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use qemu_machine::{ConsoleSpec, MachineBuilder};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var_os("QEMUKIT_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/qemukit-guest")
        });
    let (kernel, initrd) = (dir.join("vmlinuz"), dir.join("initramfs.cpio.gz"));
    if !kernel.is_file() || !initrd.is_file() {
        return Err(format!(
            "no guest in {}: run `cargo xtask guest` first",
            dir.display()
        )
        .into());
    }

    let started = Instant::now();
    let machine = MachineBuilder::new()
        .machine_type("pc")
        .args(["-m", "256", "-nodefaults", "-no-reboot"])
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 no_timer_check panic=-1 quiet"])
        .console(ConsoleSpec::serial())
        .launch()
        .await?;
    println!(
        "[{:>6.2?}] QEMU {} is up: {}",
        started.elapsed(),
        machine.pid(),
        machine.command_line()
    );
    let console = machine.console().ok_or("no console")?;

    console
        .expect("qemukit-guest-ready", Duration::from_secs(60))
        .await?;
    println!("[{:>6.2?}] the guest is ready", started.elapsed());
    let uname = console.run("uname -sr", Duration::from_secs(10)).await?;
    println!(
        "[{:>6.2?}] $ uname -sr → {}",
        started.elapsed(),
        uname.output.trim()
    );
    let status = machine.qmp().execute_raw("query-status", None).await?;
    println!("[{:>6.2?}] QMP query-status → {status}", started.elapsed());

    console.send_line("poweroff -f").await?;
    let exit = machine.wait(Duration::from_secs(30)).await?;
    println!(
        "[{:>6.2?}] the guest powered off: QEMU {exit}",
        started.elapsed()
    );
    Ok(())
}
