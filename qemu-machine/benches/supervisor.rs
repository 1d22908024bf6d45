//! What supervising QEMU costs, printed as a table:
//!
//! 1. launch → ready → shutdown of `-machine none` with qemu-machine,
//!    beside a raw spawn doing the least possible (spawn QEMU on a
//!    socketpair, read the greeting, negotiate, `quit`, wait);
//! 2. 50 machines launched at once: time until all are ready, and the
//!    supervisor's resident memory per machine;
//! 3. spawn → the test guest's ready marker on the console (needs
//!    `cargo xtask guest`).
//!
//! ```text
//! cargo bench -p qemu-machine --bench supervisor
//! ```

// A benchmark program reports on stdout.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use qemu_machine::{Accel, ConsoleSpec, MachineBuilder};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const CYCLES: usize = 60;
const CONCURRENT: usize = 50;
const GUEST_BOOTS: usize = 3;
const SHUTDOWN: Duration = Duration::from_secs(10);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<()> {
    println!("qemu-machine supervisor benchmark ({})", qemu_version()?);
    // Warm up both paths (page cache, the spawner thread).
    raw_cycle().await?;
    machine_cycle().await?;

    let mut raw = Vec::with_capacity(CYCLES);
    let mut supervised = Vec::with_capacity(CYCLES);
    for _ in 0..CYCLES {
        // Interleaved, so that machine noise hits both alike.
        raw.push(timed(raw_cycle()).await?);
        supervised.push(timed(machine_cycle()).await?);
    }
    let (raw_median, supervised_median) = (median(&mut raw), median(&mut supervised));
    // The fastest run is the least disturbed by other load on the host.
    let (raw_min, supervised_min) = (raw[0], supervised[0]);
    println!();
    println!("| measure | median | fastest |");
    println!("|---|---|---|");
    println!(
        "| raw spawn→greeting→caps→quit→exit ({CYCLES} runs) | {raw_median:.1?} | {raw_min:.1?} |"
    );
    println!(
        "| qemu-machine launch→ready→shutdown ({CYCLES} runs) | {supervised_median:.1?} | {supervised_min:.1?} |"
    );
    println!(
        "| ratio qemu-machine / raw (target ≤ 1.05) | {:.3} | {:.3} |",
        supervised_median.as_secs_f64() / raw_median.as_secs_f64(),
        supervised_min.as_secs_f64() / raw_min.as_secs_f64()
    );

    let (all_ready, rss_per_machine) = concurrent_launch().await?;
    println!("| {CONCURRENT} machines launched at once: all ready after | {all_ready:.1?} | |");
    println!("| supervisor RSS per machine (target ≤ 64 KiB) | {rss_per_machine} KiB | |");

    match guest_files() {
        Some((kernel, initrd)) => {
            let mut boots = Vec::with_capacity(GUEST_BOOTS);
            for _ in 0..GUEST_BOOTS {
                boots.push(guest_ready(&kernel, &initrd).await?);
            }
            let median = median(&mut boots);
            println!(
                "| spawn → guest ready marker (TCG, {GUEST_BOOTS} boots) | {median:.2?} | {:.2?} |",
                boots[0]
            );
        }
        None => {
            println!("| spawn → guest ready marker | not measured: run `cargo xtask guest` | |")
        }
    }
    Ok(())
}

async fn timed<F: Future<Output = Result<()>>>(work: F) -> Result<Duration> {
    let started = Instant::now();
    work.await?;
    Ok(started.elapsed())
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn qemu_version() -> Result<String> {
    let output = std::process::Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned())
}

async fn machine_cycle() -> Result<()> {
    let machine = MachineBuilder::new().machine_type("none").launch().await?;
    machine.shutdown(SHUTDOWN).await?;
    Ok(())
}

/// The floor: QEMU on a socketpair (as its stdin, so no descriptor
/// juggling), greeting, `qmp_capabilities`, `quit`, wait.
async fn raw_cycle() -> Result<()> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    let mut child = tokio::process::Command::new("qemu-system-x86_64")
        .args([
            "-display", "none", "-vga", "none", "-machine", "none", "-accel", "tcg",
        ])
        .args([
            "-chardev",
            "socket,id=m,fd=0",
            "-mon",
            "chardev=m,mode=control",
        ])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut stream = BufReader::new(tokio::net::UnixStream::from_std(ours)?);
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    stream
        .get_mut()
        .write_all(br#"{"execute":"qmp_capabilities"}"#)
        .await?;
    line.clear();
    stream.read_line(&mut line).await?;
    stream.get_mut().write_all(br#"{"execute":"quit"}"#).await?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await?;
    let status = child.wait().await?;
    if !status.success() {
        return Err(format!("raw QEMU ended with {status}").into());
    }
    Ok(())
}

async fn concurrent_launch() -> Result<(Duration, u64)> {
    let rss_before = rss_kib()?;
    let started = Instant::now();
    let mut launches = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENT {
        launches.spawn(async { MachineBuilder::new().machine_type("none").launch().await });
    }
    let mut machines = Vec::with_capacity(CONCURRENT);
    while let Some(launched) = launches.join_next().await {
        machines.push(launched??);
    }
    let all_ready = started.elapsed();
    let rss_after = rss_kib()?;
    let mut shutdowns = tokio::task::JoinSet::new();
    for machine in machines {
        shutdowns.spawn(async move { machine.shutdown(SHUTDOWN).await });
    }
    while let Some(shutdown) = shutdowns.join_next().await {
        shutdown??;
    }
    let per_machine = rss_after.saturating_sub(rss_before) / CONCURRENT as u64;
    Ok((all_ready, per_machine))
}

fn rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let rss = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or("no VmRSS in /proc/self/status")?;
    Ok(rss)
}

/// The test guest built by `cargo xtask guest`, if it is there.
fn guest_files() -> Option<(PathBuf, PathBuf)> {
    let dir = std::env::var_os("QEMUKIT_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/qemukit-guest")
        });
    let (kernel, initrd) = (dir.join("vmlinuz"), dir.join("initramfs.cpio.gz"));
    (kernel.is_file() && initrd.is_file()).then_some((kernel, initrd))
}

async fn guest_ready(kernel: &std::path::Path, initrd: &std::path::Path) -> Result<Duration> {
    let started = Instant::now();
    let machine = MachineBuilder::new()
        .machine_type("pc")
        .accel(Accel::tcg())
        .args(["-m", "256", "-nodefaults", "-no-reboot"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 no_timer_check panic=-1 quiet"])
        .console(ConsoleSpec::serial())
        .launch()
        .await?;
    let console = machine.console().ok_or("no console")?;
    console
        .expect("qemukit-guest-ready", Duration::from_secs(120))
        .await?;
    let ready = started.elapsed();
    machine.kill().await?;
    Ok(ready)
}
