//! Launches and shuts down `-machine none` QEMUs one after the other and
//! reports what this process holds before and after: open descriptors,
//! child processes and entries in its temporary directory. Leak-free
//! cleanup means the numbers do not change.
//!
//! ```text
//! cargo run -p qemu-machine --example cycles -- 200
//! ```
//!
//! Prints `before fds=N children=N temp_entries=N`, then the same line
//! for `after`.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use qemu_machine::MachineBuilder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cycles: u32 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 200,
    };
    let base = tempfile::tempdir()?;
    // One warm-up cycle, so that lazily created resources (the spawner
    // thread, the runtime's I/O driver) exist in both counts.
    cycle(base.path()).await?;
    let mut stdout = std::io::stdout();
    let before = snapshot(base.path())?;
    writeln!(stdout, "before {before}")?;
    for _ in 0..cycles {
        cycle(base.path()).await?;
    }
    writeln!(stdout, "after {}", settled(base.path(), &before).await?)?;
    Ok(())
}

/// The snapshot once it equals `before`, or the last one after a bounded
/// wait: a descriptor in the middle of being released (the QMP driver
/// dropping its socket, the reaper closing a pidfd) is not a leak, and a
/// leak does not go away by waiting.
async fn settled(base: &Path, before: &str) -> std::io::Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = snapshot(base)?;
        if now == before || tokio::time::Instant::now() >= deadline {
            return Ok(now);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn cycle(base: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let machine = MachineBuilder::new()
        .machine_type("none")
        .base_temp_dir(base)
        .launch()
        .await?;
    machine.qmp().execute_raw("query-status", None).await?;
    machine.shutdown(Duration::from_secs(10)).await?;
    Ok(())
}

fn snapshot(base: &Path) -> std::io::Result<String> {
    let fds = std::fs::read_dir("/proc/self/fd")?.count();
    let mut children = 0;
    for task in std::fs::read_dir("/proc/self/task")? {
        let list = std::fs::read_to_string(task?.path().join("children"))?;
        children += list.split_whitespace().count();
    }
    let temp_entries = std::fs::read_dir(base)?.count();
    Ok(format!(
        "fds={fds} children={children} temp_entries={temp_entries}"
    ))
}
