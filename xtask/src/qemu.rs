//! Making sure QEMU is there.

use std::path::PathBuf;
use std::process::Command;

use crate::Result;
use crate::cmd::{find_in_path, is_root, run};

/// The install command for people who are not root.
pub(crate) const INSTALL_HINT: &str =
    "sudo apt-get update && sudo apt-get install -y qemu-system-x86";

/// Installs `qemu-system-x86` with apt-get when `qemu-system-x86_64` is not
/// on the PATH, and returns its path. Needs root; otherwise says what to run.
pub(crate) fn ensure_qemu() -> Result<PathBuf> {
    if let Some(path) = find_in_path("qemu-system-x86_64") {
        return Ok(path);
    }
    if !is_root() {
        return Err(format!(
            "qemu-system-x86_64 is not installed and this user is not root: \
             run `{INSTALL_HINT}`, then try again"
        ));
    }
    eprintln!("xtask: qemu-system-x86_64 is missing; installing qemu-system-x86 with apt-get");
    run(Command::new("apt-get").args(["update", "-q"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(["qemu-system-x86", "qemu-utils"])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    find_in_path("qemu-system-x86_64")
        .ok_or_else(|| "apt-get finished but qemu-system-x86_64 is still not on the PATH".into())
}
