//! The QEMUs the project runs: the primary one installed system-wide
//! (10.0 from `bookworm-backports`, see [`install`]) and others unpacked
//! side by side ([`unpacked`]), each usable as `QEMUKIT_QEMU`.

mod backports;
mod install;
mod unpacked;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Result;
use crate::cmd::output;

pub(crate) use install::ensure_installed;

/// The versions CI tests, the primary (installed) one first.
pub(crate) const TESTED: &[&str] = &["10.0", "7.2"];

/// A QEMU binary and the version it reports.
#[derive(Debug, Clone)]
pub(crate) struct Qemu {
    pub(crate) path: PathBuf,
    /// As `-version` prints it, e.g. `10.0.2`.
    pub(crate) version: String,
}

/// QEMU `version` (`10.0`, `7.2`…): the installed binary when it is that
/// version, else one unpacked beside it (fetched when missing).
pub(crate) fn binary_for(version: &str) -> Result<Qemu> {
    let installed = ensure_installed()?;
    let installed_version = version_of(&installed)?;
    if release_matches(&installed_version, version) {
        return Ok(Qemu {
            path: installed,
            version: installed_version,
        });
    }
    let path = unpacked::fetch(version)?;
    let reported = version_of(&path)?;
    if !release_matches(&reported, version) {
        return Err(format!(
            "{} reports QEMU {reported}, not {version}",
            path.display()
        ));
    }
    Ok(Qemu {
        path,
        version: reported,
    })
}

/// `cargo xtask qemu fetch VERSION` / `cargo xtask qemu path VERSION`.
pub(crate) fn command(args: &[String]) -> Result {
    match args {
        [verb, version] if verb == "fetch" || verb == "path" => {
            let qemu = binary_for(version)?;
            if verb == "fetch" {
                eprintln!("xtask: QEMU {} is {}", qemu.version, qemu.path.display());
            }
            // The path alone on stdout, for `QEMUKIT_QEMU=$(cargo xtask qemu path 7.2)`.
            #[allow(clippy::print_stdout)]
            {
                println!("{}", qemu.path.display());
            }
            Ok(())
        }
        _ => Err(format!(
            "usage: cargo xtask qemu fetch|path VERSION (e.g. {}); got {args:?}",
            TESTED.join(" or ")
        )),
    }
}

/// The version `binary -version` reports, e.g. `7.2.22`.
pub(crate) fn version_of(binary: &Path) -> Result<String> {
    let text = output(Command::new(binary).arg("-version"))?;
    text.lines()
        .next()
        .and_then(|line| line.strip_prefix("QEMU emulator version "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .ok_or_else(|| format!("{} -version printed no version: {text}", binary.display()))
}

/// Whether `reported` (`10.0.2`) is release `wanted` (`10.0`) or exactly it.
pub(super) fn release_matches(reported: &str, wanted: &str) -> bool {
    reported == wanted
        || reported
            .strip_prefix(wanted)
            .is_some_and(|rest| rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::release_matches;

    #[test]
    fn releases_match_whole_components() {
        assert!(release_matches("10.0.2", "10.0"));
        assert!(release_matches("7.2.22", "7.2"));
        assert!(release_matches("7.2.22", "7.2.22"));
        assert!(!release_matches("7.20.1", "7.2"));
        assert!(!release_matches("10.0.2", "1"));
    }
}
