//! The smallest qemu-machine program: launch QEMU with no guest at all
//! (`-machine none`), ask it for its status over QMP, shut it down.
//!
//! ```text
//! cargo run -p qemu-machine --example launch_query_shutdown
//! ```

// An example program reports on stdout.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use qemu_machine::MachineBuilder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let machine = MachineBuilder::new().machine_type("none").launch().await?;
    let ready = started.elapsed();

    let status = machine.qmp().execute_raw("query-status", None).await?;
    let version = machine.qmp().execute_raw("query-version", None).await?;
    let exit = machine.shutdown(Duration::from_secs(10)).await?;

    println!("command line: {}", machine.command_line());
    println!("QEMU {} (pid {})", version["qemu"], machine.pid());
    println!("status: {status}");
    println!(
        "ready after {ready:?}, {exit} after {:?} in total",
        started.elapsed()
    );
    Ok(())
}
