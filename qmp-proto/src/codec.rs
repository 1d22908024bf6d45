//! `tokio_util::codec` encoders and decoders for both ends of a QMP stream.
//!
//! Decoding splits the stream with a [`Splitter`], parses each object with
//! serde_json and classifies it. A well-formed object of no known shape is an
//! item ([`ServerMessage::Unknown`], [`ClientMessage::Unknown`]), never an
//! error, because `Framed` ends the stream after any error. Encoding writes
//! each message as one buffer ending in CRLF.

use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio_util::codec::{Decoder, Encoder};

use crate::envelope;
use crate::framing::{Limits, Splitter};
use crate::{ClientMessage, Error, Request, ServerMessage, Success};

/// The client side: decodes what QEMU sends, encodes requests.
///
/// Also serves guest-agent connections: [`ClientCodec::resync`] discards
/// input up to the 0xFF byte that `guest-sync-delimited` puts before its
/// reply.
#[derive(Debug, Clone, Default)]
pub struct ClientCodec {
    splitter: Splitter,
}

impl ClientCodec {
    /// A codec with the default [`Limits`] (10 MiB messages).
    pub fn new() -> Self {
        Self::default()
    }

    /// A codec enforcing `limits` on what it decodes.
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            splitter: Splitter::new(limits),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.splitter.limits()
    }

    /// Enters guest-agent resync mode: input is discarded up to and
    /// including the next 0xFF byte, dropping any partial message.
    pub fn resync(&mut self) {
        self.splitter.resync();
    }

    /// Whether the codec is discarding input until a 0xFF byte.
    pub fn is_resyncing(&self) -> bool {
        self.splitter.is_resyncing()
    }
}

impl Decoder for ClientCodec {
    type Item = ServerMessage;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<ServerMessage>, Error> {
        next_message(&mut self.splitter, src, envelope::server_message)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<ServerMessage>, Error> {
        match self.decode(src)? {
            Some(message) => Ok(Some(message)),
            None => self.splitter.finish(src).map(|()| None),
        }
    }
}

impl ClientCodec {
    /// Like [`Decoder::decode`], but a success reply of the usual shape
    /// (`{"return": ..., "id": ...}`, nothing else) whose id `keep` accepts
    /// keeps its `return` value as JSON text: no `Value` is built, which is
    /// most of the cost of a large reply (`query-qmp-schema`). Every other
    /// message, and a reply `keep` refuses, decodes as `decode` would
    /// decode it (a refused reply's value is then read twice).
    ///
    /// `keep` gets the reply's `id` member (`None` when it has none).
    ///
    /// # Errors
    ///
    /// As [`Decoder::decode`].
    pub fn decode_keeping_return_text(
        &mut self,
        src: &mut BytesMut,
        keep: impl FnOnce(Option<&Value>) -> bool,
    ) -> Result<Option<Decoded>, Error> {
        next_message(&mut self.splitter, src, |text| {
            match serde_json::from_str::<SuccessText<'_>>(text) {
                Ok(reply) if keep(reply.id.as_ref()) => Ok(Decoded::ReturnText {
                    ret: reply.ret.to_owned(),
                    id: reply.id,
                }),
                Ok(reply) => serde_json::from_str(reply.ret.get()).map(|ret| {
                    Decoded::Message(ServerMessage::Success(Success::new(ret, reply.id)))
                }),
                // Any other shape (an event, an error, an extra or repeated
                // member) is read the usual way.
                Err(_) => envelope::server_message(text).map(Decoded::Message),
            }
        })
    }
}

/// What [`ClientCodec::decode_keeping_return_text`] decodes.
#[derive(Debug, Clone)]
pub enum Decoded {
    /// A success reply whose `return` value is kept as JSON text.
    ReturnText {
        /// The `return` value, exactly as QEMU wrote it.
        ret: Box<RawValue>,
        /// The request's id, when the reply has one.
        id: Option<Value>,
    },
    /// Any other message, decoded as [`Decoder::decode`] decodes it.
    Message(ServerMessage),
}

/// A success reply of the usual shape, its `return` value borrowed as text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuccessText<'a> {
    #[serde(rename = "return", borrow)]
    ret: &'a RawValue,
    /// `"id": null` is an id, as in [`ServerMessage`]: kept, not `None`.
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
}

fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl Encoder<Request> for ClientCodec {
    type Error = Error;

    fn encode(&mut self, item: Request, dst: &mut BytesMut) -> Result<(), Error> {
        encode_json(&item, dst)
    }
}

impl Encoder<&Request> for ClientCodec {
    type Error = Error;

    fn encode(&mut self, item: &Request, dst: &mut BytesMut) -> Result<(), Error> {
        encode_json(item, dst)
    }
}

impl Encoder<ClientMessage> for ClientCodec {
    type Error = Error;

    fn encode(&mut self, item: ClientMessage, dst: &mut BytesMut) -> Result<(), Error> {
        encode_json(&item, dst)
    }
}

impl Encoder<&ClientMessage> for ClientCodec {
    type Error = Error;

    fn encode(&mut self, item: &ClientMessage, dst: &mut BytesMut) -> Result<(), Error> {
        encode_json(item, dst)
    }
}

/// The server side: decodes what a client sends, encodes greetings,
/// replies and events. Mock servers and proxies build on it.
#[derive(Debug, Clone, Default)]
pub struct ServerCodec {
    splitter: Splitter,
}

impl ServerCodec {
    /// A codec with the default [`Limits`] (10 MiB messages).
    pub fn new() -> Self {
        Self::default()
    }

    /// A codec enforcing `limits` on what it decodes.
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            splitter: Splitter::new(limits),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.splitter.limits()
    }
}

impl Decoder for ServerCodec {
    type Item = ClientMessage;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<ClientMessage>, Error> {
        next_message(&mut self.splitter, src, |text| {
            serde_json::from_str(text).map(ClientMessage::from_value)
        })
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<ClientMessage>, Error> {
        match self.decode(src)? {
            Some(message) => Ok(Some(message)),
            None => self.splitter.finish(src).map(|()| None),
        }
    }
}

impl Encoder<ServerMessage> for ServerCodec {
    type Error = Error;

    fn encode(&mut self, item: ServerMessage, dst: &mut BytesMut) -> Result<(), Error> {
        encode_json(&item, dst)
    }
}

impl Encoder<&ServerMessage> for ServerCodec {
    type Error = Error;

    fn encode(&mut self, item: &ServerMessage, dst: &mut BytesMut) -> Result<(), Error> {
        encode_json(item, dst)
    }
}

/// Cuts the next object from `src` and parses it in place with `parse`; a
/// message that is not valid UTF-8 or JSON is consumed along with its error.
///
/// The whole message is checked for UTF-8 once, up front, and then parsed
/// as text: serde_json then skips its own check of every string, which
/// made up about a fifth of parsing the 236 KB `query-qmp-schema` reply
/// into a `Value` (1.6 -> 1.3 ms here); a scan of the whole message is
/// a few percent of that.
fn next_message<T>(
    splitter: &mut Splitter,
    src: &mut BytesMut,
    parse: impl FnOnce(&str) -> Result<T, serde_json::Error>,
) -> Result<Option<T>, Error> {
    let Some(len) = splitter.poll_frame(src)? else {
        return Ok(None);
    };
    let offset = splitter.stream_offset();
    let bytes = &src[..len];
    let parsed = match std::str::from_utf8(bytes) {
        Ok(text) => parse(text).map_err(|source| json_error(text, offset, source)),
        Err(utf8) => Err(Error::InvalidUtf8 {
            offset: offset + utf8.valid_up_to() as u64,
        }),
    };
    splitter.consume(src, len);
    parsed.map(Some)
}

/// Locates a parse error of the message at stream `offset`.
fn json_error(text: &str, offset: u64, source: serde_json::Error) -> Error {
    let within = position_of(text.as_bytes(), source.line(), source.column());
    Error::Json {
        offset: offset + within as u64,
        source,
    }
}

/// The byte index of serde_json's 1-based line and column.
fn position_of(bytes: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        memchr::memchr_iter(b'\n', bytes)
            .nth(line - 2)
            .map_or(bytes.len(), |newline| newline + 1)
    };
    (line_start + column.saturating_sub(1)).min(bytes.len())
}

/// Writes `item` as JSON plus CRLF, leaving `dst` untouched on failure.
fn encode_json<T: Serialize + ?Sized>(item: &T, dst: &mut BytesMut) -> Result<(), Error> {
    let start = dst.len();
    let mut writer = dst.writer();
    if let Err(error) = serde_json::to_writer(&mut writer, item) {
        writer.into_inner().truncate(start);
        return Err(Error::Encode(error));
    }
    dst.extend_from_slice(b"\r\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorClass, ErrorReply, Event, Greeting, Success, Timestamp};
    use serde_json::json;

    const GREETING: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"Debian 1:7.2+dfsg-7+deb12u18\"}, \"capabilities\": [\"oob\"]}}\r\n";
    const STREAM: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"Debian 1:7.2+dfsg-7+deb12u18\"}, \"capabilities\": [\"oob\"]}}\r\n\
        {\"return\": {}, \"id\": 1}\r\n\
        {\"timestamp\": {\"seconds\": 1764037600, \"microseconds\": 123456}, \"event\": \"STOP\"}\r\n\
        {\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nope has not been found\"}, \"id\": \"x\"}\r\n\
        {\"surprise\": true}\r\n";

    fn decode_all(codec: &mut ClientCodec, input: &[u8], chunk: usize) -> Vec<ServerMessage> {
        let mut buf = BytesMut::new();
        let mut messages = Vec::new();
        for piece in input.chunks(chunk) {
            buf.extend_from_slice(piece);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(message)) => messages.push(message),
                    Ok(None) => break,
                    Err(error) => panic!("decode failed at chunk size {chunk}: {error}"),
                }
            }
        }
        match codec.decode_eof(&mut buf) {
            Ok(None) => {}
            other => panic!("leftover at end of stream: {other:?}"),
        }
        messages
    }

    #[test]
    fn decodes_every_kind_of_server_message() {
        let messages = decode_all(&mut ClientCodec::new(), STREAM, STREAM.len());
        assert_eq!(messages.len(), 5);
        assert!(matches!(&messages[0], ServerMessage::Greeting(g) if g.offers_oob()));
        assert_eq!(
            messages[1],
            ServerMessage::Success(Success::new(json!({}), Some(json!(1))))
        );
        assert!(
            matches!(&messages[2], ServerMessage::Event(e) if e.name == "STOP"
            && e.timestamp == Timestamp { seconds: 1764037600, microseconds: 123456 })
        );
        assert_eq!(
            messages[3],
            ServerMessage::Error(ErrorReply::new(
                ErrorClass::CommandNotFound,
                "The command nope has not been found",
                Some(json!("x"))
            ))
        );
        assert_eq!(
            messages[4],
            ServerMessage::Unknown(json!({"surprise": true}))
        );
    }

    #[test]
    fn split_at_every_byte_boundary_decodes_identically() {
        let whole = decode_all(&mut ClientCodec::new(), STREAM, STREAM.len());
        for chunk in 1..STREAM.len() {
            assert_eq!(decode_all(&mut ClientCodec::new(), STREAM, chunk), whole);
        }
        for cut in 1..STREAM.len() {
            let mut codec = ClientCodec::new();
            let mut buf = BytesMut::from(&STREAM[..cut]);
            let mut messages = Vec::new();
            while let Ok(Some(message)) = codec.decode(&mut buf) {
                messages.push(message);
            }
            buf.extend_from_slice(&STREAM[cut..]);
            while let Ok(Some(message)) = codec.decode_eof(&mut buf) {
                messages.push(message);
            }
            assert_eq!(messages, whole, "cut at {cut}");
        }
    }

    #[test]
    fn partial_message_at_eof_is_a_typed_error() {
        let mut codec = ClientCodec::new();
        let mut buf = BytesMut::from(&GREETING[..40]);
        assert!(matches!(codec.decode(&mut buf), Ok(None)));
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(Error::Truncated { offset: 0, len: 40 })
        ));
        // Whitespace alone at the end is fine.
        let mut buf = BytesMut::from(&b"{}\r\n\r\n"[..]);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Ok(Some(ServerMessage::Unknown(_)))
        ));
        assert!(matches!(codec.decode_eof(&mut buf), Ok(None)));
    }

    #[test]
    fn syntax_errors_and_bad_utf8_carry_offsets() {
        let mut codec = ClientCodec::new();
        let mut buf = BytesMut::from(&b"{}\r\n{\"return\": tru}"[..]);
        assert!(matches!(codec.decode(&mut buf), Ok(Some(_))));
        let error = codec.decode(&mut buf);
        assert!(
            matches!(error, Err(Error::Json { offset: 18, .. })),
            "{error:?}"
        );

        let mut buf = BytesMut::from(&b"{\"return\": \"\xc3\x28\"}"[..]);
        let error = ClientCodec::new().decode(&mut buf);
        assert!(
            matches!(error, Err(Error::InvalidUtf8 { offset: 12 })),
            "{error:?}"
        );
        let mut buf = BytesMut::from(&b"{\"return\":\n \xff}"[..]);
        let error = ClientCodec::new().decode(&mut buf);
        assert!(
            matches!(error, Err(Error::InvalidUtf8 { offset: 12 })),
            "{error:?}"
        );

        // A syntax error consumed its frame; the codec goes on.
        let mut codec = ClientCodec::new();
        let mut buf = BytesMut::from(&b"{}{\"a\":\n\n  x}{\"return\": 5}"[..]);
        assert!(matches!(codec.decode(&mut buf), Ok(Some(_))));
        let error = codec.decode(&mut buf);
        assert_eq!(
            error.as_ref().err().and_then(Error::offset),
            Some(11),
            "{error:?}"
        );
        assert!(matches!(
            codec.decode(&mut buf),
            Ok(Some(ServerMessage::Success(_)))
        ));

        // So did bad UTF-8 (found before any parsing), on both sides, even
        // with a syntax error earlier in the same message.
        let mut buf = BytesMut::from(&b"{\"return\": x \"\xff\"}{\"return\": 6}"[..]);
        let error = codec.decode(&mut buf);
        assert!(
            matches!(error, Err(Error::InvalidUtf8 { offset: 40 })),
            "{error:?}"
        );
        let next = codec.decode(&mut buf);
        assert!(
            matches!(&next, Ok(Some(ServerMessage::Success(s))) if s.ret == json!(6)),
            "{next:?}"
        );
        let mut server = ServerCodec::new();
        let mut buf = BytesMut::from(&b"{\"execute\": \"\xc3\"}{\"execute\": \"stop\"}"[..]);
        let error = server.decode(&mut buf);
        assert!(
            matches!(error, Err(Error::InvalidUtf8 { offset: 13 })),
            "{error:?}"
        );
        let next = server.decode(&mut buf);
        assert!(
            matches!(&next, Ok(Some(ClientMessage::Request(r))) if r.command == "stop"),
            "{next:?}"
        );
    }

    #[test]
    fn return_text_is_kept_only_for_the_replies_asked() {
        let wire = b"{\"return\": {\"a\": [1, \"x\"]}, \"id\": 7}\r\n{\"return\": 1}\
            {\"return\": 2, \"id\": null}{\"id\": 8, \"return\": []}";
        let mut codec = ClientCodec::new();
        let mut buf = BytesMut::from(&wire[..]);
        let mut asked = Vec::new();
        let mut decoded = Vec::new();
        while let Ok(Some(item)) = codec.decode_keeping_return_text(&mut buf, |id| {
            asked.push(id.cloned());
            id != Some(&json!(8))
        }) {
            decoded.push(item);
        }
        assert_eq!(
            asked,
            [Some(json!(7)), None, Some(Value::Null), Some(json!(8))]
        );
        assert!(
            matches!(&decoded[..], [
                Decoded::ReturnText { ret: first, id: Some(seven) },
                Decoded::ReturnText { ret: second, id: None },
                Decoded::ReturnText { ret: third, id: Some(Value::Null) },
                Decoded::Message(ServerMessage::Success(refused)),
            ] if first.get() == "{\"a\": [1, \"x\"]}" && *seven == json!(7)
                && second.get() == "1" && third.get() == "2"
                && *refused == Success::new(json!([]), Some(json!(8)))),
            "{decoded:?}"
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn any_other_message_decodes_as_decode_does() {
        let unusual = b"{\"return\": 1, \"return\": 2, \"id\": 3}{\"return\": {}, \"extra\": 1}\
            {\"event\": \"X\", \"return\": 5}";
        for wire in [STREAM, &unusual[..]] {
            let expected = decode_all(&mut ClientCodec::new(), wire, wire.len());
            let mut codec = ClientCodec::new();
            let mut buf = BytesMut::from(wire);
            let mut decoded = Vec::new();
            loop {
                match codec.decode_keeping_return_text(&mut buf, |_| true) {
                    Ok(Some(Decoded::Message(message))) => decoded.push(message),
                    Ok(Some(Decoded::ReturnText { ret, id })) => {
                        let ret = serde_json::from_str(ret.get()).unwrap_or(Value::Null);
                        decoded.push(ServerMessage::Success(Success::new(ret, id)));
                    }
                    Ok(None) => break,
                    Err(error) => panic!("{error}"),
                }
            }
            assert_eq!(decoded, expected);
        }
        // Broken JSON is the same error either way, and is consumed.
        let mut codec = ClientCodec::new();
        let mut buf = BytesMut::from(&b"{\"return\": [1, tru]}{\"return\": 3}"[..]);
        let error = codec.decode_keeping_return_text(&mut buf, |_| true);
        assert!(matches!(error, Err(Error::Json { .. })), "{error:?}");
        let next = codec.decode_keeping_return_text(&mut buf, |_| true);
        assert!(
            matches!(&next, Ok(Some(Decoded::ReturnText { ret, id: None })) if ret.get() == "3"),
            "{next:?}"
        );
    }

    #[test]
    fn oversize_through_the_codec() {
        let mut codec = ClientCodec::with_limits(Limits {
            max_message_size: 64,
            max_depth: 4,
        });
        assert_eq!(codec.limits().max_message_size, 64);
        let mut buf = BytesMut::from(GREETING);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(Error::MessageTooLarge {
                limit: 64,
                offset: 0
            })
        ));
    }

    #[test]
    fn guest_agent_resync() {
        let mut codec = ClientCodec::new();
        codec.resync();
        assert!(codec.is_resyncing());
        let input = b"{\"return\": 4711}\n\xff{\"return\": 1234}\n";
        let messages = decode_all(&mut codec, input, 3);
        assert_eq!(
            messages,
            [ServerMessage::Success(Success::new(json!(1234), None))]
        );
    }

    #[test]
    fn requests_are_one_buffer_ending_in_crlf() {
        let mut codec = ClientCodec::new();
        let mut dst = BytesMut::from(&b"previous"[..]);
        let request = Request::new("query-status").with_id(7);
        let encoded = codec.encode(&request, &mut dst);
        assert!(matches!(encoded, Ok(())), "{encoded:?}");
        let encoded = codec.encode(Request::new("stop"), &mut dst);
        assert!(matches!(encoded, Ok(())), "{encoded:?}");
        assert_eq!(
            &dst[..],
            b"previous{\"execute\":\"query-status\",\"id\":7}\r\n{\"execute\":\"stop\"}\r\n"
        );
        let unknown = ClientMessage::Unknown(json!({"hello": 1}));
        let mut dst = BytesMut::new();
        let encoded = codec.encode(&unknown, &mut dst);
        assert!(matches!(encoded, Ok(())), "{encoded:?}");
        assert_eq!(&dst[..], b"{\"hello\":1}\r\n");
    }

    #[test]
    fn server_and_client_codecs_talk_to_each_other() {
        let mut server = ServerCodec::new();
        let mut client = ClientCodec::new();
        let mut wire = BytesMut::new();
        let sent = [
            ServerMessage::Greeting(Greeting::new(Default::default(), vec![])),
            ServerMessage::Event(Event::new(
                "RESUME",
                Default::default(),
                Timestamp::default(),
            )),
            ServerMessage::Success(Success::new(json!({"status": "running"}), Some(json!(2)))),
        ];
        for message in &sent {
            let encoded = server.encode(message, &mut wire);
            assert!(matches!(encoded, Ok(())), "{encoded:?}");
        }
        let encoded = server.encode(sent[0].clone(), &mut wire);
        assert!(matches!(encoded, Ok(())), "{encoded:?}");
        let received = decode_all(&mut client, &wire, 5);
        assert_eq!(received[..3], sent);

        let mut wire = BytesMut::new();
        let request = Request::new("cont").with_id("c").oob();
        let encoded = client.encode(&request, &mut wire);
        assert!(matches!(encoded, Ok(())), "{encoded:?}");
        wire.extend_from_slice(b"{\"execute\": 5}");
        assert_eq!(
            server.decode(&mut wire).ok().flatten(),
            Some(ClientMessage::Request(request))
        );
        assert_eq!(
            server.decode_eof(&mut wire).ok().flatten(),
            Some(ClientMessage::Unknown(json!({"execute": 5})))
        );
        let mut cut = BytesMut::from(&b"{\"execute\""[..]);
        assert!(matches!(
            server.decode_eof(&mut cut),
            Err(Error::Truncated { len: 10, .. })
        ));
    }
}
