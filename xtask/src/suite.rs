//! One run of the workspace's tests against one QEMU, counted.

use std::env;
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;
use crate::cmd::{shown, workspace_root};
use crate::guest::Guest;
use crate::qemu::Qemu;

/// What the test harnesses reported, summed over every test binary.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    passed: u64,
    failed: u64,
    ignored: u64,
    binaries_failed: u64,
    took: Duration,
}

impl Summary {
    /// Whether everything passed (and every binary ran to its summary).
    pub(crate) fn passed(&self) -> bool {
        self.failed == 0 && self.binaries_failed == 0
    }

    /// The per-version line CI prints.
    pub(crate) fn line(&self, qemu: &Qemu) -> String {
        format!("integ qemu {}: {self}", qemu.version)
    }

    /// Adds one harness's `test result: …` line.
    fn add(&mut self, line: &str) {
        let Some(counts) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in counts.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed", self.passed)?;
        if self.failed > 0 {
            write!(f, ", {} FAILED", self.failed)?;
        }
        if self.ignored > 0 {
            write!(f, ", {} ignored", self.ignored)?;
        }
        if self.binaries_failed > 0 && self.failed == 0 {
            write!(
                f,
                ", cargo test FAILED without a failing test (build error or crash)"
            )?;
        }
        write!(f, " in {:.0?}", self.took)
    }
}

/// `cargo test --workspace --all-features --tests` with `QEMUKIT_QEMU` set
/// to `qemu`: every crate's unit and integration tests, so every test that
/// starts QEMU runs against it. The output streams through; `harness_args`
/// go to every test binary.
pub(crate) fn run(qemu: &Qemu, guest: &Guest, harness_args: &[String]) -> Result<Summary> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "test",
            "--workspace",
            "--all-features",
            "--tests",
            "--no-fail-fast",
        ])
        .current_dir(workspace_root())
        .env("QEMUKIT_QEMU", &qemu.path)
        .env("QEMUKIT_GUEST_DIR", &guest.dir)
        .stdout(Stdio::piped());
    if !harness_args.is_empty() {
        command.arg("--").args(harness_args);
    }
    let shown = format!("QEMUKIT_QEMU={} {}", qemu.path.display(), shown(&command));
    eprintln!("xtask: $ {shown}");
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|err| format!("could not start `{shown}`: {err}"))?;
    let mut summary = Summary::default();
    if let Some(stdout) = child.stdout.take() {
        let mut echo = std::io::stdout().lock();
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|err| format!("reading the output of `{shown}`: {err}"))?;
            // Our own stdout may be closed (a pipe to `head`); the tests still count.
            let _ = writeln!(echo, "{line}");
            summary.add(&line);
        }
    }
    let status = child
        .wait()
        .map_err(|err| format!("waiting for `{shown}`: {err}"))?;
    summary.took = started.elapsed();
    if !status.success() {
        summary.binaries_failed += 1;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_lines_are_summed() {
        let mut summary = Summary::default();
        summary.add("test result: ok. 7 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.04s");
        summary.add("test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 5 filtered out; finished in 1.00s");
        summary.add("test something ... ok");
        assert_eq!(
            (summary.passed, summary.failed, summary.ignored),
            (10, 1, 2)
        );
        assert!(!summary.passed());
    }
}
