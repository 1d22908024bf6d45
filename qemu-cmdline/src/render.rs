//! Rendering a `Cmdline` into processes and into a shell-quoted line.

use std::ffi::OsStr;
use std::fmt;

use crate::{Cmdline, Error, os};

impl Cmdline {
    /// A [`std::process::Command`] for the program with these arguments.
    pub fn command(&self) -> Result<std::process::Command, Error> {
        let mut command = std::process::Command::new(self.get_program());
        command.args(self.to_args()?);
        Ok(command)
    }

    /// Appends these arguments to an existing [`std::process::Command`].
    pub fn apply_to<'c>(
        &self,
        command: &'c mut std::process::Command,
    ) -> Result<&'c mut std::process::Command, Error> {
        Ok(command.args(self.to_args()?))
    }

    /// A [`tokio::process::Command`] for the program with these arguments.
    #[cfg(feature = "tokio")]
    pub fn tokio_command(&self) -> Result<tokio::process::Command, Error> {
        let mut command = tokio::process::Command::new(self.get_program());
        command.args(self.to_args()?);
        Ok(command)
    }

    /// Appends these arguments to an existing [`tokio::process::Command`].
    #[cfg(feature = "tokio")]
    pub fn apply_to_tokio<'c>(
        &self,
        command: &'c mut tokio::process::Command,
    ) -> Result<&'c mut tokio::process::Command, Error> {
        Ok(command.args(self.to_args()?))
    }
}

/// The program and arguments as one line a POSIX shell (bash for bytes
/// that are not printable UTF-8) reads back as the same argv.
impl fmt::Display for Cmdline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_argv() {
            Ok(argv) => f.write_str(&shell_quote(&argv)),
            Err(err) => write!(
                f,
                "{} <command line not renderable: {err}>",
                shell_quote(&[self.get_program()])
            ),
        }
    }
}

/// Quotes arguments for a shell, space-separated: plain words stay as
/// they are, others go in single quotes, and control characters or bytes
/// that are not UTF-8 use bash's `$'…'` form.
pub fn shell_quote<S: AsRef<OsStr>>(args: &[S]) -> String {
    let mut out = String::new();
    for (index, arg) in args.iter().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        quote_one(&os::bytes(arg.as_ref()), &mut out);
    }
    out
}

fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"_-+=:,./@%^".contains(&byte)
}

fn quote_one(bytes: &[u8], out: &mut String) {
    if !bytes.is_empty() && bytes.iter().all(|&b| is_plain(b)) {
        // All ASCII, so this is exact.
        out.extend(bytes.iter().map(|&b| char::from(b)));
        return;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => {
            out.push('\'');
            out.push_str(&text.replace('\'', r"'\''"));
            out.push('\'');
        }
        _ => ansi_c_quote(bytes, out),
    }
}

fn ansi_c_quote(bytes: &[u8], out: &mut String) {
    out.push_str("$'");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str(r"\\"),
                '\'' => out.push_str(r"\'"),
                '\n' => out.push_str(r"\n"),
                '\t' => out.push_str(r"\t"),
                '\r' => out.push_str(r"\r"),
                c if c.is_control() => {
                    let mut buf = [0; 4];
                    for byte in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{byte:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_a_shell_reads() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("file=a,,b.img", "file=a,,b.img"),
            ("", "''"),
            ("two words", "'two words'"),
            ("it's", r"'it'\''s'"),
            ("$HOME", "'$HOME'"),
            ("line\nbreak", r"$'line\nbreak'"),
            ("ünï", "'ünï'"),
        ];
        for (arg, quoted) in cases {
            assert_eq!(shell_quote(&[arg]), *quoted, "quoting {arg:?}");
        }
        assert_eq!(shell_quote(&["-name", "a b"]), "-name 'a b'");
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_bytes_are_hex_escaped() {
        use std::os::unix::ffi::OsStrExt;
        let arg = OsStr::from_bytes(b"a\xffb'");
        assert_eq!(shell_quote(&[arg]), r"$'a\xffb\''");
    }
}
