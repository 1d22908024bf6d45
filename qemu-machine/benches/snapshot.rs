//! Booting the test guest against restoring it from a snapshot, in one
//! run on the same guest, printed as a table:
//!
//! 1. cold boot → the shell answers a command (median);
//! 2. saving the booted guest: time, file size (apparent and on disk);
//! 3. restore → the shell answers (median of 7), with where the time goes
//!    (metadata check, QEMU start until QMP is ready, `migrate-incoming`
//!    until completed, `cont`, the first console answer);
//! 4. 8 machines restored at once → all answering;
//! 5. `restore/cold = R`;
//! 6. experiments: `multifd` channels (QEMU ≥ 9.0), a smaller `-m`.
//!
//! Needs the guest (`cargo xtask guest`); `QEMUKIT_QEMU` picks the binary.
//!
//! ```text
//! cargo bench -p qemu-machine --bench snapshot
//! QEMUKIT_QEMU=/path/to/qemu-7.2/qemu-system-x86_64 cargo bench -p qemu-machine --bench snapshot
//! ```

// A benchmark program reports on stdout.
#![allow(clippy::print_stdout)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qemu_machine::{
    AfterSave, ConsoleSpec, Machine, MachineBuilder, RestoreOptions, RestoreTimings, SaveOptions,
};

const COLD_BOOTS: usize = 3;
const RESTORES: usize = 7;
const AT_ONCE: usize = 8;
const BOOT: Duration = Duration::from_secs(180);
const ANSWER: Duration = Duration::from_secs(60);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

/// The binary: `$QEMUKIT_QEMU`, else `qemu-system-x86_64` from the `PATH`.
fn binary() -> PathBuf {
    std::env::var_os("QEMUKIT_QEMU")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("qemu-system-x86_64"))
}

fn guest_dir() -> PathBuf {
    std::env::var_os("QEMUKIT_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/qemukit-guest")
        })
}

/// The test guest with `memory` MiB and a ttyS0 console.
fn guest(memory: u32) -> MachineBuilder {
    let dir = guest_dir();
    let mut builder = MachineBuilder::new();
    builder
        .binary(binary())
        .machine_type("pc")
        .args(["-m", &memory.to_string(), "-nodefaults", "-no-reboot"])
        .arg("-kernel")
        .arg(dir.join("vmlinuz"))
        .arg("-initrd")
        .arg(dir.join("initramfs.cpio.gz"))
        .args(["-append", "console=ttyS0 no_timer_check panic=-1 quiet"])
        .console(ConsoleSpec::serial());
    builder
}

/// Waits until the shell runs a command: the guest is usable.
async fn shell_answers(machine: &Machine) -> Result<()> {
    let console = machine.console().ok_or("no console")?;
    let out = console.run("echo @@$((20+22))@@", ANSWER).await?;
    if out.output != "@@42@@\n" {
        return Err(format!("the shell said {:?}", out.output).into());
    }
    Ok(())
}

async fn cold_boot(memory: u32) -> Result<(Duration, Machine)> {
    let started = Instant::now();
    let machine = guest(memory).launch().await?;
    let console = machine.console().ok_or("no console")?;
    console.expect("qemukit-guest-ready", BOOT).await?;
    shell_answers(&machine).await?;
    Ok((started.elapsed(), machine))
}

/// One restore: its timings, then the first console answer, in total.
async fn restore(memory: u32, path: &Path) -> Result<(Duration, RestoreTimings, Duration)> {
    let started = Instant::now();
    let (machine, timings) = guest(memory)
        .restore_from_with(path, &RestoreOptions::new())
        .await?;
    let answering = Instant::now();
    shell_answers(&machine).await?;
    let answer = answering.elapsed();
    let total = started.elapsed();
    machine.kill().await?;
    Ok((total, timings, answer))
}

/// The median restore, whole: its parts add up to its total.
struct Series {
    total: Duration,
    timings: RestoreTimings,
    answer: Duration,
}

async fn restore_series(memory: u32, path: &Path) -> Result<Series> {
    // The first restore probes the binary's version and warms the cache.
    restore(memory, path).await?;
    let mut runs = Vec::with_capacity(RESTORES);
    for _ in 0..RESTORES {
        runs.push(restore(memory, path).await?);
    }
    runs.sort_unstable_by_key(|run| run.0);
    let (total, timings, answer) = runs[runs.len() / 2];
    Ok(Series {
        total,
        timings,
        answer,
    })
}

async fn save(
    machine: &Machine,
    path: &Path,
    options: SaveOptions,
) -> Result<(Duration, u64, u64)> {
    let started = Instant::now();
    machine
        .save_snapshot_with(path, &options.after(AfterSave::Quit))
        .await?;
    let took = started.elapsed();
    let meta = std::fs::metadata(path)?;
    Ok((took, meta.len(), meta.blocks() * 512))
}

async fn run() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let binary = binary();
    let version = qemu_cmdline::Probe::version(&binary, Duration::from_secs(30))?;
    // Boots and restores slow down alike on a loaded host; the ratio holds.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "qemu-machine snapshot benchmark ({version}, {}; load average {})",
        binary.display(),
        load.split_whitespace().next().unwrap_or("unknown")
    );

    let mut boots = Vec::with_capacity(COLD_BOOTS);
    let mut last = None;
    for _ in 0..COLD_BOOTS {
        let (took, machine) = cold_boot(256).await?;
        boots.push(took);
        if let Some(previous) = last.replace(machine) {
            Machine::kill(&previous).await?;
        }
    }
    let cold = median(&mut boots);
    let booted = last.ok_or("no boot")?;
    let path = dir.path().join("guest.snap");
    let (save_time, apparent, on_disk) = save(&booted, &path, SaveOptions::new()).await?;
    let series = restore_series(256, &path).await?;
    let all_at_once = at_once(&path).await?;

    println!();
    println!("| measure | time |");
    println!("|---|---|");
    println!("| cold boot → shell answers (median of {COLD_BOOTS}) | {cold:.2?} |");
    println!(
        "| save (stop, migrate, metadata, quit) | {save_time:.2?}; file {} MB apparent, {} MB on disk |",
        apparent >> 20,
        on_disk >> 20
    );
    print_series("restore → shell answers", &series);
    println!("| {AT_ONCE} restored at once → all answering | {all_at_once:.2?} |");
    println!(
        "| restore/cold = R (goal ≤ 0.08 on QEMU 10.0) | {:.3} |",
        series.total.as_secs_f64() / cold.as_secs_f64()
    );

    println!();
    println!("Experiments:");
    if (version.major, version.minor) >= (9, 0) {
        let (_, machine) = cold_boot(256).await?;
        let multifd = dir.path().join("multifd.snap");
        let (took, apparent, on_disk) =
            save(&machine, &multifd, SaveOptions::new().multifd_channels(4)).await?;
        println!(
            "| multifd ×4: save | {took:.2?}; file {} MB apparent, {} MB on disk |",
            apparent >> 20,
            on_disk >> 20
        );
        print_series(
            "multifd ×4: restore → shell answers",
            &restore_series(256, &multifd).await?,
        );
    }
    let (small_cold, machine) = cold_boot(128).await?;
    let small = dir.path().join("small.snap");
    let (took, apparent, on_disk) = save(&machine, &small, SaveOptions::new()).await?;
    println!(
        "| -m 128: cold boot {small_cold:.2?}; save {took:.2?}; file {} MB apparent, {} MB on disk |",
        apparent >> 20,
        on_disk >> 20
    );
    let small_series = restore_series(128, &small).await?;
    print_series("-m 128: restore → shell answers", &small_series);
    println!(
        "| -m 128: restore/cold | {:.3} |",
        small_series.total.as_secs_f64() / small_cold.as_secs_f64()
    );
    Ok(())
}

/// The median restore and where its time went, one row per stage.
fn print_series(what: &str, series: &Series) {
    let Series {
        total,
        timings,
        answer,
    } = series;
    println!("| {what} (median of {RESTORES}) | {total:.2?} |");
    let stages = [
        ("check the metadata, the binary's version", timings.check),
        ("spawn QEMU → QMP greeting and negotiation", timings.launch),
        ("device set (qom-list) compared", timings.devices),
        ("migrate-incoming → completed", timings.load),
        ("cont", timings.resume),
        ("→ the shell answers a command", *answer),
    ];
    for (stage, took) in stages {
        let share = took.as_secs_f64() / total.as_secs_f64() * 100.0;
        println!("| … {stage} | {took:.1?} ({share:.0}%) |");
    }
}

async fn at_once(path: &Path) -> Result<Duration> {
    let started = Instant::now();
    let restores = (0..AT_ONCE).map(|_| async move {
        let machine = guest(256).restore_from(path).await?;
        shell_answers(&machine).await?;
        Ok::<_, Box<dyn std::error::Error>>(machine)
    });
    let machines = futures::future::try_join_all(restores).await?;
    let took = started.elapsed();
    for machine in machines {
        machine.kill().await?;
    }
    Ok(took)
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}
