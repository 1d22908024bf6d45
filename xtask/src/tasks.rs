//! The tasks that run cargo: `ci`, `integ`, `demo`, `bench`.

use std::time::Instant;

use crate::Result;
use crate::cmd::cargo;
use crate::{guest, qemu};

/// The whole CI job, in the order that fails fastest.
pub(crate) fn ci() -> Result {
    let started = Instant::now();
    qemu::ensure_qemu()?;
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    cargo(
        &["doc", "--workspace", "--no-deps", "--all-features"],
        &[("RUSTDOCFLAGS", "-D warnings".as_ref())],
    )?;
    let built = guest::build()?;
    cargo(
        &["test", "--workspace", "--all-features"],
        &[("QEMUKIT_GUEST_DIR", built.dir.as_os_str())],
    )?;
    eprintln!("xtask: ci passed in {:.0?}", started.elapsed());
    Ok(())
}

/// The real-QEMU integration suite; `args` go to the test binary's harness
/// (e.g. a name filter).
pub(crate) fn integ(args: &[String]) -> Result {
    let started = Instant::now();
    qemu::ensure_qemu()?;
    let built = guest::build()?;
    let mut command = vec!["test", "-p", "qemukit-tests", "--all-features"];
    if !args.is_empty() {
        command.push("--");
        command.extend(args.iter().map(String::as_str));
    }
    cargo(&command, &[("QEMUKIT_GUEST_DIR", built.dir.as_os_str())])?;
    eprintln!("xtask: integ passed in {:.0?}", started.elapsed());
    Ok(())
}

/// The README's main job: QEMU if missing, the guest, then the demo
/// program (`tests/examples/demo.rs`), which boots and drives the guest.
pub(crate) fn demo() -> Result {
    qemu::ensure_qemu()?;
    let built = guest::build()?;
    cargo(
        &["run", "--quiet", "-p", "qemukit-tests", "--example", "demo"],
        &[("QEMUKIT_GUEST_DIR", built.dir.as_os_str())],
    )
}

/// Every benchmark of the workspace; benchmarks that launch QEMU need it
/// and the guest.
pub(crate) fn bench(args: &[String]) -> Result {
    qemu::ensure_qemu()?;
    let built = guest::build()?;
    let mut command = vec!["bench", "--workspace"];
    if !args.is_empty() {
        command.push("--");
        command.extend(args.iter().map(String::as_str));
    }
    cargo(&command, &[("QEMUKIT_GUEST_DIR", built.dir.as_os_str())])
}
