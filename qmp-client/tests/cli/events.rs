//! `qmp events` and `qmp wait`.

use serde_json::Value;

use crate::harness::{Vm, qmp_on, spawn_qmp, toggle_until};

#[test]
fn wait_returns_once_another_client_stops_the_vm() {
    let vm = Vm::start();
    let mut waiting = spawn_qmp(&vm.socket(), &["wait", "STOP", "--timeout", "30s"]);
    toggle_until(&vm, || waiting.exited());
    let ran = waiting.finish();
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let events = ran.json_lines();
    assert_eq!(events.len(), 1, "{ran:?}");
    assert_eq!(
        events[0].get("event").and_then(Value::as_str),
        Some("STOP"),
        "{ran:?}"
    );
    assert!(events[0].pointer("/timestamp/seconds").is_some(), "{ran:?}");
}

#[test]
fn wait_times_out_with_exit_1() {
    let vm = Vm::start();
    let ran = qmp_on(
        &vm.socket(),
        &["wait", "RESUME", "--timeout", "200ms"],
        None,
    );
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(ran.stderr.contains("no `RESUME` event"), "{ran:?}");
    assert!(ran.stdout.is_empty(), "{ran:?}");
}

#[test]
fn events_stream_as_json_lines_with_name_filter_and_count() {
    let vm = Vm::start();
    let mut streaming = spawn_qmp(&vm.socket(), &["events", "RESUME", "--count", "2"]);
    toggle_until(&vm, || streaming.exited());
    let ran = streaming.finish();
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let events = ran.json_lines();
    assert_eq!(events.len(), 2, "{ran:?}");
    for event in events {
        assert_eq!(
            event.get("event").and_then(Value::as_str),
            Some("RESUME"),
            "{ran:?}"
        );
    }
    // --match uses QEMUMachine.event_match on the whole event.
    let filter = r#"{"event": "STOP", "data": {}}"#;
    let mut streaming = spawn_qmp(&vm.socket(), &["events", "--match", filter, "--count", "1"]);
    toggle_until(&vm, || streaming.exited());
    let ran = streaming.finish();
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let events = ran.json_lines();
    assert_eq!(events.len(), 1, "{ran:?}");
    assert_eq!(
        events[0].get("event").and_then(Value::as_str),
        Some("STOP"),
        "{ran:?}"
    );
}

#[test]
fn events_timeout_ends_the_stream_and_fails_only_short_of_count() {
    let vm = Vm::start();
    let ran = qmp_on(&vm.socket(), &["events", "--timeout", "200ms"], None);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let ran = qmp_on(
        &vm.socket(),
        &["events", "--count", "1", "--timeout", "200ms"],
        None,
    );
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(ran.stderr.contains("only 0 of 1 events"), "{ran:?}");
}
