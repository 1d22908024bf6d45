//! The typed layer cannot drift from the QEMU we test against: every typed
//! command and event is checked against the `query-qmp-schema` of the real
//! `qemu-system-x86_64` (its name exists, and every argument member we can
//! serialise is declared, with enum values QEMU knows).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::BytesMut;
use qmp_proto::commands::*;
use qmp_proto::events::{self, EventPayload};
use qmp_proto::{Capability, ClientCodec, Command, JsonObject, Request, ServerMessage};
use serde_json::{Value, json};
use tokio_util::codec::{Decoder, Encoder};

const TIMEOUT: Duration = Duration::from_secs(30);

/// `$QEMUKIT_QEMU`, else `qemu-system-x86_64` from the `PATH`; fails with
/// the install command when neither exists.
fn qemu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("QEMUKIT_QEMU") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("qemu-system-x86_64"))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "qemu-system-x86_64 is not installed: this test needs a real QEMU. \
             Install it with `sudo apt-get install -y qemu-system-x86` \
             (or point QEMUKIT_QEMU at a binary)."
        )
    })
}

/// Kills QEMU when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs QEMU with QMP on stdio and returns the `query-qmp-schema` reply.
fn fetch_schema() -> Vec<Value> {
    let child = Process::new(qemu_binary())
        .args([
            "-machine",
            "none",
            "-nodefaults",
            "-display",
            "none",
            "-qmp",
            "stdio",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|error| panic!("could not start QEMU: {error}"));
    let mut guard = Guard(child);

    let mut out = BytesMut::new();
    let mut codec = ClientCodec::new();
    for request in [
        Request::new("qmp_capabilities"),
        Request::new("query-qmp-schema").with_id("schema"),
    ] {
        codec.encode(request, &mut out).expect("encode");
    }
    let mut stdin = guard.0.stdin.take().expect("stdin is piped");
    stdin.write_all(&out).expect("write to QEMU");

    // A reader thread turns the blocking pipe into a channel we can wait on
    // with a timeout.
    let mut stdout = guard.0.stdout.take().expect("stdout is piped");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 65536];
        loop {
            match stdout.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sender.send(chunk[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let mut buf = BytesMut::new();
    loop {
        while let Some(message) = codec.decode(&mut buf).expect("QEMU sent valid QMP") {
            if let ServerMessage::Success(reply) = message {
                if reply.id == Some(json!("schema")) {
                    drop(stdin);
                    return serde_json::from_value(reply.ret).expect("the schema is an array");
                }
            }
        }
        let chunk = receiver
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|error| panic!("no schema from QEMU within {TIMEOUT:?}: {error}"));
        buf.extend_from_slice(&chunk);
    }
}

struct Schema {
    entities: HashMap<String, Value>,
}

impl Schema {
    fn new(list: Vec<Value>) -> Self {
        let entities = list
            .into_iter()
            .filter_map(|entity| Some((entity.get("name")?.as_str()?.to_owned(), entity)))
            .collect();
        Self { entities }
    }

    fn get(&self, name: &str) -> &Value {
        self.entities
            .get(name)
            .unwrap_or_else(|| panic!("schema type {name} is missing"))
    }

    fn meta(&self, name: &str) -> &str {
        self.get(name)["meta-type"].as_str().unwrap_or("")
    }

    /// The object type's members, including those of the variant `value`
    /// selects.
    fn members<'a>(&'a self, name: &str, value: &JsonObject) -> HashMap<&'a str, &'a str> {
        let entity = self.get(name);
        let mut members: HashMap<&str, &str> = entity["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| Some((m["name"].as_str()?, m["type"].as_str()?)))
            .collect();
        if let Some(tag) = entity["tag"].as_str() {
            let case = value.get(tag).and_then(Value::as_str);
            let variant = entity["variants"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["case"].as_str() == case);
            if let Some(variant_type) = variant.and_then(|v| v["type"].as_str()) {
                members.extend(self.members(variant_type, value));
            }
        }
        members
    }

    /// Records in `errors` every part of `value` that type `name` does not
    /// declare.
    fn check(&self, name: &str, value: &Value, path: &str, errors: &mut Vec<String>) {
        let entity = self.get(name);
        match (self.meta(name), value) {
            ("object", Value::Object(object)) => {
                let members = self.members(name, object);
                for (key, member_value) in object {
                    match members.get(key.as_str()) {
                        Some(member_type) => {
                            self.check(member_type, member_value, &format!("{path}.{key}"), errors)
                        }
                        None => errors.push(format!("{path}.{key} is not declared by {name}")),
                    }
                }
            }
            ("array", Value::Array(items)) => {
                let element = entity["element-type"].as_str().unwrap_or("");
                for (index, item) in items.iter().enumerate() {
                    self.check(element, item, &format!("{path}[{index}]"), errors);
                }
            }
            ("enum", Value::String(text)) => {
                let values = &entity["values"];
                if !values.as_array().is_some_and(|v| v.contains(value)) {
                    errors.push(format!("{path}: {text:?} is not one of {values}"));
                }
            }
            ("alternate", _) => {
                let fits = entity["members"].as_array().into_iter().flatten().any(|m| {
                    let mut inner = Vec::new();
                    self.check(m["type"].as_str().unwrap_or(""), value, path, &mut inner);
                    inner.is_empty()
                });
                if !fits {
                    errors.push(format!("{path}: {value} fits no branch of {name}"));
                }
            }
            ("builtin", _) => {
                let fits = match entity["json-type"].as_str() {
                    Some("string") => value.is_string(),
                    Some("int") => value.is_i64() || value.is_u64(),
                    Some("number") => value.is_number(),
                    Some("boolean") => value.is_boolean(),
                    Some("null") => value.is_null(),
                    Some("object") => value.is_object(),
                    Some("array") => value.is_array(),
                    _ => true,
                };
                if !fits {
                    errors.push(format!("{path}: {value} is not a {name}"));
                }
            }
            (meta, _) => errors.push(format!("{path}: {value} does not fit {meta} {name}")),
        }
    }

    /// The enum values of the member at `path` (dot-separated) under `name`.
    fn enum_values(&self, name: &str, path: &str) -> Vec<String> {
        let mut current = name.to_owned();
        for part in path.split('.') {
            current = self.element(&current);
            let members = self.members(&current, &JsonObject::new());
            current = members
                .get(part)
                .unwrap_or_else(|| panic!("{name} has no member {path}"))
                .to_string();
        }
        current = self.element(&current);
        serde_json::from_value(self.get(&current)["values"].clone()).unwrap_or_default()
    }

    fn element(&self, name: &str) -> String {
        match self.meta(name) {
            "array" => self.element(self.get(name)["element-type"].as_str().unwrap_or("")),
            _ => name.to_owned(),
        }
    }
}

/// A command with every argument this crate can serialise set.
fn entry<C: Command>(command: C) -> (&'static str, Value) {
    let arguments = command.arguments().expect("arguments serialise");
    (C::NAME, arguments.map_or(json!({}), Value::Object))
}

fn every_command() -> Vec<(&'static str, Value)> {
    let mut hmp = HumanMonitorCommand::new("info status");
    hmp.cpu_index = Some(0);
    let mut screendump = Screendump::new("/tmp/x.png");
    screendump.device = Some("video0".into());
    screendump.head = Some(0);
    screendump.format = Some(ImageFormat::Png);
    let mut mirror = BlockdevMirror::new("src", "dst", MirrorSyncMode::Full);
    mirror.job_id = Some("m0".into());
    mirror.replaces = Some("old".into());
    mirror.speed = Some(1);
    mirror.granularity = Some(65536);
    mirror.buf_size = Some(1 << 20);
    mirror.on_source_error = Some(BlockdevOnError::Stop);
    mirror.on_target_error = Some(BlockdevOnError::Enospc);
    mirror.filter_node_name = Some("f".into());
    mirror.copy_mode = Some(MirrorCopyMode::WriteBlocking);
    mirror.auto_finalize = Some(true);
    mirror.auto_dismiss = Some(false);
    let mut add_fd = AddFd::to_set(1);
    add_fd.opaque = Some("note".into());
    let mut migrate = Migrate::new("unix:/tmp/m.sock");
    migrate.resume = Some(false);
    let mut nodes = QueryNamedBlockNodes::new();
    nodes.flat = Some(true);
    vec![
        entry(QmpCapabilities::enable(vec![Capability::Oob])),
        entry(QueryVersion),
        entry(QueryStatus),
        entry(QueryCommands),
        entry(QueryName),
        entry(QueryKvm),
        entry(QueryCpusFast),
        entry(Stop),
        entry(Cont),
        entry(SystemReset),
        entry(SystemPowerdown),
        entry(Quit),
        entry(DeviceAdd::new("virtio-blk-pci").id("d0").bus("pci.0")),
        entry(DeviceDel::new("d0")),
        entry(BlockdevAdd::new("null-co", "n0").read_only(true)),
        entry(BlockdevDel::new("n0")),
        entry(QueryBlock),
        entry(nodes),
        entry(mirror),
        entry(QueryJobs),
        entry(JobComplete::new("m0")),
        entry(JobCancel::new("m0")),
        entry(JobDismiss::new("m0")),
        entry(hmp),
        entry(QomList::new("/machine")),
        entry(QomGet::new("/machine", "type")),
        entry(QomSet::new("/machine", "x", 1)),
        entry(GetFd::new("fd0")),
        entry(CloseFd::new("fd0")),
        entry(add_fd),
        entry(RemoveFd::fd(1, 3)),
        entry(QueryFdsets),
        entry(migrate),
        entry(MigrateIncoming::new("defer")),
        entry(QueryMigrate),
        entry(MigrateSetCapabilities::new(vec![
            MigrationCapabilityStatus::new(MigrationCapability::Events, true),
        ])),
        entry(NetdevAdd::new("user", "net0")),
        entry(NetdevDel::new("net0")),
        entry(ChardevAdd::new(
            "c0",
            ChardevBackend::unix_socket("/tmp/c.sock", true),
        )),
        entry(ChardevAdd::new("c1", ChardevBackend::file("/tmp/c.log"))),
        entry(ChardevAdd::new("c2", ChardevBackend::null())),
        entry(ChardevRemove::new("c0")),
        entry(screendump),
        entry(QueryQmpSchema),
    ]
}

/// An event with every member this crate types set, read and written back
/// through its payload type.
fn event<E: EventPayload + serde::Serialize>(full: Value) -> (&'static str, Value) {
    let payload: E = serde_json::from_value(full).expect("event data deserialises");
    (
        E::NAME,
        serde_json::to_value(payload).expect("event data serialises"),
    )
}

fn every_event() -> Vec<(&'static str, Value)> {
    vec![
        event::<events::Shutdown>(json!({"guest": true, "reason": "guest-shutdown"})),
        event::<events::Powerdown>(json!({})),
        event::<events::Reset>(json!({"guest": false, "reason": "host-qmp-system-reset"})),
        event::<events::Stop>(json!({})),
        event::<events::Resume>(json!({})),
        event::<events::DeviceDeleted>(json!({"device": "d0", "path": "/machine/peripheral/d0"})),
        event::<events::JobStatusChange>(json!({"id": "m0", "status": "ready"})),
        event::<events::BlockJobReady>(
            json!({"type": "mirror", "device": "m0", "len": 1, "offset": 1, "speed": 0}),
        ),
        event::<events::BlockJobCompleted>(json!({"type": "mirror", "device": "m0", "len": 1,
            "offset": 1, "speed": 0, "error": "boom"})),
        event::<events::BlockJobError>(
            json!({"device": "m0", "operation": "read", "action": "stop"}),
        ),
        event::<events::Migration>(json!({"status": "completed"})),
        event::<events::GuestPanicked>(
            json!({"action": "pause", "info": {"type": "hyper-v", "arg1": 1, "arg2": 2,
                "arg3": 3, "arg4": 4, "arg5": 5}}),
        ),
    ]
}

#[test]
fn typed_commands_and_events_match_the_real_qemu_schema() {
    let schema = Schema::new(fetch_schema());
    let mut errors = Vec::new();

    let commands = every_command();
    for required in [
        "qmp_capabilities",
        "query-version",
        "query-status",
        "query-commands",
        "query-name",
        "query-kvm",
        "query-cpus-fast",
        "stop",
        "cont",
        "system_reset",
        "system_powerdown",
        "quit",
        "device_add",
        "device_del",
        "blockdev-add",
        "blockdev-del",
        "query-block",
        "query-named-block-nodes",
        "blockdev-mirror",
        "query-jobs",
        "job-complete",
        "job-cancel",
        "job-dismiss",
        "human-monitor-command",
        "qom-list",
        "qom-get",
        "qom-set",
        "getfd",
        "closefd",
        "add-fd",
        "remove-fd",
        "query-fdsets",
        "migrate",
        "migrate-incoming",
        "query-migrate",
        "migrate-set-capabilities",
        "netdev_add",
        "netdev_del",
        "chardev-add",
        "chardev-remove",
        "screendump",
        "query-qmp-schema",
    ] {
        assert!(
            commands.iter().any(|(name, _)| *name == required),
            "{required} is not in the checked list"
        );
    }
    for (name, arguments) in &commands {
        match schema.entities.get(*name) {
            Some(entity) if entity["meta-type"] == "command" => {
                let arg_type = entity["arg-type"].as_str().unwrap_or("");
                schema.check(arg_type, arguments, name, &mut errors);
            }
            _ => errors.push(format!("command {name} does not exist")),
        }
    }

    for (name, data) in every_event() {
        match schema.entities.get(name) {
            Some(entity) if entity["meta-type"] == "event" => {
                let arg_type = entity["arg-type"].as_str().unwrap_or("");
                schema.check(arg_type, &data, name, &mut errors);
            }
            _ => errors.push(format!("event {name} does not exist")),
        }
    }

    // Every value our enumerations know is one QEMU knows.
    let ret = |command: &str| {
        schema.get(command)["ret-type"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let arg = |entity: &str| {
        schema.get(entity)["arg-type"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let enums: [(String, &str, &[&str]); 12] = [
        (ret("query-status"), "status", RunState::KNOWN),
        (arg("SHUTDOWN"), "reason", ShutdownCause::KNOWN),
        (arg("screendump"), "format", ImageFormat::KNOWN),
        (arg("blockdev-mirror"), "sync", MirrorSyncMode::KNOWN),
        (
            arg("blockdev-mirror"),
            "on-source-error",
            BlockdevOnError::KNOWN,
        ),
        (arg("blockdev-mirror"), "copy-mode", MirrorCopyMode::KNOWN),
        (ret("query-jobs"), "type", JobType::KNOWN),
        (ret("query-jobs"), "status", JobStatus::KNOWN),
        (ret("query-migrate"), "status", MigrationStatus::KNOWN),
        (
            arg("migrate-set-capabilities"),
            "capabilities.capability",
            MigrationCapability::KNOWN,
        ),
        (arg("JOB_STATUS_CHANGE"), "status", JobStatus::KNOWN),
        (arg("MIGRATION"), "status", MigrationStatus::KNOWN),
    ];
    for (type_name, path, known) in enums {
        let values = schema.enum_values(&type_name, path);
        for value in known {
            if !values.iter().any(|v| v == value) {
                errors.push(format!("{type_name}.{path}: QEMU does not know {value:?}"));
            }
        }
    }

    assert!(
        errors.is_empty(),
        "drift from the real schema:\n{}",
        errors.join("\n")
    );
}

#[test]
fn the_checker_catches_drift() {
    // The checker itself must see undeclared members and unknown values.
    let schema = Schema::new(vec![
        json!({"name": "0", "meta-type": "object", "members": [
            {"name": "id", "type": "str"}, {"name": "mode", "type": "1"}]}),
        json!({"name": "1", "meta-type": "enum", "values": ["a", "b"]}),
        json!({"name": "str", "meta-type": "builtin", "json-type": "string"}),
    ]);
    let mut errors = Vec::new();
    schema.check("0", &json!({"id": "x", "mode": "a"}), "ok", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    schema.check(
        "0",
        &json!({"id": 1, "mode": "c", "extra": true}),
        "bad",
        &mut errors,
    );
    assert_eq!(errors.len(), 3, "{errors:?}");
}
