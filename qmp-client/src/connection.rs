//! The connection task: owns the transport and the sans-IO session, writes
//! requests, reads and dispatches replies and events.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, BytesMut};
use qmp_proto::{
    ClientCodec, Decoded, Limits, Refusal, Request, RequestId, ServerMessage, Session,
    SessionEvent, SessionState, Success,
};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Decoder;
use tracing::{Span, debug, trace, warn};

use crate::config::Config;
use crate::error::{Disconnect, Error, Step};
use crate::shared::Shared;
use crate::transport::Transport;
use crate::unix::Driven;

/// How many reads, writes or requests one poll handles before yielding, so
/// one busy connection cannot starve other tasks.
const BUDGET: usize = 64;
const READ_CHUNK: usize = 64 * 1024;

/// What the reply to a request resolves to.
pub(crate) type Reply = Result<Returned, Error>;

/// A reply's `return` value: a `Value`, or its JSON text when the caller
/// asked for text (see [`Raw::text`](crate::Raw::text)).
#[derive(Debug)]
pub(crate) enum Returned {
    Value(Value),
    Text(Box<RawValue>),
}

/// A request from a handle to the connection task.
#[derive(Debug)]
pub(crate) struct Op {
    pub(crate) request: Request,
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) reply: oneshot::Sender<Reply>,
    pub(crate) span: Span,
    /// Whether the caller wants the `return` value as JSON text.
    pub(crate) text: bool,
}

#[derive(Debug)]
struct Waiter {
    command: String,
    reply: oneshot::Sender<Reply>,
    span: Span,
}

/// One request's bytes in the write buffer; its fds, if any, go with its
/// first byte.
#[derive(Debug)]
struct Chunk {
    /// Bytes of it not yet written.
    len: usize,
    /// The command's id; `None` for the session's own `qmp_capabilities`.
    id: Option<RequestId>,
    fds: Vec<OwnedFd>,
}

/// The connection task. It owns the transport: spawn it (for example with
/// `tokio::spawn`) or poll it yourself; nothing moves until it is polled.
///
/// It resolves when the connection ends: `Ok(())` after `quit` or once
/// every [`Client`](crate::Client) is dropped, else the reason as
/// [`Error::Disconnected`]. Before it resolves, every pending command and
/// wait has failed with the same reason.
#[must_use = "futures do nothing unless polled; spawn the connection"]
pub struct Connection<IO> {
    io: Driven<IO>,
    fd_passing: bool,
    codec: ClientCodec,
    read_buf: BytesMut,
    /// Encoded requests not yet written, back to back, split by `chunks`.
    out: BytesMut,
    chunks: VecDeque<Chunk>,
    /// Whether the first chunk is partly written (so it must be finished).
    front_started: bool,
    write_limit: usize,
    need_flush: bool,
    session: Session,
    ops: mpsc::UnboundedReceiver<Op>,
    ops_closed: bool,
    waiters: HashMap<RequestId, Waiter>,
    fd_in_flight: Option<RequestId>,
    deferred: VecDeque<Op>,
    /// The commands whose callers want their `return` value as text, by
    /// wire id, with the text once it arrived.
    texts: HashMap<u64, Option<Box<RawValue>>>,
    /// The one of them sent without an id, if any.
    idless_text: Option<u64>,
    shared: Arc<Shared>,
    span: Span,
    eof: bool,
    negotiation_error: Option<Error>,
    result: Option<Result<(), Disconnect>>,
}

impl<IO> std::fmt::Debug for Connection<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("state", &self.session.state())
            .field("pending", &self.waiters.len())
            .field("fd_passing", &self.fd_passing)
            .field("unwritten", &self.out.len())
            .finish_non_exhaustive()
    }
}

impl<IO: Transport> Connection<IO> {
    pub(crate) fn new(
        io: IO,
        config: &Config,
        shared: Arc<Shared>,
        ops: mpsc::UnboundedReceiver<Op>,
        span: Span,
    ) -> io::Result<Self> {
        let io = Driven::new(io)?;
        let limits = Limits {
            max_message_size: config.max_message_size,
            ..Limits::default()
        };
        Ok(Self {
            fd_passing: io.can_pass_fds(),
            io,
            codec: ClientCodec::with_limits(limits),
            read_buf: BytesMut::new(),
            out: BytesMut::new(),
            chunks: VecDeque::new(),
            front_started: false,
            write_limit: config.write_buffer.max(1),
            need_flush: false,
            session: Session::new(config.oob),
            ops,
            ops_closed: false,
            waiters: HashMap::new(),
            fd_in_flight: None,
            deferred: VecDeque::new(),
            texts: HashMap::new(),
            idless_text: None,
            shared,
            span,
            eof: false,
            negotiation_error: None,
            result: None,
        })
    }

    /// Whether the transport can carry file descriptors.
    pub(crate) fn fd_passing(&self) -> bool {
        self.fd_passing
    }

    /// The handshake step reached: once a greeting arrived, whatever
    /// happens next happens during negotiation.
    pub(crate) fn step(&self) -> Step {
        match self.session.greeting() {
            None => Step::Greeting,
            Some(_) => Step::Negotiation,
        }
    }

    /// Drives the connection until negotiation finishes (`Ok`) or fails.
    pub(crate) fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        std::task::ready!(self.poll_drive(cx, true));
        let reason = match (&self.result, self.negotiation_error.take()) {
            (_, Some(error)) => return Poll::Ready(Err(error)),
            (None, None) => return Poll::Ready(Ok(())),
            (Some(Err(reason)), None) => reason.clone(),
            (Some(Ok(())), None) => self.shared.close_reason().unwrap_or(Disconnect::PeerClosed),
        };
        Poll::Ready(Err(match reason {
            Disconnect::NotQmp { first_message } => Error::NotQmp { first_message },
            reason => Error::Handshake {
                step: self.step(),
                reason,
            },
        }))
    }

    /// Runs until the connection ends (or, with `until_ready`, until the
    /// session is ready).
    fn poll_drive(&mut self, cx: &mut Context<'_>, until_ready: bool) -> Poll<()> {
        let span = self.span.clone();
        let _entered = span.enter();
        for _ in 0..BUDGET {
            if self.result.is_some() {
                return Poll::Ready(());
            }
            if until_ready && self.session.state() == SessionState::Ready {
                return Poll::Ready(());
            }
            let mut progress = self.take_ops(cx);
            progress |= self.encode_transmits();
            match self.poll_write(cx) {
                Ok(wrote) => progress |= wrote,
                Err(error) if is_peer_gone(&error) => {
                    // Whatever the peer sent before leaving is still to read.
                    debug!(%error, "peer gone while writing");
                    self.out.clear();
                    self.chunks.clear();
                    self.front_started = false;
                    progress = true;
                }
                Err(error) => {
                    self.terminate(Disconnect::Io(Arc::new(error)));
                    continue;
                }
            }
            match self.poll_read(cx) {
                Ok(read) => progress |= read,
                Err(reason) => {
                    // Deliver what arrived before the failure first.
                    self.dispatch();
                    self.terminate(reason);
                    continue;
                }
            }
            progress |= self.dispatch();
            self.shared.set_unwritten(self.out.len());
            if self.ops_closed && self.chunks.is_empty() && self.result.is_none() {
                // Every handle is gone: nobody can use this connection.
                self.terminate(Disconnect::ClientDropped);
                continue;
            }
            if !progress {
                return Poll::Pending;
            }
        }
        // Out of budget with work left: yield, and come back at once.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Takes requests while the write buffer is under its bound: the rest
    /// wait in the channel, where a caller that gives up takes its request
    /// back unsent.
    fn take_ops(&mut self, cx: &mut Context<'_>) -> bool {
        if self.ops_closed || self.session.state() != SessionState::Ready {
            return false;
        }
        let mut progress = false;
        for _ in 0..BUDGET {
            if self.out.len() >= self.write_limit {
                break;
            }
            match self.ops.poll_recv(cx) {
                Poll::Ready(Some(op)) => {
                    progress = true;
                    self.start(op);
                }
                Poll::Ready(None) => {
                    self.ops_closed = true;
                    return true;
                }
                Poll::Pending => break,
            }
        }
        progress
    }

    /// Hands a request to the session and queues its bytes.
    fn start(&mut self, op: Op) {
        if op.reply.is_closed() {
            // Abandoned before it was sent: send nothing.
            trace!(parent: &op.span, "dropped before sending");
            return;
        }
        if !op.fds.is_empty() {
            if !self.fd_passing {
                let command = op.request.command.clone();
                let _ = op.reply.send(Err(Error::FdPassingUnsupported { command }));
                return;
            }
            if self.fd_in_flight.is_some() {
                // QEMU keeps only the last fds it received: one at a time.
                self.deferred.push_back(op);
                return;
            }
        }
        let Op {
            request,
            fds,
            reply,
            span,
            text,
        } = op;
        // Whatever the session queued earlier goes first.
        self.encode_transmits();
        let command = request.command.clone();
        let id = match self.session.execute(request) {
            Ok(id) => id,
            Err(refusal) => {
                let error = match refusal {
                    Refusal::OobNotNegotiated => Error::OobNotNegotiated { command },
                    _ => Error::Disconnected(
                        self.shared.close_reason().unwrap_or(Disconnect::DriverGone),
                    ),
                };
                let _ = reply.send(Err(error));
                return;
            }
        };
        span.record("id", id.get());
        trace!(parent: &span, "queued");
        if text {
            self.texts.insert(id.get(), None);
        }
        self.waiters.insert(
            id,
            Waiter {
                command,
                reply,
                span,
            },
        );
        if !fds.is_empty() {
            self.fd_in_flight = Some(id);
        }
        if let Some(request) = self.session.poll_transmit() {
            if text && request.id.is_none() {
                // Sent without an id (nothing else was in flight): a reply
                // without one is its reply.
                self.idless_text = Some(id.get());
            }
            self.push_chunk(&request, Some(id), fds);
        }
    }

    /// Forgets that the command `id` wanted text; its text, if it came.
    fn forget_text(&mut self, id: RequestId) -> Option<Box<RawValue>> {
        if self.idless_text == Some(id.get()) {
            self.idless_text = None;
        }
        self.texts.remove(&id.get()).flatten()
    }

    /// Encodes what the session wants sent on its own (`qmp_capabilities`).
    fn encode_transmits(&mut self) -> bool {
        let mut progress = false;
        while let Some(request) = self.session.poll_transmit() {
            progress = true;
            self.push_chunk(&request, None, Vec::new());
        }
        progress
    }

    /// Encodes `request` at the end of the write buffer. No line ending:
    /// QEMU takes a request when its closing brace arrives, and reads its
    /// monitor one byte per `read`, so every byte costs.
    fn push_chunk(&mut self, request: &Request, id: Option<RequestId>, fds: Vec<OwnedFd>) {
        let start = self.out.len();
        if let Err(error) = serde_json::to_writer((&mut self.out).writer(), request) {
            // Requests built from JSON values always serialise.
            warn!(command = %request.command, %error, "could not encode a request");
            self.out.truncate(start);
            return;
        }
        trace!(target: "qmp_client::wire", bytes = %String::from_utf8_lossy(&self.out[start..]), "send");
        self.chunks.push_back(Chunk {
            len: self.out.len() - start,
            id,
            fds,
        });
    }

    /// Whether the chunk is a command whose caller gave up.
    fn is_abandoned(&self, chunk: &Chunk) -> bool {
        chunk
            .id
            .and_then(|id| self.waiters.get(&id))
            .is_some_and(|waiter| waiter.reply.is_closed())
    }

    /// Drops the unwritten commands at the front whose callers are gone:
    /// QEMU must never run a command nobody waits for (a `system_reset`
    /// abandoned by its caller must not happen later).
    fn drop_abandoned_front(&mut self) {
        while !self.front_started {
            let Some(front) = self.chunks.front() else {
                return;
            };
            if !self.is_abandoned(front) {
                return;
            }
            let Some(chunk) = self.chunks.pop_front() else {
                return;
            };
            self.out.advance(chunk.len);
            let Some(id) = chunk.id else {
                continue;
            };
            self.session.abandon(id);
            self.forget_text(id);
            if let Some(waiter) = self.waiters.remove(&id) {
                trace!(parent: &waiter.span, command = %waiter.command, "abandoned before sending");
            }
            if self.fd_in_flight == Some(id) {
                self.fd_in_flight = None;
                self.start_deferred();
            }
        }
    }

    fn start_deferred(&mut self) {
        while let Some(op) = self.deferred.pop_front() {
            self.start(op);
            if self.fd_in_flight.is_some() {
                break;
            }
        }
    }

    /// Writes from the front of the buffer: a command with fds alone (its
    /// fds on its first byte), else the run of live commands up to the
    /// next one with fds or whose caller is gone.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        let mut progress = false;
        loop {
            self.drop_abandoned_front();
            let Some(front) = self.chunks.front() else {
                break;
            };
            let written = if !front.fds.is_empty() && !self.front_started {
                let fds: Vec<BorrowedFd<'_>> = front.fds.iter().map(AsFd::as_fd).collect();
                self.io
                    .poll_write_with_fds(cx, &self.out[..front.len], &fds)
            } else {
                let mut end = front.len;
                for chunk in self.chunks.iter().skip(1) {
                    if !chunk.fds.is_empty() || self.is_abandoned(chunk) {
                        break;
                    }
                    end += chunk.len;
                }
                Pin::new(&mut self.io).poll_write(cx, &self.out[..end])
            };
            match written {
                Poll::Pending => break,
                Poll::Ready(Err(error)) => return Err(error),
                Poll::Ready(Ok(0)) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Poll::Ready(Ok(n)) => {
                    progress = true;
                    self.need_flush = true;
                    self.consume(n);
                }
            }
        }
        if self.need_flush {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.need_flush = false,
                Poll::Ready(Err(error)) => return Err(error),
                Poll::Pending => {}
            }
        }
        Ok(progress)
    }

    /// Accounts for `n` bytes written from the front.
    fn consume(&mut self, mut n: usize) {
        self.out.advance(n);
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            // The kernel duplicated the fds into the message.
            front.fds.clear();
            if n < front.len {
                front.len -= n;
                self.front_started = true;
                return;
            }
            n -= front.len;
            self.chunks.pop_front();
            self.front_started = false;
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Result<bool, Disconnect> {
        if self.eof {
            return Ok(false);
        }
        if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 4 {
            // Doubling keeps a large reply (query-qmp-schema) to a few reads
            // and copies; the codec bounds the size.
            self.read_buf.reserve(READ_CHUNK.max(self.read_buf.len()));
        }
        let read = tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read_buf);
        match read {
            Poll::Pending => Ok(false),
            // A Unix socket whose peer died with our bytes unread reports
            // a reset instead of end of input: the peer is gone either way.
            Poll::Ready(Err(error)) if is_peer_gone(&error) => {
                debug!(%error, "peer gone");
                self.eof = true;
                self.session.handle_eof();
                Ok(true)
            }
            Poll::Ready(Err(error)) => Err(Disconnect::Io(Arc::new(error))),
            Poll::Ready(Ok(0)) => {
                self.eof = true;
                trace!(target: "qmp_client::wire", "end of input");
                loop {
                    match self.codec.decode_eof(&mut self.read_buf) {
                        Ok(Some(message)) => self.receive(message),
                        Ok(None) => break,
                        Err(error) => return Err(Disconnect::Protocol(Arc::new(error))),
                    }
                }
                self.session.handle_eof();
                Ok(true)
            }
            Poll::Ready(Ok(_)) => {
                loop {
                    match self.decode() {
                        Ok(Some(message)) => self.receive(message),
                        Ok(None) => break,
                        Err(error) => return Err(Disconnect::Protocol(Arc::new(error))),
                    }
                }
                Ok(true)
            }
        }
    }

    /// The next message in the read buffer. While some caller wants a
    /// `return` value as text, its reply keeps the text (no `Value` is
    /// built) and reaches the session with a `null` in its place.
    fn decode(&mut self) -> Result<Option<ServerMessage>, qmp_proto::Error> {
        if self.texts.is_empty() {
            return self.codec.decode(&mut self.read_buf);
        }
        // Whose reply it is, as the session will match it.
        let (texts, idless) = (&self.texts, self.idless_text);
        let owner = |id: Option<&Value>| match id {
            Some(id) => id.as_u64().filter(|id| texts.contains_key(id)),
            None => idless,
        };
        let decoded = self
            .codec
            .decode_keeping_return_text(&mut self.read_buf, |id| owner(id).is_some())?;
        Ok(decoded.map(|decoded| match decoded {
            Decoded::ReturnText { ret, id } => {
                let owner = match &id {
                    Some(id) => id.as_u64(),
                    None => self.idless_text,
                };
                if let Some(slot) = owner.and_then(|owner| self.texts.get_mut(&owner)) {
                    *slot = Some(ret);
                }
                ServerMessage::Success(Success::new(Value::Null, id))
            }
            Decoded::Message(message) => message,
        }))
    }

    fn receive(&mut self, message: ServerMessage) {
        trace!(target: "qmp_client::wire", ?message, "recv");
        self.session.handle_message(message);
    }

    /// Acts on what the session reports.
    fn dispatch(&mut self) -> bool {
        let mut progress = false;
        while let Some(event) = self.session.poll_event() {
            progress = true;
            match event {
                SessionEvent::Greeting(greeting) => {
                    debug!(version = %greeting.version.qemu, oob = greeting.offers_oob(), "greeting");
                    self.shared.set_greeting(greeting);
                }
                SessionEvent::Ready { oob } => debug!(oob, "negotiated"),
                SessionEvent::NegotiationFailed(error) => {
                    self.negotiation_error = Some(Error::NegotiationRefused {
                        class: error.class,
                        desc: error.desc,
                    });
                }
                SessionEvent::Reply {
                    id,
                    command,
                    result,
                } => self.complete(id, command, result),
                SessionEvent::Event(event) => {
                    debug!(name = %event.name, "event");
                    self.shared.publish(event);
                }
                SessionEvent::Unattributed { reply, failed } => {
                    self.fail_unattributed(reply, failed)
                }
                // Before the greeting only events are QMP: anything else
                // means the peer is no QMP monitor.
                SessionEvent::Unexpected(message)
                    if self.session.state() == SessionState::AwaitingGreeting =>
                {
                    let first_message = serde_json::to_value(&message).unwrap_or_default();
                    self.terminate(Disconnect::NotQmp {
                        first_message: Arc::new(first_message),
                    });
                }
                SessionEvent::Unexpected(message) => {
                    warn!(
                        ?message,
                        "ignoring a message that answers no pending request"
                    );
                }
                SessionEvent::Unknown(value)
                    if self.session.state() == SessionState::AwaitingGreeting =>
                {
                    self.terminate(Disconnect::NotQmp {
                        first_message: Arc::new(value),
                    });
                }
                SessionEvent::Unknown(value) => {
                    warn!(%value, "ignoring a message of unknown shape");
                }
                SessionEvent::Closed { after_quit, .. } => {
                    let reason = if after_quit {
                        Disconnect::Quit
                    } else {
                        Disconnect::PeerClosed
                    };
                    self.terminate(reason);
                }
                other => debug!(?other, "session event"),
            }
        }
        progress
    }

    fn complete(
        &mut self,
        id: RequestId,
        command: String,
        result: Result<Value, qmp_proto::ErrorReply>,
    ) {
        if self.fd_in_flight == Some(id) {
            self.fd_in_flight = None;
            self.start_deferred();
        }
        // The text, when the caller asked for it and the reply was of the
        // usual shape; else the value (the call turns it into text).
        let text = self.forget_text(id);
        let Some(waiter) = self.waiters.remove(&id) else {
            return;
        };
        let returned = match text {
            Some(text) => Ok(Returned::Text(text)),
            None => result.map(Returned::Value),
        };
        let reply = returned.map_err(|error| Error::Qmp {
            command: command.clone(),
            class: error.class,
            desc: error.desc,
        });
        let Waiter {
            command,
            reply: sender,
            span,
        } = waiter;
        if sender.send(reply).is_err() {
            // The caller gave up (timeout or dropped future); the stream
            // stays in sync because the reply was read all the same.
            trace!(parent: &span, %command, "reply discarded: the caller is gone");
        }
    }

    /// Fails every command in `failed` with a reply that named none of
    /// them.
    fn fail_unattributed(&mut self, reply: ServerMessage, failed: Vec<RequestId>) {
        let (class, desc) = match reply {
            ServerMessage::Error(error) => (Some(error.class), error.desc),
            other => (None, format!("{other:?}")),
        };
        warn!(?class, %desc, in_flight = failed.len(), "a reply without an id failed every command in flight");
        let in_flight = failed.len();
        for id in failed {
            if self.fd_in_flight == Some(id) {
                self.fd_in_flight = None;
            }
            self.forget_text(id);
            if let Some(waiter) = self.waiters.remove(&id) {
                let _ = waiter.reply.send(Err(Error::UnattributedReply {
                    command: waiter.command,
                    in_flight,
                    class: class.clone(),
                    desc: desc.clone(),
                }));
            }
        }
        if self.fd_in_flight.is_none() {
            self.start_deferred();
        }
    }

    /// Ends the connection: the reason is recorded first, then every
    /// waiter, queued request and deferred request fails with it.
    fn terminate(&mut self, reason: Disconnect) {
        if self.result.is_some() {
            return;
        }
        match &reason {
            reason if reason.is_expected() => debug!(%reason, "connection closed"),
            reason => warn!(%reason, "connection lost"),
        }
        self.shared.close(reason.clone());
        self.session.close();
        while self.session.poll_event().is_some() {}
        self.texts.clear();
        self.idless_text = None;
        for (_, waiter) in self.waiters.drain() {
            let _ = waiter.reply.send(Err(Error::Disconnected(reason.clone())));
        }
        self.ops.close();
        while let Ok(op) = self.ops.try_recv() {
            let _ = op.reply.send(Err(Error::Disconnected(reason.clone())));
        }
        for op in self.deferred.drain(..) {
            let _ = op.reply.send(Err(Error::Disconnected(reason.clone())));
        }
        self.out.clear();
        self.chunks.clear();
        self.front_started = false;
        self.result = Some(if reason.is_expected() {
            Ok(())
        } else {
            Err(reason)
        });
    }
}

fn is_peer_gone(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

impl<IO: Transport> Future for Connection<IO> {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        std::task::ready!(this.poll_drive(cx, false));
        match &this.result {
            Some(Ok(())) => Poll::Ready(Ok(())),
            Some(Err(reason)) => Poll::Ready(Err(Error::Disconnected(reason.clone()))),
            None => Poll::Pending,
        }
    }
}

impl<IO> Drop for Connection<IO> {
    fn drop(&mut self) {
        // Waiters see their senders drop; record why first.
        self.shared.close(Disconnect::DriverGone);
    }
}
