//! The one error type of this crate.
//!
//! Framing errors carry the byte offset in the stream (counted from the first
//! byte the decoder ever saw) where the problem was found. After any framing
//! error the stream is out of sync: close the connection, or, for the guest
//! agent, resynchronise with [`ClientCodec::resync`](crate::ClientCodec::resync).

/// Everything that can go wrong while framing, decoding or encoding QMP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A byte other than whitespace or `{` where a message should start.
    #[error(
        "unexpected byte 0x{byte:02x} at stream offset {offset} outside a JSON object; \
         the peer is not speaking QMP or the stream lost sync"
    )]
    UnexpectedByte {
        /// The offending byte.
        byte: u8,
        /// Its offset in the stream.
        offset: u64,
    },

    /// A `}` or `]` with no open object or array.
    #[error(
        "unbalanced '{}' at stream offset {offset} closes nothing; \
         the stream lost sync",
        char::from(*byte)
    )]
    UnbalancedClose {
        /// The closing byte (`}` or `]`).
        byte: u8,
        /// Its offset in the stream.
        offset: u64,
    },

    /// A message that is not valid UTF-8.
    #[error("invalid UTF-8 at stream offset {offset}; QMP messages must be UTF-8 JSON")]
    InvalidUtf8 {
        /// The offset of the first invalid byte.
        offset: u64,
    },

    /// A message longer than the configured limit.
    #[error(
        "the message starting at stream offset {offset} exceeds the limit of {limit} bytes; \
         raise `Limits::max_message_size` if the peer is trusted"
    )]
    MessageTooLarge {
        /// The limit, in bytes.
        limit: usize,
        /// Where the message started.
        offset: u64,
    },

    /// A message nested deeper than the configured limit.
    #[error(
        "nesting deeper than {limit} levels at stream offset {offset}; \
         raise `Limits::max_depth` if the peer is trusted"
    )]
    TooDeep {
        /// The limit, in levels of objects and arrays.
        limit: usize,
        /// The offset of the bracket that went too deep.
        offset: u64,
    },

    /// A balanced message that is not valid JSON.
    #[error("JSON syntax error at stream offset {offset}")]
    Json {
        /// The offset of the error (as close as serde_json locates it).
        offset: u64,
        /// What serde_json found.
        #[source]
        source: serde_json::Error,
    },

    /// The stream ended in the middle of a message.
    #[error(
        "the stream ended inside the message starting at stream offset {offset} \
         ({len} bytes of it arrived); the peer closed or crashed mid-message"
    )]
    Truncated {
        /// Where the unfinished message started.
        offset: u64,
        /// How many of its bytes arrived.
        len: usize,
    },

    /// A message could not be serialised to JSON.
    #[error("could not serialise the message to JSON")]
    Encode(#[source] serde_json::Error),

    /// A typed command whose arguments do not serialise to a JSON object.
    #[error("the arguments of `{command}` do not serialise to a JSON object; QMP needs one")]
    ArgumentsNotAnObject {
        /// The command's wire name.
        command: &'static str,
    },

    /// The transport failed (reported through `tokio_util::codec::Framed`).
    #[error("I/O error on the QMP transport")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The stream offset of a framing or decoding error, if it has one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Error::UnexpectedByte { offset, .. }
            | Error::UnbalancedClose { offset, .. }
            | Error::InvalidUtf8 { offset }
            | Error::MessageTooLarge { offset, .. }
            | Error::TooDeep { offset, .. }
            | Error::Json { offset, .. }
            | Error::Truncated { offset, .. } => Some(*offset),
            Error::Encode(_) | Error::ArgumentsNotAnObject { .. } | Error::Io(_) => None,
        }
    }
}
