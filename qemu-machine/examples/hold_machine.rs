//! Launches a `-machine none` QEMU, prints `qemu-pid <PID>` and holds it
//! until stdin closes (or 120 s pass), then shuts it down.
//!
//! The integration tests kill this process with SIGKILL to check that QEMU
//! dies with its parent (`PR_SET_PDEATHSIG`, or the guardian under a
//! wrapper) even though nothing got the chance to clean up.
//!
//! ```text
//! cargo run -p qemu-machine --example hold_machine [-- --wrapper SCRIPT --name NAME]
//! ```
//!
//! `--wrapper SCRIPT` runs QEMU under that wrapper (the printed pid is
//! then the wrapper's); `--name NAME` passes `-name NAME` to QEMU, to find
//! it among the processes.

use std::io::Write;
use std::time::Duration;

use qemu_machine::MachineBuilder;
use tokio::io::AsyncReadExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = MachineBuilder::new();
    builder.machine_type("none");
    let mut args = std::env::args_os().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or("a flag without its value")?;
        match flag.to_str() {
            Some("--wrapper") => builder.wrapper([value]),
            Some("--name") => builder.arg("-name").arg(value),
            _ => return Err(format!("unknown flag {flag:?}").into()),
        };
    }
    let machine = builder.launch().await?;
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
