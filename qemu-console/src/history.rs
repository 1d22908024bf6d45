//! The bytes received so far: the transcript and, inside it, the expect window.
//!
//! One buffer holds both. Positions are absolute offsets in the stream, so
//! the expect cursor and resumable searches survive trimming.

/// How the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// A read returned 0 bytes.
    Eof,
    /// A read failed; the stream is treated as ended.
    Failed(String),
}

impl End {
    pub(crate) fn cause(&self) -> Option<String> {
        match self {
            End::Eof => None,
            End::Failed(cause) => Some(cause.clone()),
        }
    }
}

#[derive(Debug)]
pub(crate) struct History {
    /// Stream bytes `[base, base + data.len())`.
    data: Vec<u8>,
    base: u64,
    /// Everything before this offset has been consumed by an expect.
    cursor: u64,
    window_limit: usize,
    transcript_limit: Option<usize>,
    end: Option<End>,
}

/// The unconsumed bytes an expect may search.
#[derive(Debug)]
pub(crate) struct Window<'a> {
    pub(crate) bytes: &'a [u8],
    /// Absolute offset of `bytes[0]`.
    pub(crate) start: u64,
    /// Unconsumed bytes that fell out of the window before it.
    pub(crate) skipped: u64,
}

impl History {
    pub(crate) fn new(window_limit: usize, transcript_limit: Option<usize>) -> Self {
        Self {
            data: Vec::new(),
            base: 0,
            cursor: 0,
            window_limit: window_limit.max(1),
            transcript_limit,
            end: None,
        }
    }

    /// Appends received bytes, trimming old ones in amortised O(1): the
    /// buffer may grow to 1.5 times its limit before it is cut back.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
        let Some(keep) = self.keep() else { return };
        if self.data.len() > keep + keep / 2 {
            let cut = self.data.len() - keep;
            self.data.drain(..cut);
            self.base += cut as u64;
        }
    }

    /// How many bytes must be kept, or `None` for all of them.
    fn keep(&self) -> Option<usize> {
        self.transcript_limit
            .map(|limit| limit.max(self.window_limit))
    }

    pub(crate) fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }

    pub(crate) fn set_end(&mut self, end: End) {
        self.end.get_or_insert(end);
    }

    /// Total bytes received.
    pub(crate) fn received(&self) -> u64 {
        self.base + self.data.len() as u64
    }

    pub(crate) fn window(&self) -> Window<'_> {
        let received = self.received();
        let floor = received
            .saturating_sub(self.window_limit as u64)
            .max(self.base);
        let start = self.cursor.max(floor);
        Window {
            bytes: &self.data[self.index(start)..],
            start,
            skipped: start - self.cursor,
        }
    }

    /// Consumes everything before `offset` (absolute).
    pub(crate) fn consume_to(&mut self, offset: u64) {
        self.cursor = self.cursor.max(offset.min(self.received()));
    }

    /// The latest bytes, at most the transcript limit.
    pub(crate) fn transcript(&self) -> &[u8] {
        let len = match self.transcript_limit {
            Some(limit) => self.data.len().min(limit),
            None => self.data.len(),
        };
        &self.data[self.data.len() - len..]
    }

    /// The last `n` bytes received (fewer if not kept).
    pub(crate) fn tail(&self, n: usize) -> &[u8] {
        let transcript = self.transcript();
        &transcript[transcript.len().saturating_sub(n)..]
    }

    /// Bytes held in memory.
    pub(crate) fn held(&self) -> usize {
        self.data.len()
    }

    fn index(&self, offset: u64) -> usize {
        // `offset` is always within [base, received]: callers clamp it.
        usize::try_from(offset.saturating_sub(self.base))
            .unwrap_or(usize::MAX)
            .min(self.data.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_what_has_not_been_consumed() {
        let mut history = History::new(100, Some(100));
        history.push(b"hello world");
        history.consume_to(6);
        let window = history.window();
        assert_eq!(window.bytes, b"world");
        assert_eq!((window.start, window.skipped), (6, 0));
        assert_eq!(history.transcript(), b"hello world");
    }

    #[test]
    fn window_skips_what_falls_out_of_its_limit() {
        let mut history = History::new(4, None);
        history.push(b"0123456789");
        let window = history.window();
        assert_eq!(window.bytes, b"6789");
        assert_eq!((window.start, window.skipped), (6, 6));
        assert_eq!(history.transcript(), b"0123456789");
    }

    #[test]
    fn memory_stays_bounded_and_offsets_stay_absolute() {
        let mut history = History::new(16, Some(64));
        for i in 0..10_000u32 {
            history.push(&i.to_le_bytes());
            assert!(history.held() <= 64 + 32 + 4, "held {}", history.held());
        }
        assert_eq!(history.received(), 40_000);
        assert_eq!(history.transcript().len(), 64);
        assert_eq!(history.tail(4), 9_999u32.to_le_bytes());
        let window = history.window();
        assert_eq!(window.start, 40_000 - 16);
        assert_eq!(window.skipped, 40_000 - 16);
        history.consume_to(40_000);
        assert!(history.window().bytes.is_empty());
    }

    #[test]
    fn the_first_end_wins() {
        let mut history = History::new(4, None);
        history.set_end(End::Failed("reset".into()));
        history.set_end(End::Eof);
        assert_eq!(history.end().and_then(End::cause).as_deref(), Some("reset"));
    }
}
