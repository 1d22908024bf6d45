//! An initramfs as an in-memory tree, written as a newc ("070701") cpio
//! archive and gzip'ed by the `gzip` binary.
//!
//! The kernel's initramfs unpacker wants parents before children, so the
//! tree is a `BTreeMap` keyed by path (components compare in order) and
//! every parent directory is created on insertion.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Result;

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir,
    File { data: Vec<u8>, mode: u32 },
    Symlink { target: String },
}

/// The contents of an initramfs, keyed by path relative to its root.
#[derive(Debug, Clone, Default)]
pub(crate) struct Archive {
    entries: BTreeMap<PathBuf, Entry>,
}

impl Archive {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a directory (and its parents).
    pub(crate) fn dir(&mut self, path: &str) -> Result {
        let path = relative(path)?;
        self.parents(&path)?;
        self.entries.insert(path, Entry::Dir);
        Ok(())
    }

    /// Adds a regular file with permission bits `mode`, replacing any entry
    /// at that path.
    pub(crate) fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) -> Result {
        let path = relative(path)?;
        self.parents(&path)?;
        self.entries.insert(
            path,
            Entry::File {
                data,
                mode: mode & 0o7777,
            },
        );
        Ok(())
    }

    /// Adds a symbolic link unless something already sits at `path`.
    pub(crate) fn symlink_if_absent(&mut self, path: &str, target: &str) -> Result {
        let path = relative(path)?;
        if self.entries.contains_key(&path) {
            return Ok(());
        }
        self.parents(&path)?;
        self.entries.insert(
            path,
            Entry::Symlink {
                target: target.to_owned(),
            },
        );
        Ok(())
    }

    /// Whether an entry exists at `path`.
    pub(crate) fn contains(&self, path: &str) -> bool {
        relative(path).is_ok_and(|path| self.entries.contains_key(&path))
    }

    fn parents(&mut self, path: &Path) -> Result {
        for parent in path.ancestors().skip(1) {
            if parent.as_os_str().is_empty() {
                break;
            }
            match self.entries.get(parent) {
                None => {
                    self.entries.insert(parent.to_path_buf(), Entry::Dir);
                }
                Some(Entry::Dir) => {}
                Some(_) => {
                    return Err(format!(
                        "initramfs: `{}` is a file, cannot hold `{}`",
                        parent.display(),
                        path.display()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The archive in newc format, with the `TRAILER!!!` entry. Deterministic:
    /// owner root, mtime 0, inode numbers in path order.
    pub(crate) fn to_newc(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for (ino, (path, entry)) in (1u32..).zip(&self.entries) {
            let name = path
                .to_str()
                .ok_or_else(|| format!("initramfs: path `{}` is not UTF-8", path.display()))?;
            let (mode, nlink, data): (u32, u32, &[u8]) = match entry {
                Entry::Dir => (S_IFDIR | 0o755, 2, &[]),
                Entry::File { data, mode } => (S_IFREG | mode, 1, data),
                Entry::Symlink { target } => (S_IFLNK | 0o777, 1, target.as_bytes()),
            };
            write_entry(&mut out, ino, mode, nlink, name, data)?;
        }
        write_entry(&mut out, 0, 0, 1, "TRAILER!!!", &[])?;
        Ok(out)
    }

    /// The archive as a gzip'ed newc cpio, compressed by `gzip -n -9`.
    pub(crate) fn to_newc_gz(&self) -> Result<Vec<u8>> {
        gzip(&self.to_newc()?)
    }
}

/// A path inside the archive: relative, normal components only.
fn relative(path: &str) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(format!("initramfs: path `{path}` leaves the archive"));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(format!("initramfs: `{path}` names the root itself"));
    }
    Ok(out)
}

fn write_entry(
    out: &mut Vec<u8>,
    ino: u32,
    mode: u32,
    nlink: u32,
    name: &str,
    data: &[u8],
) -> Result {
    let size = u32::try_from(data.len())
        .map_err(|_| format!("initramfs: `{name}` is larger than newc's 4 GiB limit"))?;
    let namesize = u32::try_from(name.len() + 1)
        .map_err(|_| format!("initramfs: name `{name}` is too long"))?;
    // c_ino c_mode c_uid c_gid c_nlink c_mtime c_filesize c_devmajor
    // c_devminor c_rdevmajor c_rdevminor c_namesize c_check
    let fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, namesize, 0];
    out.extend_from_slice(b"070701");
    for field in fields {
        out.extend_from_slice(format!("{field:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
    Ok(())
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new("gzip")
        .args(["-n", "-9", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| format!("could not start `gzip` (apt-get install gzip): {err}"))?;
    let mut stdin = child.stdin.take().ok_or("gzip: no stdin pipe")?;
    // Feed stdin from a thread: gzip's output would otherwise fill its pipe
    // while we are still writing.
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child
        .wait_with_output()
        .map_err(|err| format!("gzip failed: {err}"))?;
    writer
        .join()
        .map_err(|_| "gzip: the writer thread panicked".to_owned())?
        .map_err(|err| format!("gzip: writing its input failed: {err}"))?;
    if !output.status.success() {
        return Err(format!("gzip failed with {}", output.status));
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a newc archive back: (name, mode, data) per entry.
    fn parse(mut newc: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut entries = Vec::new();
        let mut offset = 0;
        while !newc.is_empty() {
            assert_eq!(&newc[..6], b"070701", "magic at offset {offset}");
            let field = |i: usize| {
                let hex = std::str::from_utf8(&newc[6 + 8 * i..14 + 8 * i]).unwrap();
                usize::from_str_radix(hex, 16).unwrap()
            };
            let (mode, size, namesize) = (field(1), field(6), field(11));
            let name_end = 110 + namesize;
            let name = std::str::from_utf8(&newc[110..name_end - 1])
                .unwrap()
                .to_owned();
            let data_start = name_end.next_multiple_of(4);
            let data = newc[data_start..data_start + size].to_vec();
            let next = (data_start + size).next_multiple_of(4);
            entries.push((name, u32::try_from(mode).unwrap(), data));
            newc = &newc[next..];
            offset += next;
        }
        entries
    }

    #[test]
    fn parents_come_first_and_everything_reads_back() {
        let mut archive = Archive::new();
        archive
            .file("/bin/busybox", b"abcde".to_vec(), 0o755)
            .unwrap();
        archive.symlink_if_absent("bin/sh", "busybox").unwrap();
        archive
            .symlink_if_absent("bin/busybox", "elsewhere")
            .unwrap();
        archive.dir("tmp").unwrap();
        let newc = archive.to_newc().unwrap();
        assert_eq!(newc.len() % 4, 0);
        let entries = parse(&newc);
        let expected = [
            ("bin".to_owned(), S_IFDIR | 0o755, vec![]),
            ("bin/busybox".to_owned(), S_IFREG | 0o755, b"abcde".to_vec()),
            ("bin/sh".to_owned(), S_IFLNK | 0o777, b"busybox".to_vec()),
            ("tmp".to_owned(), S_IFDIR | 0o755, vec![]),
            ("TRAILER!!!".to_owned(), 0, vec![]),
        ];
        assert_eq!(entries, expected);
    }

    #[test]
    fn gzip_output_decompresses_to_the_archive() {
        let mut archive = Archive::new();
        archive
            .file("etc/hostname", b"qemukit\n".to_vec(), 0o644)
            .unwrap();
        let compressed = archive.to_newc_gz().unwrap();
        assert_eq!(&compressed[..2], [0x1f, 0x8b]);
        let mut child = Command::new("gzip")
            .args(["-d", "-c"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&compressed).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        assert_eq!(output.stdout, archive.to_newc().unwrap());
    }

    #[test]
    fn paths_outside_the_archive_are_refused() {
        let mut archive = Archive::new();
        let refused = |result: Result, says: &str| match result {
            Err(message) => assert!(message.contains(says), "{message:?} lacks {says:?}"),
            Ok(()) => panic!("accepted a path that must be refused ({says})"),
        };
        refused(archive.dir("../etc"), "leaves the archive");
        refused(archive.dir("/"), "names the root itself");
        archive.file("a", vec![], 0o644).unwrap();
        refused(archive.file("a/b", vec![], 0o644), "is a file, cannot hold");
    }
}
