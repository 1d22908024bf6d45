//! The primary QEMU: installed with apt from `bookworm-backports` when
//! missing, and its install plan simulated on every run, so a broken
//! install path fails CI on a machine that already has QEMU too.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use super::backports::{self, Plan, SOURCE_FILE, SUITE};
use crate::Result;
use crate::cmd::{find_in_path, is_root, run};

/// What the install puts on the machine: QEMU and the image tools of the
/// same version (the machine image ships `qemu-utils` from backports).
const PACKAGES: &[&str] = &["qemu-system-x86", "qemu-utils"];

/// The installed `qemu-system-x86_64`, installing it first when missing
/// (as root; otherwise the error says exactly what to run). Runs once per
/// xtask process.
pub(crate) fn ensure_installed() -> Result<PathBuf> {
    static INSTALLED: OnceLock<Result<PathBuf>> = OnceLock::new();
    INSTALLED.get_or_init(install_and_simulate).clone()
}

fn install_and_simulate() -> Result<PathBuf> {
    let present = find_in_path("qemu-system-x86_64");
    let plan = match backports::plan() {
        Ok(plan) => plan,
        // Not the Debian 12 this set-up is for: a QEMU that is there is used as is.
        Err(err) => {
            let path = present.ok_or_else(|| err.clone())?;
            eprintln!("xtask: not simulating the QEMU install plan: {err}");
            return Ok(path);
        }
    };
    let source_missing = matches!(plan, Plan::Add(_));
    if !is_root() && (source_missing || !backports::lists_present() || present.is_none()) {
        return Err(format!(
            "{} and this user is not root. Run, as root:\n{}",
            if present.is_none() {
                "qemu-system-x86_64 is not installed"
            } else {
                "the QEMU install plan cannot be checked (no bookworm-backports package list)"
            },
            root_steps(&plan, present.is_none())
        ));
    }
    if let Plan::Add(text) = &plan {
        eprintln!(
            "xtask: adding the apt source {SOURCE_FILE} (the machine's Debian mirror, suite {SUITE})"
        );
        fs::write(SOURCE_FILE, text).map_err(|err| format!("writing {SOURCE_FILE}: {err}"))?;
    }
    if source_missing || !backports::lists_present() {
        run(Command::new("apt-get").args(["update", "-q"]))?;
    }
    simulate()?;
    if let Some(path) = present {
        return Ok(path);
    }
    eprintln!("xtask: qemu-system-x86_64 is missing; installing QEMU from {SUITE}");
    run(Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "-t",
            SUITE,
        ])
        .args(PACKAGES)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    find_in_path("qemu-system-x86_64")
        .ok_or_else(|| "apt-get finished but qemu-system-x86_64 is still not on the PATH".into())
}

/// `apt-get -s install …`: what the install would do, without doing it.
fn simulate() -> Result {
    let out = Command::new("apt-get")
        .args([
            "-s",
            "-q",
            "install",
            "--no-install-recommends",
            "-t",
            SUITE,
        ])
        .args(PACKAGES)
        .output()
        .map_err(|err| format!("could not start apt-get: {err}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // apt prints the unmet dependencies on stdout and its verdict on stderr.
        return Err(format!(
            "the QEMU install plan (`apt-get install -t {SUITE} {}`) does not resolve: {}\n{}{}",
            PACKAGES.join(" "),
            out.status,
            text.trim_end(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    let summary = text
        .lines()
        .find(|line| line.contains("newly installed"))
        .unwrap_or("no summary line");
    eprintln!(
        "xtask: install plan for {} from {SUITE} resolves: {summary}",
        PACKAGES.join(" ")
    );
    Ok(())
}

/// The commands a non-root user must run as root, exactly.
fn root_steps(plan: &Plan, install: bool) -> String {
    let mut steps = String::new();
    if let Plan::Add(text) = plan {
        steps.push_str(&format!(
            "  sudo tee {SOURCE_FILE} >/dev/null <<'EOF'\n{text}EOF\n"
        ));
    }
    steps.push_str("  sudo apt-get update");
    if install {
        steps.push_str(&format!(
            " && sudo apt-get install -y -t {SUITE} {}",
            PACKAGES.join(" ")
        ));
    }
    steps.push_str("\nthen try again.");
    steps
}
