//! The typed layer cannot drift from the QEMUs we support: every typed
//! command, argument, enumeration value and event is checked against the
//! `query-qmp-schema` of QEMU 7.2 and 10.0 (recorded in `tests/fixtures/`)
//! and of the real `qemu-system-x86_64` under test (`$QEMUKIT_QEMU`).
//!
//! The version bounds are checked both ways: what the typed layer says a
//! release has (`Command::check_version`, an enumeration value's
//! `since()`/`until()`) must be in that release's schema, and what it says
//! a release lacks must not be.
//!
//! The event types (`qmp_proto::events`) are the generated ones, checked
//! with every generated command in `tests/generated.rs`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::BytesMut;
use qmp_proto::commands::*;
use qmp_proto::{
    Capability, ClientCodec, Command, JsonObject, Request, ServerMessage, Unsupported, Version,
};
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

/// Runs QEMU with QMP on stdio and returns its version (from the greeting)
/// and its `query-qmp-schema` reply.
fn fetch_schema() -> (Version, Vec<Value>) {
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
    let mut version = None;
    loop {
        while let Some(message) = codec.decode(&mut buf).expect("QEMU sent valid QMP") {
            match message {
                ServerMessage::Greeting(greeting) => version = Some(greeting.version()),
                ServerMessage::Success(reply) if reply.id == Some(json!("schema")) => {
                    drop(stdin);
                    let version = version.expect("QEMU greets before it replies");
                    let schema = serde_json::from_value(reply.ret).expect("the schema is an array");
                    return (version, schema);
                }
                _ => {}
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

/// A typed command with every argument this crate can serialise set, and
/// what the typed layer says about the releases that accept it.
struct Entry {
    name: &'static str,
    arguments: Value,
    since: Option<(u32, u32)>,
    until: Option<(u32, u32)>,
    check: Box<dyn Fn(Version) -> Result<(), Unsupported>>,
}

fn entry<C: Command + 'static>(command: C) -> Entry {
    let arguments = command.arguments().expect("arguments serialise");
    Entry {
        name: C::NAME,
        arguments: arguments.map_or(json!({}), Value::Object),
        since: C::SINCE,
        until: C::UNTIL,
        check: Box::new(move |qemu| command.check_version(qemu)),
    }
}

fn every_command() -> Vec<Entry> {
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
    .into_iter()
    // Each migration capability on its own: those a release lacks must be
    // refused by the typed layer and by that release's schema alike.
    .chain(MigrationCapability::KNOWN.iter().map(|wire| {
        let capability: MigrationCapability =
            serde_json::from_value(json!(wire)).expect("a known capability");
        entry(MigrateSetCapabilities::new(vec![
            MigrationCapabilityStatus::new(capability, true),
        ]))
    }))
    .collect()
}

/// The values an enumeration knows, each with the releases that have it.
macro_rules! values {
    ($enum:ty) => {
        <$enum>::KNOWN
            .iter()
            .map(|wire| {
                let value: $enum = serde_json::from_value(json!(wire)).expect("a known value");
                (*wire, value.since(), value.until())
            })
            .collect::<Vec<_>>()
    };
}

/// Every disagreement between the typed layer and the schema of QEMU
/// `qemu`.
fn drift(qemu: Version, schema: &Schema) -> Vec<String> {
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
            commands.iter().any(|entry| entry.name == required),
            "{required} is not in the checked list"
        );
    }
    for entry in &commands {
        let name = entry.name;
        let exists = matches!(schema.entities.get(name), Some(e) if e["meta-type"] == "command");
        let claimed = qemu.within(entry.since, entry.until);
        if !claimed {
            if exists {
                errors.push(format!(
                    "command {name} exists, but is claimed absent in {qemu}"
                ));
            }
            continue;
        }
        if !exists {
            errors.push(format!("command {name} does not exist"));
            continue;
        }
        let arg_type = schema.get(name)["arg-type"].as_str().unwrap_or("");
        let mut found = Vec::new();
        schema.check(arg_type, &entry.arguments, name, &mut found);
        match (entry.check)(qemu) {
            Ok(()) => errors.extend(found),
            Err(refusal) if found.is_empty() => errors.push(format!(
                "{name} {}: the schema accepts what the typed layer refuses ({refusal})",
                entry.arguments
            )),
            Err(_) => {}
        }
    }

    // Every value our enumerations know is one QEMU knows, exactly in the
    // releases the value claims.
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
    type Values = Vec<(&'static str, Option<(u32, u32)>, Option<(u32, u32)>)>;
    let enums: [(String, &str, Values); 12] = [
        (ret("query-status"), "status", values!(RunState)),
        (arg("SHUTDOWN"), "reason", values!(ShutdownCause)),
        (arg("screendump"), "format", values!(ImageFormat)),
        (arg("blockdev-mirror"), "sync", values!(MirrorSyncMode)),
        (
            arg("blockdev-mirror"),
            "on-source-error",
            values!(BlockdevOnError),
        ),
        (arg("blockdev-mirror"), "copy-mode", values!(MirrorCopyMode)),
        (ret("query-jobs"), "type", values!(JobType)),
        (ret("query-jobs"), "status", values!(JobStatus)),
        (ret("query-migrate"), "status", values!(MigrationStatus)),
        (
            arg("migrate-set-capabilities"),
            "capabilities.capability",
            values!(MigrationCapability),
        ),
        (arg("JOB_STATUS_CHANGE"), "status", values!(JobStatus)),
        (arg("MIGRATION"), "status", values!(MigrationStatus)),
    ];
    for (type_name, path, known) in enums {
        let values = schema.enum_values(&type_name, path);
        for (value, since, until) in known {
            let present = values.iter().any(|v| v == value);
            match (qemu.within(since, until), present) {
                (true, false) => {
                    errors.push(format!("{type_name}.{path}: QEMU does not know {value:?}"))
                }
                (false, true) => errors.push(format!(
                    "{type_name}.{path}: {value:?} exists, but is claimed absent in {qemu}"
                )),
                _ => {}
            }
        }
    }
    errors
}

/// The greeting and schema recorded from one QEMU release.
fn recorded(greeting: &[u8], schema_reply: &[u8]) -> (Version, Schema) {
    let mut codec = ClientCodec::new();
    let mut input = BytesMut::from(greeting);
    let Ok(Some(ServerMessage::Greeting(greeting))) = codec.decode(&mut input) else {
        panic!("the recorded greeting does not decode");
    };
    let mut input = BytesMut::from(schema_reply);
    let Ok(Some(ServerMessage::Success(reply))) = codec.decode(&mut input) else {
        panic!("the recorded schema reply does not decode");
    };
    let list = serde_json::from_value(reply.ret).expect("the schema is an array");
    (greeting.version(), Schema::new(list))
}

fn assert_no_drift(qemu: Version, schema: &Schema, source: &str) {
    let errors = drift(qemu, schema);
    assert!(
        errors.is_empty(),
        "drift from the schema of QEMU {qemu} ({source}):\n{}",
        errors.join("\n")
    );
}

#[test]
fn typed_layer_matches_the_recorded_qemu_7_2_schema() {
    let (qemu, schema) = recorded(
        include_bytes!("fixtures/qemu-7.2/greeting.json"),
        include_bytes!("fixtures/qemu-7.2/query-qmp-schema.reply"),
    );
    assert_eq!(qemu, (7, 2));
    assert_no_drift(qemu, &schema, "tests/fixtures/qemu-7.2");
}

#[test]
fn typed_layer_matches_the_recorded_qemu_10_0_schema() {
    let (qemu, schema) = recorded(
        include_bytes!("fixtures/qemu-10.0/greeting.json"),
        include_bytes!("fixtures/qemu-10.0/query-qmp-schema.reply"),
    );
    assert_eq!(qemu, (10, 0));
    assert_no_drift(qemu, &schema, "tests/fixtures/qemu-10.0");
}

#[test]
fn typed_layer_matches_the_schema_of_the_qemu_under_test() {
    let (qemu, list) = fetch_schema();
    assert_no_drift(
        qemu,
        &Schema::new(list),
        &qemu_binary().display().to_string(),
    );
}

/// The bounds are not vacuous: each recorded release lacks something the
/// other has, and the check notices a bound that is off by a release.
#[test]
fn version_bounds_are_checked_both_ways() {
    let (v7, schema7) = recorded(
        include_bytes!("fixtures/qemu-7.2/greeting.json"),
        include_bytes!("fixtures/qemu-7.2/query-qmp-schema.reply"),
    );
    let (v10, schema10) = recorded(
        include_bytes!("fixtures/qemu-10.0/greeting.json"),
        include_bytes!("fixtures/qemu-10.0/query-qmp-schema.reply"),
    );
    // Pretending each schema came from the other release shows the values
    // whose bounds separate them.
    let errors = drift(v10, &schema7);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("\"mapped-ram\"") && e.contains("does not know")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("\"compress\"") && e.contains("claimed absent")),
        "{errors:#?}"
    );
    let errors = drift(v7, &schema10);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("\"compress\"") && e.contains("does not know")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("\"postcopy-recover-setup\"") && e.contains("claimed absent")),
        "{errors:#?}"
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
