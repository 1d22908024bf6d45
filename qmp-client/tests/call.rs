//! The one call API against the mock: typed and raw commands with every
//! combination of timeout, out of band and file descriptors; raw
//! arguments as people write them.

#![allow(clippy::print_stderr)] // the tests print what they saw

use std::future::Future;
use std::os::fd::OwnedFd;
use std::time::Duration;

use qmp_client::mock::{MockHandle, MockQemu, Reply};
use qmp_client::{Client, Config, Error, Raw};
use qmp_proto::commands::{QueryStatus, RunState};
use qmp_proto::{ExecKind, Request};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(30);

async fn bounded<F: Future>(future: F) -> F::Output {
    match tokio::time::timeout(LIMIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("the test did not finish within {LIMIT:?}"),
    }
}

fn mock() -> MockQemu {
    MockQemu::new()
        .on("echo", |request| {
            Reply::Return(
                request
                    .arguments
                    .clone()
                    .map(Value::Object)
                    .unwrap_or_default(),
            )
        })
        .on("slow", |_| Reply::Silent)
}

async fn connect(config: &Config) -> (Client, MockHandle) {
    let (io, handle) = mock().serve_pair();
    match Client::from_stream(io, config).await {
        Ok(client) => (client, handle),
        Err(error) => panic!("handshake failed: {error}"),
    }
}

fn some_fd() -> OwnedFd {
    match tempfile::tempfile() {
        Ok(file) => OwnedFd::from(file),
        Err(error) => panic!("no temp file: {error}"),
    }
}

fn last(mock: &MockHandle) -> Request {
    match mock.received().pop() {
        Some(request) => request,
        None => panic!("the mock received nothing"),
    }
}

#[tokio::test]
async fn every_combination_of_timeout_oob_and_fds_typed_and_raw() {
    bounded(async {
        let (client, mock) = connect(&Config::default().oob(true)).await;
        for timeout in [false, true] {
            for oob in [false, true] {
                for fds in [false, true] {
                    let what = format!("timeout {timeout}, oob {oob}, fds {fds}");

                    let mut typed = client.call(QueryStatus);
                    if timeout {
                        typed = typed.timeout(Duration::from_secs(5));
                    }
                    if oob {
                        typed = typed.oob();
                    }
                    if fds {
                        typed = typed.fds([some_fd()]);
                    }
                    let status = typed.await;
                    eprintln!("typed, {what}: {status:?}");
                    assert!(
                        matches!(&status, Ok(info) if info.status == RunState::Running),
                        "typed, {what}: {status:?}"
                    );
                    let kind = if oob {
                        ExecKind::ExecOob
                    } else {
                        ExecKind::Execute
                    };
                    assert_eq!(last(&mock).kind, kind, "typed, {what}");

                    let mut raw = client.call(Raw::new("echo").args(json!({"what": what})));
                    if timeout {
                        raw = raw.timeout(Duration::from_secs(5));
                    }
                    if oob {
                        raw = raw.oob();
                    }
                    if fds {
                        raw = raw.fds([some_fd()]);
                    }
                    let echoed = raw.await;
                    eprintln!("raw, {what}: {echoed:?}");
                    assert!(
                        matches!(&echoed, Ok(value) if value["what"] == what),
                        "raw, {what}: {echoed:?}"
                    );
                    assert_eq!(last(&mock).kind, kind, "raw, {what}");
                }
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_timeout_applies_with_oob_and_fds_too() {
    bounded(async {
        let (client, _mock) = connect(&Config::default().oob(true)).await;
        let outcome = client
            .call(Raw::new("slow"))
            .timeout(Duration::from_millis(50))
            .oob()
            .fds([some_fd()])
            .await;
        assert!(
            matches!(&outcome, Err(Error::CommandTimeout { command, timeout })
                if command == "slow" && *timeout == Duration::from_millis(50)),
            "{outcome:?}"
        );
        // `None` waits as long as the connection lives; the default applies
        // otherwise.
        let status = client.call(QueryStatus).timeout(None).await;
        assert!(matches!(&status, Ok(info) if info.running), "{status:?}");
    })
    .await;
}

#[tokio::test]
async fn oob_without_negotiation_is_refused_by_name() {
    bounded(async {
        let (client, mock) = connect(&Config::default()).await;
        let outcome = client.call(QueryStatus).oob().await;
        assert!(
            matches!(&outcome, Err(Error::OobNotNegotiated { command }) if command == "query-status"),
            "{outcome:?}"
        );
        assert_eq!(mock.received().len(), 1, "only qmp_capabilities was sent");
    })
    .await;
}

#[tokio::test]
async fn raw_arguments_are_what_people_write() {
    bounded(async {
        let (client, mock) = connect(&Config::default()).await;
        // A json! object, as is.
        let echoed = client
            .call(Raw::new("echo").args(json!({"a_b": 1, "c": {"d_e": 2}})))
            .await;
        assert!(
            matches!(&echoed, Ok(value) if *value == json!({"a_b": 1, "c": {"d_e": 2}})),
            "{echoed:?}"
        );
        // conv_keys: top-level names get `-` for `_`, nested ones stay.
        let converted = client
            .call(
                Raw::new("echo")
                    .args(json!({"a_b": 1, "c": {"d_e": 2}}))
                    .conv_keys(),
            )
            .await;
        assert!(
            matches!(&converted, Ok(value) if *value == json!({"a-b": 1, "c": {"d_e": 2}})),
            "{converted:?}"
        );
        // null, None and no arguments send no `arguments` member.
        for raw in [
            Raw::new("echo"),
            Raw::new("echo").args(Value::Null),
            Raw::new("echo").args(None::<qmp_proto::JsonObject>),
        ] {
            let outcome = client.call(raw).await;
            assert!(matches!(&outcome, Ok(Value::Null)), "{outcome:?}");
            assert_eq!(last(&mock).arguments, None);
        }
        // A struct works too.
        #[derive(serde::Serialize)]
        struct Args {
            node_name: &'static str,
        }
        let outcome = client
            .call(Raw::new("echo").args(Args { node_name: "n0" }).conv_keys())
            .await;
        assert!(
            matches!(&outcome, Ok(value) if *value == json!({"node-name": "n0"})),
            "{outcome:?}"
        );

        // Anything but an object is refused before anything is sent.
        let sent = mock.received().len();
        for (args, found) in [
            (json!([1, 2]), "an array"),
            (json!("x"), "a string"),
            (json!(3), "a number"),
            (json!(true), "a boolean"),
        ] {
            let outcome = client.call(Raw::new("echo").args(args)).await;
            assert!(
                matches!(&outcome, Err(Error::RawArguments { command, found: f })
                    if command == "echo" && *f == found),
                "{outcome:?}"
            );
        }
        assert_eq!(mock.received().len(), sent, "a refused call was sent");
    })
    .await;
}

#[tokio::test]
async fn the_old_names_are_the_builder() {
    bounded(async {
        let (client, mock) = connect(&Config::default().oob(true)).await;
        let object = json!({"k": "v"}).as_object().cloned();
        let short = Some(Duration::from_secs(5));
        let outcomes = [
            client
                .execute(Raw::new("echo").args(json!({"k": "v"})))
                .await,
            client.execute_raw("echo", object.clone()).await,
            client
                .execute_raw_with_timeout("echo", object.clone(), short)
                .await,
            client.execute_oob_raw("echo", object.clone()).await,
            client
                .execute_raw_with_fds("echo", object.clone(), vec![some_fd()])
                .await,
        ];
        for outcome in &outcomes {
            assert!(
                matches!(outcome, Ok(value) if value["k"] == "v"),
                "{outcome:?}"
            );
        }
        let typed = [
            client.execute(QueryStatus).await,
            client.execute_with_timeout(QueryStatus, short).await,
            client.execute_oob(QueryStatus).await,
            client.execute_with_fds(QueryStatus, vec![some_fd()]).await,
        ];
        for outcome in &typed {
            assert!(matches!(outcome, Ok(info) if info.running), "{outcome:?}");
        }
        let kinds: Vec<ExecKind> = mock.received().into_iter().map(|r| r.kind).collect();
        assert_eq!(kinds.iter().filter(|k| **k == ExecKind::ExecOob).count(), 2);
    })
    .await;
}

#[tokio::test]
async fn text_is_qemus_own_json_and_other_calls_keep_their_values() {
    bounded(async {
        let mock = mock()
            .on("idless", |_| {
                Reply::WithoutId(Box::new(Reply::Return(json!({"k": [1, 2]}))))
            })
            .on("fails", |_| {
                Reply::Error(qmp_proto::ErrorClass::GenericError, "no".into())
            });
        let (io, handle) = mock.serve_pair();
        let client = match Client::from_stream(io, &Config::default()).await {
            Ok(client) => client,
            Err(error) => panic!("handshake failed: {error}"),
        };
        let args = json!({"a": [1, "x"], "b": {"c": null}});

        // The text as the peer wrote it (the mock writes compact JSON).
        let text = client
            .call(Raw::new("echo").args(args.clone()).text())
            .await;
        eprintln!("text: {text:?}");
        assert!(
            matches!(&text, Ok(text) if text.get() == r#"{"a":[1,"x"],"b":{"c":null}}"#),
            "{text:?}"
        );

        // Text, value and typed calls in flight together each get theirs.
        let (text, value, typed, failed) = tokio::join!(
            client.call(Raw::new("echo").args(json!({"t": 1})).text()),
            client.call(Raw::new("echo").args(json!({"v": 2}))),
            client.call(QueryStatus),
            client.call(Raw::new("fails").text()),
        );
        eprintln!("together: {text:?} {value:?} {typed:?} {failed:?}");
        assert!(
            matches!(&text, Ok(text) if text.get() == r#"{"t":1}"#),
            "{text:?}"
        );
        assert!(
            matches!(&value, Ok(value) if *value == json!({"v": 2})),
            "{value:?}"
        );
        assert!(
            matches!(&typed, Ok(info) if info.status == RunState::Running),
            "{typed:?}"
        );
        assert!(
            matches!(&failed, Err(Error::Qmp { command, desc, .. })
                if command == "fails" && desc == "no"),
            "{failed:?}"
        );

        // A reply without an id (matched to the only command in flight)
        // is read the usual way; its value comes back written out.
        let idless = client.call(Raw::new("idless").text()).await;
        assert!(
            matches!(&idless, Ok(text) if text.get() == r#"{"k":[1,2]}"#),
            "{idless:?}"
        );

        // The text is the peer's own, spacing and order included, for a
        // command sent alone (without an id) and for one sent while it was
        // in flight (with an id).
        let spawn_slow = || {
            let client = client.clone();
            tokio::spawn(async move { client.call(Raw::new("slow").text()).await })
        };
        let sent_slow = |count: usize| {
            let handle = handle.clone();
            async move {
                loop {
                    let slow: Vec<Request> = handle
                        .received()
                        .into_iter()
                        .filter(|r| r.command == "slow")
                        .collect();
                    if slow.len() >= count {
                        return slow;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        };
        let alone = spawn_slow();
        sent_slow(1).await;
        let second = spawn_slow();
        let slow = sent_slow(2).await;
        eprintln!("slow requests: {slow:?}");
        let (Some(None), Some(Some(id))) = (
            slow.first().map(|r| r.id.clone()),
            slow.get(1).map(|r| r.id.clone()),
        ) else {
            panic!("expected the first without an id, the second with one: {slow:?}");
        };
        handle.inject_raw(format!("{{\"return\": [ 1 ,2 ], \"id\": {id}}}\r\n"));
        handle.inject_raw("{\"return\": {\"b\": 1,  \"a\" : [ 2 ]}}\r\n");
        let (alone, second) = (alone.await, second.await);
        eprintln!("own: {alone:?} {second:?}");
        assert!(
            matches!(&alone, Ok(Ok(text)) if text.get() == r#"{"b": 1,  "a" : [ 2 ]}"#),
            "{alone:?}"
        );
        assert!(
            matches!(&second, Ok(Ok(text)) if text.get() == "[ 1 ,2 ]"),
            "{second:?}"
        );

        // A text call that timed out (its reply never comes) leaves nothing
        // behind: the next calls of both kinds work.
        let late = client
            .call(Raw::new("slow").text())
            .timeout(Duration::from_millis(50))
            .await;
        assert!(
            matches!(&late, Err(Error::CommandTimeout { command, .. }) if command == "slow"),
            "{late:?}"
        );
        let after = client
            .call(Raw::new("echo").args(json!({"n": 3})).text())
            .await;
        assert!(
            matches!(&after, Ok(text) if text.get() == r#"{"n":3}"#),
            "{after:?}"
        );
        let value = client.call(Raw::new("echo").args(json!({"n": 4}))).await;
        assert!(
            matches!(&value, Ok(value) if *value == json!({"n": 4})),
            "{value:?}"
        );
    })
    .await;
}
