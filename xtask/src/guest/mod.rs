//! `cargo xtask guest`: the test guest of GUEST.md, built from Debian
//! bookworm packages (downloaded and unpacked, never installed) into
//! `target/qemukit-guest/`, and rebuilt only when its inputs change.

mod boot;
mod cpio;
mod layout;

use std::fs;
use std::path::{Path, PathBuf};

pub(crate) use boot::{BootOptions, READY_MARKER, boot_check};

use crate::Result;
use crate::apt::{self, Package};
use crate::cmd::target_dir;
use layout::Unpacked;

const KERNEL_METAPACKAGE: &str = "linux-image-cloud-amd64";
const BUSYBOX: &str = "busybox-static";
const AGENT: &str = "qemu-guest-agent";

/// What the guest is made from besides the packages: a change to any of
/// these files rebuilds it.
const GUEST_CODE: &[&str] = &[
    include_str!("mod.rs"),
    include_str!("../apt.rs"),
    include_str!("cpio.rs"),
    include_str!("layout.rs"),
    include_str!("init.sh"),
    include_str!("shutdown.sh"),
    include_str!("power-button.sh"),
];

/// The built guest's files.
#[derive(Debug, Clone)]
pub(crate) struct Guest {
    pub(crate) dir: PathBuf,
    pub(crate) kernel: PathBuf,
    pub(crate) initrd: PathBuf,
    pub(crate) agent_initrd: PathBuf,
}

impl Guest {
    fn in_dir(dir: PathBuf) -> Self {
        Self {
            kernel: dir.join("vmlinuz"),
            initrd: dir.join("initramfs.cpio.gz"),
            agent_initrd: dir.join("initramfs-agent.cpio.gz"),
            dir,
        }
    }

    fn complete(&self) -> bool {
        [&self.kernel, &self.initrd, &self.agent_initrd]
            .iter()
            .all(|path| path.is_file())
    }
}

/// The directory the guest is built in: `$QEMUKIT_GUEST_DIR` or
/// `<target>/qemukit-guest`.
pub(crate) fn guest_dir() -> PathBuf {
    std::env::var_os("QEMUKIT_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("qemukit-guest"))
}

/// Builds the guest unless an up-to-date one is already there.
pub(crate) fn build() -> Result<Guest> {
    let guest = Guest::in_dir(guest_dir());
    apt::ensure_lists()?;
    let packages = match resolve_packages() {
        Ok(packages) => packages,
        Err(err) => {
            eprintln!("xtask: {err}; refreshing the package lists");
            apt::update()?;
            resolve_packages()?
        }
    };
    let key = cache_key(&packages);
    let stamp = guest.dir.join("stamp");
    if guest.complete() && stamp_is_current(&stamp, &key) {
        eprintln!("xtask: guest is up to date in {}", guest.dir.display());
        return Ok(guest);
    }
    eprintln!("xtask: building the guest in {}", guest.dir.display());
    fs::create_dir_all(&guest.dir).map_err(|err| io_error("creating", &guest.dir, err))?;
    let debs = match download_all(&packages, &guest.dir) {
        Ok(debs) => debs,
        Err(err) => {
            // A security update renames the kernel's ABI package: refresh, re-resolve.
            eprintln!("xtask: {err}; refreshing the package lists and retrying");
            apt::update()?;
            download_all(&resolve_packages()?, &guest.dir)?
        }
    };
    let work = guest.dir.join("work");
    if work.exists() {
        fs::remove_dir_all(&work).map_err(|err| io_error("removing", &work, err))?;
    }
    let unpacked = Unpacked {
        kernel: work.join("kernel"),
        busybox: work.join("busybox"),
        agent: work.join("agent"),
    };
    apt::extract(&debs[0], &unpacked.kernel)?;
    apt::extract(&debs[1], &unpacked.busybox)?;
    apt::extract(&debs[2], &unpacked.agent)?;

    let base = layout::base(&unpacked)?;
    let (agent, libraries) = layout::with_agent(&base, &unpacked)?;
    write_atomic(&guest.kernel, &read(&layout::kernel_image(&unpacked)?)?)?;
    write_atomic(&guest.initrd, &base.to_newc_gz()?)?;
    write_atomic(&guest.agent_initrd, &agent.to_newc_gz()?)?;
    write_atomic(&stamp, stamp_text(&key, &libraries).as_bytes())?;
    fs::remove_dir_all(&work).map_err(|err| io_error("removing", &work, err))?;
    for path in [&guest.kernel, &guest.initrd, &guest.agent_initrd] {
        let size = fs::metadata(path).map(|meta| meta.len()).unwrap_or(0);
        eprintln!(
            "xtask: wrote {} ({:.1} MB)",
            path.display(),
            size as f64 / 1e6
        );
    }
    Ok(guest)
}

fn resolve_packages() -> Result<Vec<Package>> {
    let kernel = apt::resolve_metapackage(KERNEL_METAPACKAGE)?;
    [kernel.as_str(), BUSYBOX, AGENT]
        .into_iter()
        .map(apt::resolve)
        .collect()
}

fn download_all(packages: &[Package], dir: &Path) -> Result<Vec<PathBuf>> {
    let cache = dir.join("debs");
    packages
        .iter()
        .map(|package| apt::download(package, &cache))
        .collect()
}

/// The packages and the guest code, hashed.
fn cache_key(packages: &[Package]) -> String {
    let mut hash = Fnv::new();
    for package in packages {
        hash.write(package.name.as_bytes());
        hash.write(b"=");
        hash.write(package.version.as_bytes());
        hash.write(b"\n");
    }
    for code in GUEST_CODE {
        hash.write(code.as_bytes());
    }
    format!("{:016x}", hash.0)
}

/// The stamp: the key, then one line per host library qemu-ga was linked
/// with (path, size, mtime) — a host upgrade rebuilds the agent guest.
fn stamp_text(key: &str, libraries: &[PathBuf]) -> String {
    let mut text = format!("{key}\n");
    for library in libraries {
        text.push_str(&library_line(library));
        text.push('\n');
    }
    text
}

fn stamp_is_current(stamp: &Path, key: &str) -> bool {
    let Ok(text) = fs::read_to_string(stamp) else {
        return false;
    };
    let mut lines = text.lines();
    lines.next() == Some(key)
        && lines.all(|line| {
            let path = line.split('\t').next().unwrap_or_default();
            library_line(Path::new(path)) == line
        })
}

fn library_line(library: &Path) -> String {
    let (size, mtime) = fs::metadata(library)
        .map(|meta| {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |since| since.as_secs());
            (meta.len(), mtime)
        })
        .unwrap_or((0, 0));
    format!("{}\t{size}\t{mtime}", library.display())
}

/// FNV-1a, 64 bits: stable across Rust versions, unlike `DefaultHasher`.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Writes through a temporary file and a rename, so a reader (a test
/// running meanwhile) never sees half a file.
fn write_atomic(path: &Path, data: &[u8]) -> Result {
    let temporary = path.with_extension("partial");
    fs::write(&temporary, data).map_err(|err| io_error("writing", &temporary, err))?;
    fs::rename(&temporary, path).map_err(|err| io_error("renaming into", path, err))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|err| io_error("reading", path, err))
}

fn io_error(what: &str, path: &Path, err: std::io::Error) -> String {
    format!("{what} {}: {err}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_follows_every_package_version() {
        let packages = |version: &str| {
            vec![Package {
                name: "busybox-static".into(),
                version: version.into(),
            }]
        };
        assert_eq!(cache_key(&packages("1")), cache_key(&packages("1")));
        assert_ne!(cache_key(&packages("1")), cache_key(&packages("2")));
    }

    #[test]
    fn a_stamp_is_stale_when_a_library_changes() {
        let dir = std::env::temp_dir().join(format!("xtask-stamp-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let library = dir.join("libx.so");
        fs::write(&library, b"one").unwrap();
        let stamp = dir.join("stamp");
        fs::write(&stamp, stamp_text("k", std::slice::from_ref(&library))).unwrap();
        assert!(stamp_is_current(&stamp, "k"));
        assert!(!stamp_is_current(&stamp, "other"));
        fs::write(&library, b"longer").unwrap();
        assert!(!stamp_is_current(&stamp, "k"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
