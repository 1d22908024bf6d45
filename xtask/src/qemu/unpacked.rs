//! A second QEMU beside the installed one, with no root and no conflict:
//! Debian's `qemu-system-x86`, `-common` and `-data` of the wanted version
//! are downloaded and unpacked under `target/qemukit-qemu/VERSION/`, and a
//! wrapper script runs the binary with its own data files first, then the
//! system's firmware.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Result;
use crate::apt::{self, Package};
use crate::cmd::{output, target_dir};

/// The packages a QEMU run needs besides shared libraries and firmware.
const PACKAGES: &[&str] = &["qemu-system-x86", "qemu-system-common", "qemu-system-data"];

/// Firmware QEMU finds through `-L` after its own data directory: SeaBIOS
/// and the iPXE option ROMs (without the latter 7.2 fails with `failed to
/// find romfile "efi-e1000.rom"`). They come with the installed QEMU.
const SYSTEM_FIRMWARE: &[&str] = &[
    "/usr/share/qemu",
    "/usr/share/seabios",
    "/usr/lib/ipxe/qemu",
];

/// The wrapper's name: what tests expect a QEMU binary to be called.
const WRAPPER: &str = "qemu-system-x86_64";

/// The wrapper script for QEMU `version` (e.g. `7.2`), fetching and
/// unpacking the packages unless an up-to-date copy is there.
pub(crate) fn fetch(version: &str) -> Result<PathBuf> {
    apt::ensure_lists()?;
    let packages = match resolve(version) {
        Ok(packages) => packages,
        Err(err) => {
            eprintln!("xtask: {err}; refreshing the package lists");
            apt::update()?;
            resolve(version)?
        }
    };
    let dir = target_dir().join("qemukit-qemu").join(version);
    let wrapper = dir.join(WRAPPER);
    let stamp = dir.join("packages");
    let key = stamp_text(&packages);
    if wrapper.is_file() && fs::read_to_string(&stamp).is_ok_and(|text| text == key) {
        return Ok(wrapper);
    }
    eprintln!("xtask: unpacking QEMU {version} into {}", dir.display());
    let root = dir.join("root");
    for stale in [&root, &wrapper, &stamp] {
        remove(stale)?;
    }
    let cache = target_dir().join("qemukit-qemu").join("debs");
    for package in &packages {
        apt::extract(&apt::download(package, &cache)?, &root)?;
    }
    let binary = root.join("usr/bin/qemu-system-x86_64");
    check_libraries(&binary)?;
    write(&wrapper, &wrapper_script(&packages, &root, &binary))?;
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755))
        .map_err(|err| format!("making {} executable: {err}", wrapper.display()))?;
    write(&stamp, &key)?;
    Ok(wrapper)
}

/// The highest version apt knows of each package whose upstream version is
/// `version` (`7.2` matches `1:7.2+dfsg-7+deb12u18+b3`, `10.0` matches
/// `1:10.0.2+ds-2…`), all three from the same source upload.
fn resolve(version: &str) -> Result<Vec<Package>> {
    let system = apt::versions(PACKAGES[0])?;
    let chosen = system
        .iter()
        .find(|candidate| upstream_matches(candidate, version))
        .ok_or_else(|| {
            format!(
                "apt knows no qemu-system-x86 {version}; it has {}",
                system.join(", ")
            )
        })?;
    let source = without_binnmu(chosen);
    PACKAGES
        .iter()
        .map(|name| {
            let known = apt::versions(name)?;
            let version = known
                .iter()
                .find(|candidate| without_binnmu(candidate) == source)
                .ok_or_else(|| format!("apt has no {name} from the upload of {chosen}"))?;
            Ok(Package {
                name: (*name).to_owned(),
                version: version.clone(),
            })
        })
        .collect()
}

/// Whether the upstream part of a Debian version (no epoch, up to the
/// first `+`, `~` or `-`) is `wanted` or a micro release of it.
fn upstream_matches(debian: &str, wanted: &str) -> bool {
    let without_epoch = debian.split_once(':').map_or(debian, |(_, rest)| rest);
    let upstream = without_epoch
        .split(['+', '~', '-'])
        .next()
        .unwrap_or_default();
    super::release_matches(upstream, wanted)
}

/// The version of the source upload: a binary-only rebuild adds `+bN`.
fn without_binnmu(version: &str) -> &str {
    match version.rsplit_once("+b") {
        Some((source, build)) if build.chars().all(|c| c.is_ascii_digit()) => source,
        _ => version,
    }
}

fn stamp_text(packages: &[Package]) -> String {
    packages
        .iter()
        .map(|package| format!("{}={}\n", package.name, package.version))
        .collect()
}

/// Fails, naming them, when the unpacked binary needs shared libraries the
/// machine lacks (they come with the installed QEMU's dependencies).
fn check_libraries(binary: &Path) -> Result {
    let text = output(Command::new("ldd").arg(binary))?;
    let missing: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("not found"))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} needs shared libraries this machine lacks: {}. Install the primary QEMU first \
         (`cargo xtask deps`), whose dependencies bring them",
        binary.display(),
        missing.join(", ")
    ))
}

fn wrapper_script(packages: &[Package], root: &Path, binary: &Path) -> String {
    let mut data_dirs = vec![root.join("usr/share/qemu")];
    data_dirs.extend(
        SYSTEM_FIRMWARE
            .iter()
            .map(PathBuf::from)
            .filter(|dir| dir.is_dir()),
    );
    let flags: String = data_dirs
        .iter()
        .map(|dir| format!(" -L {}", shell_quote(&dir.to_string_lossy())))
        .collect();
    let versions: Vec<String> = packages
        .iter()
        .map(|package| format!("{} {}", package.name, package.version))
        .collect();
    format!(
        "#!/bin/sh\n\
         # Written by `cargo xtask qemu fetch` (qemukit): {}.\n\
         # `exec` keeps the pid, so a supervisor's death signal reaches QEMU itself.\n\
         exec {}{flags} \"$@\"\n",
        versions.join(", "),
        shell_quote(&binary.to_string_lossy()),
    )
}

/// Single-quotes `text` for sh.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn remove(path: &Path) -> Result {
    let result = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match result {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("removing {}: {err}", path.display()))
        }
        _ => Ok(()),
    }
}

fn write(path: &Path, text: &str) -> Result {
    fs::write(path, text).map_err(|err| format!("writing {}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_versions_match_on_release_boundaries() {
        assert!(upstream_matches("1:7.2+dfsg-7+deb12u18+b3", "7.2"));
        assert!(upstream_matches("1:10.0.2+ds-2+deb13u1~bpo12+1", "10.0"));
        assert!(upstream_matches("1:10.0.2+ds-2+deb13u1~bpo12+1", "10.0.2"));
        assert!(
            upstream_matches("1:10.0.2+ds-2", "10"),
            "a major version names its releases"
        );
        assert!(!upstream_matches("1:10.0.2+ds-2", "1"));
        assert!(!upstream_matches("1:7.2+dfsg-7", "7.20"));
        assert!(!upstream_matches("1:7.20+dfsg-7", "7.2"));
        assert!(upstream_matches("7.2.1-1", "7.2"));
    }

    #[test]
    fn binnmu_suffixes_are_dropped_only_when_they_are_one() {
        assert_eq!(
            without_binnmu("1:7.2+dfsg-7+deb12u18+b3"),
            "1:7.2+dfsg-7+deb12u18"
        );
        assert_eq!(
            without_binnmu("1:7.2+dfsg-7+deb12u18"),
            "1:7.2+dfsg-7+deb12u18"
        );
        assert_eq!(
            without_binnmu("1:10.0.2+ds-2+deb13u1~bpo12+1"),
            "1:10.0.2+ds-2+deb13u1~bpo12+1"
        );
    }

    #[test]
    fn the_wrapper_quotes_its_paths_and_keeps_the_pid() {
        let script = wrapper_script(
            &[Package {
                name: "qemu-system-x86".into(),
                version: "1:7.2".into(),
            }],
            Path::new("/t/it's"),
            Path::new("/t/it's/usr/bin/qemu-system-x86_64"),
        );
        assert!(
            script.contains(
                "exec '/t/it'\\''s/usr/bin/qemu-system-x86_64' -L '/t/it'\\''s/usr/share/qemu'"
            ),
            "{script}"
        );
        assert!(script.trim_end().ends_with("\"$@\""), "{script}");
    }
}
