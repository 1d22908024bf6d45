//! Turning raw console bytes into something a person can read.

use std::fmt::Write as _;

/// Escapes bytes for display on one line: valid UTF-8 text stays as it is,
/// control characters become `\r`, `\n`, `\t` or `\xNN`, invalid bytes `\xNN`,
/// and `\` becomes `\\`.
///
/// ```
/// assert_eq!(qemu_console::escape(b"# \x1b[6n\r\n\xffh\xc3\xa9"), r"# \x1b[6n\r\n\xffhé");
/// ```
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    let _ = write!(out, "\\x{:02x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// Removes ANSI escape sequences: CSI (`ESC [ … final`, e.g. the `ESC[6n`
/// busybox writes after every prompt, colours), OSC (`ESC ] … BEL` or
/// `ESC ] … ESC \`) and the short `ESC x` / `ESC ( B` kinds. An unfinished sequence
/// at the end is removed too.
///
/// ```
/// assert_eq!(qemu_console::strip_ansi(b"\x1b[1;32mok\x1b[0m # \x1b[6n"), b"ok # ");
/// ```
pub fn strip_ansi(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != 0x1b {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        i = skip_escape(bytes, i + 1);
    }
    out
}

/// Returns the index after the escape sequence whose `ESC` precedes `i`.
fn skip_escape(bytes: &[u8], i: usize) -> usize {
    match bytes.get(i) {
        None => i,
        // CSI: parameter and intermediate bytes, then one final byte 0x40..=0x7e.
        Some(b'[') => match bytes[i + 1..]
            .iter()
            .position(|b| (0x40..=0x7e).contains(b))
        {
            Some(at) => i + 1 + at + 1,
            None => bytes.len(),
        },
        // OSC: ends with BEL or ST (ESC \).
        Some(b']') => {
            let mut j = i + 1;
            while j < bytes.len() {
                match bytes[j] {
                    0x07 => return j + 1,
                    0x1b if bytes.get(j + 1) == Some(&b'\\') => return j + 2,
                    _ => j += 1,
                }
            }
            bytes.len()
        }
        // nF/Fp/Fe: intermediate bytes 0x20..=0x2f (e.g. `ESC ( B`), then one final byte.
        Some(_) => {
            let intermediates = bytes[i..]
                .iter()
                .take_while(|b| (0x20..=0x2f).contains(*b))
                .count();
            (i + intermediates + 1).min(bytes.len())
        }
    }
}

/// Removes every carriage return (`\r`): turns the console's `\r\n` line
/// ends and busybox's `\r\r\n` wraps into `\n`.
///
/// ```
/// assert_eq!(qemu_console::strip_cr(b"a\r\r\nb\r\n"), b"a\nb\n");
/// ```
pub fn strip_cr(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().copied().filter(|&b| b != b'\r').collect()
}

/// Console bytes as readable text: ANSI escapes and carriage returns
/// removed, invalid UTF-8 replaced by `�`.
///
/// ```
/// assert_eq!(qemu_console::to_text(b"# \x1b[6nuname -r\r\n6.1.0\r\n"), "# uname -r\n6.1.0\n");
/// ```
pub fn to_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&strip_cr(&strip_ansi(bytes))).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_table() {
        let cases: &[(&[u8], &str)] = &[
            (b"", ""),
            (b"plain text", "plain text"),
            (b"a\\b", r"a\\b"),
            (b"\t\x00\x7f", r"\t\x00\x7f"),
            (b"\xe2\x82", r"\xe2\x82"),
            ("€ ok".as_bytes(), "€ ok"),
        ];
        for (input, expected) in cases {
            assert_eq!(escape(input), *expected, "input {input:?}");
        }
    }

    #[test]
    fn strip_ansi_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"no escapes", b"no escapes"),
            (b"# \x1b[6n", b"# "),
            (b"\x1b[?2004hx", b"x"),
            (b"\x1b]0;title\x07after", b"after"),
            (b"\x1b]0;title\x1b\\after", b"after"),
            (b"\x1b(Bx", b"x"),
            (b"\x1b7x", b"x"),
            (b"cut \x1b[1;3", b"cut "),
            (b"cut \x1b", b"cut "),
        ];
        for (input, expected) in cases {
            assert_eq!(strip_ansi(input), *expected, "input {}", escape(input));
        }
    }
}
