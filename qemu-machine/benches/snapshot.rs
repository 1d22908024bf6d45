//! Booting the test guest against restoring it from a snapshot, in one
//! run on the same guest, printed as a table:
//!
//! 1. cold boot → the shell answers a command;
//! 2. saving the booted guest: time, file size (apparent and on disk);
//! 3. restore → the shell answers, with where the time goes (metadata
//!    check, spawn → QMP ready, device-set check, `migrate-incoming` →
//!    completed, `cont`, → the shell answers);
//! 4. `restore/cold = R`;
//! 5. 8 machines restored at once → all answering;
//! 6. the levers, each a snapshot of its own: the `multifd` channels
//!    (QEMU ≥ 9.0, with `mapped-ram`: none and 4 beside the default 2) and
//!    a smaller `-m`.
//!
//! Boots and restores run in interleaved rounds (one cold boot of each
//! memory size, then one restore of each snapshot, per round) and each
//! figure is the median over the rounds, so a host whose load drifts
//! (a shared CI machine) slows the boots and the restores alike and the
//! ratios hold.
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

/// Rounds of one cold boot per memory size and one restore per snapshot.
const ROUNDS: usize = 7;
const AT_ONCE: usize = 8;
/// The issue's guest: 256 MiB.
const MEMORY: u32 = 256;
/// The smallest memory the guest boots with comfortably (64 is too small).
const SMALL_MEMORY: u32 = 128;
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

/// One snapshot to restore, and how it was made.
struct Variant {
    name: String,
    memory: u32,
    path: PathBuf,
    save: Duration,
    apparent: u64,
    on_disk: u64,
    restores: Vec<(Duration, RestoreTimings, Duration)>,
}

impl Variant {
    /// Boots a guest with `memory` MiB and saves it with `options`.
    async fn make(name: &str, memory: u32, dir: &Path, options: SaveOptions) -> Result<Self> {
        let (_, machine) = cold_boot(memory).await?;
        let path = dir.join(format!("{}.snap", name.replace(' ', "-")));
        let started = Instant::now();
        machine
            .save_snapshot_with(&path, &options.after(AfterSave::Quit))
            .await?;
        let save = started.elapsed();
        let meta = std::fs::metadata(&path)?;
        // The first restore probes the binary's version and warms the
        // page cache: not measured.
        restore(memory, &path).await?;
        Ok(Self {
            name: name.to_owned(),
            memory,
            path,
            save,
            apparent: meta.len(),
            on_disk: meta.blocks() * 512,
            restores: Vec::with_capacity(ROUNDS),
        })
    }

    /// The median restore, whole, so its stages add up to its total.
    fn median(&self) -> Option<(Duration, RestoreTimings, Duration)> {
        let mut runs = self.restores.clone();
        runs.sort_unstable_by_key(|run| run.0);
        runs.get(runs.len() / 2).copied()
    }

    fn print(&self, cold: Duration) {
        println!(
            "| {}: save (stop, migrate, metadata, quit) | {:.2?}; file {} MB apparent, {} MB on disk |",
            self.name,
            self.save,
            self.apparent >> 20,
            self.on_disk >> 20
        );
        let Some((total, timings, answer)) = self.median() else {
            return;
        };
        println!(
            "| {}: restore → shell answers (median of {}) | {total:.2?} |",
            self.name,
            self.restores.len()
        );
        let stages = [
            ("check the metadata, the binary's version", timings.check),
            ("spawn QEMU → QMP greeting and negotiation", timings.launch),
            ("device set (qom-list) compared", timings.devices),
            ("migrate-incoming → completed", timings.load),
            ("cont", timings.resume),
            ("→ the shell answers a command", answer),
        ];
        for (stage, took) in stages {
            let share = took.as_secs_f64() / total.as_secs_f64() * 100.0;
            println!("| … {stage} | {took:.1?} ({share:.0}%) |");
        }
        println!(
            "| {}: restore/cold = R (cold boot with -m {}) | **{:.3}** |",
            self.name,
            self.memory,
            total.as_secs_f64() / cold.as_secs_f64()
        );
    }
}

async fn run() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let binary = binary();
    let version = qemu_cmdline::Probe::version(&binary, Duration::from_secs(30))?;
    println!(
        "qemu-machine snapshot benchmark ({version}, {}); load average {} at the start",
        binary.display(),
        load_average()
    );

    // The default writes with two multifd channels on QEMU ≥ 9.0.
    let mut variants =
        vec![Variant::make("default", MEMORY, dir.path(), SaveOptions::new()).await?];
    if (version.major, version.minor) >= (9, 0) {
        for channels in [0, 4] {
            let options = SaveOptions::new().multifd_channels(channels);
            let name = match channels {
                0 => "no multifd".to_owned(),
                _ => format!("multifd ×{channels}"),
            };
            variants.push(Variant::make(&name, MEMORY, dir.path(), options).await?);
        }
    }
    let small = format!("-m {SMALL_MEMORY}");
    variants.push(Variant::make(&small, SMALL_MEMORY, dir.path(), SaveOptions::new()).await?);

    let mut cold = Vec::with_capacity(ROUNDS);
    let mut small_cold = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let (took, machine) = cold_boot(MEMORY).await?;
        machine.kill().await?;
        cold.push(took);
        let (took, machine) = cold_boot(SMALL_MEMORY).await?;
        machine.kill().await?;
        small_cold.push(took);
        // A different variant goes first in each round.
        let count = variants.len();
        for index in 0..count {
            let variant = &mut variants[(index + round) % count];
            let run = restore(variant.memory, &variant.path).await?;
            variant.restores.push(run);
        }
    }
    let all_at_once = at_once(&variants[0].path).await?;
    let cold = median(&mut cold);
    let small_cold = median(&mut small_cold);

    println!();
    println!(
        "{ROUNDS} rounds, each: a cold boot with -m {MEMORY} and one with -m {SMALL_MEMORY}, \
         then one restore of each snapshot; medians. Load average {} at the end.",
        load_average()
    );
    println!();
    println!("| measure | time |");
    println!("|---|---|");
    println!("| cold boot → shell answers, -m {MEMORY} | {cold:.2?} |");
    println!("| cold boot → shell answers, -m {SMALL_MEMORY} | {small_cold:.2?} |");
    for variant in &variants {
        let cold = if variant.memory == MEMORY {
            cold
        } else {
            small_cold
        };
        variant.print(cold);
    }
    println!("| {AT_ONCE} restored at once (default) → all answering | {all_at_once:.2?} |");
    if let Some((total, ..)) = variants[0].median() {
        println!();
        println!(
            "restore/cold = R = {:.3} (goal ≤ 0.08 on QEMU 10.0: the default snapshot, -m {MEMORY})",
            total.as_secs_f64() / cold.as_secs_f64()
        );
    }
    Ok(())
}

/// The 1-minute load average (`/proc/loadavg`), for the record.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|load| load.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

async fn at_once(path: &Path) -> Result<Duration> {
    let started = Instant::now();
    let restores = (0..AT_ONCE).map(|_| async move {
        let machine = guest(MEMORY).restore_from(path).await?;
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
