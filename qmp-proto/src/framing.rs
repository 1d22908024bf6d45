//! Splitting a byte stream into JSON objects.
//!
//! QMP is a stream of JSON objects. QEMU ends its messages with CRLF but
//! accepts input with no separator at all, and the guest agent resynchronises
//! on a 0xFF byte, so the splitter follows the JSON structure (strings,
//! escapes, nesting) rather than lines. Its state survives between calls, so
//! each byte is examined once however the input is chunked.

use bytes::BytesMut;
use memchr::memchr;

use crate::Error;

/// The default [`Limits::max_message_size`]: 10 MiB, what libvirt and
/// qemu.qmp settled on (`query-qmp-schema` alone is about 200 KB).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 10 * 1024 * 1024;

/// The default [`Limits::max_depth`]. QMP messages rarely nest beyond 10.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Bounds on what a peer may send.
///
/// serde_json refuses nesting beyond 127 levels whatever `max_depth` says;
/// such input is reported as [`Error::Json`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// The largest message accepted, in bytes, from `{` to `}`.
    pub max_message_size: usize,
    /// The deepest nesting of objects and arrays accepted; the message's
    /// own braces count as the first level.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// One complete JSON object cut from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Frame {
    /// The stream offset of its `{`.
    pub offset: u64,
    /// Its bytes, from `{` to the matching `}`.
    pub bytes: BytesMut,
}

/// A resumable splitter for a stream of JSON objects.
///
/// Feed it a growing [`BytesMut`]; [`Splitter::next_frame`] removes complete
/// objects from the front, along with whitespace between them, and
/// remembers how far it scanned into an incomplete one. Memory stays bounded:
/// an object larger than [`Limits::max_message_size`] is an error as soon as
/// its first byte past the limit arrives.
///
/// Only strict JSON is understood (QEMU's single-quoted strings are not).
#[derive(Debug, Clone)]
pub struct Splitter {
    limits: Limits,
    /// How many bytes of the buffer have been examined.
    scanned: usize,
    /// Open objects and arrays in the current message.
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Whether a message has started (its `{` is then at buffer index 0).
    started: bool,
    /// Discarding input up to the next 0xFF byte.
    resync: bool,
    /// The stream offset of the buffer's first byte.
    base: u64,
}

impl Splitter {
    /// A splitter enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            scanned: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            started: false,
            resync: false,
            base: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Enters resync mode: input is discarded up to and including the next
    /// 0xFF byte, and any partial message is dropped with it. This is how
    /// a guest-agent client recovers after `guest-sync-delimited`.
    pub fn resync(&mut self) {
        self.reset();
        self.resync = true;
    }

    /// Whether input is being discarded until a 0xFF byte.
    pub fn is_resyncing(&self) -> bool {
        self.resync
    }

    /// Whether part of a message has been seen but not its end.
    pub fn is_inside_message(&self) -> bool {
        self.started
    }

    /// The stream offset of the first byte still in the caller's buffer.
    pub fn stream_offset(&self) -> u64 {
        self.base
    }

    /// Cuts the next complete object from the front of `buf`.
    ///
    /// Returns `Ok(None)` when more input is needed; whitespace and (in
    /// resync mode) discarded bytes are removed from `buf` meanwhile. The
    /// caller must only append to `buf` between calls.
    ///
    /// # Errors
    ///
    /// A framing error ([`Error::UnexpectedByte`], [`Error::UnbalancedClose`],
    /// [`Error::MessageTooLarge`], [`Error::TooDeep`]). The buffered input is
    /// then discarded and the splitter starts afresh with the next byte.
    pub fn next_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
        let Some(len) = self.poll_frame(buf)? else {
            return Ok(None);
        };
        let offset = self.base;
        self.base += len as u64;
        Ok(Some(Frame {
            offset,
            bytes: buf.split_to(len),
        }))
    }

    /// Like [`Splitter::next_frame`], but leaves the complete message at
    /// the front of `buf` and returns its length; the caller must then
    /// [`consume`](Self::consume) exactly that many bytes before the next
    /// call. Saves the codecs a split of the buffer per message.
    pub(crate) fn poll_frame(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, Error> {
        if self.resync && !self.skip_to_sync_byte(buf) {
            return Ok(None);
        }
        if !self.started && !self.find_start(buf)? {
            return Ok(None);
        }
        match self.scan(buf) {
            Ok(Some(len)) => {
                self.reset();
                Ok(Some(len))
            }
            Ok(None) => Ok(None),
            Err(error) => {
                self.discard(buf);
                Err(error)
            }
        }
    }

    /// Drops the message [`poll_frame`](Self::poll_frame) reported.
    pub(crate) fn consume(&mut self, buf: &mut BytesMut, len: usize) {
        self.advance(buf, len);
    }

    /// Reports a message cut short by the end of the stream.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] when `buf` holds the start of a message.
    pub fn finish(&mut self, buf: &mut BytesMut) -> Result<(), Error> {
        if !self.started || buf.is_empty() {
            return Ok(());
        }
        let error = Error::Truncated {
            offset: self.base,
            len: buf.len(),
        };
        self.discard(buf);
        Err(error)
    }

    fn reset(&mut self) {
        self.scanned = 0;
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
        self.started = false;
    }

    fn discard(&mut self, buf: &mut BytesMut) {
        self.base += buf.len() as u64;
        buf.clear();
        self.reset();
    }

    fn advance(&mut self, buf: &mut BytesMut, count: usize) {
        self.base += count as u64;
        let _ = buf.split_to(count);
    }

    /// Drops input through the next 0xFF; false when none arrived yet.
    fn skip_to_sync_byte(&mut self, buf: &mut BytesMut) -> bool {
        match memchr(0xFF, buf) {
            Some(position) => {
                self.advance(buf, position + 1);
                self.resync = false;
                true
            }
            None => {
                self.discard(buf);
                false
            }
        }
    }

    /// Skips whitespace up to a `{`; false when the buffer ran out first.
    fn find_start(&mut self, buf: &mut BytesMut) -> Result<bool, Error> {
        let mut index = 0;
        let found = loop {
            let Some(&byte) = buf.get(index) else {
                break false;
            };
            match byte {
                b' ' | b'\t' | b'\r' | b'\n' => index += 1,
                b'{' => break true,
                b'}' | b']' => {
                    let offset = self.base + index as u64;
                    self.discard(buf);
                    return Err(Error::UnbalancedClose { byte, offset });
                }
                _ => {
                    let offset = self.base + index as u64;
                    self.discard(buf);
                    return Err(Error::UnexpectedByte { byte, offset });
                }
            }
        };
        self.advance(buf, index);
        if found && self.limits.max_depth == 0 {
            let offset = self.base;
            self.discard(buf);
            return Err(Error::TooDeep { limit: 0, offset });
        }
        if found {
            self.started = true;
            self.depth = 1;
            self.scanned = 1;
        }
        Ok(found)
    }

    /// Scans the message at the front of `buf` from where the last call
    /// stopped; returns its length once it is complete.
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, Error> {
        // Never look past the limit: the byte after it is already an error.
        let end = buf.len().min(self.limits.max_message_size);
        let mut index = self.scanned;
        let mut state = ScanState {
            depth: self.depth,
            in_string: self.in_string,
            escaped: self.escaped,
        };
        let found = 'scan: loop {
            // Whole blocks go through the bit-parallel path; a block with a
            // backslash (rare in QMP) goes byte by byte.
            while !state.escaped && index + BLOCK <= end {
                let block = &buf[index..index + BLOCK];
                let Some(masks) = Masks::of(block) else {
                    break;
                };
                if let Some(found) = state.block(block, &masks, index, self.limits.max_depth) {
                    break 'scan Some(found);
                }
                index += BLOCK;
            }
            if index >= end {
                break None;
            }
            let stop = (index + BLOCK).min(end);
            if let Some(found) = state.bytes(buf, index, stop, self.limits.max_depth) {
                break Some(found);
            }
            index = stop;
        };
        match found {
            Some(Ok(len)) => return Ok(Some(len)),
            Some(Err(at)) => {
                return Err(Error::TooDeep {
                    limit: self.limits.max_depth,
                    offset: self.base + at as u64,
                });
            }
            None => {}
        }
        self.scanned = index;
        self.depth = state.depth;
        self.in_string = state.in_string;
        self.escaped = state.escaped;
        if buf.len() > self.limits.max_message_size {
            return Err(Error::MessageTooLarge {
                limit: self.limits.max_message_size,
                offset: self.base,
            });
        }
        Ok(None)
    }
}

/// Bytes handled at once by the bit-parallel path (one bit per byte of a
/// u64; at most 64). Smaller blocks waste less past the end of short
/// messages.
const BLOCK: usize = 32;

/// The scanner's state inside a message, kept in locals while scanning.
struct ScanState {
    depth: usize,
    in_string: bool,
    escaped: bool,
}

/// What scanning found: `Ok(len)` of the complete message, or `Err(index)`
/// of the bracket that nests too deep.
type Found = Result<usize, usize>;

impl ScanState {
    /// Scans one block without backslashes at `index`.
    fn block(
        &mut self,
        block: &[u8],
        masks: &Masks,
        index: usize,
        max_depth: usize,
    ) -> Option<Found> {
        // Bits inside strings: from each opening quote up to its closing one.
        let carry = if self.in_string { u64::MAX } else { 0 };
        let in_string = prefix_xor(masks.quote) ^ carry;
        let mut brackets = masks.brackets & !in_string;
        while brackets != 0 {
            let bit = brackets.trailing_zeros() as usize;
            brackets &= brackets - 1;
            // `{` and `[` have bit 1 set, `}` and `]` do not.
            if block.get(bit).is_some_and(|byte| byte & 0x02 != 0) {
                self.depth += 1;
                if self.depth > max_depth {
                    return Some(Err(index + bit));
                }
            } else {
                self.depth -= 1;
                if self.depth == 0 {
                    return Some(Ok(index + bit + 1));
                }
            }
        }
        self.in_string = (in_string >> (BLOCK - 1)) & 1 == 1;
        None
    }

    /// Scans `buf[from..to]` byte by byte.
    fn bytes(&mut self, buf: &[u8], from: usize, to: usize, max_depth: usize) -> Option<Found> {
        for (index, &byte) in buf.iter().enumerate().take(to).skip(from) {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    if self.depth > max_depth {
                        return Some(Err(index));
                    }
                }
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Some(Ok(index + 1));
                    }
                }
                _ => {}
            }
        }
        None
    }
}

/// One bit per byte of a block, for each byte class that matters.
struct Masks {
    quote: u64,
    /// `{`, `}`, `[` and `]`.
    brackets: u64,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;

impl Masks {
    /// The masks of `block`, or `None` when it holds a backslash (then the
    /// byte loop tracks the escapes).
    fn of(block: &[u8]) -> Option<Self> {
        let mut quote = 0;
        let mut brackets = 0;
        let mut backslashes = 0;
        for (k, chunk) in block.chunks_exact(8).enumerate() {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            // `[` and `{`, `]` and `}` differ only in bit 5.
            let folded = word | (ONES * 0x20);
            let open = zero_bytes(folded ^ (ONES * u64::from(b'{')));
            let close = zero_bytes(folded ^ (ONES * u64::from(b'}')));
            backslashes |= zero_bytes(word ^ (ONES * u64::from(b'\\')));
            quote |= gather(zero_bytes(word ^ (ONES * u64::from(b'"')))) << (8 * k);
            brackets |= gather(open | close) << (8 * k);
        }
        (backslashes == 0).then_some(Masks { quote, brackets })
    }
}

/// 0x80 in each byte of `x` that is zero, 0 elsewhere (exact: no carries
/// cross bytes).
fn zero_bytes(x: u64) -> u64 {
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

/// Packs the top bit of each byte into the low 8 bits (byte k to bit k).
fn gather(x: u64) -> u64 {
    ((x >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Bit i becomes the XOR of bits 0..=i.
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

impl Default for Splitter {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `input` fed in pieces of the given sizes (cycled); returns the
    /// frames as strings with their offsets, or the first error.
    fn split_chunked(
        splitter: &mut Splitter,
        input: &[u8],
        sizes: &[usize],
    ) -> Result<Vec<(u64, String)>, Error> {
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        let mut rest = input;
        let mut sizes = sizes.iter().cycle();
        while !rest.is_empty() {
            let size = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
            buf.extend_from_slice(&rest[..size]);
            rest = &rest[size..];
            while let Some(frame) = splitter.next_frame(&mut buf)? {
                frames.push((
                    frame.offset,
                    String::from_utf8_lossy(&frame.bytes).into_owned(),
                ));
            }
        }
        splitter.finish(&mut buf)?;
        Ok(frames)
    }

    fn split(input: &[u8]) -> Result<Vec<(u64, String)>, Error> {
        split_chunked(&mut Splitter::default(), input, &[usize::MAX])
    }

    const STREAM: &[u8] =
        b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22}}, \"capabilities\": [\"oob\"]}}\r\n\
        {\"return\": {}}\r\n{\"event\": \"STOP\", \"data\": {\"s\": \"}{\\\"\\\\\"}}\
        {\"return\": [{}, [], \"]\"], \"id\": \"\\u00e9\xc3\xa9\"}\n \t{}";

    #[test]
    fn splits_objects_with_or_without_separators() {
        let frames = split(STREAM).map_err(|e| e.to_string());
        let frames = frames.unwrap_or_default();
        let texts: Vec<&str> = frames.iter().map(|(_, text)| text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22}}, \"capabilities\": [\"oob\"]}}",
                "{\"return\": {}}",
                "{\"event\": \"STOP\", \"data\": {\"s\": \"}{\\\"\\\\\"}}",
                "{\"return\": [{}, [], \"]\"], \"id\": \"\\u00e9\u{e9}\"}",
                "{}",
            ]
        );
        let offsets: Vec<u64> = frames.iter().map(|(offset, _)| *offset).collect();
        for (offset, text) in &frames {
            let start = *offset as usize;
            assert_eq!(&STREAM[start..start + text.len()], text.as_bytes());
        }
        assert_eq!(offsets[0], 0);
    }

    #[test]
    fn every_chunking_gives_the_same_frames() {
        let whole = split(STREAM).map_err(|e| e.to_string());
        assert!(whole.as_ref().is_ok_and(|frames| frames.len() == 5));
        for size in 1..STREAM.len() {
            let chunked = split_chunked(&mut Splitter::default(), STREAM, &[size]);
            assert_eq!(
                chunked.map_err(|e| e.to_string()),
                whole,
                "chunk size {size}"
            );
        }
        for cut in 0..=STREAM.len() {
            let chunked = split_chunked(
                &mut Splitter::default(),
                STREAM,
                &[cut.max(1), STREAM.len()],
            );
            assert_eq!(chunked.map_err(|e| e.to_string()), whole, "cut at {cut}");
        }
    }

    #[test]
    fn partial_input_waits_and_keeps_its_place() {
        let mut splitter = Splitter::default();
        let mut buf = BytesMut::from(&b"  {\"a\": \"x}"[..]);
        assert!(matches!(splitter.next_frame(&mut buf), Ok(None)));
        assert!(splitter.is_inside_message());
        assert_eq!(splitter.stream_offset(), 2, "leading whitespace is dropped");
        assert_eq!(&buf[..], b"{\"a\": \"x}");
        buf.extend_from_slice(b"\"}\r\n");
        let frame = splitter.next_frame(&mut buf);
        assert!(
            matches!(&frame, Ok(Some(f)) if f.offset == 2 && &f.bytes[..] == b"{\"a\": \"x}\"}")
        );
        assert!(matches!(splitter.next_frame(&mut buf), Ok(None)));
        assert!(buf.is_empty());
        assert_eq!(splitter.stream_offset(), 15);
    }

    #[test]
    fn truncated_message_at_end_of_stream() {
        let mut splitter = Splitter::default();
        let result = split_chunked(&mut splitter, b"{}\r\n{\"return\": ", &[3]);
        assert!(matches!(
            result,
            Err(Error::Truncated { offset: 4, len: 11 })
        ));
        let mut empty = BytesMut::from(&b""[..]);
        let finished = splitter.finish(&mut empty);
        assert!(matches!(finished, Ok(())), "{finished:?}");
    }

    #[test]
    fn oversize_fails_as_soon_as_the_limit_is_passed() {
        let limits = Limits {
            max_message_size: 16,
            max_depth: 8,
        };
        let mut splitter = Splitter::new(limits);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(b"{\"a\": \"0123456789");
        assert_eq!(buf.len(), 17);
        let result = splitter.next_frame(&mut buf);
        assert!(matches!(
            result,
            Err(Error::MessageTooLarge {
                limit: 16,
                offset: 0
            })
        ));
        assert!(buf.is_empty(), "the oversize input is not kept");

        // Exactly at the limit is fine.
        let mut splitter = Splitter::new(limits);
        let exact = b"{\"a\": \"0123456\"}";
        assert_eq!(exact.len(), 16);
        let mut buf = BytesMut::from(&exact[..]);
        assert!(matches!(splitter.next_frame(&mut buf), Ok(Some(_))));

        // Fed a byte at a time, the error comes with byte 17, not later.
        let mut splitter = Splitter::new(limits);
        let mut buf = BytesMut::new();
        for (index, byte) in b"{\"a\": [1, 2, 3, 4, 5, 6, 7]}".iter().enumerate() {
            buf.extend_from_slice(&[*byte]);
            match splitter.next_frame(&mut buf) {
                Ok(None) => assert!(index < 16, "no error by byte {index}"),
                Err(Error::MessageTooLarge { .. }) => {
                    assert_eq!(index, 16);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let limits = Limits {
            max_message_size: 1024,
            max_depth: 3,
        };
        let ok = split_chunked(
            &mut Splitter::new(limits),
            b"{\"a\": [{}]} {\"b\":\"[[[[\"}",
            &[1],
        );
        assert_eq!(ok.map(|frames| frames.len()).ok(), Some(2));
        let deep = split_chunked(
            &mut Splitter::new(limits),
            b"{}{\"a\": [{\"b\": []}]}",
            &[1],
        );
        assert!(matches!(
            deep,
            Err(Error::TooDeep {
                limit: 3,
                offset: 15
            })
        ));
    }

    #[test]
    fn garbage_outside_objects_is_a_typed_error() {
        assert!(matches!(
            split(b"{} x{}"),
            Err(Error::UnexpectedByte {
                byte: b'x',
                offset: 3
            })
        ));
        assert!(matches!(
            split(b"{}}"),
            Err(Error::UnbalancedClose {
                byte: b'}',
                offset: 2
            })
        ));
        assert!(matches!(
            split(b"\r\n]"),
            Err(Error::UnbalancedClose {
                byte: b']',
                offset: 2
            })
        ));
        assert!(matches!(
            split(b"[1]"),
            Err(Error::UnexpectedByte {
                byte: b'[',
                offset: 0
            })
        ));
        assert!(matches!(
            split(b"\xff{}"),
            Err(Error::UnexpectedByte {
                byte: 0xff,
                offset: 0
            })
        ));
    }

    #[test]
    fn recovers_after_an_error_with_fresh_input() {
        let mut splitter = Splitter::default();
        let mut buf = BytesMut::from(&b"x{\"a\":1}"[..]);
        let frame = splitter.next_frame(&mut buf);
        assert!(
            matches!(
                frame,
                Err(Error::UnexpectedByte {
                    byte: b'x',
                    offset: 0
                })
            ),
            "{frame:?}"
        );
        assert!(buf.is_empty());
        buf.extend_from_slice(b"{}");
        let frame = splitter.next_frame(&mut buf);
        assert!(matches!(frame, Ok(Some(f)) if f.offset == 8));
    }

    #[test]
    fn resync_discards_up_to_the_sync_byte() {
        let input = b"{\"return\": \"stale\"  garbage }}} \xff{\"return\": 1}\n";
        for size in 1..input.len() {
            let mut splitter = Splitter::default();
            splitter.resync();
            assert!(splitter.is_resyncing());
            let frames = split_chunked(&mut splitter, input, &[size]);
            let frames = frames.map_err(|e| e.to_string());
            assert_eq!(
                frames,
                Ok(vec![(33, "{\"return\": 1}".to_owned())]),
                "chunk size {size}"
            );
            assert!(!splitter.is_resyncing());
        }
        // Waiting for the sync byte keeps no memory.
        let mut splitter = Splitter::default();
        splitter.resync();
        let mut buf = BytesMut::from(&b"lots of noise"[..]);
        assert!(matches!(splitter.next_frame(&mut buf), Ok(None)));
        assert!(buf.is_empty());
        let finished = splitter.finish(&mut buf);
        assert!(matches!(finished, Ok(())), "{finished:?}");
    }

    #[test]
    fn bit_helpers_are_exact() {
        for byte in 0..=255u8 {
            for position in 0..8 {
                let word = u64::from(byte) << (8 * position)
                    | 0x4141_4141_4141_4141 & !(0xFF << (8 * position));
                let zeros = zero_bytes(word ^ (ONES * u64::from(byte)));
                let expected = 0x80u64 << (8 * position);
                let others = if byte == 0x41 {
                    0x8080_8080_8080_8080
                } else {
                    expected
                };
                assert_eq!(zeros, others, "byte {byte:#x} at {position}");
            }
        }
        for pattern in 0..=255u64 {
            let spread = (0..8).fold(0, |acc, bit| acc | ((pattern >> bit) & 1) << (8 * bit + 7));
            assert_eq!(gather(spread), pattern);
        }
        assert_eq!(prefix_xor(0b1000_0100), 0b0111_1100);
        assert_eq!(prefix_xor(1 << 63), 1 << 63);
    }

    /// A byte-at-a-time reference: the length of the first object.
    fn reference_len(input: &[u8]) -> Option<usize> {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for (index, &byte) in input.iter().enumerate() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if byte == b'\\' {
                    escaped = true;
                } else if byte == b'"' {
                    in_string = false;
                }
            } else if byte == b'"' {
                in_string = true;
            } else if byte == b'{' || byte == b'[' {
                depth += 1;
            } else if (byte == b'}' || byte == b']') && depth > 0 {
                depth -= 1;
                if depth == 0 {
                    return Some(index + 1);
                }
            }
        }
        None
    }

    #[test]
    fn long_messages_match_the_byte_reference_at_every_chunking() {
        // Quotes, escapes and brackets land on and across block edges.
        let mut message = b"{".to_vec();
        for n in 0..40 {
            let pad = "x".repeat(n % 13);
            let escapes = "\\\\".repeat(n % 3);
            message.extend_from_slice(
                format!("\"k{n}{pad}\": [\"{escapes}\\\"}}]{pad}\", {{\"a\": [{n}]}}], ")
                    .as_bytes(),
            );
        }
        message.extend_from_slice(b"\"end\": \"}\"}");
        let expected = reference_len(&message);
        assert_eq!(expected, Some(message.len()));
        let parsed = serde_json::from_slice::<serde_json::Value>(&message);
        assert!(
            matches!(parsed, Ok(serde_json::Value::Object(_))),
            "{parsed:?}"
        );
        let mut stream = message.clone();
        stream.extend_from_slice(b"\r\n{}");
        for size in [1, 7, 63, 64, 65, 100, 1000, stream.len()] {
            let frames = split_chunked(&mut Splitter::default(), &stream, &[size]);
            let lens: Vec<usize> = frames
                .unwrap_or_default()
                .iter()
                .map(|(_, f)| f.len())
                .collect();
            assert_eq!(lens, [message.len(), 2], "chunk size {size}");
        }
        // Depth errors are found inside blocks too, at the same offset.
        let limits = Limits {
            max_message_size: 1 << 20,
            max_depth: 2,
        };
        let mut deep = vec![b' '; 100];
        deep.extend_from_slice(b"{\"a\": \"[[[\", \"b\": [1, [2]]}");
        for size in [1, 64, deep.len()] {
            let result = split_chunked(&mut Splitter::new(limits), &deep, &[size]);
            assert!(
                matches!(
                    result,
                    Err(Error::TooDeep {
                        limit: 2,
                        offset: 122
                    })
                ),
                "{result:?}"
            );
        }
    }

    #[test]
    fn resync_drops_a_partial_message() {
        let mut splitter = Splitter::default();
        let mut buf = BytesMut::from(&b"{\"return\": \"half"[..]);
        assert!(matches!(splitter.next_frame(&mut buf), Ok(None)));
        splitter.resync();
        buf.extend_from_slice(b" of it\"}\xff{}");
        let frame = splitter.next_frame(&mut buf);
        assert!(matches!(frame, Ok(Some(f)) if &f.bytes[..] == b"{}"));
    }
}
