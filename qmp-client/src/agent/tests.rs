//! The agent client against a scripted agent built on `ServerCodec`.

use std::sync::{Arc, Mutex};

use qmp_proto::{ClientMessage, ErrorClass, ErrorReply, ServerCodec, Success};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;

use super::*;

/// What the scripted agent saw: each request, and whether a 0xFF byte
/// came before it since the previous request.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    command: String,
    arguments: Value,
    after_sentinel: bool,
}

/// What the script does with a request: bytes to write back (raw, so it
/// can send garbage, 0xFF, or nothing).
type Script = Box<dyn FnMut(&Request, usize) -> Vec<u8> + Send>;

fn reply(ret: Value, id: Option<Value>) -> Vec<u8> {
    encode(ServerMessage::Success(Success::new(ret, id)))
}

fn encode(message: ServerMessage) -> Vec<u8> {
    let mut bytes = BytesMut::new();
    if let Err(error) = ServerCodec::new().encode(message, &mut bytes) {
        panic!("the scripted agent cannot encode its reply: {error}");
    }
    bytes.to_vec()
}

/// An answer like qemu-ga's: `guest-sync-delimited` gets 0xFF + its id
/// back, everything else `{}`; ids are echoed.
fn like_qemu_ga(request: &Request) -> Vec<u8> {
    if request.command == "guest-sync-delimited" {
        let token = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("id"))
            .cloned();
        let mut out = vec![SENTINEL];
        out.extend(reply(token.unwrap_or(Value::Null), request.id.clone()));
        out
    } else {
        reply(json!({}), request.id.clone())
    }
}

/// Serves `script` on the far end of a duplex stream; the receiver gets
/// every request seen.
fn scripted(mut script: Script) -> (DuplexStream, mpsc::UnboundedReceiver<Seen>) {
    let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut codec = ServerCodec::new();
        let mut input = BytesMut::new();
        let mut sentinel = false;
        let mut count = 0;
        let mut chunk = [0u8; 4096];
        loop {
            let Ok(n @ 1..) = theirs.read(&mut chunk).await else {
                return;
            };
            for &byte in &chunk[..n] {
                // The real agent's lexer drops partial input at 0xFF.
                if byte == SENTINEL {
                    sentinel = true;
                    input.clear();
                    codec = ServerCodec::new();
                } else {
                    input.extend_from_slice(&[byte]);
                }
            }
            while let Ok(Some(ClientMessage::Request(request))) = codec.decode(&mut input) {
                let _ = seen_tx.send(Seen {
                    command: request.command.clone(),
                    arguments: request.arguments.clone().map_or(Value::Null, Value::Object),
                    after_sentinel: std::mem::take(&mut sentinel),
                });
                let out = script(&request, count);
                count += 1;
                if theirs.write_all(&out).await.is_err() {
                    return;
                }
            }
        }
    });
    (ours, seen_rx)
}

fn config() -> Config {
    Config::default()
        .handshake_timeout(Some(Duration::from_secs(30)))
        .command_timeout(Some(Duration::from_secs(5)))
}

fn drain(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Vec<Seen> {
    let mut all = Vec::new();
    while let Ok(one) = seen.try_recv() {
        all.push(one);
    }
    all
}

#[tokio::test(start_paused = true)]
async fn stale_bytes_before_the_sentinel_are_discarded() {
    let (io, mut seen) = scripted(Box::new(|request, _| {
        let mut out = Vec::new();
        if request.command == "guest-sync-delimited" {
            // A previous client's reply, and half of another one.
            out.extend(reply(json!(4711), Some(json!(99))));
            out.extend_from_slice(b"{\"return\": {\"pid\": ");
        }
        out.extend(like_qemu_ga(request));
        out
    }));
    let mut agent = Agent::connect(io, &config()).await.unwrap();
    agent.ping().await.unwrap();
    let seen = drain(&mut seen);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].command, "guest-sync-delimited");
    assert!(seen[0].after_sentinel, "0xFF must precede the sync");
    assert_eq!(seen[1].command, "guest-ping");
    assert!(!seen[1].after_sentinel);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_sync_id_is_retried_until_the_right_one() {
    let (io, mut seen) = scripted(Box::new(|request, count| {
        if count < 2 {
            // An answer to someone else's sync: wrong id.
            let mut out = vec![SENTINEL];
            out.extend(reply(json!(12345), request.id.clone()));
            return out;
        }
        like_qemu_ga(request)
    }));
    let mut agent = Agent::connect(io, &config()).await.unwrap();
    let seen = drain(&mut seen);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen.iter()
            .all(|s| s.command == "guest-sync-delimited" && s.after_sentinel)
    );
    // Every attempt uses a fresh id.
    assert_ne!(seen[1].arguments["id"], seen[2].arguments["id"]);
    agent.ping().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn late_answers_to_earlier_syncs_do_not_hide_the_right_one() {
    // qemu-ga 7.2 reads syncs only once it has opened its port, then
    // answers each: its parse error for our 0xFF, then 0xFF and the reply.
    let mut first = None;
    let (io, mut seen) = scripted(Box::new(move |request, count| {
        if request.command != "guest-sync-delimited" {
            return like_qemu_ga(request);
        }
        if count == 0 {
            first = Some(request.clone());
            return Vec::new();
        }
        let stray = encode(ServerMessage::Error(ErrorReply::new(
            ErrorClass::GenericError,
            "JSON parse error, stray '\u{ff}'",
            None,
        )));
        let mut out = Vec::new();
        for request in first.take().iter().chain([request]) {
            out.extend_from_slice(&stray);
            out.extend(like_qemu_ga(request));
        }
        out
    }));
    let mut agent = Agent::connect(io, &config()).await.unwrap();
    assert_eq!(
        drain(&mut seen).len(),
        2,
        "the second sync's reply was lost"
    );
    agent.ping().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_agent_that_never_answers_times_out_naming_the_sync() {
    let (io, mut seen) = scripted(Box::new(|_, _| Vec::new()));
    let config = config().handshake_timeout(Some(Duration::from_secs(5)));
    let error = Agent::connect(io, &config).await.unwrap_err();
    assert!(
        matches!(&error, Error::CommandTimeout { command, timeout }
            if command == "guest-sync-delimited" && *timeout == Duration::from_secs(5)),
        "{error:?}"
    );
    // Retried with growing intervals, not once and not in a busy loop.
    let attempts = drain(&mut seen).len();
    assert!((3..=10).contains(&attempts), "{attempts} attempts");
}

#[tokio::test(start_paused = true)]
async fn a_timeout_then_recovery_through_a_resync() {
    let late = Arc::new(Mutex::new(None::<Value>));
    let late_in_script = Arc::clone(&late);
    let (io, mut seen) = scripted(Box::new(move |request, _| {
        let mut late = late_in_script.lock().unwrap();
        match request.command.as_str() {
            // The first ping hangs; its reply comes just before the next
            // sync's sentinel, as a stale reply would.
            "guest-ping" if late.is_none() => {
                *late = request.id.clone();
                Vec::new()
            }
            "guest-sync-delimited" if late.is_some() => {
                let mut out = reply(json!({}), late.clone());
                out.extend(like_qemu_ga(request));
                out
            }
            _ => like_qemu_ga(request),
        }
    }));
    let mut agent = Agent::connect(io, &config()).await.unwrap();
    let error = agent
        .execute_with_timeout(GuestPing, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::CommandTimeout { command, .. } if command == "guest-ping"),
        "{error:?}"
    );
    agent.ping().await.unwrap();
    let commands: Vec<_> = drain(&mut seen)
        .into_iter()
        .map(|s| (s.command, s.after_sentinel))
        .collect();
    assert_eq!(
        commands,
        [
            ("guest-sync-delimited".to_string(), true),
            ("guest-ping".to_string(), false),
            ("guest-sync-delimited".to_string(), true),
            ("guest-ping".to_string(), false),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn exec_polls_until_exit_and_decodes_the_output() {
    let (io, mut seen) = scripted(Box::new(|request, _| match request.command.as_str() {
        "guest-exec" => reply(json!({"pid": 42}), request.id.clone()),
        "guest-exec-status" => {
            let polls = request.id.as_ref().and_then(Value::as_u64).unwrap_or(0);
            let status = if polls < 5 {
                json!({"exited": false})
            } else {
                json!({"exited": true, "exitcode": 3, "out-data": "aGVsbG8K",
                       "err-data": "b29wcw=="})
            };
            reply(status, request.id.clone())
        }
        _ => like_qemu_ga(request),
    }));
    let mut agent = Agent::connect(io, &config()).await.unwrap();
    let status = agent.exec("/bin/sh", ["-c", "echo hello"]).await.unwrap();
    assert!(status.exited);
    assert_eq!(status.exit_code, Some(3));
    assert!(!status.success());
    assert_eq!(status.stdout, b"hello\n");
    assert_eq!(status.stderr, b"oops");
    let seen = drain(&mut seen);
    assert_eq!(
        seen[1].arguments,
        json!({"path": "/bin/sh", "arg": ["-c", "echo hello"], "capture-output": true})
    );
    assert!(
        seen[2..]
            .iter()
            .all(|s| s.command == "guest-exec-status" && s.arguments == json!({"pid": 42}))
    );
}

#[tokio::test(start_paused = true)]
async fn agent_errors_bad_output_and_eof_are_typed() {
    let (io, _seen) = scripted(Box::new(|request, _| match request.command.as_str() {
        "guest-exec" => encode(ServerMessage::Error(ErrorReply::new(
            ErrorClass::GenericError,
            "Guest agent command failed",
            request.id.clone(),
        ))),
        "guest-exec-status" => reply(
            json!({"exited": true, "out-data": "not*base64"}),
            request.id.clone(),
        ),
        "guest-info" => reply(json!({"version": 7}), request.id.clone()),
        "guest-shutdown" => Vec::new(),
        _ => like_qemu_ga(request),
    }));
    let mut agent = Agent::connect(io, &config()).await.unwrap();
    let error = agent.exec("/nope", Vec::<String>::new()).await.unwrap_err();
    assert!(
        matches!(&error, Error::Qmp { command, class: ErrorClass::GenericError, .. }
            if command == "guest-exec"),
        "{error:?}"
    );
    let error = agent.execute(GuestExecStatus::query(1)).await.unwrap_err();
    assert!(
        matches!(&error, Error::Decode { command, .. } if command == "guest-exec-status"),
        "{error:?}"
    );
    let error = agent.info().await.unwrap_err();
    assert!(matches!(&error, Error::Decode { .. }), "{error:?}");
    agent.shutdown(Some(ShutdownMode::Powerdown)).await.unwrap();
    let error = agent.wait_closed(Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(&error, Error::CommandTimeout { .. }), "{error:?}");
}

#[tokio::test(start_paused = true)]
async fn the_end_of_the_stream_closes_the_agent() {
    // QEMU exiting closes its end of the socket pair.
    let (ours, theirs) = tokio::io::duplex(1024);
    drop(theirs);
    let mut agent = Agent::new(ours, &config());
    let closed = agent.wait_closed(Duration::from_secs(1)).await;
    assert!(matches!(&closed, Ok(())), "{closed:?}");
    let error = agent.ping().await.unwrap_err();
    assert!(
        matches!(&error, Error::Disconnected(Disconnect::PeerClosed)),
        "{error:?}"
    );
}

/// `Duration::MAX` means "forever", never an overflow panic.
#[tokio::test]
async fn forever_is_a_timeout_like_any_other() {
    let (io, _seen) = scripted(Box::new(|request, _| like_qemu_ga(request)));
    let mut agent = Agent::new(io, &config());
    let synced = agent.sync(Duration::MAX).await;
    assert!(matches!(synced, Ok(())), "{synced:?}");
    let (ours, theirs) = tokio::io::duplex(1024);
    drop(theirs);
    let mut agent = Agent::new(ours, &config());
    let closed = agent.wait_closed(Duration::MAX).await;
    assert!(matches!(closed, Ok(())), "{closed:?}");
}

#[test]
fn commands_serialise_as_the_agent_expects() {
    let mut exec = GuestExec::new("/bin/cat");
    exec.input_data = Some(b"hi".to_vec());
    assert_eq!(
        exec.arguments().unwrap(),
        json!({"path": "/bin/cat", "input-data": "aGk="})
            .as_object()
            .cloned()
    );
    assert_eq!(GuestPing.to_request().unwrap(), Request::new("guest-ping"));
    let shutdown = GuestShutdown::new(Some(ShutdownMode::Reboot));
    assert_eq!(
        shutdown.arguments().unwrap(),
        json!({"mode": "reboot"}).as_object().cloned()
    );
}
