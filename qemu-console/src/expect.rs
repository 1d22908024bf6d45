//! Waiting for a needle in the expect window.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::needle::Needle;
use crate::shared::Shared;

/// What an expect matched: the unconsumed bytes before the match and the
/// match itself, both consumed from the expect window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captures {
    before: Vec<u8>,
    matched: Vec<u8>,
    which: usize,
    groups: Vec<Option<Vec<u8>>>,
    skipped: u64,
}

impl Captures {
    /// The bytes between the end of the previous match (or the start of the
    /// stream) and this match.
    pub fn before(&self) -> &[u8] {
        &self.before
    }

    /// The bytes that matched (empty for [`Needle::eof`]).
    pub fn matched(&self) -> &[u8] {
        &self.matched
    }

    /// Which alternative of a [`Needle::any_of`] matched (0 for other needles).
    pub fn which(&self) -> usize {
        self.which
    }

    /// Capture group `i` of a regex needle: 0 is the whole match, then the
    /// groups in order; `None` when the group did not take part or does not exist.
    pub fn group(&self, i: usize) -> Option<&[u8]> {
        match i {
            0 => Some(&self.matched),
            _ => self.groups.get(i - 1)?.as_deref(),
        }
    }

    /// How many unconsumed bytes fell out of the expect window before this
    /// match (see [`ConsoleConfig::buffer_limit`](crate::ConsoleConfig::buffer_limit)):
    /// when not zero, `before` misses that many bytes at its start. The log
    /// file still has them.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Takes `(before, matched)` out.
    pub fn into_parts(self) -> (Vec<u8>, Vec<u8>) {
        (self.before, self.matched)
    }
}

/// Waits until `needle` matches, the stream ends or `timeout` passes.
pub(crate) async fn expect(
    shared: &Shared,
    needle: &Needle,
    started: Instant,
    timeout: Duration,
) -> Result<Captures> {
    let deadline = crate::deadline::deadline(started, timeout);
    // Subscribe before looking, so bytes that arrive in between wake us.
    let mut changes = shared.subscribe();
    let mut scanned = 0;
    loop {
        if let Some(outcome) = attempt(shared, needle, started, &mut scanned) {
            return outcome;
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => {}
            // The sender lives in `shared`, which outlives this borrow; the
            // arms below only make the loop total.
            Ok(Err(_)) | Err(_) => {
                return attempt(shared, needle, started, &mut scanned).unwrap_or_else(|| {
                    let history = shared.history();
                    Err(Error::Timeout {
                        console: shared.name.clone(),
                        expected: needle.to_string(),
                        waited: started.elapsed(),
                        tail: shared.escaped_tail(&history),
                    })
                });
            }
        }
    }
}

/// One search of the window; `None` means "not yet". `scanned` is the
/// absolute offset up to which the window has been searched in vain.
fn attempt(
    shared: &Shared,
    needle: &Needle,
    started: Instant,
    scanned: &mut u64,
) -> Option<Result<Captures>> {
    let mut history = shared.history();
    let ended = history.end().cloned();
    let window = history.window();
    let resume = usize::try_from(scanned.saturating_sub(window.start)).unwrap_or(usize::MAX);
    let Some(found) = needle.find(window.bytes, resume, ended.is_some()) else {
        *scanned = window.start + window.bytes.len() as u64;
        let end = ended?;
        return Some(Err(Error::Eof {
            console: shared.name.clone(),
            expected: needle.to_string(),
            waited: started.elapsed(),
            tail: shared.escaped_tail(&history),
            cause: end.cause(),
        }));
    };
    let bytes = window.bytes;
    let captures = Captures {
        before: bytes[..found.range.start].to_vec(),
        matched: bytes[found.range.clone()].to_vec(),
        which: found.which,
        groups: found
            .groups
            .into_iter()
            .map(|group| group.map(|range| bytes[range].to_vec()))
            .collect(),
        skipped: window.skipped,
    };
    let consumed = window.start + found.range.end as u64;
    history.consume_to(consumed);
    Some(Ok(captures))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::history::History;

    /// Feeds `data` in `chunks`, searching after each one as the expect
    /// loop does, and returns the first match.
    fn incremental(
        needle: &Needle,
        data: &[u8],
        chunks: &[usize],
    ) -> Option<(Vec<u8>, Vec<u8>, usize)> {
        let shared = Shared::new("test".into(), 64, History::new(1 << 20, None));
        let started = Instant::now();
        let mut scanned = 0;
        let mut rest = data;
        for &size in chunks.iter().chain(std::iter::once(&usize::MAX)) {
            let (now, later) = rest.split_at(size.min(rest.len()));
            shared.push(now);
            rest = later;
            if let Some(Ok(found)) = attempt(&shared, needle, started, &mut scanned) {
                return Some((found.before, found.matched, found.which));
            }
            if rest.is_empty() {
                return None;
            }
        }
        None
    }

    fn at_once(needle: &Needle, data: &[u8]) -> Option<(Vec<u8>, Vec<u8>, usize)> {
        incremental(needle, data, &[data.len()])
    }

    fn text() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![Just(b'a'), Just(b'b'), Just(b'@'), Just(b'\n')],
            0..200,
        )
    }

    proptest! {
        #[test]
        fn a_literal_split_anywhere_matches_as_if_whole(
            data in text(),
            needle in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'@')], 1..6),
            chunks in proptest::collection::vec(1usize..20, 0..40),
        ) {
            let needle = Needle::literal(&needle);
            prop_assert_eq!(incremental(&needle, &data, &chunks), at_once(&needle, &data));
        }

        #[test]
        fn any_of_split_anywhere_matches_as_if_whole(
            data in text(),
            chunks in proptest::collection::vec(1usize..20, 0..40),
        ) {
            let needle = Needle::any_of([
                Needle::from("ab@"),
                Needle::regex(r"b+\n").map_err(|e| TestCaseError::fail(e.to_string()))?,
                Needle::from("@@"),
            ]);
            let found = incremental(&needle, &data, &chunks);
            // A regex match can grow with more input (`b+`), so only the
            // start and the winner are fixed; literals match exactly.
            let whole = at_once(&needle, &data);
            prop_assert_eq!(found.as_ref().map(|f| (&f.0, f.2)), whole.as_ref().map(|f| (&f.0, f.2)));
        }
    }
}
