//! One-shot commands: output, shorthand typing, exit statuses.

use std::process::Command;

use serde_json::{Value, json};

use crate::harness::{QMP, Vm, qmp_on, run, spawn_qmp};

#[test]
fn the_return_value_is_one_compact_line_when_piped() {
    let vm = Vm::start();
    let ran = vm.qmp_ok(&["query-status"]);
    assert_eq!(ran.stdout.lines().count(), 1, "{ran:?}");
    let status = ran.json();
    assert!(
        matches!(
            status.get("status").and_then(Value::as_str),
            Some("running" | "prelaunch")
        ),
        "{ran:?}"
    );
    let ran = vm.qmp_ok(&["--pretty", "query-version"]);
    assert!(ran.stdout.lines().count() > 3, "{ran:?}");
    assert!(
        ran.json().pointer("/qemu/major").is_some_and(Value::is_u64),
        "{ran:?}"
    );
    let ran = vm.qmp_ok(&["query-status", "--raw"]);
    assert!(ran.json().pointer("/return/status").is_some(), "{ran:?}");
    // QMP_SOCKET names the socket when -s is not given.
    let mut command = Command::new(QMP);
    command.env("QMP_SOCKET", vm.socket()).arg("query-status");
    let ran = run(command, None);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.json().get("status").is_some(), "{ran:?}");
}

#[test]
fn shorthand_values_are_typed_as_json_where_they_parse() {
    let vm = Vm::start();
    // A boolean property: the string "false" would be refused.
    vm.qmp_ok(&[
        "qom-set",
        "path=/machine",
        "property=dump-guest-core",
        "value=false",
    ]);
    let ran = vm.qmp_ok(&["qom-get", "path=/machine", "property=dump-guest-core"]);
    assert_eq!(ran.json(), json!(false), "{ran:?}");
    // A number: the string "1048576" would be refused.
    vm.qmp_ok(&[
        "object-add",
        "qom-type=memory-backend-ram",
        "id=m0",
        "size=1048576",
    ]);
    let ran = vm.qmp_ok(&["qom-get", "path=/objects/m0", "property=size"]);
    assert_eq!(ran.json(), json!(1048576), "{ran:?}");
    // `:=` forces JSON: a string of digits for a string property.
    vm.qmp_ok(&[
        "qom-set",
        "path=/machine",
        "property=kernel",
        "value:=\"123\"",
    ]);
    let ran = vm.qmp_ok(&["qom-get", "path=/machine", "property=kernel"]);
    assert_eq!(ran.json(), json!("123"), "{ran:?}");
    // Dots nest: `file` must be an object (or a node name) for QEMU.
    vm.qmp_ok(&[
        "blockdev-add",
        "driver=raw",
        "node-name=r0",
        "file.driver=null-co",
        "file.size=4096",
    ]);
    let ran = vm.qmp_ok(&["query-named-block-nodes", "flat=true"]);
    let nodes = ran.json();
    let names: Vec<&str> = nodes
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| n.get("node-name")?.as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(names.contains(&"r0"), "{ran:?}");
    // --args takes a JSON object, and mixes with shorthand.
    let ran = vm.qmp_ok(&[
        "qom-get",
        "--args",
        r#"{"path": "/machine"}"#,
        "property=type",
    ]);
    assert_eq!(ran.json(), json!("none-machine"), "{ran:?}");
}

#[test]
fn qmp_errors_exit_1_with_class_and_desc() {
    let vm = Vm::start();
    // Refused from the schema before sending, and by QEMU itself.
    for args in [&["nope"][..], &["--no-schema-check", "nope"]] {
        let ran = qmp_on(&vm.socket(), args, None);
        assert_eq!(ran.code, Some(1), "{ran:?}");
        assert!(ran.stderr.starts_with("CommandNotFound: "), "{ran:?}");
        assert!(ran.stdout.is_empty(), "{ran:?}");
    }
    let wrong_type = ["qom-set", "path=/machine", "property=kernel", "value=5"];
    let ran = qmp_on(&vm.socket(), &wrong_type, None);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(ran.stderr.starts_with("GenericError: "), "{ran:?}");
    // --raw prints the error reply object too.
    let ran = qmp_on(&vm.socket(), &[&wrong_type[..], &["--raw"]].concat(), None);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert_eq!(
        ran.json().pointer("/error/class"),
        Some(&json!("GenericError")),
        "{ran:?}"
    );
}

#[test]
fn connection_failures_exit_2_and_bad_usage_64() {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => panic!("cannot create a temp dir: {error}"),
    };
    let missing = dir.path().join("no-such.sock");
    let ran = qmp_on(&missing, &["query-status"], None);
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("connecting to"), "{ran:?}");
    assert!(ran.stderr.contains("No such file or directory"), "{ran:?}");

    // Not a QMP monitor at all: a socket nobody greets on.
    let silent = dir.path().join("silent.sock");
    let _listener = match std::os::unix::net::UnixListener::bind(&silent) {
        Ok(listener) => listener,
        Err(error) => panic!("cannot bind {}: {error}", silent.display()),
    };
    let ran = qmp_on(
        &silent,
        &["--handshake-timeout", "200ms", "query-status"],
        None,
    );
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("timed out"), "{ran:?}");

    let vm = Vm::start();
    let ran = qmp_on(&vm.socket(), &["qom-get", "path"], None);
    assert_eq!(ran.code, Some(64), "{ran:?}");
    assert!(ran.stderr.contains("not KEY=VALUE"), "{ran:?}");
    let mut command = Command::new(QMP);
    command.arg("query-status");
    let ran = run(command, None);
    assert_eq!(ran.code, Some(64), "{ran:?}");
    assert!(ran.stderr.contains("-s PATH"), "{ran:?}");
}

#[test]
fn hmp_prints_the_monitor_text() {
    let vm = Vm::start();
    let ran = vm.qmp_ok(&["hmp", "info", "status"]);
    assert!(ran.stdout.starts_with("VM status: "), "{ran:?}");
    assert!(!ran.stdout.contains('\r'), "{ran:?}");
}

#[test]
fn listen_mode_waits_for_qemu_to_connect() {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => panic!("cannot create a temp dir: {error}"),
    };
    let path = dir.path().join("listen.sock");
    let listen = path.display().to_string();
    // --listen wins over -s.
    let waiting = spawn_qmp(
        &dir.path().join("unused"),
        &["--listen", &listen, "query-status"],
    );
    let deadline = std::time::Instant::now() + crate::harness::LIMIT;
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "qmp never listened on {listen}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let chardev = format!("socket,id=client,path={listen},server=off");
    let _vm = Vm::start_with(&["-chardev", &chardev, "-mon", "chardev=client,mode=control"]);
    let ran = waiting.finish();
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.json().get("status").is_some(), "{ran:?}");
    assert!(!path.exists(), "the listening socket was left behind");
}

#[test]
fn tcp_connects_to_a_monitor_on_a_port_qemu_picked() {
    // QEMU binds port 0 to a free port and reports it in query-chardev.
    let vm = Vm::start_with(&[
        "-chardev",
        "socket,id=tcpmon,host=127.0.0.1,port=0,server=on,wait=off",
        "-mon",
        "chardev=tcpmon,mode=control",
    ]);
    let chardevs = vm.other_ok(&["query-chardev"]).json();
    let filename = chardevs
        .as_array()
        .and_then(|all| all.iter().find(|dev| dev["label"] == "tcpmon"))
        .and_then(|dev| dev["filename"].as_str())
        .unwrap_or_default()
        .to_owned();
    let address = filename
        .split("tcp:")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_default();
    assert!(
        address.starts_with("127.0.0.1:") && !address.ends_with(":0"),
        "no bound port in query-chardev: {chardevs}"
    );
    let mut command = Command::new(QMP);
    command.args(["--tcp", address, "query-status"]);
    let ran = run(command, None);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.json().get("status").is_some(), "{ran:?}");
}
