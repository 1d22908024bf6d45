//! A peer that stops reading: the client's write buffer stays bounded, and
//! a command whose caller gave up before its bytes went out is never sent,
//! not even once the peer reads again.

#![allow(clippy::print_stderr)] // the tests print what they saw

use std::future::{Future, IntoFuture};
use std::time::Duration;

use futures::future::join_all;
use qmp_client::mock::{MockQemu, Reply};
use qmp_client::{Client, Config, Error, Raw};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);
const PAD: usize = 16 * 1024;
const WRITE_BUFFER: usize = 4 * 1024;

async fn bounded<F: Future>(future: F) -> F::Output {
    match tokio::time::timeout(LIMIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("the test did not finish within {LIMIT:?}"),
    }
}

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

#[tokio::test]
async fn a_peer_that_stops_reading_bounds_the_buffer_and_gets_no_abandoned_command() {
    bounded(async {
        let config = Config::default().write_buffer(WRITE_BUFFER);
        let (io, mock) = echo_mock().serve_pair();
        let client = match Client::from_stream(io, &config).await {
            Ok(client) => client,
            Err(error) => panic!("handshake failed: {error}"),
        };
        mock.pause_reading().await;

        // 64 commands of 16 KiB each (1 MiB, more than the socket buffers
        // hold), every caller giving up after 300 ms.
        let pad = "x".repeat(PAD);
        let calls = (0..64).map(|n| {
            client
                .call(Raw::new("echo").args(json!({"n": n, "pad": pad})))
                .timeout(Duration::from_millis(300))
                .into_future()
        });
        let outcomes = join_all(calls).await;
        let timed_out = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Err(Error::CommandTimeout { .. })))
            .count();
        eprintln!("{timed_out} of 64 calls timed out");
        assert_eq!(timed_out, 64, "{:?}", &outcomes[..1]);

        // Nothing was read: the client holds at most the bound plus one
        // command, whatever the callers queued.
        let unwritten = client.unwritten_bytes();
        eprintln!("unwritten bytes held by the client: {unwritten} (bound {WRITE_BUFFER} + one command)");
        assert!(
            unwritten <= WRITE_BUFFER + PAD + 64,
            "{unwritten} bytes buffered"
        );

        // An abandoned `system_reset` must never happen later.
        let reset = client
            .call(Raw::new("system_reset"))
            .timeout(Duration::from_millis(100))
            .await;
        assert!(
            matches!(&reset, Err(Error::CommandTimeout { command, .. }) if command == "system_reset"),
            "{reset:?}"
        );

        mock.resume_reading().await;
        let last = client
            .call(Raw::new("echo").args(json!({"n": "last"})))
            .await;
        assert!(
            matches!(&last, Ok(value) if value["n"] == "last"),
            "{last:?}"
        );

        let received: Vec<Value> = mock
            .received()
            .into_iter()
            .filter(|request| request.command != "qmp_capabilities")
            .map(|request| {
                let n = request
                    .arguments
                    .as_ref()
                    .and_then(|arguments| arguments.get("n").cloned());
                json!({"command": request.command, "n": n})
            })
            .collect();
        let summary: Vec<String> = received
            .iter()
            .map(|request| format!("{}:{}", request["command"], request["n"]))
            .collect();
        eprintln!("the peer received, in order: {summary:?}");
        assert!(
            received.iter().all(|request| request["command"] != "system_reset"),
            "the abandoned system_reset was sent: {summary:?}"
        );
        // What reached the peer is the padded commands
        // written to the socket before their callers gave up (a prefix of
        // the 64, in order), then the last one: every command still in the
        // client when its caller gave up was dropped.
        let padded: Vec<&Value> = received[..received.len() - 1]
            .iter()
            .map(|request| &request["n"])
            .collect();
        let prefix: Vec<Value> = (0..padded.len()).map(|n| json!(n)).collect();
        assert_eq!(
            padded.iter().copied().cloned().collect::<Vec<_>>(),
            prefix,
            "{summary:?}"
        );
        assert!(padded.len() < 64, "every abandoned command was sent: {summary:?}");
        assert_eq!(received.last().map(|last| &last["n"]), Some(&json!("last")));
    })
    .await;
}
