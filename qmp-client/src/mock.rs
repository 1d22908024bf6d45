//! A scriptable mock QEMU: a QMP server on [`qmp_proto::ServerCodec`] for
//! tests, with fault injection.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), qmp_client::Error> {
//! use qmp_client::mock::{MockQemu, Reply};
//! use serde_json::json;
//!
//! let (io, mock) = MockQemu::new()
//!     .on("query-name", |_| Reply::Return(json!({"name": "vm0"})))
//!     .serve_pair();
//! let client = qmp_client::Client::from_stream(io, &Default::default()).await?;
//! assert_eq!(client.execute_raw("query-name", None).await?, json!({"name": "vm0"}));
//! assert_eq!(mock.received()[1].command, "query-name");
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::BytesMut;
use futures::StreamExt;
use qmp_proto::{
    Capability, ClientMessage, ErrorClass, ErrorReply, Event, Greeting, JsonObject, QemuVersion,
    Request, ServerCodec, ServerMessage, Success, Timestamp, VersionInfo,
};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_util::codec::{Encoder, FramedRead};

/// What a command handler answers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reply {
    /// `{"return": value}`.
    Return(Value),
    /// `{"error": {"class": .., "desc": ..}}`.
    Error(ErrorClass, String),
    /// No reply at all.
    Silent,
    /// Events first, then the reply.
    WithEvents(Vec<Event>, Box<Reply>),
    /// `{"return": {}}`, then close the connection (like `quit`).
    ReturnAndClose,
    /// This reply without its `id`, as QEMU answers input it could not
    /// parse.
    WithoutId(Box<Reply>),
}

/// A misbehaviour to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Never send the greeting (the connection stays open).
    NoGreeting,
    /// Send a JSON object that is not a valid greeting instead.
    BadGreeting,
    /// Send these bytes instead of the greeting.
    InsteadOfGreeting(Vec<u8>),
    /// Greet, then close the connection without reading anything.
    GreetThenClose,
    /// Answer the first command after negotiation with these bytes.
    Garbage(Vec<u8>),
    /// Write every message one byte at a time.
    SplitIntoBytes,
    /// Answer the first command after negotiation with a message of about
    /// this many bytes.
    Oversize(usize),
    /// Answer the first command after negotiation with half a message, then
    /// close the connection.
    EofMidMessage,
    /// Precede every reply with a reply carrying an id nobody sent.
    UnknownIdReply,
    /// Hold replies until this many are due, then send them in reverse.
    OutOfOrder(usize),
    /// Precede every reply after negotiation with this many events.
    EventFlood(usize),
    /// After negotiation, read commands but never answer.
    Stall,
    /// Greet, then never answer `qmp_capabilities` (nor anything else).
    StallNegotiation,
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// A mock QEMU, configured builder-style, then served over a stream.
#[derive(Clone)]
pub struct MockQemu {
    greeting: Greeting,
    handlers: HashMap<String, Handler>,
    faults: Vec<Fault>,
    before_greeting: Vec<Event>,
    during_negotiation: Vec<Event>,
}

impl std::fmt::Debug for MockQemu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockQemu")
            .field("greeting", &self.greeting)
            .field("handlers", &self.handlers.keys().collect::<Vec<_>>())
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl Default for MockQemu {
    fn default() -> Self {
        Self::new()
    }
}

/// An event named `name` with `data` (an object, or `null` for none).
pub fn event(name: &str, data: Value) -> Event {
    let data = match data {
        Value::Object(data) => data,
        _ => JsonObject::new(),
    };
    Event::new(name, data, Timestamp::default())
}

impl MockQemu {
    /// A mock of QEMU 7.2.0 offering `oob`, answering `qmp_capabilities`,
    /// `query-status` (running), `query-version`, `stop`/`cont` (with
    /// `STOP`/`RESUME` events) and `quit` (`SHUTDOWN`, reply, close);
    /// anything else gets `CommandNotFound`.
    pub fn new() -> Self {
        let version = VersionInfo::new(
            QemuVersion {
                major: 7,
                minor: 2,
                micro: 0,
            },
            "qmp-client mock",
        );
        let mut mock = Self {
            greeting: Greeting::new(version, vec![Capability::Oob]),
            handlers: HashMap::new(),
            faults: Vec::new(),
            before_greeting: Vec::new(),
            during_negotiation: Vec::new(),
        };
        mock = mock
            .on("query-status", |_| {
                Reply::Return(json!({"status": "running", "running": true, "singlestep": false}))
            })
            .on("query-version", |_| {
                Reply::Return(json!({"qemu": {"major": 7, "minor": 2, "micro": 0},
                    "package": "qmp-client mock"}))
            })
            .on("stop", |_| {
                Reply::WithEvents(vec![event("STOP", Value::Null)], Box::new(empty()))
            })
            .on("cont", |_| {
                Reply::WithEvents(vec![event("RESUME", Value::Null)], Box::new(empty()))
            })
            .on("quit", |_| {
                let shutdown = event(
                    "SHUTDOWN",
                    json!({"guest": false, "reason": "host-qmp-quit"}),
                );
                Reply::WithEvents(vec![shutdown], Box::new(Reply::ReturnAndClose))
            });
        mock
    }

    /// Sends `greeting` instead of the default one.
    pub fn greeting(mut self, greeting: Greeting) -> Self {
        self.greeting = greeting;
        self
    }

    /// Answers `command` with `handler` (replacing any earlier handler).
    pub fn on(
        mut self,
        command: &str,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> Self {
        self.handlers.insert(command.to_owned(), Arc::new(handler));
        self
    }

    /// Injects `fault`.
    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// Sends `event` before the greeting.
    pub fn event_before_greeting(mut self, event: Event) -> Self {
        self.before_greeting.push(event);
        self
    }

    /// Sends `event` between `qmp_capabilities` and its reply.
    pub fn event_during_negotiation(mut self, event: Event) -> Self {
        self.during_negotiation.push(event);
        self
    }

    /// Serves one end of a new Unix socket pair and returns the other end
    /// (which can carry fds) and the handle. Needs a tokio runtime.
    ///
    /// # Panics
    ///
    /// If the operating system cannot create a socket pair (out of file
    /// descriptors): this is test support.
    #[allow(clippy::expect_used)]
    pub fn serve_pair(self) -> (UnixStream, MockHandle) {
        let (ours, theirs) = UnixStream::pair().expect("cannot create a Unix socket pair");
        let handle = self.serve(theirs);
        (ours, handle)
    }

    /// Serves `io` on a spawned task. Needs a tokio runtime.
    pub fn serve<IO>(self, io: IO) -> MockHandle
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (control, commands) = mpsc::unbounded_channel();
        let received = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done) = tokio::sync::watch::channel(false);
        let server = Server {
            mock: self,
            received: received.clone(),
            negotiated: false,
            held: Vec::new(),
            first_command_done: false,
        };
        tokio::spawn(async move {
            let outcome = server.run(io, commands).await;
            if let Err(error) = outcome {
                tracing::debug!(%error, "mock QEMU stopped");
            }
            let _ = done_tx.send(true);
        });
        MockHandle {
            control,
            received,
            done,
        }
    }
}

fn empty() -> Reply {
    Reply::Return(json!({}))
}

#[derive(Debug)]
enum Control {
    Event(Event),
    Raw(Vec<u8>),
    Reading(bool, tokio::sync::oneshot::Sender<()>),
    Close,
}

/// Controls a running mock: inject events or bytes, close it, see what it
/// received.
#[derive(Debug, Clone)]
pub struct MockHandle {
    control: mpsc::UnboundedSender<Control>,
    received: Arc<Mutex<Vec<Request>>>,
    done: tokio::sync::watch::Receiver<bool>,
}

impl MockHandle {
    /// Sends `event` now.
    pub fn inject_event(&self, event: Event) {
        let _ = self.control.send(Control::Event(event));
    }

    /// Writes raw bytes now.
    pub fn inject_raw(&self, bytes: impl Into<Vec<u8>>) {
        let _ = self.control.send(Control::Raw(bytes.into()));
    }

    /// Stops reading from the connection (until
    /// [`resume_reading`](Self::resume_reading)): the client's writes back
    /// up, as with a QEMU that is stopped or busy. Resolves once the mock
    /// has stopped.
    pub async fn pause_reading(&self) {
        self.set_reading(false).await;
    }

    /// Reads again after [`pause_reading`](Self::pause_reading).
    pub async fn resume_reading(&self) {
        self.set_reading(true).await;
    }

    async fn set_reading(&self, on: bool) {
        let (applied, done) = tokio::sync::oneshot::channel();
        if self.control.send(Control::Reading(on, applied)).is_ok() {
            // An error means the mock has stopped: nothing to wait for.
            let _ = done.await;
        }
    }

    /// Closes the connection (the client sees end of input).
    pub fn close(&self) {
        let _ = self.control.send(Control::Close);
    }

    /// Every request received so far, `qmp_capabilities` included.
    pub fn received(&self) -> Vec<Request> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Resolves when the mock has stopped (the peer closed, or it closed).
    pub async fn stopped(&self) {
        let mut done = self.done.clone();
        let _ = done.wait_for(|done| *done).await;
    }
}

struct Server {
    mock: MockQemu,
    received: Arc<Mutex<Vec<Request>>>,
    negotiated: bool,
    held: Vec<ServerMessage>,
    first_command_done: bool,
}

/// Whether to go on serving.
enum Flow {
    Continue,
    Stop,
}

impl Server {
    fn has(&self, fault: &Fault) -> bool {
        self.mock.faults.contains(fault)
    }

    async fn run<IO>(
        mut self,
        io: IO,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) -> Result<(), qmp_proto::Error>
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, mut writer) = tokio::io::split(io);
        let mut reader = FramedRead::new(reader, ServerCodec::new());
        for event in self.mock.before_greeting.clone() {
            self.send(&mut writer, &ServerMessage::Event(event)).await?;
        }
        let instead = self.mock.faults.iter().find_map(|fault| match fault {
            Fault::InsteadOfGreeting(bytes) => Some(bytes.clone()),
            _ => None,
        });
        if let Some(bytes) = instead {
            self.write(&mut writer, &bytes).await?;
        } else if self.has(&Fault::BadGreeting) {
            let bad = ServerMessage::Unknown(json!({"QMP": {"version": "seven"}}));
            self.send(&mut writer, &bad).await?;
        } else if !self.has(&Fault::NoGreeting) {
            let greeting = ServerMessage::Greeting(self.mock.greeting.clone());
            self.send(&mut writer, &greeting).await?;
        }
        if self.has(&Fault::GreetThenClose) {
            writer.shutdown().await?;
            return Ok(());
        }
        let mut reading = true;
        loop {
            tokio::select! {
                message = reader.next(), if reading => {
                    let flow = match message {
                        None => return Ok(()),
                        Some(Err(error)) => return Err(error),
                        Some(Ok(ClientMessage::Request(request))) => {
                            self.handle(&mut writer, request).await?
                        }
                        Some(Ok(ClientMessage::Unknown(_))) => {
                            // What QEMU says to a JSON value that is no request.
                            let error = ErrorReply::new(
                                ErrorClass::GenericError,
                                "QMP input must be a JSON object",
                                None,
                            );
                            self.send(&mut writer, &ServerMessage::Error(error)).await?;
                            Flow::Continue
                        }
                    };
                    if let Flow::Stop = flow {
                        writer.shutdown().await?;
                        return Ok(());
                    }
                }
                control = control.recv() => match control {
                    Some(Control::Event(event)) => {
                        self.send(&mut writer, &ServerMessage::Event(event)).await?;
                    }
                    Some(Control::Raw(bytes)) => self.write(&mut writer, &bytes).await?,
                    Some(Control::Reading(on, applied)) => {
                        reading = on;
                        let _ = applied.send(());
                    }
                    Some(Control::Close) | None => {
                        writer.shutdown().await?;
                        return Ok(());
                    }
                },
            }
        }
    }

    async fn handle<W: AsyncWrite>(
        &mut self,
        writer: &mut WriteHalf<W>,
        request: Request,
    ) -> Result<Flow, qmp_proto::Error> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request.clone());
        let id = request.id.clone();
        if self.has(&Fault::StallNegotiation) {
            return Ok(Flow::Continue);
        }
        if !self.negotiated {
            if request.command != "qmp_capabilities" {
                let desc = "Expecting capabilities negotiation with 'qmp_capabilities'";
                let error = ErrorReply::new(ErrorClass::CommandNotFound, desc, id);
                self.send(writer, &ServerMessage::Error(error)).await?;
                return Ok(Flow::Continue);
            }
            for event in self.mock.during_negotiation.clone() {
                self.send(writer, &ServerMessage::Event(event)).await?;
            }
            self.negotiated = true;
            let reply = ServerMessage::Success(Success::new(json!({}), id));
            self.send(writer, &reply).await?;
            return Ok(Flow::Continue);
        }
        if self.has(&Fault::Stall) {
            return Ok(Flow::Continue);
        }
        if !self.first_command_done {
            self.first_command_done = true;
            if let Some(flow) = self.first_command_fault(writer).await? {
                return Ok(flow);
            }
        }
        let reply = match self.mock.handlers.get(&request.command) {
            Some(handler) => handler(&request),
            None => Reply::Error(
                ErrorClass::CommandNotFound,
                format!("The command {} has not been found", request.command),
            ),
        };
        self.reply(writer, reply, id).await
    }

    /// Faults that replace the answer to the first command.
    async fn first_command_fault<W: AsyncWrite>(
        &mut self,
        writer: &mut WriteHalf<W>,
    ) -> Result<Option<Flow>, qmp_proto::Error> {
        for fault in self.mock.faults.clone() {
            match fault {
                Fault::Garbage(bytes) => {
                    self.write(writer, &bytes).await?;
                    return Ok(Some(Flow::Continue));
                }
                Fault::Oversize(size) => {
                    let big = "x".repeat(size);
                    let message = ServerMessage::Success(Success::new(json!(big), None));
                    self.send(writer, &message).await?;
                    return Ok(Some(Flow::Continue));
                }
                Fault::EofMidMessage => {
                    self.write(writer, br#"{"return": {"status": "runn"#)
                        .await?;
                    return Ok(Some(Flow::Stop));
                }
                _ => {}
            }
        }
        Ok(None)
    }

    async fn reply<W: AsyncWrite>(
        &mut self,
        writer: &mut WriteHalf<W>,
        reply: Reply,
        id: Option<Value>,
    ) -> Result<Flow, qmp_proto::Error> {
        let flood = self.mock.faults.iter().find_map(|fault| match fault {
            Fault::EventFlood(count) => Some(*count),
            _ => None,
        });
        for n in 0..flood.unwrap_or(0) {
            let flood = event("FLOOD", json!({"n": n}));
            self.send(writer, &ServerMessage::Event(flood)).await?;
        }
        if self.has(&Fault::UnknownIdReply) {
            let stray = Success::new(json!({}), Some(json!("nobody-sent-this")));
            self.send(writer, &ServerMessage::Success(stray)).await?;
        }
        let (message, flow) = match reply {
            Reply::Silent => return Ok(Flow::Continue),
            Reply::Return(value) => (
                ServerMessage::Success(Success::new(value, id)),
                Flow::Continue,
            ),
            Reply::ReturnAndClose => (
                ServerMessage::Success(Success::new(json!({}), id)),
                Flow::Stop,
            ),
            Reply::Error(class, desc) => (
                ServerMessage::Error(ErrorReply::new(class, desc, id)),
                Flow::Continue,
            ),
            Reply::WithEvents(events, reply) => {
                for event in events {
                    self.send(writer, &ServerMessage::Event(event)).await?;
                }
                return Box::pin(self.reply(writer, *reply, id)).await;
            }
            Reply::WithoutId(reply) => return Box::pin(self.reply(writer, *reply, None)).await,
        };
        let hold = self.mock.faults.iter().find_map(|fault| match fault {
            Fault::OutOfOrder(count) => Some(*count),
            _ => None,
        });
        match hold {
            Some(count) => {
                self.held.push(message);
                if self.held.len() >= count {
                    let held: Vec<ServerMessage> = self.held.drain(..).rev().collect();
                    for message in held {
                        self.send(writer, &message).await?;
                    }
                }
            }
            None => self.send(writer, &message).await?,
        }
        Ok(flow)
    }

    async fn send<W: AsyncWrite>(
        &mut self,
        writer: &mut WriteHalf<W>,
        message: &ServerMessage,
    ) -> Result<(), qmp_proto::Error> {
        let mut bytes = BytesMut::new();
        ServerCodec::new().encode(message, &mut bytes)?;
        self.write(writer, &bytes).await
    }

    async fn write<W: AsyncWrite>(
        &mut self,
        writer: &mut WriteHalf<W>,
        bytes: &[u8],
    ) -> Result<(), qmp_proto::Error> {
        if self.has(&Fault::SplitIntoBytes) {
            for byte in bytes {
                writer.write_all(std::slice::from_ref(byte)).await?;
                writer.flush().await?;
            }
        } else {
            writer.write_all(bytes).await?;
            writer.flush().await?;
        }
        Ok(())
    }
}
