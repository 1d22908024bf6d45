//! `cargo xtask codegen [--check]`: the typed QMP layer of `qmp-proto`,
//! generated from the `query-qmp-schema` recorded from every QEMU version we
//! test (`qmp-proto/tests/fixtures/qemu-X.Y/query-qmp-schema.reply`).
//!
//! It writes `qmp-proto/src/generated/{types,commands,events}.rs`,
//! formatted by `rustfmt`; `--check` writes nothing and fails when a
//! checked-in file differs from what it would write.

#[cfg(test)]
mod drift;
mod emit;
mod gates;
mod model;
mod names;
mod schema;

use std::fs;
use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::Result;
use crate::cmd::workspace_root;

pub(crate) fn run(args: &[String]) -> Result {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => {
            return Err(format!(
                "usage: cargo xtask codegen [--check]; got {args:?}"
            ));
        }
    };
    generate(check, true)
}

/// `cargo xtask codegen --check`, quietly: fails when the checked-in code
/// is not what the recorded schemas generate (a step of `cargo xtask ci`).
pub(crate) fn check() -> Result {
    generate(true, false)
}

/// Generates (or, with `check`, compares) every file; `verbose` reports
/// the counts per version.
fn generate(check: bool, verbose: bool) -> Result {
    let root = workspace_root();
    let schemas = schema::load_all(&root.join("qmp-proto/tests/fixtures"))?;
    let model = model::Model::build(&schemas)?;
    let modules = gates::load_modules(&root.join("qmp-proto/tests/fixtures/qapi-modules.tsv"))?;
    let gates = gates::Gates::build(&model, &modules)?;
    check_features(&root.join("qmp-proto/Cargo.toml"), &gates)?;
    let out_dir = root.join("qmp-proto/src/generated");
    let mut stale = Vec::new();
    for (file, text) in emit::emit(&model, &gates) {
        let text = space_items(&rustfmt(&text).map_err(|error| format!("{file}: {error}"))?);
        let path = out_dir.join(file);
        let current = fs::read_to_string(&path).unwrap_or_default();
        if current == text {
            continue;
        }
        if check {
            stale.push(path.display().to_string());
        } else {
            fs::write(&path, text)
                .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        }
    }
    if verbose {
        report(&model, &schemas);
    }
    if !stale.is_empty() {
        return Err(format!(
            "generated code is stale, run `cargo xtask codegen`: {}",
            stale.join(", ")
        ));
    }
    Ok(())
}

/// `qmp-proto/Cargo.toml` must declare exactly the module features the
/// generated code uses, and `full` must turn on all of them.
fn check_features(manifest: &std::path::Path, gates: &gates::Gates) -> Result {
    let text = fs::read_to_string(manifest)
        .map_err(|error| format!("cannot read {}: {error}", manifest.display()))?;
    let section = text
        .split("\n[features]\n")
        .nth(1)
        .map(|rest| rest.split("\n[").next().unwrap_or(rest))
        .ok_or_else(|| format!("{} has no [features]", manifest.display()))?;
    let mut declared = std::collections::BTreeSet::new();
    let mut full = None;
    for line in section.lines() {
        let Some((name, value)) = line.split_once(" = ") else {
            continue;
        };
        match name.trim() {
            "default" => {}
            name if name == gates::FULL => full = Some(value.to_owned()),
            name => {
                declared.insert(name.to_owned());
            }
        }
    }
    let wanted: Vec<String> = gates.features.iter().map(|f| format!("\"{f}\"")).collect();
    let wanted_full = format!("[{}]", wanted.join(", "));
    if declared != gates.features || full.as_deref() != Some(wanted_full.as_str()) {
        let lines: Vec<String> = gates.features.iter().map(|f| format!("{f} = []")).collect();
        return Err(format!(
            "{}'s [features] must read, after `default`:\n{} = {wanted_full}\n{}",
            manifest.display(),
            gates::FULL,
            lines.join("\n")
        ));
    }
    Ok(())
}

/// What was generated, per version, on stderr.
fn report(model: &model::Model, schemas: &[schema::Schema]) {
    for (index, schema) in schemas.iter().enumerate() {
        let bit = 1 << index;
        let commands = model
            .commands
            .values()
            .filter(|c| c.present & bit != 0)
            .count();
        let events = model
            .events
            .values()
            .filter(|e| e.present & bit != 0)
            .count();
        let types = model
            .types
            .values()
            .filter(|t| t.present & bit != 0)
            .count();
        eprintln!(
            "xtask codegen: QEMU {}.{}: {commands}/{} commands, {events}/{} events typed, {types} types",
            schema.release.0,
            schema.release.1,
            schema.commands.len(),
            schema.events.len(),
        );
    }
    eprintln!(
        "xtask codegen: {} commands, {} events, {} types in all",
        model.commands.len(),
        model.events.len(),
        model.types.len()
    );
    for conflict in &model.conflicts {
        eprintln!("xtask codegen: kept as raw JSON: {conflict}");
    }
}

/// A blank line between top-level items (rustfmt keeps, but does not add,
/// them).
fn space_items(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut previous = "";
    for line in text.lines() {
        let item_ended = previous == "}" || (previous.ends_with(';') && !previous.starts_with(' '));
        let item_starts = !line.is_empty() && !line.starts_with([' ', '}', ')']);
        if item_ended && item_starts && !previous.starts_with("use ") {
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
        previous = line;
    }
    out
}

fn rustfmt(text: &str) -> Result<String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run rustfmt (rustup component add rustfmt): {error}"))?;
    let mut stdin = child.stdin.take().ok_or("rustfmt has no stdin")?;
    let input = text.to_owned();
    // Write from a thread: rustfmt may fill its stdout pipe before it has
    // read all of its input.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|error| format!("rustfmt failed: {error}"))?;
    let written = writer.join().map_err(|_| "rustfmt writer panicked")?;
    written.map_err(|error| format!("cannot feed rustfmt: {error}"))?;
    if !output.status.success() {
        let errors = String::from_utf8_lossy(&output.stderr);
        return Err(format!("rustfmt rejected the generated code:\n{errors}"));
    }
    String::from_utf8(output.stdout).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    /// `cargo test` fails when the checked-in code is stale, as
    /// `cargo xtask codegen --check` does.
    #[test]
    fn the_checked_in_code_is_what_the_generator_writes() {
        let result = super::generate(true, false);
        assert!(matches!(result, Ok(())), "{result:?}");
    }
}
