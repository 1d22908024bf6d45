//! qemukit's project automation: `cargo xtask <command>`.
//!
//! `ci` is what `.ci/run` and the README's test command run on a fresh
//! Debian machine: it installs what is missing, then checks and tests
//! everything.

// A command-line tool reports on its own terminal.
#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

type Result<T = ()> = std::result::Result<T, String>;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  ci      install what is missing (QEMU), then fmt, clippy, doc and every test
  deps    install what is missing (QEMU) and nothing else";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("deps") => ensure_qemu(),
        Some("-h" | "--help" | "help") | None => {
            eprintln!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The whole CI job, in the order that fails fastest.
fn ci() -> Result {
    let started = Instant::now();
    ensure_qemu()?;
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
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    cargo(&["test", "--workspace", "--all-features"], &[])?;
    eprintln!("xtask: ci passed in {:.0?}", started.elapsed());
    Ok(())
}

/// Installs `qemu-system-x86` with apt-get when `qemu-system-x86_64` is not
/// on the PATH. Needs root; otherwise says what to run.
fn ensure_qemu() -> Result {
    if find_in_path("qemu-system-x86_64").is_some() {
        return Ok(());
    }
    if !is_root() {
        return Err(
            "qemu-system-x86_64 is not installed and this user is not root: \
             run `sudo apt-get update && sudo apt-get install -y qemu-system-x86`, then try again"
                .into(),
        );
    }
    eprintln!("xtask: qemu-system-x86_64 is missing; installing qemu-system-x86 with apt-get");
    run(Command::new("apt-get").args(["update", "-q"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(["qemu-system-x86", "qemu-utils"])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    find_in_path("qemu-system-x86_64")
        .map(|_| ())
        .ok_or_else(|| "apt-get finished but qemu-system-x86_64 is still not on the PATH".into())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo(args: &[&str], envs: &[(&str, &str)]) -> Result {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(args).current_dir(workspace_root());
    for (key, value) in envs {
        command.env(key, value);
    }
    run(&mut command)
}

fn run(command: &mut Command) -> Result {
    let shown = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("xtask: $ {shown}");
    let started = Instant::now();
    let status = command
        .status()
        .map_err(|err| format!("could not start `{shown}`: {err}"))?;
    eprintln!("xtask: `{shown}` took {:.1?}", started.elapsed());
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed with {status}"))
    }
}
