//! A sans-IO QMP client session: greeting → negotiation → ready, id
//! allocation, the pending-request table and the queue of what happened.
//!
//! [`Session`] owns no socket, spawns nothing and reads no clock. Whoever
//! drives it (the async client in `qmp-client`, a test, a synchronous tool)
//! feeds it what the server sent and takes out what to send and what
//! happened.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use crate::message::{Capability, ErrorReply, Event, ExecKind, Greeting, Request, ServerMessage};

/// The id the session put on a request. QEMU echoes it in the reply.
///
/// On the wire it is a JSON number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

impl RequestId {
    /// The number sent as the request's `id`.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The id as the JSON value sent on the wire.
    pub fn to_value(self) -> Value {
        Value::from(self.0)
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a [`Session`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Waiting for the server's greeting.
    AwaitingGreeting,
    /// `qmp_capabilities` is sent; waiting for its reply.
    Negotiating,
    /// Commands may be sent.
    Ready,
    /// Negotiation failed or the transport ended; nothing more happens.
    Closed,
}

/// What happened in a [`Session`], taken out with [`Session::poll_event`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The server greeted us; `qmp_capabilities` is queued for transmission.
    Greeting(Greeting),
    /// Negotiation succeeded: commands may be sent.
    Ready {
        /// Whether out-of-band execution (`exec-oob`) was enabled.
        oob: bool,
    },
    /// The server refused `qmp_capabilities`; the session is closed.
    NegotiationFailed(ErrorReply),
    /// The reply to a request sent with [`Session::execute`].
    Reply {
        /// The request's id.
        id: RequestId,
        /// The request's command name.
        command: String,
        /// The return value, or QEMU's error.
        result: Result<Value, ErrorReply>,
    },
    /// An asynchronous event, whenever it arrived (even before the greeting
    /// or during negotiation).
    Event(Event),
    /// A message that fits the protocol's shapes but not the session: a
    /// reply whose id is unknown or was never sent, a reply before the
    /// greeting, a second greeting. Not fatal.
    Unexpected(ServerMessage),
    /// A well-formed JSON value of no known shape (QEMU's schema drifts).
    /// Not fatal.
    Unknown(Value),
    /// A reply without an id while several requests were in flight: it
    /// cannot be matched, and QEMU sends one only for input it could not
    /// parse, so every request in flight is failed with it (their pending
    /// entries are gone; late replies to them become
    /// [`Unexpected`](Self::Unexpected)).
    Unattributed {
        /// The reply (QEMU's error, or a success from a broken peer).
        reply: ServerMessage,
        /// The requests failed with it, in id order.
        failed: Vec<RequestId>,
    },
    /// The session ended (see [`Session::handle_eof`] and [`Session::close`]).
    Closed {
        /// Whether the end follows a `quit` command, which is how QEMU ends
        /// a session on purpose: the expected end, not an error.
        after_quit: bool,
        /// Requests that were still waiting for a reply; they never get one.
        abandoned: Vec<RequestId>,
    },
}

/// Why [`Session::execute`] refused a request. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// Negotiation has not finished: wait for [`SessionEvent::Ready`].
    NotReady,
    /// The session is closed.
    Closed,
    /// An `exec-oob` request, but out-of-band execution was not negotiated
    /// (not wished for, or not offered by the server).
    OobNotNegotiated,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::NotReady => "the QMP session has not finished negotiating",
            Refusal::Closed => "the QMP session is closed",
            Refusal::OobNotNegotiated => {
                "out-of-band execution was not negotiated (ask for `oob`; the server must offer it)"
            }
        })
    }
}

#[derive(Debug)]
struct Pending {
    command: String,
}

/// A QMP client session without I/O.
///
/// # Driving it
///
/// The methods come in four kinds, as in quinn-proto:
/// - getters: [`state`](Self::state), [`greeting`](Self::greeting),
///   [`oob`](Self::oob), [`pending`](Self::pending);
/// - `handle_*`: feed what arrived: [`handle_message`](Self::handle_message)
///   for every decoded server message, [`handle_eof`](Self::handle_eof)
///   when the transport ends;
/// - mutators: [`execute`](Self::execute) queues a request and returns its
///   id, [`close`](Self::close) ends the session locally;
/// - `poll_*`: after any call of the above, take out all requests to send
///   with [`poll_transmit`](Self::poll_transmit) (write them in that order)
///   and everything that happened with [`poll_event`](Self::poll_event),
///   until both return `None`.
///
/// No timeouts live here: the driver decides how long to wait.
///
/// # Protocol details
/// - Events are delivered as [`SessionEvent::Event`] in every state,
///   including before the greeting and between `qmp_capabilities` and its
///   reply: QEMU may send them there, and clients that took them for the
///   reply broke (govmm#90, go-qemu#210).
/// - Replies are matched by id, never by position. A reply with an unknown
///   id is reported as [`SessionEvent::Unexpected`], never fatal.
/// - An in-band request queued while nothing else is in flight goes out
///   without an id: QEMU reads its monitor one byte per `read`, so the
///   seven bytes of `,"id":0` cost about 4% of a `query-status` round trip.
///   QEMU runs in-band requests in order and answers each before reading
///   the next reply's request, so the only reply without an id that can
///   come while it is in flight is its own. Requests queued while others
///   are in flight, and every `exec-oob` request, carry their id.
/// - An error reply without an id is what QEMU sends when it could not
///   read a request at all (so it could not read the id). A reply without
///   an id is given to the only request in flight when there is exactly one
///   (during negotiation that is `qmp_capabilities`, so negotiation fails).
///   With several in flight it cannot be attributed: every one of them
///   fails at once with it ([`SessionEvent::Unattributed`]) rather than
///   waiting for a reply that may never come. With none in flight it is
///   [`SessionEvent::Unexpected`].
/// - End of input while a `quit` is pending completes that `quit`
///   successfully: QEMU may close the socket before its reply is read.
#[derive(Debug)]
pub struct Session {
    state: SessionState,
    want_oob: bool,
    oob: bool,
    greeting: Option<Greeting>,
    next_id: u64,
    negotiation_id: Option<RequestId>,
    pending: HashMap<RequestId, Pending>,
    /// The request in flight that was sent without an id.
    idless: Option<RequestId>,
    quit_sent: bool,
    transmit: VecDeque<Request>,
    events: VecDeque<SessionEvent>,
}

impl Session {
    /// A session waiting for the greeting. With `want_oob`, out-of-band
    /// execution is enabled when the server offers it.
    pub fn new(want_oob: bool) -> Self {
        Self {
            state: SessionState::AwaitingGreeting,
            want_oob,
            oob: false,
            greeting: None,
            next_id: 0,
            negotiation_id: None,
            pending: HashMap::new(),
            idless: None,
            quit_sent: false,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Where the session stands.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The server's greeting, once received.
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_ref()
    }

    /// Whether out-of-band execution was negotiated.
    pub fn oob(&self) -> bool {
        self.oob
    }

    /// How many requests wait for a reply.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The command name of a request still waiting for its reply.
    pub fn pending_command(&self, id: RequestId) -> Option<&str> {
        self.pending
            .get(&id)
            .map(|pending| pending.command.as_str())
    }

    /// Queues `request` for transmission under a fresh id (any id it
    /// carries is replaced) and returns that id. The reply comes as
    /// [`SessionEvent::Reply`] with the same id. On the wire the request
    /// carries the id, unless nothing else is in flight (see the type's
    /// protocol details).
    pub fn execute(&mut self, request: Request) -> Result<RequestId, Refusal> {
        match self.state {
            SessionState::Ready => {}
            SessionState::AwaitingGreeting | SessionState::Negotiating => {
                return Err(Refusal::NotReady);
            }
            SessionState::Closed => return Err(Refusal::Closed),
        }
        if request.kind == ExecKind::ExecOob && !self.oob {
            return Err(Refusal::OobNotNegotiated);
        }
        let idless = self.pending.is_empty() && request.kind == ExecKind::Execute;
        let id = self.send(request);
        if idless {
            self.idless = Some(id);
            if let Some(queued) = self.transmit.back_mut() {
                queued.id = None;
            }
        }
        Ok(id)
    }

    /// Ends the session from our side (the transport failed or we are
    /// leaving). Queues [`SessionEvent::Closed`] listing the requests that
    /// will never be answered. Does nothing if already closed.
    pub fn close(&mut self) {
        self.finish(false);
    }

    /// The transport reached end of input. A pending `quit` is completed
    /// successfully first, then [`SessionEvent::Closed`] is queued; its
    /// `after_quit` tells whether the end was expected.
    pub fn handle_eof(&mut self) {
        self.finish(true);
    }

    /// Feeds one message decoded from the server.
    pub fn handle_message(&mut self, message: ServerMessage) {
        match message {
            ServerMessage::Event(event) => self.events.push_back(SessionEvent::Event(event)),
            ServerMessage::Unknown(value) => self.events.push_back(SessionEvent::Unknown(value)),
            ServerMessage::Greeting(greeting) => self.handle_greeting(greeting),
            ServerMessage::Success(reply) => {
                let id = reply.id.clone();
                self.handle_reply(id, ServerMessage::Success(reply));
            }
            ServerMessage::Error(reply) => {
                let id = reply.id.clone();
                self.handle_reply(id, ServerMessage::Error(reply));
            }
        }
    }

    /// Forgets a request whose caller is gone and that the driver has not
    /// started to write (QEMU will never see it, so no reply will come).
    /// Returns false, changing nothing, when `id` is not pending.
    pub fn abandon(&mut self, id: RequestId) -> bool {
        let Some(pending) = self.pending.remove(&id) else {
            return false;
        };
        if self.idless == Some(id) {
            self.idless = None;
            self.transmit.retain(|request| request.id.is_some());
        } else {
            let wire_id = Some(id.to_value());
            self.transmit.retain(|request| request.id != wire_id);
        }
        if pending.command == "quit" {
            self.quit_sent = self.pending.values().any(|other| other.command == "quit");
        }
        true
    }

    /// The next request to write, in order.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Request> {
        self.transmit.pop_front()
    }

    /// The next thing that happened, in order.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    fn send(&mut self, mut request: Request) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        request.id = Some(id.to_value());
        if request.command == "quit" {
            self.quit_sent = true;
        }
        self.pending.insert(
            id,
            Pending {
                command: request.command.clone(),
            },
        );
        self.transmit.push_back(request);
        id
    }

    fn handle_greeting(&mut self, greeting: Greeting) {
        if self.state != SessionState::AwaitingGreeting {
            self.events
                .push_back(SessionEvent::Unexpected(ServerMessage::Greeting(greeting)));
            return;
        }
        let mut request = Request::new("qmp_capabilities");
        if self.want_oob && greeting.offers_oob() {
            let mut arguments = crate::message::JsonObject::new();
            arguments.insert(
                "enable".to_owned(),
                Value::Array(vec![Value::from(Capability::Oob.as_str())]),
            );
            request = request.with_arguments(arguments);
            self.oob = true;
        }
        self.greeting = Some(greeting.clone());
        self.events.push_back(SessionEvent::Greeting(greeting));
        self.state = SessionState::Negotiating;
        self.negotiation_id = Some(self.send(request));
    }

    fn handle_reply(&mut self, id: Option<Value>, message: ServerMessage) {
        if matches!(
            self.state,
            SessionState::AwaitingGreeting | SessionState::Closed
        ) {
            self.events.push_back(SessionEvent::Unexpected(message));
            return;
        }
        let matched = match &id {
            Some(value) => value
                .as_u64()
                .map(RequestId)
                .filter(|id| self.pending.contains_key(id)),
            // Without an id, a reply is the one to the request sent
            // without one, or else to the only request in flight.
            None if self.idless.is_some() => self.idless,
            None if self.pending.len() == 1 => self.pending.keys().next().copied(),
            None if !self.pending.is_empty() => {
                let mut failed: Vec<RequestId> = self.pending.keys().copied().collect();
                failed.sort_unstable();
                self.pending.clear();
                self.events.push_back(SessionEvent::Unattributed {
                    reply: message,
                    failed,
                });
                return;
            }
            None => None,
        };
        let Some(id) = matched else {
            self.events.push_back(SessionEvent::Unexpected(message));
            return;
        };
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        if self.idless == Some(id) {
            self.idless = None;
        }
        let result = match message {
            ServerMessage::Success(success) => Ok(success.ret),
            ServerMessage::Error(error) => Err(error),
            other => {
                self.events.push_back(SessionEvent::Unexpected(other));
                return;
            }
        };
        if Some(id) == self.negotiation_id {
            self.negotiation_id = None;
            self.finish_negotiation(result);
            return;
        }
        self.events.push_back(SessionEvent::Reply {
            id,
            command: pending.command,
            result,
        });
    }

    fn finish_negotiation(&mut self, result: Result<Value, ErrorReply>) {
        match result {
            Ok(_) => {
                self.state = SessionState::Ready;
                self.events.push_back(SessionEvent::Ready { oob: self.oob });
            }
            Err(error) => {
                self.oob = false;
                self.events
                    .push_back(SessionEvent::NegotiationFailed(error));
                self.finish(false);
            }
        }
    }

    fn finish(&mut self, eof: bool) {
        if self.state == SessionState::Closed {
            return;
        }
        self.state = SessionState::Closed;
        self.transmit.clear();
        self.idless = None;
        let mut ids: Vec<RequestId> = self.pending.keys().copied().collect();
        ids.sort_unstable();
        let mut abandoned = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(pending) = self.pending.remove(&id) else {
                continue;
            };
            if eof && pending.command == "quit" {
                self.events.push_back(SessionEvent::Reply {
                    id,
                    command: pending.command,
                    result: Ok(Value::Object(crate::message::JsonObject::new())),
                });
            } else {
                abandoned.push(id);
            }
        }
        self.events.push_back(SessionEvent::Closed {
            after_quit: eof && self.quit_sent,
            abandoned,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Version;
    use crate::codec::{ClientCodec, ServerCodec};
    use crate::message::{ClientMessage, ErrorClass, JsonObject, Success, Timestamp, VersionInfo};
    use bytes::BytesMut;
    use serde_json::json;
    use tokio_util::codec::{Decoder, Encoder};

    type Handler = Box<dyn FnMut(&Request) -> Vec<ServerMessage>>;

    /// A scripted server: sends `before` on connect, then answers each
    /// request with what the handler returns.
    struct Server {
        outbox: VecDeque<ServerMessage>,
        handler: Handler,
        received: Vec<Request>,
        codec: ServerCodec,
        /// Answer `qmp_capabilities` itself instead of asking the handler.
        auto_negotiate: bool,
    }

    /// A client session and a scripted server (on the production
    /// `ServerCodec`), connected in memory through the wire bytes.
    struct Pair {
        client: Session,
        server: Server,
        codec: ClientCodec,
        seen: Vec<SessionEvent>,
    }

    fn greeting(oob: bool) -> ServerMessage {
        let capabilities = if oob { vec![Capability::Oob] } else { vec![] };
        let version = VersionInfo::new(Version::new(7, 2, 0), "test");
        ServerMessage::Greeting(Greeting::new(version, capabilities))
    }

    fn event(name: &str) -> ServerMessage {
        ServerMessage::Event(Event::new(name, JsonObject::new(), Timestamp::default()))
    }

    fn ok(request: &Request, ret: Value) -> ServerMessage {
        ServerMessage::Success(Success::new(ret, request.id.clone()))
    }

    fn err(request: &Request, class: ErrorClass, desc: &str) -> ServerMessage {
        ServerMessage::Error(ErrorReply::new(class, desc, request.id.clone()))
    }

    /// A handler answering every request with `{}`.
    fn echo() -> Handler {
        Box::new(|request| vec![ok(request, json!({}))])
    }

    impl Pair {
        fn new(want_oob: bool, before: Vec<ServerMessage>, handler: Handler) -> Self {
            Self {
                client: Session::new(want_oob),
                server: Server {
                    outbox: before.into(),
                    handler,
                    received: Vec::new(),
                    codec: ServerCodec::new(),
                    auto_negotiate: false,
                },
                codec: ClientCodec::new(),
                seen: Vec::new(),
            }
        }

        /// Moves one round of messages each way; false when nothing moved.
        fn step(&mut self) -> bool {
            let mut moved = false;
            while let Some(request) = self.client.poll_transmit() {
                moved = true;
                // Through the real codecs, as bytes on a wire.
                let mut wire = BytesMut::new();
                let encoded = ClientCodec::new().encode(request, &mut wire);
                assert!(matches!(encoded, Ok(())), "could not encode: {encoded:?}");
                let decoded = self.server.codec.decode(&mut wire);
                let Ok(Some(ClientMessage::Request(request))) = decoded else {
                    panic!("the session sent a non-request: {decoded:?}");
                };
                let replies = if self.server.auto_negotiate && request.command == "qmp_capabilities"
                {
                    vec![ok(&request, json!({}))]
                } else {
                    (self.server.handler)(&request)
                };
                self.server.received.push(request);
                self.server.outbox.extend(replies);
            }
            while let Some(message) = self.server.outbox.pop_front() {
                moved = true;
                let mut wire = BytesMut::new();
                let encoded = self.server.codec.encode(message, &mut wire);
                assert!(matches!(encoded, Ok(())), "could not encode: {encoded:?}");
                let decoded = self.codec.decode(&mut wire);
                let Ok(Some(message)) = decoded else {
                    panic!("the server's message did not decode: {decoded:?}");
                };
                self.client.handle_message(message);
            }
            while let Some(event) = self.client.poll_event() {
                moved = true;
                self.seen.push(event);
            }
            moved
        }

        /// Steps until idle, failing the test if it never goes idle.
        fn drive(&mut self) {
            for _ in 0..100 {
                if !self.step() {
                    return;
                }
            }
            panic!("the pair never went idle in 100 steps");
        }

        fn take_seen(&mut self) -> Vec<SessionEvent> {
            std::mem::take(&mut self.seen)
        }

        fn ready(want_oob: bool, offer_oob: bool, handler: Handler) -> Self {
            let mut pair = Self::new(want_oob, vec![greeting(offer_oob)], handler);
            pair.server.auto_negotiate = true;
            pair.drive();
            assert_eq!(pair.client.state(), SessionState::Ready);
            pair.take_seen();
            pair
        }
    }

    #[test]
    fn lifecycle_greeting_negotiation_command() {
        let mut pair = Pair::new(
            false,
            vec![greeting(true)],
            Box::new(|request| match request.command.as_str() {
                "query-status" => vec![ok(request, json!({"status": "running"}))],
                _ => vec![ok(request, json!({}))],
            }),
        );
        assert_eq!(pair.client.state(), SessionState::AwaitingGreeting);
        pair.drive();
        let seen = pair.take_seen();
        assert!(matches!(seen[0], SessionEvent::Greeting(_)));
        assert_eq!(seen[1], SessionEvent::Ready { oob: false });
        assert_eq!(pair.server.received[0].command, "qmp_capabilities");
        assert_eq!(pair.server.received[0].arguments, None);
        assert!(pair.server.received[0].id.is_some());

        let id = pair.client.execute(Request::new("query-status"));
        let id = id.unwrap_or_else(|refusal| panic!("refused: {refusal}"));
        assert_eq!(pair.client.pending_command(id), Some("query-status"));
        pair.drive();
        assert_eq!(
            pair.take_seen(),
            vec![SessionEvent::Reply {
                id,
                command: "query-status".into(),
                result: Ok(json!({"status": "running"})),
            }]
        );
        assert_eq!(pair.client.pending(), 0);
    }

    #[test]
    fn oob_is_enabled_only_when_wished_and_offered() {
        for (want, offer, expected) in [
            (true, true, true),
            (true, false, false),
            (false, true, false),
        ] {
            let mut pair = Pair::new(want, vec![greeting(offer)], echo());
            pair.drive();
            assert!(
                pair.take_seen()
                    .contains(&SessionEvent::Ready { oob: expected })
            );
            assert_eq!(pair.client.oob(), expected);
            let arguments = pair.server.received[0].arguments.clone();
            if expected {
                assert_eq!(arguments, json!({"enable": ["oob"]}).as_object().cloned());
                let sent = pair.client.execute(Request::new("x").oob());
                assert!(matches!(sent, Ok(RequestId(_))), "{sent:?}");
            } else {
                assert_eq!(arguments, None);
                assert_eq!(
                    pair.client.execute(Request::new("x").oob()),
                    Err(Refusal::OobNotNegotiated)
                );
            }
        }
    }

    #[test]
    fn events_before_greeting_and_during_negotiation_are_events() {
        let mut pair = Pair::new(
            false,
            vec![event("EARLY"), greeting(false)],
            Box::new(|request| vec![event("MIDDLE"), ok(request, json!({}))]),
        );
        pair.drive();
        let seen = pair.take_seen();
        let names: Vec<&str> = seen
            .iter()
            .filter_map(|seen| match seen {
                SessionEvent::Event(event) => Some(event.name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["EARLY", "MIDDLE"]);
        assert_eq!(seen.last(), Some(&SessionEvent::Ready { oob: false }));
    }

    #[test]
    fn commands_before_ready_are_refused() {
        let mut pair = Pair::new(false, vec![], echo());
        assert_eq!(
            pair.client.execute(Request::new("query-status")),
            Err(Refusal::NotReady)
        );
        pair.drive();
        assert!(pair.take_seen().is_empty());
    }

    #[test]
    fn replies_with_unknown_ids_are_reported_not_fatal() {
        let mut pair = Pair::ready(
            false,
            false,
            Box::new(|request| {
                let stray = ServerMessage::Success(Success::new(json!(1), Some(json!("nope"))));
                let unsent = ServerMessage::Success(Success::new(json!(2), Some(json!(999))));
                vec![stray, unsent, ok(request, json!(3))]
            }),
        );
        let id = pair.client.execute(Request::new("a"));
        pair.drive();
        let seen = pair.take_seen();
        assert_eq!(seen.len(), 3);
        assert!(matches!(seen[0], SessionEvent::Unexpected(_)));
        assert!(matches!(seen[1], SessionEvent::Unexpected(_)));
        assert_eq!(
            seen[2],
            SessionEvent::Reply {
                id: id.unwrap_or(RequestId(u64::MAX)),
                command: "a".into(),
                result: Ok(json!(3)),
            }
        );
        assert_eq!(pair.client.state(), SessionState::Ready);
    }

    #[test]
    fn replies_out_of_order_are_matched_by_id() {
        let held: std::rc::Rc<std::cell::RefCell<Vec<ServerMessage>>> = Default::default();
        let queue = held.clone();
        let mut pair = Pair::ready(
            false,
            false,
            Box::new(move |request| {
                let mut held = queue.borrow_mut();
                held.push(ok(request, json!(request.command)));
                if held.len() == 3 {
                    held.drain(..).rev().collect()
                } else {
                    vec![]
                }
            }),
        );
        let ids: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .filter_map(|name| pair.client.execute(Request::new(name)).ok())
            .collect();
        pair.drive();
        let replies: Vec<(RequestId, Value)> = pair
            .take_seen()
            .into_iter()
            .filter_map(|seen| match seen {
                SessionEvent::Reply { id, result, .. } => Some((id, result.ok()?)),
                _ => None,
            })
            .collect();
        assert_eq!(
            replies,
            vec![
                (ids[2], json!("c")),
                (ids[1], json!("b")),
                (ids[0], json!("a"))
            ]
        );
    }

    #[test]
    fn error_replies_carry_class_and_desc() {
        let mut pair = Pair::ready(
            false,
            false,
            Box::new(|request| vec![err(request, ErrorClass::CommandNotFound, "no such")]),
        );
        // Something in flight, so `bogus` carries its id on the wire.
        let _first = pair.client.execute(Request::new("first"));
        let id = pair.client.execute(Request::new("bogus"));
        pair.drive();
        let mut seen = pair.take_seen();
        let _first = seen.remove(0);
        assert_eq!(
            seen,
            vec![SessionEvent::Reply {
                id: id.unwrap_or(RequestId(u64::MAX)),
                command: "bogus".into(),
                result: Err(ErrorReply::new(
                    ErrorClass::CommandNotFound,
                    "no such",
                    id.ok().map(RequestId::to_value)
                )),
            }]
        );
    }

    #[test]
    fn id_less_errors_go_to_the_only_request_in_flight_else_are_reported() {
        let idless = || {
            ServerMessage::Error(ErrorReply::new(
                ErrorClass::GenericError,
                "JSON parse error",
                None,
            ))
        };
        let mut pair = Pair::ready(false, false, Box::new(move |_| vec![idless()]));
        let only = pair.client.execute(Request::new("one"));
        pair.drive();
        let seen = pair.take_seen();
        assert!(matches!(
            &seen[..],
            [SessionEvent::Reply { id, result: Err(_), .. }] if Ok(*id) == only
        ));

        // Two in flight with ids (the first request, sent without one, is
        // answered): the error cannot be attributed, so both fail.
        let mut pair = Pair::ready(false, false, Box::new(|_| vec![]));
        let _zero = pair.client.execute(Request::new("zero"));
        let one = pair.client.execute(Request::new("one"));
        let two = pair.client.execute(Request::new("two"));
        pair.drive();
        pair.client
            .handle_message(ServerMessage::Success(Success::new(json!({}), None)));
        pair.step();
        let _ = pair.take_seen();
        pair.client.handle_message(idless());
        pair.step();
        let seen = pair.take_seen();
        let expected: Result<Vec<RequestId>, Refusal> = one.and_then(|one| Ok(vec![one, two?]));
        assert!(
            matches!(
                &seen[..],
                [SessionEvent::Unattributed { reply: ServerMessage::Error(_), failed }]
                    if Ok(failed) == expected.as_ref()
            ),
            "{seen:?}"
        );
        assert_eq!(pair.client.pending(), 0);

        // A success without an id goes to the only request in flight too.
        let mut pair = Pair::ready(
            false,
            false,
            Box::new(|_| vec![ServerMessage::Success(Success::new(json!(7), None))]),
        );
        let only = pair.client.execute(Request::new("one"));
        pair.drive();
        let seen = pair.take_seen();
        assert!(
            matches!(
                &seen[..],
                [SessionEvent::Reply { id, result: Ok(value), .. }]
                    if Ok(*id) == only && *value == json!(7)
            ),
            "{seen:?}"
        );

        // None in flight: a stray, reported.
        pair.client.handle_message(idless());
        pair.step();
        let seen = pair.take_seen();
        assert!(
            matches!(&seen[..], [SessionEvent::Unexpected(_)]),
            "{seen:?}"
        );
    }

    #[test]
    fn abandoned_requests_are_forgotten_and_never_transmitted() {
        let mut pair = Pair::ready(false, false, echo());
        let Ok(kept) = pair.client.execute(Request::new("kept")) else {
            panic!("not ready");
        };
        let Ok(gone) = pair.client.execute(Request::new("gone")) else {
            panic!("not ready");
        };
        assert!(pair.client.abandon(gone));
        assert!(!pair.client.abandon(gone), "abandoned twice");
        pair.drive();
        let commands: Vec<&str> = pair
            .server
            .received
            .iter()
            .map(|request| request.command.as_str())
            .collect();
        assert_eq!(commands, ["qmp_capabilities", "kept"]);
        let seen = pair.take_seen();
        assert!(
            matches!(&seen[..], [SessionEvent::Reply { id, .. }] if *id == kept),
            "{seen:?}"
        );
    }

    #[test]
    fn an_id_less_error_during_negotiation_fails_it() {
        let mut pair = Pair::new(
            false,
            vec![greeting(false)],
            Box::new(|_| {
                vec![ServerMessage::Error(ErrorReply::new(
                    ErrorClass::GenericError,
                    "bad",
                    None,
                ))]
            }),
        );
        pair.drive();
        let seen = pair.take_seen();
        assert!(matches!(seen[1], SessionEvent::NegotiationFailed(_)));
        assert_eq!(pair.client.state(), SessionState::Closed);
    }

    #[test]
    fn refused_negotiation_closes_the_session() {
        let mut pair = Pair::new(
            true,
            vec![greeting(true)],
            Box::new(|request| vec![err(request, ErrorClass::GenericError, "no oob for you")]),
        );
        pair.drive();
        let seen = pair.take_seen();
        assert!(matches!(&seen[1], SessionEvent::NegotiationFailed(error)
            if error.desc == "no oob for you"));
        assert!(
            matches!(&seen[2], SessionEvent::Closed { after_quit: false, abandoned }
            if abandoned.is_empty())
        );
        assert_eq!(pair.client.execute(Request::new("x")), Err(Refusal::Closed));
        assert!(!pair.client.oob());
    }

    #[test]
    fn replies_before_the_greeting_and_second_greetings_are_unexpected() {
        let stray = ServerMessage::Success(Success::new(json!({}), Some(json!(0))));
        let mut pair = Pair::new(false, vec![stray, greeting(false)], echo());
        pair.drive();
        let seen = pair.take_seen();
        assert!(matches!(seen[0], SessionEvent::Unexpected(_)));
        assert_eq!(seen.last(), Some(&SessionEvent::Ready { oob: false }));
        pair.client.handle_message(greeting(false));
        pair.step();
        assert!(matches!(
            &pair.take_seen()[..],
            [SessionEvent::Unexpected(ServerMessage::Greeting(_))]
        ));
    }

    #[test]
    fn unknown_messages_are_delivered_not_fatal() {
        let mut pair = Pair::ready(false, false, echo());
        pair.client
            .handle_message(ServerMessage::Unknown(json!({"weird": 1})));
        pair.step();
        assert_eq!(
            pair.take_seen(),
            vec![SessionEvent::Unknown(json!({"weird": 1}))]
        );
        assert_eq!(pair.client.state(), SessionState::Ready);
    }

    #[test]
    fn eof_after_quit_completes_quit_and_is_expected() {
        // QEMU may close before its reply to `quit` is read.
        let mut pair = Pair::ready(
            false,
            false,
            Box::new(|request| match request.command.as_str() {
                "quit" => vec![event("SHUTDOWN")],
                _ => vec![],
            }),
        );
        let slow = pair.client.execute(Request::new("query-status"));
        let quit = pair.client.execute(Request::new("quit"));
        pair.drive();
        pair.client.handle_eof();
        pair.step();
        let seen = pair.take_seen();
        assert!(matches!(&seen[0], SessionEvent::Event(event) if event.name == "SHUTDOWN"));
        assert!(
            matches!(&seen[1], SessionEvent::Reply { id, result: Ok(_), .. }
            if Ok(*id) == quit)
        );
        assert!(
            matches!(&seen[2], SessionEvent::Closed { after_quit: true, abandoned }
            if abandoned.iter().map(|id| Ok(*id)).eq([slow]))
        );
        assert_eq!(pair.client.state(), SessionState::Closed);
    }

    #[test]
    fn eof_without_quit_abandons_pending_requests() {
        let mut pair = Pair::ready(false, false, Box::new(|_| vec![]));
        let a = pair.client.execute(Request::new("a"));
        let b = pair.client.execute(Request::new("b"));
        pair.drive();
        pair.client.handle_eof();
        pair.client.handle_eof();
        pair.step();
        let seen = pair.take_seen();
        assert_eq!(seen.len(), 1, "a second EOF changes nothing: {seen:?}");
        assert!(
            matches!(&seen[0], SessionEvent::Closed { after_quit: false, abandoned }
            if abandoned.iter().map(|id| Ok(*id)).eq([a, b]))
        );
        assert_eq!(pair.client.execute(Request::new("c")), Err(Refusal::Closed));
    }

    #[test]
    fn ids_are_fresh_and_replace_caller_ids() {
        let mut pair = Pair::ready(false, false, echo());
        let first = pair.client.execute(Request::new("a").with_id("mine"));
        let second = pair.client.execute(Request::new("b"));
        let third = pair.client.execute(Request::new("c"));
        pair.drive();
        assert_ne!(first, second);
        assert_ne!(second, third);
        let sent: Vec<Option<Value>> = pair.server.received[1..]
            .iter()
            .map(|request| request.id.clone())
            .collect();
        // The first goes without an id (nothing else in flight); the
        // others carry theirs.
        let expected = vec![
            None,
            second.ok().map(RequestId::to_value),
            third.ok().map(RequestId::to_value),
        ];
        assert_eq!(sent, expected);
        let seen = pair.take_seen();
        let answered: Vec<RequestId> = seen
            .iter()
            .filter_map(|event| match event {
                SessionEvent::Reply { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(Ok(answered), [first, second, third].into_iter().collect());
    }

    #[test]
    fn the_idless_request_gets_the_idless_reply_even_with_others_in_flight() {
        let mut pair = Pair::ready(false, false, Box::new(|_| vec![]));
        let first = pair.client.execute(Request::new("a"));
        let second = pair.client.execute(Request::new("b"));
        pair.drive();
        pair.client
            .handle_message(ServerMessage::Success(Success::new(json!("a"), None)));
        let seen = pair.take_seen();
        pair.step();
        let seen = [seen, pair.take_seen()].concat();
        assert!(
            matches!(&seen[..], [SessionEvent::Reply { id, result: Ok(value), .. }]
                if Ok(*id) == first && *value == json!("a")),
            "{seen:?}"
        );
        assert_eq!(pair.client.pending(), 1);
        // A second id-less reply now has only `b` to go to.
        pair.client
            .handle_message(ServerMessage::Success(Success::new(json!("b"), None)));
        pair.step();
        let seen = pair.take_seen();
        assert!(
            matches!(&seen[..], [SessionEvent::Reply { id, .. }] if Ok(*id) == second),
            "{seen:?}"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A reply order (a permutation of `0..n`) and where events go.
        fn script() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
            (1usize..12).prop_flat_map(|n| {
                (
                    Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
                    prop::collection::vec(0..=n, 0..10),
                )
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            #[test]
            fn any_reply_order_with_interleaved_events_matches_every_request(
                (order, event_slots) in script()
            ) {
                let received: std::rc::Rc<std::cell::RefCell<Vec<Request>>> = Default::default();
                let sink = received.clone();
                let mut pair = Pair::ready(false, false, Box::new(move |request| {
                    sink.borrow_mut().push(request.clone());
                    vec![]
                }));
                let ids: Vec<RequestId> = (0..order.len())
                    .filter_map(|n| pair.client.execute(Request::new(format!("c{n}"))).ok())
                    .collect();
                pair.drive();
                prop_assert!(pair.take_seen().is_empty());

                // Replies in the scripted order, events between them.
                let requests = received.borrow().clone();
                let mut script = Vec::new();
                let mut next_event = 0;
                for (slot, &which) in order.iter().enumerate() {
                    for _ in event_slots.iter().filter(|&&at| at == slot) {
                        script.push(event(&format!("E{next_event}")));
                        next_event += 1;
                    }
                    let request = &requests[which];
                    script.push(ok(request, json!(request.command)));
                }
                for _ in event_slots.iter().filter(|&&at| at == order.len()) {
                    script.push(event(&format!("E{next_event}")));
                    next_event += 1;
                }
                pair.server.outbox.extend(script);
                pair.drive();

                let mut events = Vec::new();
                let mut replies = HashMap::new();
                for seen in pair.take_seen() {
                    match seen {
                        SessionEvent::Event(event) => events.push(event.name),
                        SessionEvent::Reply { id, command, result } => {
                            prop_assert_eq!(result, Ok(json!(command.clone())));
                            prop_assert!(replies.insert(id, command).is_none());
                        }
                        other => prop_assert!(false, "unexpected {:?}", other),
                    }
                }
                let expected: Vec<String> = (0..next_event).map(|n| format!("E{n}")).collect();
                prop_assert_eq!(events, expected);
                prop_assert_eq!(replies.len(), ids.len());
                for (n, id) in ids.iter().enumerate() {
                    prop_assert_eq!(replies.get(id), Some(&format!("c{n}")));
                }
                prop_assert_eq!(pair.client.pending(), 0);
            }
        }
    }
}
