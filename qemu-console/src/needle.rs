//! What an expect waits for: a string, a regex, any of several, or EOF.

use std::fmt;
use std::ops::Range;

use memchr::memmem::Finder;
use regex::bytes::Regex;

use crate::error::{Error, Result};
use crate::text::escape;

/// A pattern to [`expect`](crate::Console::expect), matched on raw bytes.
///
/// Build one from a string or bytes (a literal), with [`Needle::regex`]
/// (compiled once, here), [`Needle::any_of`] or [`Needle::eof`]. Cloning is
/// cheap, and a `&Needle` can be passed wherever a needle is expected, so a
/// needle used in a loop is compiled only once.
///
/// ```
/// use qemu_console::Needle;
///
/// let prompt = Needle::any_of([
///     Needle::from("login: "),
///     Needle::regex(r"[#$] $")?,
///     Needle::eof(),
/// ]);
/// assert_eq!(prompt.to_string(), r#"any of ["login: ", /[#$] $/, end of file]"#);
/// # Ok::<(), qemu_console::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Needle {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Literal(Box<Finder<'static>>),
    Regex(Regex),
    AnyOf(Vec<Needle>),
    Eof,
}

/// Where a needle matched in a window.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) range: Range<usize>,
    /// Index of the alternative that matched (0 for a plain needle).
    pub(crate) which: usize,
    /// Regex capture groups (group 0 excluded), as window ranges.
    pub(crate) groups: Vec<Option<Range<usize>>>,
}

impl Needle {
    /// A literal byte string.
    pub fn literal(bytes: impl AsRef<[u8]>) -> Self {
        Self {
            kind: Kind::Literal(Box::new(Finder::new(bytes.as_ref()).into_owned())),
        }
    }

    /// A regular expression over bytes ([`regex::bytes`] syntax; `(?-u)`
    /// lets `.` match any byte), compiled now.
    ///
    /// A literal search resumes where the last one stopped; a regex rescans
    /// the window whenever bytes arrive, since its match may start anywhere.
    /// While the guest prints megabytes, prefer literals, or bound the
    /// window with [`ConsoleConfig::buffer_limit`](crate::ConsoleConfig::buffer_limit).
    ///
    /// # Errors
    ///
    /// [`Error::Regex`] when the pattern does not compile.
    pub fn regex(pattern: &str) -> Result<Self> {
        let regex = Regex::new(pattern).map_err(|source| Error::Regex {
            pattern: pattern.to_owned(),
            source,
        })?;
        Ok(regex.into())
    }

    /// Any of several needles: the one whose match starts earliest in the
    /// bytes received so far wins (on a tie, the first listed), and
    /// [`Captures::which`](crate::Captures::which) says which. As in every
    /// streaming expect, a match that completes first is not displaced by
    /// an earlier-starting one whose last bytes have not arrived yet. An [`eof`](Needle::eof) alternative matches only when the
    /// stream has ended and no other alternative matched.
    pub fn any_of<N: Into<Needle>>(needles: impl IntoIterator<Item = N>) -> Self {
        Self {
            kind: Kind::AnyOf(needles.into_iter().map(Into::into).collect()),
        }
    }

    /// The end of the stream: matches once QEMU has closed the console,
    /// returning every unconsumed byte as [`Captures::before`](crate::Captures::before).
    pub fn eof() -> Self {
        Self { kind: Kind::Eof }
    }

    /// Finds the earliest match in `window`. Literals resume scanning at
    /// `scanned` (bytes already searched without a match); regexes rescan
    /// the window, as a match may depend on context before new bytes.
    pub(crate) fn find(&self, window: &[u8], scanned: usize, eof: bool) -> Option<Found> {
        if let Some(found) = self.find_bytes(window, scanned) {
            return Some(found);
        }
        if eof {
            return self.eof_index().map(|which| Found {
                range: window.len()..window.len(),
                which,
                groups: Vec::new(),
            });
        }
        None
    }

    fn find_bytes(&self, window: &[u8], scanned: usize) -> Option<Found> {
        match &self.kind {
            Kind::Literal(finder) => {
                let from = scanned
                    .saturating_sub(finder.needle().len().saturating_sub(1))
                    .min(window.len());
                let start = from + finder.find(&window[from..])?;
                Some(Found {
                    range: start..start + finder.needle().len(),
                    which: 0,
                    groups: Vec::new(),
                })
            }
            Kind::Regex(regex) => {
                let captures = regex.captures(window)?;
                let whole = captures.get(0)?;
                Some(Found {
                    range: whole.range(),
                    which: 0,
                    groups: captures
                        .iter()
                        .skip(1)
                        .map(|group| group.map(|m| m.range()))
                        .collect(),
                })
            }
            Kind::AnyOf(needles) => needles
                .iter()
                .enumerate()
                .filter_map(|(which, needle)| {
                    let found = needle.find_bytes(window, scanned)?;
                    Some(Found { which, ..found })
                })
                // min_by_key keeps the first of equal keys: ties go to the first listed.
                .min_by_key(|found| found.range.start),
            Kind::Eof => None,
        }
    }

    /// The index of the alternative that accepts EOF, if any.
    fn eof_index(&self) -> Option<usize> {
        match &self.kind {
            Kind::Eof => Some(0),
            Kind::AnyOf(needles) => needles
                .iter()
                .position(|needle| needle.eof_index().is_some()),
            Kind::Literal(_) | Kind::Regex(_) => None,
        }
    }
}

impl fmt::Display for Needle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Literal(finder) => write!(f, "\"{}\"", escape(finder.needle())),
            Kind::Regex(regex) => write!(f, "/{}/", regex.as_str()),
            Kind::AnyOf(needles) => {
                f.write_str("any of [")?;
                for (i, needle) in needles.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{needle}")?;
                }
                f.write_str("]")
            }
            Kind::Eof => f.write_str("end of file"),
        }
    }
}

impl From<&str> for Needle {
    fn from(text: &str) -> Self {
        Needle::literal(text)
    }
}

impl From<String> for Needle {
    fn from(text: String) -> Self {
        Needle::literal(text)
    }
}

impl From<&String> for Needle {
    fn from(text: &String) -> Self {
        Needle::literal(text)
    }
}

impl From<&[u8]> for Needle {
    fn from(bytes: &[u8]) -> Self {
        Needle::literal(bytes)
    }
}

impl<const N: usize> From<&[u8; N]> for Needle {
    fn from(bytes: &[u8; N]) -> Self {
        Needle::literal(bytes)
    }
}

impl From<Vec<u8>> for Needle {
    fn from(bytes: Vec<u8>) -> Self {
        Needle::literal(bytes)
    }
}

impl From<Regex> for Needle {
    fn from(regex: Regex) -> Self {
        Self {
            kind: Kind::Regex(regex),
        }
    }
}

impl From<&Needle> for Needle {
    fn from(needle: &Needle) -> Self {
        needle.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(needle: &Needle, window: &[u8]) -> Option<(Range<usize>, usize)> {
        needle
            .find(window, 0, false)
            .map(|found| (found.range, found.which))
    }

    #[test]
    fn literal_resumes_without_missing_a_match_across_the_boundary() {
        let needle = Needle::from("login:");
        // "log" was scanned before "in:" arrived.
        assert_eq!(
            needle.find(b"xx login:", 6, false).map(|f| f.range),
            Some(3..9)
        );
        assert_eq!(needle.find(b"login", 5, false), None);
    }

    #[test]
    fn any_of_takes_the_earliest_match_and_says_which() {
        let needle = Needle::any_of(["ccc", "bbb", "aaa"]);
        assert_eq!(found(&needle, b"xx bbb aaa ccc"), Some((3..6, 1)));
        let tie = Needle::any_of([
            Needle::from("ab"),
            Needle::regex("a.").unwrap_or_else(|e| panic!("{e}")),
        ]);
        assert_eq!(found(&tie, b"zab"), Some((1..3, 0)));
    }

    #[test]
    fn eof_matches_only_at_the_end_and_after_other_alternatives() {
        let needle = Needle::any_of([Needle::from("x"), Needle::eof()]);
        assert_eq!(needle.find(b"abc", 0, false), None);
        assert_eq!(
            needle.find(b"abc", 0, true).map(|f| (f.range, f.which)),
            Some((3..3, 1))
        );
        assert_eq!(
            needle.find(b"axc", 0, true).map(|f| (f.range, f.which)),
            Some((1..2, 0))
        );
        assert_eq!(Needle::from("x").find(b"", 0, true), None);
    }

    #[test]
    fn regex_groups_are_reported() {
        let needle = Needle::regex(r"status=(\d+)( ok)?").unwrap_or_else(|e| panic!("{e}"));
        let found = needle.find(b"..status=42.", 0, false);
        assert_eq!(
            found.map(|f| (f.range, f.groups)),
            Some((2..11, vec![Some(9..11), None]))
        );
    }

    #[test]
    fn display_escapes_literals() {
        assert_eq!(
            Needle::from("a\r\n\x1b[6n").to_string(),
            r#""a\r\n\x1b[6n""#
        );
        let invalid = Needle::regex("(");
        assert!(
            matches!(&invalid, Err(crate::Error::Regex { pattern, .. }) if pattern == "("),
            "{invalid:?}"
        );
    }
}
