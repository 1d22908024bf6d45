//! What goes into the guest's initramfs, taken from unpacked packages.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::cpio::Archive;
use crate::Result;
use crate::cmd::output;

/// The kernel modules `/init` loads, in dependency order (the .deb has no
/// modules.dep): virtio transport, disk, network, console/ports, rng, and
/// the input stack acpid needs for the power button.
pub(crate) const MODULES: &[&str] = &[
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "virtio_blk",
    "failover",
    "net_failover",
    "virtio_net",
    "virtio_console",
    "virtio-rng",
    "evdev",
    "button",
];

const INIT: &str = include_str!("init.sh");
const SHUTDOWN: &str = include_str!("shutdown.sh");
const POWER_BUTTON: &str = include_str!("power-button.sh");

/// Where the packages were unpacked.
#[derive(Debug)]
pub(crate) struct Unpacked {
    pub(crate) kernel: PathBuf,
    pub(crate) busybox: PathBuf,
    pub(crate) agent: PathBuf,
}

/// The compressed kernel image in the unpacked kernel package.
pub(crate) fn kernel_image(unpacked: &Unpacked) -> Result<PathBuf> {
    let boot = unpacked.kernel.join("boot");
    read_dir(&boot)?
        .into_iter()
        .find(|path| file_name(path).starts_with("vmlinuz-"))
        .ok_or_else(|| {
            format!(
                "no boot/vmlinuz-* in the kernel package ({})",
                boot.display()
            )
        })
}

/// The plain guest: busybox, modules, `/init` and its helpers.
pub(crate) fn base(unpacked: &Unpacked) -> Result<Archive> {
    let mut archive = Archive::new();
    for dir in ["dev", "proc", "sys", "run", "tmp", "root", "mnt", "var/log"] {
        archive.dir(dir)?;
    }
    add_busybox(&mut archive, &unpacked.busybox)?;
    let modules = add_modules(&mut archive, &unpacked.kernel)?;
    archive.file(
        "etc/qemukit/modules",
        modules.join("\n").into_bytes(),
        0o644,
    )?;
    archive.file("init", INIT.as_bytes().to_vec(), 0o755)?;
    archive.file("sbin/shutdown", SHUTDOWN.as_bytes().to_vec(), 0o755)?;
    archive.file(
        "etc/acpi/PWRF/00000080",
        POWER_BUTTON.as_bytes().to_vec(),
        0o755,
    )?;
    archive.file("etc/hostname", b"qemukit\n".to_vec(), 0o644)?;
    archive.file(
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\n".to_vec(),
        0o644,
    )?;
    archive.file("etc/group", b"root:x:0:\n".to_vec(), 0o644)?;
    archive.symlink_if_absent("var/run", "/run")?;
    Ok(archive)
}

/// The guest with qemu-ga: `base` plus the agent and the host libraries it
/// links against. Returns the library paths too (they are cache inputs).
pub(crate) fn with_agent(base: &Archive, unpacked: &Unpacked) -> Result<(Archive, Vec<PathBuf>)> {
    let mut archive = base.clone();
    let agent = unpacked.agent.join("usr/sbin/qemu-ga");
    archive.file("usr/sbin/qemu-ga", read(&agent)?, 0o755)?;
    let libraries = shared_libraries(&agent)?;
    for library in &libraries {
        let path = library.to_str().ok_or("a library path is not UTF-8")?;
        archive.file(path, read(library)?, 0o755)?;
    }
    Ok((archive, libraries))
}

/// The libraries `ldd` resolves for `binary` on this host, loader included.
pub(crate) fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let text = output(Command::new("ldd").arg(binary))?;
    let mut libraries = Vec::new();
    for line in text.lines().map(str::trim) {
        let path = match line.split_once("=>") {
            Some((name, _)) if line.contains("not found") => {
                return Err(format!(
                    "qemu-ga needs {} which this host lacks: install qemu-system-x86 \
                     (which brings its libraries) or qemu-guest-agent",
                    name.trim()
                ));
            }
            Some((_, resolved)) => resolved.trim(),
            None => line,
        };
        let path = path.split(" (").next().unwrap_or_default().trim();
        if path.starts_with('/') {
            libraries.push(PathBuf::from(path));
        }
    }
    if libraries.is_empty() {
        return Err(format!(
            "`ldd {}` listed no libraries:\n{text}",
            binary.display()
        ));
    }
    Ok(libraries)
}

fn add_busybox(archive: &mut Archive, unpacked: &Path) -> Result {
    let busybox = unpacked.join("bin/busybox");
    archive.file("bin/busybox", read(&busybox)?, 0o755)?;
    let applets = output(Command::new(&busybox).arg("--list-full"))?;
    for applet in applets
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        if applet != "bin/busybox" {
            archive.symlink_if_absent(applet, "/bin/busybox")?;
        }
    }
    for needed in [
        "bin/sh",
        "sbin/insmod",
        "sbin/acpid",
        "bin/cttyhack",
        "sbin/poweroff",
    ] {
        if !archive.contains(needed) {
            return Err(format!("busybox-static has no `{needed}` applet"));
        }
    }
    Ok(())
}

/// Copies [`MODULES`] into `lib/modules/` (flat) and returns the names
/// `/init` must load: modules built into the kernel are skipped.
fn add_modules(archive: &mut Archive, kernel: &Path) -> Result<Vec<&'static str>> {
    let tree = read_dir(&kernel.join("lib/modules"))?
        .into_iter()
        .next()
        .ok_or("the kernel package has no lib/modules/<version>")?;
    let mut files = Vec::new();
    collect_files(&tree.join("kernel"), &mut files)?;
    let builtin = fs::read_to_string(tree.join("modules.builtin")).unwrap_or_default();
    let mut load = Vec::new();
    for &module in MODULES {
        let file = format!("{module}.ko");
        if let Some(path) = files.iter().find(|path| file_name(path) == file) {
            archive.file(&format!("lib/modules/{file}"), read(path)?, 0o644)?;
            load.push(module);
        } else if builtin
            .lines()
            .any(|line| line.ends_with(&format!("/{file}")))
        {
            continue;
        } else if files
            .iter()
            .any(|path| file_name(path).starts_with(&format!("{file}.")))
        {
            return Err(format!(
                "module {module} is compressed; insmod here needs plain .ko files"
            ));
        } else {
            return Err(format!(
                "the kernel has no module {module}, built in or not"
            ));
        }
    }
    Ok(load)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result {
    for path in read_dir(dir)? {
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|err| format!("reading {}: {err}", dir.display()))?;
    let mut paths = entries
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|err| format!("reading {}: {err}", dir.display()))?;
    paths.sort();
    Ok(paths)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|err| format!("reading {}: {err}", path.display()))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}
