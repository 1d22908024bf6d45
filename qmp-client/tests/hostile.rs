//! A hostile or broken QMP peer, played by the mock: each misbehaviour
//! is a typed error naming its cause as soon as it is visible, never a
//! wait for a timeout. Every test sets a 60 s command timeout, so an
//! error that is not `CommandTimeout` came from the fault itself; the time
//! it took is printed.

#![allow(clippy::print_stderr)] // the tests print what they saw

use std::future::{Future, IntoFuture};
use std::time::{Duration, Instant};

use qmp_client::mock::{Fault, MockQemu, Reply};
use qmp_client::{Client, Config, Disconnect, Error, Raw, Step};
use qmp_proto::ErrorClass;
use qmp_proto::commands::QueryStatus;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(30);

/// Fails the test instead of hanging it.
async fn bounded<F: Future>(future: F) -> F::Output {
    match tokio::time::timeout(LIMIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("the test did not finish within {LIMIT:?}"),
    }
}

fn patient() -> Config {
    Config::default()
        .handshake_timeout(Some(Duration::from_secs(60)))
        .command_timeout(Some(Duration::from_secs(60)))
}

async fn handshake_error(mock: MockQemu) -> Error {
    let (io, _mock) = mock.serve_pair();
    let started = Instant::now();
    let outcome = bounded(Client::from_stream(io, &patient())).await;
    eprintln!("handshake failed after {:?}", started.elapsed());
    match outcome {
        Ok(_) => panic!("the handshake should have failed"),
        Err(error) => {
            eprintln!("error: {error}");
            error
        }
    }
}

#[tokio::test]
async fn a_first_message_that_is_no_greeting_is_not_qmp() {
    let mock = MockQemu::new().fault(Fault::InsteadOfGreeting(br#"{"QMP": 5}"#.to_vec()));
    let error = handshake_error(mock).await;
    assert!(
        matches!(&error, Error::NotQmp { first_message } if **first_message == json!({"QMP": 5})),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("not a QMP monitor") && message.contains(r#"{"QMP":5}"#),
        "{message}"
    );
}

#[tokio::test]
async fn a_reply_before_any_greeting_is_not_qmp() {
    let mock = MockQemu::new().fault(Fault::InsteadOfGreeting(
        br#"{"return": {}, "id": 1}"#.to_vec(),
    ));
    let error = handshake_error(mock).await;
    assert!(
        matches!(&error, Error::NotQmp { first_message } if first_message["return"] == json!({})),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_peer_closing_after_its_greeting_fails_in_negotiation() {
    let error = handshake_error(MockQemu::new().fault(Fault::GreetThenClose)).await;
    assert!(
        matches!(
            &error,
            Error::Handshake {
                step: Step::Negotiation,
                reason: Disconnect::PeerClosed
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("qmp_capabilities"), "{error}");
}

#[tokio::test]
async fn a_peer_closing_before_greeting_fails_waiting_for_it() {
    let mock = MockQemu::new().fault(Fault::InsteadOfGreeting(Vec::new()));
    let (io, handle) = mock.serve_pair();
    handle.close();
    let started = Instant::now();
    let outcome = bounded(Client::from_stream(io, &patient())).await;
    eprintln!("failed after {:?}: {outcome:?}", started.elapsed());
    assert!(
        matches!(
            &outcome,
            Err(Error::Handshake {
                step: Step::Greeting,
                reason: Disconnect::PeerClosed
            })
        ),
        "{outcome:?}"
    );
}

async fn connect(mock: MockQemu) -> (Client, qmp_client::mock::MockHandle) {
    let (io, handle) = mock.serve_pair();
    match bounded(Client::from_stream(io, &patient())).await {
        Ok(client) => (client, handle),
        Err(error) => panic!("handshake failed: {error}"),
    }
}

/// Runs `call`, printing how long it took and what it gave.
async fn timed<T: std::fmt::Debug>(call: impl IntoFuture<Output = T>) -> T {
    let started = Instant::now();
    let outcome = bounded(call.into_future()).await;
    eprintln!("after {:?}: {outcome:?}", started.elapsed());
    outcome
}

#[tokio::test]
async fn an_idless_success_goes_to_the_one_command_in_flight() {
    let mock = MockQemu::new().on("odd", |_| {
        Reply::WithoutId(Box::new(Reply::Return(json!({"odd": true}))))
    });
    let (client, _mock) = connect(mock).await;
    let reply = timed(client.call(Raw::new("odd"))).await;
    assert!(
        matches!(&reply, Ok(value) if *value == json!({"odd": true})),
        "{reply:?}"
    );
}

#[tokio::test]
async fn an_idless_error_goes_to_the_one_command_in_flight() {
    let mock = MockQemu::new().on("unparsable", |_| {
        Reply::WithoutId(Box::new(Reply::Error(
            ErrorClass::GenericError,
            "JSON parse error, stray '}'".into(),
        )))
    });
    let (client, _mock) = connect(mock).await;
    let reply = timed(client.call(Raw::new("unparsable"))).await;
    assert!(
        matches!(&reply, Err(Error::Qmp { command, class: ErrorClass::GenericError, desc })
            if command == "unparsable" && desc.contains("JSON parse error")),
        "{reply:?}"
    );
    // The connection goes on.
    let status = timed(client.execute(QueryStatus)).await;
    assert!(matches!(&status, Ok(info) if info.running), "{status:?}");
}

#[tokio::test]
async fn an_idless_error_with_several_in_flight_fails_them_all_at_once() {
    // Three commands queued at once: the first goes without an id (nothing
    // else was in flight) and is answered; `slow` never answers and
    // `unparsable` is answered without an id. Nobody can tell whose answer
    // that is, so both commands still in flight fail with it.
    let mock = MockQemu::new()
        .on("slow", |_| Reply::Silent)
        .on("unparsable", |_| {
            Reply::WithoutId(Box::new(Reply::Error(
                ErrorClass::GenericError,
                "JSON parse error".into(),
            )))
        });
    let (client, mock) = connect(mock).await;
    let started = Instant::now();
    let (first, slow, bad) = bounded(async {
        tokio::join!(
            client.execute(QueryStatus),
            client.call(Raw::new("slow")).into_future(),
            client.call(Raw::new("unparsable")).into_future(),
        )
    })
    .await;
    eprintln!(
        "after {:?}:\n{first:?}\n{slow:?}\n{bad:?}",
        started.elapsed()
    );
    assert!(matches!(&first, Ok(info) if info.running), "{first:?}");
    for (outcome, name) in [(&slow, "slow"), (&bad, "unparsable")] {
        assert!(
            matches!(outcome, Err(Error::UnattributedReply { command, in_flight: 2,
                class: Some(ErrorClass::GenericError), desc }) if command == name && desc == "JSON parse error"),
            "{outcome:?}"
        );
    }
    let sent: Vec<_> = mock
        .received()
        .into_iter()
        .map(|r| (r.command, r.id))
        .collect();
    eprintln!("the mock received {sent:?}");
    assert_eq!(sent[1], ("query-status".to_owned(), None), "{sent:?}");
    let status = timed(client.execute(QueryStatus)).await;
    assert!(matches!(&status, Ok(info) if info.running), "{status:?}");
}

#[tokio::test]
async fn a_stray_reply_with_an_unknown_id_is_harmless() {
    let (client, mock) = connect(MockQemu::new()).await;
    mock.inject_raw(br#"{"return": {}, "id": 424242}"#.to_vec());
    mock.inject_raw(br#"{"return": {}, "id": "not ours"}"#.to_vec());
    let status = timed(client.execute(QueryStatus)).await;
    assert!(matches!(&status, Ok(info) if info.running), "{status:?}");
    assert!(!client.is_closed(), "{:?}", client.close_reason());
}

#[tokio::test]
async fn garbage_mid_session_fails_the_command_at_once() {
    let mock = MockQemu::new().fault(Fault::Garbage(b"<html>".to_vec()));
    let (client, _mock) = connect(mock).await;
    let outcome = timed(client.execute(QueryStatus)).await;
    assert!(
        matches!(&outcome, Err(Error::Disconnected(Disconnect::Protocol(_)))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_peer_closing_mid_command_fails_it_at_once() {
    let mock = MockQemu::new().on("slow", |_| Reply::Silent);
    let (client, mock) = connect(mock).await;
    let call = client.call(Raw::new("slow"));
    let closer = async {
        // The command is in flight once the mock has it.
        while mock.received().len() < 2 {
            tokio::task::yield_now().await;
        }
        mock.close();
    };
    let (outcome, ()) = timed(async { tokio::join!(call.into_future(), closer) }).await;
    assert!(
        matches!(&outcome, Err(Error::Disconnected(Disconnect::PeerClosed))),
        "{outcome:?}"
    );
}
