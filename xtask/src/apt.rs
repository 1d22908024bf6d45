//! Debian packages without installing them: `apt-cache` to resolve
//! names and versions, `apt-get download` to fetch, `dpkg-deb -x` to unpack.
//! Shared by the guest and the side-by-side QEMU versions.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Result;
use crate::cmd::{is_root, output, run};

/// A package resolved to the version `apt-get download` would fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Package {
    pub(crate) name: String,
    pub(crate) version: String,
}

/// Runs `apt-get update` when the package lists are empty (a fresh
/// machine or container).
pub(crate) fn ensure_lists() -> Result {
    let has_lists = fs::read_dir("/var/lib/apt/lists").is_ok_and(|entries| {
        entries
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().contains("_Packages"))
    });
    if has_lists { Ok(()) } else { update() }
}

/// `apt-get update` (as root; otherwise says what to run).
pub(crate) fn update() -> Result {
    if !is_root() {
        return Err(
            "the apt package lists are empty or stale and this user is not root: \
                    run `sudo apt-get update`, then try again"
                .into(),
        );
    }
    run(Command::new("apt-get").args(["update", "-q"]))
}

/// The kernel package that the metapackage `meta` depends on, e.g.
/// `linux-image-6.1.0-28-cloud-amd64` for `linux-image-cloud-amd64`.
pub(crate) fn resolve_metapackage(meta: &str) -> Result<String> {
    let text = output(Command::new("apt-cache").args(["depends", meta]))?;
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|dep| dep.starts_with("linux-image-") && !dep.starts_with('<'))
        .map(str::to_owned)
        .ok_or_else(|| format!("`apt-cache depends {meta}` names no linux-image package:\n{text}"))
}

/// The candidate version of `name`.
pub(crate) fn resolve(name: &str) -> Result<Package> {
    let text = output(Command::new("apt-cache").args(["policy", name]))?;
    let version = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Candidate:"))
        .map(str::trim)
        .find(|version| *version != "(none)")
        .ok_or_else(|| format!("apt knows no installable version of `{name}`:\n{text}"))?;
    Ok(Package {
        name: name.to_owned(),
        version: version.to_owned(),
    })
}

/// Every version of `name` apt knows, highest first (`apt-cache policy`'s
/// version table).
pub(crate) fn versions(name: &str) -> Result<Vec<String>> {
    let text = output(Command::new("apt-cache").args(["policy", name]))?;
    let versions: Vec<String> = text
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("Version table:"))
        .skip(1)
        // Version lines are indented less than the sources listed under them
        // and carry a priority; installed ones start with `***`.
        .map(|line| line.trim_start().trim_start_matches("***").trim_start())
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let version = words.next()?;
            let priority = words.next()?;
            (priority.parse::<i32>().is_ok() && words.next().is_none()).then(|| version.to_owned())
        })
        .collect();
    if versions.is_empty() {
        return Err(format!("apt knows no version of `{name}`:\n{text}"));
    }
    Ok(versions)
}

/// The `.deb` of `package` in `cache`, downloaded unless already there.
pub(crate) fn download(package: &Package, cache: &Path) -> Result<PathBuf> {
    let dir = cache.join(&package.name);
    if let Some(found) = find_deb(&dir, package)? {
        return Ok(found);
    }
    // A stale download of an older version is of no further use.
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|err| format!("removing {}: {err}", dir.display()))?;
    }
    fs::create_dir_all(&dir).map_err(|err| format!("creating {}: {err}", dir.display()))?;
    let spec = format!("{}={}", package.name, package.version);
    let mut command = Command::new("apt-get");
    if is_root() {
        // apt's `_apt` user may not enter the target directory; as root,
        // download as root instead of warning about it.
        command.args(["-o", "APT::Sandbox::User=root"]);
    }
    run(command.args(["download", "-q", &spec]).current_dir(&dir))?;
    find_deb(&dir, package)?.ok_or_else(|| {
        format!(
            "`apt-get download {spec}` left no .deb in {}",
            dir.display()
        )
    })
}

fn find_deb(dir: &Path, package: &Package) -> Result<Option<PathBuf>> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(None);
    };
    // apt writes the epoch's ':' as "%3a" in file names.
    let prefix = format!("{}_{}_", package.name, package.version.replace(':', "%3a"));
    for entry in entries {
        let entry = entry.map_err(|err| format!("reading {}: {err}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".deb") {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}

/// Unpacks `deb` into the fresh directory `into` (no maintainer scripts).
pub(crate) fn extract(deb: &Path, into: &Path) -> Result {
    fs::create_dir_all(into).map_err(|err| format!("creating {}: {err}", into.display()))?;
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(into))
}
