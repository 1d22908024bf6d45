//! Running programs and finding things: the plumbing every task shares.

use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::Result;

/// The shell-like rendering of a command, for messages.
pub(crate) fn shown(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `command` with inherited stdio; fails on a non-zero exit.
pub(crate) fn run(command: &mut Command) -> Result {
    let shown = shown(command);
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

/// Runs `command` quietly and returns its stdout; stderr is in the error.
pub(crate) fn output(command: &mut Command) -> Result<String> {
    let shown = shown(command);
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("could not start `{shown}`: {err}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{shown}` failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| format!("`{shown}` printed something not UTF-8"))
}

/// Runs cargo (the one that runs us) in the workspace root.
pub(crate) fn cargo(args: &[&str], envs: &[(&str, &OsStr)]) -> Result {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(args).current_dir(workspace_root());
    for (key, value) in envs {
        command.env(key, value);
    }
    run(&mut command)
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

pub(crate) fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` or `<workspace>/target`.
pub(crate) fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}
