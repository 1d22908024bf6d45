//! The tasks that run cargo: `ci`, `integ`, `demo`, `bench`.

use std::time::Instant;

use crate::Result;
use crate::cmd::cargo;
use crate::qemu::{self, Qemu};
use crate::suite;
use crate::{codegen, deps, guest};

/// The whole CI job, in the order that fails fastest: set-up, static
/// checks (formatting, the generated QMP types being current, clippy,
/// docs), then every test against each QEMU version of [`qemu::TESTED`].
pub(crate) fn ci() -> Result {
    let started = Instant::now();
    deps::ensure()?;
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    eprintln!("xtask: $ cargo xtask codegen --check");
    codegen::check()?;
    // Each library as a user gets it: default features only (the other
    // steps turn every feature on), so a generated item the hand-written
    // code needs cannot hide behind a feature.
    cargo(
        &[
            "check",
            "--lib",
            "-p",
            "qmp-proto",
            "-p",
            "qmp-client",
            "-p",
            "qemu-cmdline",
            "-p",
            "qemu-console",
            "-p",
            "qemu-machine",
        ],
        &[],
    )?;
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
    // Doc tests start no QEMU: once is enough.
    cargo(
        &["test", "--workspace", "--all-features", "--doc"],
        &[("QEMUKIT_GUEST_DIR", built.dir.as_os_str())],
    )?;
    let mut runs = Vec::new();
    for version in qemu::TESTED {
        let qemu = qemu::binary_for(version)?;
        let summary = suite::run(&qemu, &built, &[])?;
        eprintln!("xtask: {}", summary.line(&qemu));
        runs.push((qemu, summary));
    }
    eprintln!("xtask: ---");
    for (qemu, summary) in &runs {
        eprintln!("xtask: {}", summary.line(qemu));
    }
    if runs.iter().any(|(_, summary)| !summary.passed()) {
        return Err("tests failed (see the summary above)".into());
    }
    eprintln!("xtask: ci passed in {:.0?}", started.elapsed());
    Ok(())
}

/// Every test that runs QEMU, against one QEMU version (`--qemu VERSION`,
/// else the installed one); other arguments go to the test harnesses
/// (e.g. a name filter).
pub(crate) fn integ(args: &[String]) -> Result {
    let (version, rest) = qemu_flag(args)?;
    deps::ensure()?;
    let qemu = resolve(version)?;
    let built = guest::build()?;
    let summary = suite::run(&qemu, &built, &rest)?;
    eprintln!("xtask: {}", summary.line(&qemu));
    if summary.passed() {
        Ok(())
    } else {
        Err("tests failed".into())
    }
}

/// The README's main job: QEMU if missing, the guest, then the demo
/// program (`tests/examples/demo.rs`), which boots and drives the guest.
pub(crate) fn demo(args: &[String]) -> Result {
    let (version, rest) = qemu_flag(args)?;
    if !rest.is_empty() {
        return Err(format!(
            "usage: cargo xtask demo [--qemu VERSION]; got {args:?}"
        ));
    }
    deps::ensure()?;
    let qemu = resolve(version)?;
    let built = guest::build()?;
    eprintln!(
        "xtask: the demo runs QEMU {} ({})",
        qemu.version,
        qemu.path.display()
    );
    cargo(
        &["run", "--quiet", "-p", "qemukit-tests", "--example", "demo"],
        &[
            ("QEMUKIT_GUEST_DIR", built.dir.as_os_str()),
            ("QEMUKIT_QEMU", qemu.path.as_os_str()),
        ],
    )
}

/// Every benchmark of the workspace (`--qemu VERSION` picks the QEMU the
/// ones that launch it run); other arguments go to `cargo bench`.
pub(crate) fn bench(args: &[String]) -> Result {
    let (version, rest) = qemu_flag(args)?;
    deps::ensure()?;
    let qemu = resolve(version)?;
    let built = guest::build()?;
    let mut command = vec!["bench", "--workspace"];
    if !rest.is_empty() {
        command.push("--");
        command.extend(rest.iter().map(String::as_str));
    }
    cargo(
        &command,
        &[
            ("QEMUKIT_GUEST_DIR", built.dir.as_os_str()),
            ("QEMUKIT_QEMU", qemu.path.as_os_str()),
        ],
    )
}

/// The QEMU of `--qemu VERSION`, else the installed one.
fn resolve(version: Option<String>) -> Result<Qemu> {
    match version {
        Some(version) => qemu::binary_for(&version),
        None => {
            let path = qemu::ensure_installed()?;
            let version = qemu::version_of(&path)?;
            Ok(Qemu { path, version })
        }
    }
}

/// Takes `--qemu VERSION` (or `--qemu=VERSION`) out of `args`.
fn qemu_flag(args: &[String]) -> Result<(Option<String>, Vec<String>)> {
    let mut version = None;
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--qemu" {
            let value = args
                .next()
                .ok_or("--qemu needs a version, e.g. `--qemu 7.2`")?;
            version = Some(value.clone());
        } else if let Some(value) = arg.strip_prefix("--qemu=") {
            version = Some(value.to_owned());
        } else {
            rest.push(arg.clone());
        }
    }
    Ok((version, rest))
}
