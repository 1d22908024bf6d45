//! Fuzzes the client as a whole: the connection task (and the sans-IO
//! session inside it) over an in-memory transport, fed a script of
//! arbitrary server bytes, well-formed replies and events, commands,
//! cancellations, timeouts and a server that stops reading.
//!
//! Checks, beyond "never panics":
//! - every command ends exactly once: nothing is still waiting once the
//!   server has gone, whatever happened before;
//! - memory stays bounded: the client never holds more unwritten bytes
//!   than `Config::write_buffer` plus one command;
//! - the client never starts writing a command whose caller is gone
//!   (dropped, or timed out);
//! - in clean mode (no arbitrary bytes, so no forged replies), every
//!   command that succeeds got the answer to its own request.

#![no_main]

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use qmp_client::{Config, Error, NoFds, Raw};
use qmp_proto::{ClientMessage, Request, ServerCodec};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio_util::codec::Decoder;

const WRITE_BUFFER: usize = 512;
const MAX_PAD: usize = 1024;
const MAX_COMMANDS: usize = 64;

type Outcome = Result<Value, Error>;
type Call<'c> = Pin<Box<dyn Future<Output = Outcome> + Send + 'c>>;

/// Reads the script.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken
    }
}

/// Our side of the server: what it read, and the requests in it.
struct Server {
    io: Option<DuplexStream>,
    buf: BytesMut,
    outbox: Vec<u8>,
    /// The requests already answered (by index).
    answered: std::collections::HashSet<usize>,
    codec: ServerCodec,
    requests: Vec<Request>,
}

impl Server {
    /// Reads everything the client has written so far.
    async fn drain(&mut self) {
        let Some(io) = self.io.as_mut() else {
            return;
        };
        let mut chunk = [0u8; 4096];
        loop {
            let read = futures::FutureExt::now_or_never(io.read(&mut chunk));
            match read {
                Some(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        while let Ok(Some(message)) = self.codec.decode(&mut self.buf) {
            if let ClientMessage::Request(request) = message {
                self.requests.push(request);
            }
        }
    }

    /// Queues `bytes`; they go out as the client reads (a full pipe
    /// means the client is not reading: the bytes wait).
    async fn send(&mut self, bytes: &[u8]) {
        self.outbox.extend_from_slice(bytes);
        self.flush().await;
    }

    async fn flush(&mut self) {
        let Some(io) = self.io.as_mut() else {
            return;
        };
        while !self.outbox.is_empty() {
            match futures::FutureExt::now_or_never(io.write(&self.outbox)) {
                Some(Ok(n)) if n > 0 => {
                    self.outbox.drain(..n);
                }
                _ => break,
            }
        }
    }

}

/// The client's transport: the pipe, recording every byte written.
struct Recording {
    pipe: DuplexStream,
    written: Arc<Mutex<Vec<u8>>>,
}

impl Recording {
    fn written(written: &Mutex<Vec<u8>>) -> usize {
        written.lock().map(|bytes| bytes.len()).unwrap_or(0)
    }

    /// Where the request of `name` starts in what the client wrote.
    fn offset_of(written: &Mutex<Vec<u8>>, name: &str) -> Option<usize> {
        let needle = format!("{{\"execute\":\"{name}\"");
        let bytes = written.lock().ok()?;
        bytes
            .windows(needle.len())
            .position(|window| window == needle.as_bytes())
    }
}

impl AsyncRead for Recording {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.pipe).poll_read(cx, buf)
    }
}

impl AsyncWrite for Recording {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.pipe).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            if let Ok(mut bytes) = this.written.lock() {
                bytes.extend_from_slice(&buf[..n]);
            }
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.pipe).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.pipe).poll_shutdown(cx)
    }
}

struct Command<'c> {
    name: String,
    tag: u64,
    call: Option<Call<'c>>,
    outcome: Option<Outcome>,
    /// How many bytes the client had written when the caller gave up.
    gone_at: Option<usize>,
}

/// Polls `call` once.
fn poll_once(call: &mut Call<'_>) -> Poll<Outcome> {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    call.as_mut().poll(&mut cx)
}

async fn settle() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

fuzz_target!(|data: &[u8]| {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
    {
        Ok(runtime) => runtime,
        Err(_) => return,
    };
    runtime.block_on(run(data));
});

async fn run(data: &[u8]) {
    let mut script = Script(data);
    let Some(mode) = script.byte() else {
        return;
    };
    let clean = mode & 1 == 0;
    let pipe = 16 + usize::from(mode >> 1) * 32;
    let (ours, theirs) = tokio::io::duplex(pipe);
    let mut server = Server {
        io: Some(theirs),
        buf: BytesMut::new(),
        outbox: Vec::new(),
        answered: std::collections::HashSet::new(),
        codec: ServerCodec::new(),
        requests: Vec::new(),
    };
    server
        .send(br#"{"QMP": {"version": {"qemu": {"major": 10, "minor": 0, "micro": 2}, "package": ""}, "capabilities": ["oob"]}}"#)
        .await;
    let config = Config::default()
        .write_buffer(WRITE_BUFFER)
        .oob(mode & 2 != 0)
        .command_timeout(Some(Duration::from_secs(30)));
    let written = Arc::new(Mutex::new(Vec::new()));
    let ours = NoFds(Recording {
        pipe: ours,
        written: written.clone(),
    });
    let handshake = qmp_client::handshake(ours, &config);
    tokio::pin!(handshake);
    let (client, connection) = loop {
        tokio::select! {
            biased;
            outcome = &mut handshake => match outcome {
                Ok(pair) => break pair,
                Err(_) => return,
            },
            () = settle() => {
                // Time passes too, so a stuck handshake times out.
                tokio::time::advance(Duration::from_millis(100)).await;
                server.flush().await;
                server.drain().await;
                if let Some(request) = server.requests.first() {
                    let id = request.id.clone().unwrap_or(Value::Null);
                    let reply = json!({"return": {}, "id": id}).to_string();
                    server.send(reply.as_bytes()).await;
                    server.requests.clear();
                }
            }
        }
    };
    let connection = tokio::spawn(connection);

    let mut commands: Vec<Command> = Vec::new();
    let mut next_tag = 0u64;
    let mut reading = true;
    while let Some(op) = script.byte() {
        match op % 10 {
            // A command, with a timeout (or not), out of band (or not).
            0 | 1 if commands.len() < MAX_COMMANDS => {
                let tag = next_tag;
                next_tag += 1;
                let name = format!("cmd-{tag}");
                let pad = usize::from(script.byte().unwrap_or(0)) * MAX_PAD / 255;
                let flags = script.byte().unwrap_or(0);
                let mut call = client
                    .call(Raw::new(&name).args(json!({"tag": tag, "pad": "x".repeat(pad)})));
                if flags & 1 != 0 {
                    call = call.timeout(Duration::from_millis(u64::from(flags >> 2) * 10));
                }
                if flags & 2 != 0 {
                    call = call.oob();
                }
                let call: Call<'_> = call.into_future();
                commands.push(Command {
                    name,
                    tag,
                    call: Some(call),
                    outcome: None,
                    gone_at: None,
                });
            }
            // The caller of a command drops it.
            2 => {
                let index = usize::from(script.byte().unwrap_or(0));
                let count = commands.len().max(1);
                if let Some(command) = commands.get_mut(index % count) {
                    if command.call.is_some() && command.outcome.is_none() {
                        command.gone_at = Some(Recording::written(&written));
                        command.call = None;
                    }
                }
            }
            // Time passes (timeouts fire).
            3 => {
                let millis = u64::from(script.byte().unwrap_or(0)) * 4;
                tokio::time::advance(Duration::from_millis(millis)).await;
            }
            // The server reads, or stops reading.
            4 => reading = !reading,
            // A well-formed reply to a request the server read.
            5 => {
                if reading {
                    server.drain().await;
                }
                // Like QEMU, at most one reply per request.
                let index = usize::from(script.byte().unwrap_or(0));
                let count = server.requests.len().max(1);
                if let Some(request) = server
                    .requests
                    .get(index % count)
                    .cloned()
                    .filter(|_| server.answered.insert(index % count))
                {
                    let tag = request
                        .arguments
                        .as_ref()
                        .and_then(|arguments| arguments.get("tag").cloned());
                    let mut reply = json!({"return": {"tag": tag}});
                    if let Some(id) = request.id {
                        reply["id"] = id;
                    }
                    server.send(reply.to_string().as_bytes()).await;
                }
            }
            // An error reply or an event.
            6 => {
                let index = usize::from(script.byte().unwrap_or(0));
                let count = server.requests.len().max(1);
                let message = match server.requests.get(index % count) {
                    Some(request) if index % 2 == 0 && server.answered.insert(index % count) => {
                        let mut reply = json!({"error": {"class": "GenericError", "desc": "no"}});
                        if let Some(id) = &request.id {
                            reply["id"] = id.clone();
                        }
                        reply
                    }
                    _ => json!({"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}),
                };
                server.send(message.to_string().as_bytes()).await;
            }
            // Arbitrary bytes from the server.
            7 if !clean => {
                let n = usize::from(script.byte().unwrap_or(0));
                let bytes = script.bytes(n).to_vec();
                server.send(&bytes).await;
            }
            _ => {}
        }
        server.flush().await;
        if reading {
            server.drain().await;
        }
        settle().await;
        poll_commands(&mut commands, &written, clean);
        let unwritten = client.unwritten_bytes();
        let bound = WRITE_BUFFER + MAX_PAD + 128;
        assert!(
            unwritten <= bound,
            "{unwritten} unwritten bytes, bound {bound}"
        );
        check_abandoned(&commands, &written);
    }

    // The server goes away: every command still waiting must end.
    server.drain().await;
    server.io = None;
    for _ in 0..32 {
        settle().await;
        tokio::time::advance(Duration::from_secs(1)).await;
        poll_commands(&mut commands, &written, clean);
        if commands
            .iter()
            .all(|command| command.call.is_none() || command.outcome.is_some())
        {
            break;
        }
    }
    for command in &commands {
        assert!(
            command.call.is_none() || command.outcome.is_some(),
            "{} never ended",
            command.name
        );
    }
    check_abandoned(&commands, &written);
    let closed = futures::FutureExt::now_or_never(client.closed());
    assert!(closed.is_some(), "the client did not see the end");
    drop(commands);
    drop(client);
    settle().await;
    assert!(connection.is_finished(), "the connection task outlived its peer");
}

/// Polls every live command; checks a success is its own answer.
fn poll_commands(commands: &mut [Command<'_>], written: &Mutex<Vec<u8>>, clean: bool) {
    for command in commands.iter_mut() {
        let Some(call) = command.call.as_mut() else {
            continue;
        };
        if command.outcome.is_some() {
            continue;
        }
        if let Poll::Ready(outcome) = poll_once(call) {
            if clean {
                if let Ok(value) = &outcome {
                    assert_eq!(
                        value["tag"],
                        json!(command.tag),
                        "{} got another command's reply",
                        command.name
                    );
                }
            }
            if matches!(outcome, Err(Error::CommandTimeout { .. })) {
                command.gone_at = Some(Recording::written(written));
            }
            command.outcome = Some(outcome);
        }
    }
}

/// A command whose caller was gone before its first byte was written must
/// never reach the server.
fn check_abandoned(commands: &[Command<'_>], written: &Mutex<Vec<u8>>) {
    let starts: HashMap<&str, usize> = commands
        .iter()
        .filter_map(|command| {
            Some((
                command.name.as_str(),
                Recording::offset_of(written, &command.name)?,
            ))
        })
        .collect();
    for command in commands {
        if let (Some(gone_at), Some(start)) = (command.gone_at, starts.get(command.name.as_str()))
        {
            assert!(
                *start < gone_at,
                "{} was written at byte {start} after its caller left at byte {gone_at}",
                command.name
            );
        }
    }
}
