//! Launches a `-machine none` QEMU, prints `qemu-pid <PID>` and holds it
//! until stdin closes (or 120 s pass), then shuts it down.
//!
//! The integration tests kill this process with SIGKILL to check that QEMU
//! dies with its parent (`PR_SET_PDEATHSIG`) even though nothing got the
//! chance to clean up.
//!
//! ```text
//! cargo run -p qemu-machine --example hold_machine
//! ```

use std::io::Write;
use std::time::Duration;

use qemu_machine::MachineBuilder;
use tokio::io::AsyncReadExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let machine = MachineBuilder::new().machine_type("none").launch().await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "qemu-pid {}", machine.pid())?;
    stdout.flush()?;
    // Hold the machine until the parent closes our stdin (or kills us).
    let mut stdin = tokio::io::stdin();
    let mut sink = Vec::new();
    let _held = tokio::time::timeout(Duration::from_secs(120), stdin.read_to_end(&mut sink)).await;
    machine.shutdown(Duration::from_secs(10)).await?;
    Ok(())
}
