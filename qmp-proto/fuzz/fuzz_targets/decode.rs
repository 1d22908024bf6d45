//! Fuzzes both decoders with arbitrary bytes in arbitrary chunks.
//!
//! Checks, beyond "never panics":
//! - chunking does not matter: everything up to and including the first
//!   error is the same whether the input comes whole or in pieces;
//! - memory stays bounded: while waiting for more input the buffer never
//!   holds more than the message size limit;
//! - whatever decodes re-encodes, and decodes again as the same kind.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use qmp_proto::{ClientCodec, Error, Limits, ServerCodec, ServerMessage};
use tokio_util::codec::{Decoder, Encoder};

fuzz_target!(|data: &[u8]| {
    let Some((&config, input)) = data.split_first() else {
        return;
    };
    let limits = if config & 1 == 0 {
        Limits::default()
    } else {
        Limits {
            max_message_size: 256,
            max_depth: 8,
        }
    };
    let resync = config & 2 != 0;
    let chunk = usize::from(config >> 2).max(1);

    let client = || {
        let mut codec = ClientCodec::with_limits(limits);
        if resync {
            codec.resync();
        }
        codec
    };
    let whole = run(client(), input, input.len().max(1), limits);
    let pieces = run(client(), input, chunk, limits);
    assert_eq!(
        whole, pieces,
        "chunk size {chunk} changed the client decoding"
    );

    let whole = run(
        ServerCodec::with_limits(limits),
        input,
        input.len().max(1),
        limits,
    );
    let pieces = run(ServerCodec::with_limits(limits), input, chunk, limits);
    assert_eq!(
        whole, pieces,
        "chunk size {chunk} changed the server decoding"
    );

    // Re-encode what the client side decoded.
    let mut codec = ClientCodec::new();
    let mut buf = BytesMut::from(input);
    while let Ok(Some(message)) = codec.decode(&mut buf) {
        let mut wire = BytesMut::new();
        if ServerCodec::new().encode(&message, &mut wire).is_err() {
            panic!("a decoded message does not encode: {message:?}");
        }
        match ClientCodec::new().decode(&mut wire) {
            Ok(Some(again)) => assert_eq!(kind(&again), kind(&message), "{message:?}"),
            other => panic!("re-encoded {message:?} decodes as {other:?}"),
        }
    }
});

/// Decodes `input` in pieces of `chunk` bytes; returns what came out up to
/// and including the first error, as text.
fn run<D>(mut codec: D, input: &[u8], chunk: usize, limits: Limits) -> Vec<String>
where
    D: Decoder<Error = Error>,
    D::Item: std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(item)) => out.push(format!("{item:?}")),
                Ok(None) => {
                    assert!(buf.len() <= limits.max_message_size, "unbounded buffer");
                    break;
                }
                Err(error) => {
                    out.push(format!("error: {error}"));
                    return out;
                }
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(item)) => out.push(format!("{item:?}")),
            Ok(None) => return out,
            Err(error) => {
                out.push(format!("error: {error}"));
                return out;
            }
        }
    }
}

fn kind(message: &ServerMessage) -> &'static str {
    match message {
        ServerMessage::Greeting(_) => "greeting",
        ServerMessage::Success(_) => "success",
        ServerMessage::Error(_) => "error",
        ServerMessage::Event(_) => "event",
        ServerMessage::Unknown(_) => "unknown",
    }
}
