//! The client against a real `qemu-system-x86_64 -machine none`, launched
//! by each test with QMP on a socket pair. QEMU missing = failure.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use qmp_client::{Client, Config, Disconnect, Error, Listener, Raw};
use qmp_proto::commands::{
    BlockdevAdd, QomGet, QomSet, QueryNamedBlockNodes, QueryStatus, QueryVersion, Quit, RunState,
};
use qmp_proto::{ErrorClass, JsonObject};
use serde_json::{Value, json};
use support::Qemu;

const LIMIT: Duration = Duration::from_secs(30);

async fn bounded<F: std::future::Future>(future: F) -> F::Output {
    match tokio::time::timeout(LIMIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("the test did not finish within {LIMIT:?}"),
    }
}

async fn launch(config: &Config) -> (Qemu, Client) {
    let (qemu, io) = Qemu::with_socketpair();
    match Client::from_stream(io, config).await {
        Ok(client) => (qemu, client),
        Err(error) => panic!("handshake with QEMU failed: {error}"),
    }
}

fn object(value: Value) -> Option<JsonObject> {
    value.as_object().cloned()
}

#[tokio::test]
async fn negotiation_without_and_with_oob() {
    bounded(async {
        let (_qemu, client) = launch(&Config::default()).await;
        assert_eq!(client.greeting().version(), support::qemu_version());
        assert!(client.greeting().offers_oob());
        let error = client.execute_oob_raw("query-status", None).await;
        assert!(
            matches!(error, Err(Error::OobNotNegotiated { .. })),
            "{error:?}"
        );
        let status = client.execute(QueryStatus).await;
        assert!(matches!(&status, Ok(info) if info.running), "{status:?}");

        let (_qemu, client) = launch(&Config::default().oob(true)).await;
        let status = client.execute(QueryStatus).await;
        assert!(matches!(&status, Ok(info) if info.running), "{status:?}");
        // QEMU read it as exec-oob: it refuses because query-status is not
        // an OOB command.
        let error = client.execute_oob_raw("query-status", None).await;
        assert!(
            matches!(&error, Err(Error::Qmp { desc, .. }) if desc.contains("OOB")),
            "{error:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_schema_as_text_is_qemus_own_and_reads_as_the_value() {
    bounded(async {
        let (_qemu, client) = launch(&Config::default()).await;
        let value = client.execute_raw("query-qmp-schema", None).await;
        let text = client.call(Raw::new("query-qmp-schema").text()).await;
        let (Ok(value), Ok(text)) = (value, text) else {
            panic!("query-qmp-schema failed");
        };
        // QEMU writes `"name": "..."` with a space; serde_json never does.
        assert!(
            text.get().starts_with("[{\"name\": \""),
            "not QEMU's own text: {:?}",
            text.get().get(..60)
        );
        let reread = serde_json::from_str::<Value>(text.get());
        assert!(
            matches!(&reread, Ok(reread) if *reread == value),
            "the text reads differently from the value"
        );
        // Text and value calls in flight together (so with ids).
        let (first, second) = tokio::join!(
            client.call(Raw::new("query-qmp-schema").text()),
            client.call(Raw::new("query-qmp-schema")),
        );
        assert!(
            matches!((&first, &second), (Ok(first), Ok(second))
                if first.get() == text.get() && *second == value),
            "the concurrent calls differ: {:?} {:?}",
            first.as_ref().map(|text| text.get().len()),
            second.as_ref().map(|value| value.as_array().map(Vec::len))
        );
    })
    .await;
}

#[tokio::test]
async fn typed_commands_and_run_state_events() {
    bounded(async {
        let (_qemu, client) = launch(&Config::default()).await;
        let version = client.execute(QueryVersion).await;
        let expected = support::qemu_version();
        assert!(
            matches!(&version, Ok(v) if v.qemu == expected),
            "{version:?}, expected {expected}"
        );
        let status = client.execute(QueryStatus).await;
        assert!(
            matches!(&status, Ok(s) if s.status == RunState::Running),
            "{status:?}"
        );

        let stopped = client.event_waiter("STOP", None);
        let outcome = client.execute(qmp_proto::commands::Stop).await;
        assert!(matches!(&outcome, Ok(qmp_proto::Empty)), "{outcome:?}");
        let outcome = stopped.wait(Some(LIMIT)).await;
        assert!(
            matches!(&outcome, Ok(event) if event.name == "STOP"),
            "{outcome:?}"
        );
        let status = client.execute(QueryStatus).await;
        assert!(matches!(&status, Ok(s) if !s.running && s.status == RunState::Paused));

        let outcome = client.execute(qmp_proto::commands::Cont).await;
        assert!(matches!(&outcome, Ok(qmp_proto::Empty)), "{outcome:?}");
        // Found in the backlog although it arrived before the wait.
        let outcome = client.wait_event("RESUME", None, Some(LIMIT)).await;
        assert!(
            matches!(&outcome, Ok(event) if event.name == "RESUME"),
            "{outcome:?}"
        );

        let set = client
            .execute(QomSet::new("/machine", "kernel", "vmlinuz-test"))
            .await;
        assert!(matches!(&set, Ok(qmp_proto::Empty)), "{set:?}");
        let get = client.execute(QomGet::new("/machine", "kernel")).await;
        assert_eq!(get.ok(), Some(json!("vmlinuz-test")));
        let get = client.execute(QomGet::new("/machine", "type")).await;
        assert_eq!(get.ok(), Some(json!("none-machine")));
    })
    .await;
}

#[tokio::test]
async fn qmp_error_replies() {
    bounded(async {
        let (_qemu, client) = launch(&Config::default()).await;
        let error = client.execute_raw("no-such-command", None).await;
        assert!(
            matches!(&error, Err(Error::Qmp { class: ErrorClass::CommandNotFound, command, .. })
            if command == "no-such-command"),
            "{error:?}"
        );
        let args = object(json!({"path": "/machine", "property": "kernel", "value": 5}));
        let error = client.execute_raw("qom-set", args).await;
        assert!(
            matches!(
                &error,
                Err(Error::Qmp {
                    class: ErrorClass::GenericError,
                    ..
                })
            ),
            "{error:?}"
        );
        let status = client.execute(QueryStatus).await;
        assert!(matches!(&status, Ok(info) if info.running), "{status:?}");
    })
    .await;
}

/// The version policy against the QEMU under test: what its release lacks
/// is refused before sending, naming the version; what it has, it runs.
#[tokio::test]
async fn typed_values_outside_the_connected_release_are_refused() {
    use qmp_proto::commands::{
        MigrateSetCapabilities, MigrationCapability, MigrationCapabilityStatus,
    };
    bounded(async {
        let (_qemu, client) = launch(&Config::default()).await;
        let qemu = client.greeting().version();
        let set = |capability| {
            MigrateSetCapabilities::new(vec![MigrationCapabilityStatus::new(capability, false)])
        };
        // `compress` until 9.1, `mapped-ram` since 9.0: each QEMU we test
        // has exactly one of them.
        for capability in [
            MigrationCapability::Compress,
            MigrationCapability::MappedRam,
        ] {
            let present = qemu.within(capability.since(), capability.until());
            let result = client.execute(set(capability.clone())).await;
            if present {
                assert!(
                    matches!(result, Ok(qmp_proto::Empty)),
                    "{capability} on QEMU {qemu}: {result:?}"
                );
            } else {
                let text = qemu.to_string();
                assert!(
                    matches!(&result, Err(error @ Error::Unsupported(_))
                        if error.to_string().contains(&text)),
                    "{capability} on QEMU {qemu}: {result:?}"
                );
            }
        }
        let status = client.execute(QueryStatus).await;
        assert!(matches!(&status, Ok(info) if info.running), "{status:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_tasks_two_hundred_commands_each() {
    bounded(async {
        let (_qemu, client) = launch(&Config::default()).await;
        // Commands with different answers, answered sequentially first.
        let calls: Vec<(&str, Value)> = vec![
            ("query-status", json!(null)),
            ("query-version", json!(null)),
            ("qom-get", json!({"path": "/machine", "property": "type"})),
            ("qom-get", json!({"path": "/machine", "property": "usb"})),
            ("query-command-line-options", json!({"option": "rtc"})),
            ("qom-list", json!({"path": "/machine"})),
            (
                "qom-get",
                json!({"path": "/machine", "property": "dump-guest-core"}),
            ),
            ("query-name", json!(null)),
        ];
        let mut expected = Vec::new();
        for (name, args) in &calls {
            match client.execute_raw(name, object(args.clone())).await {
                Ok(value) => expected.push(value),
                Err(error) => panic!("{name}: {error}"),
            }
        }
        let calls = std::sync::Arc::new(calls);
        let expected = std::sync::Arc::new(expected);
        let mut tasks = Vec::new();
        for task in 0..50 {
            let (client, calls, expected) = (client.clone(), calls.clone(), expected.clone());
            tasks.push(tokio::spawn(async move {
                for n in 0..200 {
                    let which = (task + n) % calls.len();
                    let (name, args) = &calls[which];
                    let reply = client.execute_raw(name, object(args.clone())).await;
                    assert_eq!(reply.ok().as_ref(), Some(&expected[which]), "{name} {args}");
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

#[tokio::test]
async fn an_fd_passed_with_add_fd_backs_a_block_node() {
    bounded(async {
        let (_qemu, client) = launch(&Config::default()).await;
        let mut file = match tempfile::tempfile() {
            Ok(file) => file,
            Err(error) => panic!("{error}"),
        };
        if let Err(error) = file.write_all(&[0u8; 4096]) {
            panic!("cannot write the temp file: {error}");
        }
        let info = match client.add_fd(&file, None).await {
            Ok(info) => info,
            Err(error) => panic!("add-fd failed: {error}"),
        };
        let filename = format!("/dev/fdset/{}", info.fdset_id);
        let add = BlockdevAdd::new("file", "f0").option("filename", filename.as_str());
        let added = client.execute(add).await;
        assert!(matches!(&added, Ok(qmp_proto::Empty)), "{added:?}");
        let nodes = client.execute(QueryNamedBlockNodes::new()).await;
        let nodes = match nodes {
            Ok(nodes) => nodes,
            Err(error) => panic!("{error}"),
        };
        assert!(
            nodes
                .iter()
                .any(|node| node.node_name.as_deref() == Some("f0") && node.file == filename),
            "{nodes:?}"
        );
        // getfd/closefd round trip.
        let outcome = client.getfd("spare", &file).await;
        assert!(matches!(&outcome, Ok(())), "{outcome:?}");
        let outcome = client.closefd("spare").await;
        assert!(matches!(&outcome, Ok(())), "{outcome:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fd_passing_gives_each_command_its_own_fd() {
    bounded(async {
        // With oob QEMU reads ahead of the command it runs, where a naive
        // client's fds would overtake each other.
        let (_qemu, client) = launch(&Config::default().oob(true)).await;
        let file = match tempfile::tempfile() {
            Ok(file) => file,
            Err(error) => panic!("{error}"),
        };
        let calls = (0..8).map(|_| {
            let client = client.clone();
            let fd = file.try_clone();
            async move {
                let Ok(fd) = fd else {
                    panic!("cannot clone the fd")
                };
                client.add_fd(&fd, None).await
            }
        });
        let results = futures::future::join_all(calls).await;
        let mut sets: Vec<i64> = Vec::new();
        for result in results {
            match result {
                Ok(info) => sets.push(info.fdset_id),
                Err(error) => panic!("add-fd failed: {error}"),
            }
        }
        sets.sort_unstable();
        sets.dedup();
        assert_eq!(sets.len(), 8, "every add-fd got its own fd set: {sets:?}");
        // Each set holds exactly one fd: none was lost or reused.
        let fdsets = client.execute(qmp_proto::commands::QueryFdsets).await;
        let Ok(fdsets) = fdsets else {
            panic!("{fdsets:?}")
        };
        assert_eq!(fdsets.len(), 8);
        assert!(fdsets.iter().all(|set| set.fds.len() == 1), "{fdsets:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_fails_every_pending_command_and_wait_promptly() {
    bounded(async {
        let (qemu, client) = launch(&Config::default()).await;
        // A stopped QEMU answers nothing: everything below stays pending.
        qemu.pause();
        let mut pending: FuturesUnordered<_> = (0..20)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.execute(QueryStatus).await.map(drop) })
            })
            .collect();
        let waiter = {
            let client = client.clone();
            tokio::spawn(async move { client.wait_event("NEVER", None, None).await.map(drop) })
        };
        // Let every command reach the connection task.
        tokio::task::yield_now().await;
        let killed = Instant::now();
        qemu.kill();
        while let Some(result) = pending.next().await {
            let result = result.ok();
            assert!(
                matches!(
                    result,
                    Some(Err(Error::Disconnected(Disconnect::PeerClosed)))
                ),
                "{result:?}"
            );
        }
        let result = waiter.await.ok();
        assert!(
            matches!(
                result,
                Some(Err(Error::Disconnected(Disconnect::PeerClosed)))
            ),
            "{result:?}"
        );
        // "At once" means on the peer's death, not at the commands'
        // 60 s timeout; no tighter bound, as a loaded host may be slow.
        let elapsed = killed.elapsed();
        assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
        let later = client.execute(QueryStatus).await;
        assert!(
            matches!(later, Err(Error::Disconnected(Disconnect::PeerClosed))),
            "{later:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn quit_ends_the_session_cleanly() {
    bounded(async {
        let (mut qemu, client) = launch(&Config::default()).await;
        let quit = client.execute(Quit).await;
        assert!(matches!(&quit, Ok(qmp_proto::Empty)), "{quit:?}");
        let closed = client.closed().await;
        assert!(matches!(closed, Disconnect::Quit), "{closed:?}");
        let shutdown = client.wait_event("SHUTDOWN", None, Some(LIMIT)).await;
        assert!(
            matches!(&shutdown, Ok(e) if e.data.get("reason") == Some(&json!("host-qmp-quit")))
        );
        assert!(qemu.wait().success());
    })
    .await;
}

#[tokio::test]
async fn connectors_unix_path_and_accept_modes() {
    bounded(async {
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(error) => panic!("{error}"),
        };
        // QEMU listens, we connect.
        let path = dir.path().join("server.sock");
        let _qemu = Qemu::with_chardev(&format!(
            "socket,id=mon,path={},server=on,wait=on",
            path.display()
        ));
        let config = Config::default();
        // QEMU creates the socket shortly after it starts: retry the
        // connection (bounded), as any user of a socket path must.
        let mut client = None;
        for _ in 0..500 {
            match Client::connect_unix(&path, &config).await {
                Ok(connected) => {
                    client = Some(connected);
                    break;
                }
                Err(Error::Connect { .. }) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(error) => panic!("{error}"),
            }
        }
        let Some(client) = client else {
            panic!("could not connect to {}", path.display())
        };
        let status = client.execute(QueryStatus).await;
        assert!(matches!(&status, Ok(info) if info.running), "{status:?}");

        // We listen, QEMU connects: Unix path.
        let path = dir.path().join("client.sock");
        let listener = match Listener::bind_unix(&path) {
            Ok(listener) => listener,
            Err(error) => panic!("{error}"),
        };
        let _qemu = Qemu::with_chardev(&format!(
            "socket,id=mon,path={},server=off",
            listener.address()
        ));
        let accepted = listener.accept(&config).await;
        let Ok(client) = accepted else {
            panic!("{:?}", accepted.err())
        };
        let status = client.execute(QueryStatus).await;
        assert!(matches!(&status, Ok(info) if info.running), "{status:?}");

        // We listen, QEMU connects: TCP.
        let listener = match Listener::bind_tcp("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(error) => panic!("{error}"),
        };
        let (host, port) = listener.address().rsplit_once(':').unwrap_or_default();
        let _qemu =
            Qemu::with_chardev(&format!("socket,id=mon,host={host},port={port},server=off"));
        let accepted = listener.accept(&config).await;
        let Ok(client) = accepted else {
            panic!("{:?}", accepted.err())
        };
        let status = client.execute(QueryStatus).await;
        assert!(matches!(&status, Ok(info) if info.running), "{status:?}");
    })
    .await;
}

#[tokio::test]
#[allow(clippy::print_stderr)] // prints what each combination gave
async fn every_call_combination_against_qemu() {
    use qmp_client::Raw;
    use qmp_proto::commands::GetFd;
    bounded(async {
        let (_qemu, client) = launch(&Config::default().oob(true)).await;
        let mut n = 0;
        for timeout in [false, true] {
            for oob in [false, true] {
                for fds in [false, true] {
                    n += 1;
                    let what = format!("timeout {timeout}, oob {oob}, fds {fds}");
                    let file = match tempfile::tempfile() {
                        Ok(file) => std::os::fd::OwnedFd::from(file),
                        Err(error) => panic!("no temp file: {error}"),
                    };
                    // `yank` may run out of band; the fd rides along unused.
                    let mut raw = client.call(Raw::new("yank").args(json!({"instances": []})));
                    if timeout {
                        raw = raw.timeout(LIMIT);
                    }
                    if oob {
                        raw = raw.oob();
                    }
                    if fds {
                        raw = raw.fds([file]);
                    }
                    let yanked = raw.await;
                    eprintln!("raw yank, {what}: {yanked:?}");
                    assert!(
                        matches!(&yanked, Ok(value) if *value == json!({})),
                        "{what}: {yanked:?}"
                    );

                    // Typed: `getfd` takes the fd; neither it nor
                    // `query-status` may run out of band, which QEMU says.
                    let name = format!("fd{n}");
                    let outcome = if fds {
                        let file = match tempfile::tempfile() {
                            Ok(file) => std::os::fd::OwnedFd::from(file),
                            Err(error) => panic!("no temp file: {error}"),
                        };
                        let mut call = client.call(GetFd::new(&name)).fds([file]);
                        if timeout {
                            call = call.timeout(LIMIT);
                        }
                        if oob {
                            call = call.oob();
                        }
                        call.await.map(|_| json!("getfd"))
                    } else {
                        let mut call = client.call(QueryStatus);
                        if timeout {
                            call = call.timeout(LIMIT);
                        }
                        if oob {
                            call = call.oob();
                        }
                        call.await.map(|status| json!(status.running))
                    };
                    eprintln!("typed, {what}: {outcome:?}");
                    if oob {
                        assert!(
                            matches!(&outcome, Err(Error::Qmp { class: ErrorClass::GenericError, desc, .. })
                                if desc.contains("OOB")),
                            "{what}: {outcome:?}"
                        );
                    } else if fds {
                        assert!(matches!(&outcome, Ok(value) if value == "getfd"), "{what}: {outcome:?}");
                        let closed = client.closefd(&name).await;
                        assert!(matches!(&closed, Ok(())), "{closed:?}");
                    } else {
                        assert!(matches!(&outcome, Ok(value) if *value == json!(true)), "{what}: {outcome:?}");
                    }
                }
            }
        }
    })
    .await;
}
