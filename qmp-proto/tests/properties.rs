//! Property tests: any chunking of a valid stream decodes identically,
//! messages survive encode → decode, and arbitrary bytes never panic.

use bytes::BytesMut;
use proptest::prelude::*;
use qmp_proto::{
    Capability, ClientCodec, ClientMessage, Error, ErrorClass, ErrorReply, Event, Greeting,
    JsonObject, Limits, Request, ServerCodec, ServerMessage, Success, Timestamp, Version,
    VersionInfo,
};
use serde_json::Value;
use tokio_util::codec::{Decoder, Encoder};

/// JSON without floats (serde_json does not round-trip every float bit
/// for bit without its `float_roundtrip` feature).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Quotes, backslashes, braces and non-ASCII exercise the splitter.
        "[a-z\"\\\\{}\\[\\] \u{e9}\u{1F600}\n\r\t]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            json_object(inner).prop_map(Value::Object),
        ]
    })
}

fn json_object(value: impl Strategy<Value = Value>) -> impl Strategy<Value = JsonObject> {
    prop::collection::btree_map("[a-z\"{}-]{0,6}", value, 0..6)
        .prop_map(|map| map.into_iter().collect())
}

fn id() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(json_value())
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    let greeting = (
        any::<(u16, u16, u16)>(),
        "[ -~]{0,20}",
        prop::collection::vec(prop_oneof![Just("oob".to_owned()), "x-[a-z]{1,8}"], 0..3),
    )
        .prop_map(|((major, minor, micro), package, capabilities)| {
            let qemu = Version {
                major: major.into(),
                minor: minor.into(),
                micro: micro.into(),
            };
            let capabilities = capabilities
                .into_iter()
                .map(|name| match name.as_str() {
                    "oob" => Capability::Oob,
                    _ => Capability::Other(name),
                })
                .collect();
            ServerMessage::Greeting(Greeting::new(VersionInfo::new(qemu, package), capabilities))
        });
    let success =
        (json_value(), id()).prop_map(|(ret, id)| ServerMessage::Success(Success::new(ret, id)));
    let error = (
        prop_oneof![
            Just("GenericError".to_owned()),
            Just("CommandNotFound".to_owned()),
            Just("KVMMissingCap".to_owned()),
            "X[a-zA-Z]{0,10}",
        ],
        "[ -~\u{e9}]{0,30}",
        id(),
    )
        .prop_map(|(class, desc, id)| {
            ServerMessage::Error(ErrorReply::new(ErrorClass::from_name(class), desc, id))
        });
    let event = (
        "[A-Z_]{1,20}",
        json_object(json_value()),
        any::<(u32, u32)>(),
    )
        .prop_map(|(name, data, (seconds, microseconds))| {
            let timestamp = Timestamp {
                seconds: seconds.into(),
                microseconds: microseconds.into(),
            };
            ServerMessage::Event(Event::new(name, data, timestamp))
        });
    prop_oneof![greeting, success, error, event]
}

fn request() -> impl Strategy<Value = Request> {
    (
        "[a-z_-]{1,24}",
        prop::option::of(json_object(json_value())),
        id(),
        any::<bool>(),
    )
        .prop_map(|(command, arguments, id, oob)| {
            let mut request = Request::new(command);
            if let Some(arguments) = arguments {
                request = request.with_arguments(arguments);
            }
            if let Some(id) = id {
                request = request.with_id(id);
            }
            if oob { request.oob() } else { request }
        })
}

/// Feeds `input` cut at `cuts` (sorted, deduplicated by the caller or not)
/// and returns everything decoded, or the first error's text.
fn decode_cut<D>(mut codec: D, input: &[u8], cuts: &[usize]) -> Result<Vec<D::Item>, String>
where
    D: Decoder<Error = Error>,
{
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.push(input.len());
    cuts.sort_unstable();
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut start = 0;
    for cut in cuts {
        buf.extend_from_slice(&input[start..cut]);
        start = cut;
        while let Some(item) = codec.decode(&mut buf).map_err(|e| e.to_string())? {
            items.push(item);
        }
    }
    while let Some(item) = codec.decode_eof(&mut buf).map_err(|e| e.to_string())? {
        items.push(item);
    }
    Ok(items)
}

const SEPARATORS: [&[u8]; 4] = [b"", b"\r\n", b"\n", b" \t\r\n "];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn server_stream_round_trips_under_any_chunking(
        messages in prop::collection::vec(server_message(), 1..8),
        separators in prop::collection::vec(0..SEPARATORS.len(), 8),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut server = ServerCodec::new();
        let mut wire = BytesMut::new();
        for (message, separator) in messages.iter().zip(separators.iter().cycle()) {
            server.encode(message, &mut wire).map_err(|e| TestCaseError::fail(e.to_string()))?;
            // The encoder ends with CRLF; swap it for other separators too.
            wire.truncate(wire.len() - 2);
            wire.extend_from_slice(SEPARATORS[*separator]);
        }
        let whole = decode_cut(ClientCodec::new(), &wire, &[]);
        prop_assert_eq!(whole.as_ref(), Ok(&messages));
        let chunked = decode_cut(ClientCodec::new(), &wire, &cuts);
        prop_assert_eq!(chunked, whole);
    }

    #[test]
    fn requests_round_trip_under_any_chunking(
        requests in prop::collection::vec(request(), 1..8),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut client = ClientCodec::new();
        let mut wire = BytesMut::new();
        for request in &requests {
            client.encode(request, &mut wire).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        prop_assert!(wire.ends_with(b"\r\n"));
        let expected: Vec<ClientMessage> =
            requests.iter().cloned().map(ClientMessage::Request).collect();
        prop_assert_eq!(decode_cut(ServerCodec::new(), &wire, &cuts), Ok(expected));
    }

    #[test]
    fn decoding_classifies_like_from_value(
        members in prop::collection::vec(
            (
                prop_oneof![
                    Just("return"), Just("event"), Just("data"), Just("timestamp"),
                    Just("id"), Just("error"), Just("QMP"), Just("other"),
                ],
                prop_oneof![
                    json_value(),
                    Just(serde_json::json!({"seconds": 1, "microseconds": 2})),
                    Just(serde_json::json!({"class": "GenericError", "desc": "d"})),
                    Just(serde_json::json!("STOP")),
                ],
            ),
            0..5,
        ),
    ) {
        let object: JsonObject = members
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect();
        let value = Value::Object(object);
        let mut wire = BytesMut::from(value.to_string().as_bytes());
        let decoded = ClientCodec::new().decode(&mut wire).map_err(|e| e.to_string());
        prop_assert_eq!(decoded, Ok(Some(ServerMessage::from_value(value))));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        small in any::<bool>(),
        resync in any::<bool>(),
    ) {
        let limits = if small {
            Limits { max_message_size: 32, max_depth: 3 }
        } else {
            Limits::default()
        };
        let mut client = ClientCodec::with_limits(limits);
        if resync {
            client.resync();
        }
        feed(client, &bytes, &cuts);
        feed(ServerCodec::with_limits(limits), &bytes, &cuts);
    }

    #[test]
    fn json_like_bytes_never_panic(
        bytes in prop::collection::vec(
            prop::sample::select(b"{}[]\"\\:, \r\nabc1\xff\xc3".to_vec()), 0..256),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let limits = Limits { max_message_size: 64, max_depth: 4 };
        feed(ClientCodec::with_limits(limits), &bytes, &cuts);
        feed(ServerCodec::with_limits(limits), &bytes, &cuts);
    }
}

/// Feeds bytes through a decoder, carrying on after errors as a direct
/// caller may; only panics matter here. Memory stays bounded: the buffer
/// never holds more than one chunk beyond the limit.
fn feed<D: Decoder<Error = Error>>(mut codec: D, bytes: &[u8], cuts: &[usize]) {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.push(bytes.len());
    cuts.sort_unstable();
    let mut buf = BytesMut::new();
    let mut start = 0;
    for cut in cuts {
        buf.extend_from_slice(&bytes[start..cut]);
        start = cut;
        while let Ok(Some(_)) = codec.decode(&mut buf) {}
    }
    while let Ok(Some(_)) = codec.decode_eof(&mut buf) {}
}
