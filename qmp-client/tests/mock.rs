//! The client against the mock QEMU: protocol, concurrency, cancellation,
//! events and every injected fault. Each test runs under a timeout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use qmp_client::mock::{Fault, MockQemu, Reply, event};
use qmp_client::{Client, Config, Disconnect, Error, Step};
use qmp_proto::commands::{QueryStatus, RunState};
use qmp_proto::{Capability, ErrorClass, Greeting};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(10);

/// Fails the test instead of hanging it.
async fn bounded<F: Future>(future: F) -> F::Output {
    match tokio::time::timeout(LIMIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("the test did not finish within {LIMIT:?}"),
    }
}

async fn connect(mock: MockQemu, config: &Config) -> (Client, qmp_client::mock::MockHandle) {
    let (io, handle) = mock.serve_pair();
    match Client::from_stream(io, config).await {
        Ok(client) => (client, handle),
        Err(error) => panic!("handshake failed: {error}"),
    }
}

/// A mock whose `echo` command returns its arguments, so each reply
/// names the request it answers.
fn echo_mock() -> MockQemu {
    MockQemu::new().on("echo", |request| {
        Reply::Return(
            request
                .arguments
                .clone()
                .map(Value::Object)
                .unwrap_or_default(),
        )
    })
}

fn short() -> Config {
    Config::default()
        .handshake_timeout(Some(Duration::from_millis(300)))
        .command_timeout(Some(Duration::from_secs(5)))
}

#[tokio::test]
async fn handshake_typed_and_raw_commands() {
    bounded(async {
        let (client, mock) = connect(MockQemu::new(), &Config::default()).await;
        assert_eq!(client.greeting().version.qemu.major, 7);
        let status = client.execute(QueryStatus).await;
        assert!(
            matches!(&status, Ok(info) if info.running && info.status == RunState::Running),
            "{status:?}"
        );
        let raw = client.execute_raw("query-status", None).await.ok();
        assert_eq!(
            raw.and_then(|v| v.get("status").cloned()),
            Some(json!("running"))
        );
        let received: Vec<String> = mock.received().into_iter().map(|r| r.command).collect();
        assert_eq!(
            received,
            ["qmp_capabilities", "query-status", "query-status"]
        );
    })
    .await;
}

#[tokio::test]
async fn qmp_errors_carry_class_desc_and_command() {
    bounded(async {
        let mock = MockQemu::new().on("fail", |_| {
            Reply::Error(ErrorClass::GenericError, "it broke".into())
        });
        let (client, _mock) = connect(mock, &Config::default()).await;
        let error = client.execute_raw("no-such-command", None).await;
        assert!(
            matches!(&error, Err(Error::Qmp { command, class: ErrorClass::CommandNotFound, .. })
            if command == "no-such-command"),
            "{error:?}"
        );
        let error = client.execute_raw("fail", None).await;
        assert!(
            matches!(&error, Err(Error::Qmp { class: ErrorClass::GenericError, desc, .. })
            if desc == "it broke"),
            "{error:?}"
        );
        // The connection is fine afterwards.
        let status = client.execute(QueryStatus).await;
        assert!(matches!(&status, Ok(info) if info.running), "{status:?}");
    })
    .await;
}

#[tokio::test]
async fn oob_only_when_negotiated() {
    bounded(async {
        let mock = MockQemu::new().on("x", |_| Reply::Return(json!(1)));
        let (client, mock) = connect(mock, &Config::default().oob(true)).await;
        assert_eq!(client.execute_oob_raw("x", None).await.ok(), Some(json!(1)));
        let received = mock.received();
        assert_eq!(
            received[0].arguments,
            json!({"enable": ["oob"]}).as_object().cloned()
        );
        assert_eq!(received[1].kind, qmp_proto::ExecKind::ExecOob);

        let (client, _mock) = connect(MockQemu::new(), &Config::default()).await;
        let error = client.execute_oob_raw("x", None).await;
        assert!(
            matches!(error, Err(Error::OobNotNegotiated { .. })),
            "{error:?}"
        );

        // Wished for but not offered.
        let greeting = Greeting::new(Default::default(), vec![]);
        let (client, _mock) = connect(
            MockQemu::new().greeting(greeting),
            &Config::default().oob(true),
        )
        .await;
        assert!(!client.greeting().capabilities.contains(&Capability::Oob));
        let error = client.execute_oob_raw("x", None).await;
        assert!(
            matches!(error, Err(Error::OobNotNegotiated { .. })),
            "{error:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn events_before_greeting_and_during_negotiation_are_kept() {
    bounded(async {
        let mock = MockQemu::new()
            .event_before_greeting(event("EARLY", json!({"n": 1})))
            .event_during_negotiation(event("MIDDLE", json!({"n": 2})));
        let (client, _mock) = connect(mock, &Config::default()).await;
        let early = client.wait_event("EARLY", None, Some(LIMIT)).await;
        assert!(
            matches!(&early, Ok(e) if e.data.get("n") == Some(&json!(1))),
            "{early:?}"
        );
        let filter = json!({"data": {"n": 2}});
        let middle = client
            .wait_event("MIDDLE", Some(&filter), Some(LIMIT))
            .await;
        assert!(
            matches!(&middle, Ok(event) if event.name == "MIDDLE"),
            "{middle:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn wait_event_matches_and_consumes_once() {
    bounded(async {
        let (client, mock) = connect(MockQemu::new(), &Config::default()).await;
        mock.inject_event(event("DEVICE_DELETED", json!({"device": "d1"})));
        mock.inject_event(event("DEVICE_DELETED", json!({"device": "d0"})));
        let filter = json!({"data": {"device": "d0"}});
        let found = client
            .wait_event("DEVICE_DELETED", Some(&filter), Some(LIMIT))
            .await;
        assert!(matches!(&found, Ok(e) if e.data.get("device") == Some(&json!("d0"))));
        // Consumed: a second wait does not find it again.
        let again = client
            .wait_event(
                "DEVICE_DELETED",
                Some(&filter),
                Some(Duration::from_millis(50)),
            )
            .await;
        assert!(
            matches!(again, Err(Error::EventTimeout { .. })),
            "{again:?}"
        );
        // The other one is still there.
        let other = client.wait_event("DEVICE_DELETED", None, Some(LIMIT)).await;
        assert!(
            matches!(&other, Ok(event) if event.name == "DEVICE_DELETED"),
            "{other:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn subscribing_before_a_command_sees_its_event() {
    bounded(async {
        let (client, _mock) = connect(MockQemu::new(), &Config::default()).await;
        let waiter = client.event_waiter("STOP", None);
        let mut events = client.events();
        let outcome = client.execute_raw("stop", None).await;
        assert!(
            matches!(&outcome, Ok(value) if *value == json!({})),
            "{outcome:?}"
        );
        let outcome = waiter.wait(Some(LIMIT)).await;
        assert!(
            matches!(&outcome, Ok(event) if event.name == "STOP"),
            "{outcome:?}"
        );
        let seen = events.recv().await;
        assert!(matches!(&seen, Some(Ok(e)) if e.name == "STOP"), "{seen:?}");
        // A waiter made now ignores the older STOP.
        let late = client.event_waiter("STOP", None);
        let late = late.wait(Some(Duration::from_millis(50))).await;
        assert!(matches!(late, Err(Error::EventTimeout { .. })), "{late:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_are_matched_by_id() {
    bounded(async {
        let mock = echo_mock()
            // Each task has one command in flight, so ten held replies are
            // one from every task, released in reverse.
            .fault(Fault::OutOfOrder(10));
        let (client, _mock) = connect(mock, &Config::default()).await;
        let mut tasks = Vec::new();
        for task in 0..10 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..70 {
                    let args = json!({"task": task, "n": n});
                    let reply = client.execute_raw("echo", args.as_object().cloned()).await;
                    assert_eq!(reply.ok(), Some(args));
                }
            }));
        }
        for task in tasks {
            let joined = task.await;
            assert!(matches!(&joined, Ok(())), "{joined:?}");
        }
    })
    .await;
}

/// Polls the inner future `polls` times, then drops it (tokio-postgres'
/// `Cancellable`).
struct Cancellable<F> {
    future: Pin<Box<F>>,
    polls: usize,
}

impl<F: Future> Future for Cancellable<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.polls == 0 {
            return Poll::Ready(None);
        }
        self.polls -= 1;
        self.future.as_mut().poll(cx).map(Some)
    }
}

#[tokio::test]
async fn dropping_execute_at_every_poll_point_keeps_the_stream_in_sync() {
    bounded(async {
        let mock = echo_mock().fault(Fault::SplitIntoBytes);
        let (client, _mock) = connect(mock, &Config::default()).await;
        let mut completed = false;
        for polls in 0..10_000 {
            let args = json!({"cancelled": polls});
            let future = Box::pin(client.execute_raw("echo", args.as_object().cloned()));
            let outcome = Cancellable { future, polls }.await;
            // Whatever happened to it, the next command gets its own reply.
            let check = json!({"check": polls});
            let reply = client.execute_raw("echo", check.as_object().cloned()).await;
            assert_eq!(reply.ok(), Some(check), "out of sync after {polls} polls");
            if let Some(result) = outcome {
                assert_eq!(result.ok(), Some(args));
                completed = true;
                break;
            }
        }
        assert!(completed, "the command never completed");
    })
    .await;
}

#[tokio::test]
async fn a_timed_out_command_abandons_only_its_waiter() {
    bounded(async {
        let mock = MockQemu::new().on("never", |_| Reply::Silent);
        let (client, _mock) = connect(mock, &Config::default()).await;
        let error = client
            .execute_raw_with_timeout("never", None, Some(Duration::from_millis(20)))
            .await;
        assert!(matches!(&error, Err(Error::CommandTimeout { command, .. }) if command == "never"));
        let status = client.execute(QueryStatus).await;
        assert!(matches!(&status, Ok(info) if info.running), "{status:?}");
        let error = client
            .execute_with_timeout(QueryStatus, Some(Duration::from_secs(5)))
            .await;
        assert!(matches!(&error, Ok(info) if info.running), "{error:?}");
    })
    .await;
}

#[tokio::test]
async fn a_slow_subscriber_lags_without_delaying_replies() {
    bounded(async {
        let config = Config::default().event_buffer(8).event_backlog(16);
        let (client, _mock) = connect(MockQemu::new().fault(Fault::EventFlood(100)), &config).await;
        let mut events = client.events();
        for _ in 0..5 {
            let status = client.execute(QueryStatus).await;
            assert!(matches!(&status, Ok(info) if info.running), "{status:?}");
        }
        let first = events.recv().await;
        assert!(
            matches!(first, Some(Err(qmp_client::Lagged { missed })) if missed > 0),
            "{first:?}"
        );
        let next = events.recv().await;
        assert!(
            matches!(&next, Some(Ok(e)) if e.name == "FLOOD"),
            "{next:?}"
        );
        // The bounded backlog still serves waits.
        let outcome = client.wait_event("FLOOD", None, Some(LIMIT)).await;
        assert!(
            matches!(&outcome, Ok(event) if event.name == "FLOOD"),
            "{outcome:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn peer_close_fails_everything_pending_at_once() {
    bounded(async {
        let mock = MockQemu::new().on("never", |_| Reply::Silent);
        let (client, mock) = connect(mock, &Config::default()).await;
        let mut pending = Vec::new();
        for _ in 0..5 {
            let client = client.clone();
            pending.push(tokio::spawn(async move {
                client.execute_raw_with_timeout("never", None, None).await
            }));
        }
        let waiter = {
            let client = client.clone();
            tokio::spawn(async move { client.wait_event("NEVER", None, None).await })
        };
        let mut events = client.events();
        // Every command has reached the mock before it closes.
        while mock.received().len() < 6 {
            tokio::task::yield_now().await;
        }
        mock.close();
        for task in pending {
            let result = task.await.ok();
            assert!(
                matches!(
                    result,
                    Some(Err(Error::Disconnected(Disconnect::PeerClosed)))
                ),
                "{result:?}"
            );
        }
        let result = waiter.await.ok();
        assert!(matches!(
            result,
            Some(Err(Error::Disconnected(Disconnect::PeerClosed)))
        ));
        assert!(matches!(client.closed().await, Disconnect::PeerClosed));
        assert!(matches!(
            client.close_reason(),
            Some(Disconnect::PeerClosed)
        ));
        assert!(events.recv().await.is_none());
        // Later calls fail at once.
        let later = client.execute(QueryStatus).await;
        assert!(
            matches!(later, Err(Error::Disconnected(Disconnect::PeerClosed))),
            "{later:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn eof_after_quit_is_success() {
    bounded(async {
        let (client, _mock) = connect(MockQemu::new(), &Config::default()).await;
        let quit = client.execute(qmp_proto::commands::Quit).await;
        assert!(matches!(&quit, Ok(qmp_proto::Empty)), "{quit:?}");
        assert!(matches!(client.closed().await, Disconnect::Quit));
        let shutdown = client
            .wait_for::<qmp_proto::events::Shutdown>(None, Some(LIMIT))
            .await;
        assert!(matches!(&shutdown, Ok(s) if !s.guest), "{shutdown:?}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_connection_task_ends_when_the_last_client_drops() {
    let (io, mock) = MockQemu::new().serve_pair();
    let (client, connection) = match qmp_client::handshake(io, &Config::default()).await {
        Ok(pair) => pair,
        Err(error) => panic!("{error}"),
    };
    let task = tokio::spawn(connection);
    let other = client.clone();
    let events = client.events();
    drop(client);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(!task.is_finished(), "a clone is still alive");
    drop(other);
    let ended = tokio::time::timeout(Duration::from_secs(1), task).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
    // The mock saw the connection close.
    let stopped = tokio::time::timeout(Duration::from_secs(1), mock.stopped()).await;
    assert!(matches!(stopped, Ok(())), "{stopped:?}");
    drop(events);
}

#[tokio::test]
async fn fds_need_a_unix_socket() {
    bounded(async {
        let mock = MockQemu::new().on("add-fd", |_| Reply::Return(json!({"fdset-id": 3, "fd": 9})));
        let (client, mock_handle) = connect(mock.clone(), &Config::default()).await;
        let file = tempfile::tempfile().ok();
        let Some(file) = file else {
            panic!("no temp file")
        };
        let info = client.add_fd(&file, None).await;
        assert!(
            matches!(&info, Ok(info) if info.fdset_id == 3 && info.fd == 9),
            "{info:?}"
        );
        assert_eq!(mock_handle.received()[1].command, "add-fd");

        let (ours, theirs) = tokio::io::duplex(4096);
        let _served = mock.serve(theirs);
        let client = Client::from_stream(ours, &Config::default()).await;
        let Ok(client) = client else {
            panic!("handshake failed")
        };
        let error = client.add_fd(&file, None).await;
        assert!(
            matches!(error, Err(Error::FdPassingUnsupported { .. })),
            "{error:?}"
        );
        let status = client.execute(QueryStatus).await;
        assert!(matches!(&status, Ok(info) if info.running), "{status:?}");
    })
    .await;
}

// ---- faults ----

async fn handshake_error(mock: MockQemu) -> Error {
    let (io, _mock) = mock.serve_pair();
    match Client::from_stream(io, &short()).await {
        Ok(_) => panic!("the handshake should have failed"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn fault_no_greeting_times_out_naming_the_step() {
    let error = bounded(handshake_error(MockQemu::new().fault(Fault::NoGreeting))).await;
    assert!(
        matches!(
            error,
            Error::Timeout {
                step: Step::Greeting,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("another client may hold the monitor")
    );
}

#[tokio::test]
async fn fault_bad_greeting_is_not_qmp() {
    let error = bounded(handshake_error(MockQemu::new().fault(Fault::BadGreeting))).await;
    assert!(
        matches!(
            &error,
            Error::NotQmp { first_message } if first_message["QMP"]["version"] == "seven"
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn fault_stall_after_greeting_times_out_in_negotiation() {
    let error = bounded(handshake_error(
        MockQemu::new().fault(Fault::StallNegotiation),
    ))
    .await;
    assert!(
        matches!(
            error,
            Error::Timeout {
                step: Step::Negotiation,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("qmp_capabilities"));
}

#[tokio::test]
async fn fault_garbage_is_a_protocol_error_for_everyone_pending() {
    bounded(async {
        let mock = MockQemu::new().fault(Fault::Garbage(b"\x00\x01 not json\r\n".to_vec()));
        let (client, _mock) = connect(mock, &Config::default()).await;
        let error = client.execute(QueryStatus).await;
        assert!(
            matches!(&error, Err(Error::Disconnected(Disconnect::Protocol(e)))
            if matches!(**e, qmp_proto::Error::UnexpectedByte { .. })),
            "{error:?}"
        );
        assert!(matches!(client.closed().await, Disconnect::Protocol(_)));
    })
    .await;
}

#[tokio::test]
async fn fault_messages_split_into_single_bytes_decode() {
    bounded(async {
        let mock = MockQemu::new().fault(Fault::SplitIntoBytes);
        let (client, _mock) = connect(mock, &Config::default()).await;
        for _ in 0..3 {
            let status = client.execute(QueryStatus).await;
            assert!(matches!(&status, Ok(info) if info.running), "{status:?}");
        }
        let outcome = client.execute_raw("stop", None).await;
        assert!(
            matches!(&outcome, Ok(value) if *value == json!({})),
            "{outcome:?}"
        );
        let outcome = client.wait_event("STOP", None, Some(LIMIT)).await;
        assert!(
            matches!(&outcome, Ok(event) if event.name == "STOP"),
            "{outcome:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn fault_oversize_message_is_refused() {
    bounded(async {
        let mock = MockQemu::new().fault(Fault::Oversize(64 * 1024));
        let (client, _mock) = connect(mock, &Config::default().max_message_size(4096)).await;
        let error = client.execute(QueryStatus).await;
        assert!(
            matches!(&error, Err(Error::Disconnected(Disconnect::Protocol(e)))
            if matches!(**e, qmp_proto::Error::MessageTooLarge { limit: 4096, .. })),
            "{error:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn fault_eof_mid_message_is_truncation() {
    bounded(async {
        let (client, _mock) = connect(
            MockQemu::new().fault(Fault::EofMidMessage),
            &Config::default(),
        )
        .await;
        let error = client.execute(QueryStatus).await;
        assert!(
            matches!(&error, Err(Error::Disconnected(Disconnect::Protocol(e)))
            if matches!(**e, qmp_proto::Error::Truncated { .. })),
            "{error:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn fault_unknown_id_replies_are_ignored() {
    bounded(async {
        let (client, _mock) = connect(
            MockQemu::new().fault(Fault::UnknownIdReply),
            &Config::default(),
        )
        .await;
        for _ in 0..3 {
            let status = client.execute(QueryStatus).await;
            assert!(matches!(&status, Ok(info) if info.running), "{status:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn fault_replies_out_of_order_are_matched() {
    bounded(async {
        let mock = echo_mock().fault(Fault::OutOfOrder(3));
        let (client, _mock) = connect(mock, &Config::default()).await;
        let calls = (0..3).map(|n| {
            let args = json!({"n": n});
            let client = client.clone();
            async move {
                (
                    client
                        .execute_raw("echo", args.as_object().cloned())
                        .await
                        .ok(),
                    args,
                )
            }
        });
        for (reply, args) in futures::future::join_all(calls).await {
            assert_eq!(reply, Some(args));
        }
    })
    .await;
}

#[tokio::test]
async fn fault_event_flood_during_commands() {
    bounded(async {
        let mock = MockQemu::new().fault(Fault::EventFlood(500));
        let (client, _mock) = connect(mock, &Config::default().event_buffer(16)).await;
        let _never_read = client.events();
        let calls = (0..20).map(|_| client.execute(QueryStatus));
        for status in futures::future::join_all(calls).await {
            assert!(matches!(&status, Ok(info) if info.running), "{status:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn fault_stall_times_commands_out_and_the_client_stays_usable() {
    bounded(async {
        let (client, _mock) =
            connect(MockQemu::new().fault(Fault::Stall), &Config::default()).await;
        let error = client
            .execute_with_timeout(QueryStatus, Some(Duration::from_millis(50)))
            .await;
        assert!(
            matches!(error, Err(Error::CommandTimeout { .. })),
            "{error:?}"
        );
        assert!(!client.is_closed());
    })
    .await;
}

/// The version policy, where only a mock can act it out: a QEMU build that
/// lacks a command its release normally has. (The refusals before sending
/// are tested against both real QEMUs in `tests/qemu.rs`.)
#[tokio::test]
async fn command_not_found_for_a_typed_command_names_the_version() {
    bounded(async {
        let (client, mock) = connect(MockQemu::new(), &Config::default()).await;
        let error = client.execute(qmp_proto::commands::QueryName).await;
        assert!(
            matches!(&error, Err(Error::Unsupported(qmp_proto::Unsupported { item, qemu, .. }))
                if item == "command `query-name`" && *qemu == (7, 2)),
            "{error:?}"
        );
        let text = error.map(drop).map_err(|e| e.to_string());
        assert!(
            matches!(&text, Err(text) if text.contains("QEMU 7.2.0")),
            "{text:?}"
        );
        // Raw commands keep QEMU's own error.
        let error = client.execute_raw("query-name", None).await;
        assert!(
            matches!(
                &error,
                Err(Error::Qmp {
                    class: ErrorClass::CommandNotFound,
                    ..
                })
            ),
            "{error:?}"
        );

        // A value the greeting's release lacks is refused before sending.
        use qmp_proto::commands::{
            MigrateSetCapabilities, MigrationCapability, MigrationCapabilityStatus,
        };
        let set = MigrateSetCapabilities::new(vec![MigrationCapabilityStatus::new(
            MigrationCapability::MappedRam,
            true,
        )]);
        let error = client.execute(set).await;
        assert!(
            matches!(
                &error,
                Err(Error::Unsupported(qmp_proto::Unsupported {
                    since: Some((9, 0)),
                    ..
                }))
            ),
            "{error:?}"
        );
        let sent: Vec<String> = mock.received().into_iter().map(|r| r.command).collect();
        assert!(
            !sent.iter().any(|name| name == "migrate-set-capabilities"),
            "{sent:?}"
        );
    })
    .await;
}
