//! Reading QEMU's stdout+stderr log back.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// The most of the log [`read_log`] returns: its latest bytes.
const LOG_LIMIT: u64 = 1 << 20;
/// How many of the last lines a launch error shows.
const TAIL_LINES: usize = 20;

/// Reads the log (its last MiB when it is larger), lossily as UTF-8.
pub(crate) fn read_log(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if len > LOG_LIMIT {
        file.seek(SeekFrom::Start(len - LOG_LIMIT))?;
    }
    let mut bytes = Vec::new();
    file.take(LOG_LIMIT).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The last lines of the log, for error messages.
pub(crate) fn tail(log: &str) -> &str {
    last_lines(log, TAIL_LINES)
}

fn last_lines(text: &str, count: usize) -> &str {
    let trimmed = text.trim_end();
    let start = trimmed
        .char_indices()
        .rev()
        .filter(|&(_, c)| c == '\n')
        .nth(count.saturating_sub(1))
        .map_or(0, |(index, _)| index + 1);
    &trimmed[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a\nb\n", 5), "a\nb");
        assert_eq!(last_lines("", 5), "");
    }

    #[test]
    fn reads_the_tail_of_a_log() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("log");
        std::fs::write(&path, "first\nsecond\n")?;
        assert_eq!(read_log(&path)?, "first\nsecond\n");
        assert_eq!(tail(&read_log(&path)?), "first\nsecond");
        let many: String = (0..30).map(|n| format!("line {n}\n")).collect();
        assert!(tail(&many).starts_with("line 10\n"), "{}", tail(&many));
        Ok(())
    }
}
