//! Shared helpers for qemukit's integration tests against a real QEMU.
//!
//! Tests that need QEMU never pass silently without it: [`qemu_binary`]
//! panics with the command that installs it.

use std::path::PathBuf;

/// The QEMU binary the tests run: `$QEMUKIT_QEMU`, else
/// `qemu-system-x86_64` from the `PATH`.
///
/// # Panics
///
/// When the binary cannot be found, with the command that installs it.
pub fn qemu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("QEMUKIT_QEMU") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("qemu-system-x86_64"))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => path,
        None => panic!(
            "qemu-system-x86_64 is not installed: these tests need a real QEMU. \
             Install it with `sudo apt-get install -y qemu-system-x86` \
             (or run `cargo xtask ci`, which does it), or point QEMUKIT_QEMU at a binary."
        ),
    }
}
