//! Everything the tasks need from the machine: QEMU (see [`crate::qemu`])
//! and the programs some tests drive.

use std::path::PathBuf;
use std::process::Command;

use crate::Result;
use crate::cmd::{find_in_path, is_root, run};
use crate::qemu;

/// Programs the tests run, and the Debian package of each: `qmp`'s
/// interactive mode is tested in a real terminal under tmux.
const TOOLS: &[(&str, &str)] = &[("tmux", "tmux")];

/// Installs what is missing (as root; otherwise says what to run) and
/// returns the installed QEMU binary.
pub(crate) fn ensure() -> Result<PathBuf> {
    let qemu = qemu::ensure_installed()?;
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(program, _)| find_in_path(program).is_none())
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(qemu);
    }
    if !is_root() {
        return Err(format!(
            "the tests need {} and this user is not root: run `sudo apt-get install -y {}`, then try again",
            missing.join(", "),
            missing.join(" ")
        ));
    }
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    Ok(qemu)
}
