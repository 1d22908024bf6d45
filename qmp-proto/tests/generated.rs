//! The generated QMP layer (`qmp_proto::qapi`) against what QEMU 7.2 and
//! 10.0 really do: every recorded reply and event decodes into its
//! generated type, both recorded schemas are covered command by command,
//! drift (unknown members, values, variants) decodes, version checks
//! refuse what a version lacks, the hand-written types agree with the
//! generated ones, and the live QEMU's schema is the recorded one.

// The tests say what they decoded (shown with `--nocapture`).
#![allow(clippy::print_stderr)]

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::BytesMut;
use qmp_proto::qapi::{commands as qc, events as qe, types};
use qmp_proto::{ClientCodec, Command, Event, ServerMessage, Unsupported, Version, commands};
use serde_json::{Value, json};
use tokio_util::codec::Decoder;

/// One recorded QEMU version (`tests/fixtures/qemu-X.Y/`).
struct Recorded {
    release: (u32, u32),
    session_in: &'static str,
    session_out: &'static [u8],
    schema: &'static [u8],
}

const RECORDED: [Recorded; 2] = [
    Recorded {
        release: (7, 2),
        session_in: include_str!("fixtures/qemu-7.2/session.in"),
        session_out: include_bytes!("fixtures/qemu-7.2/session.out"),
        schema: include_bytes!("fixtures/qemu-7.2/query-qmp-schema.reply"),
    },
    Recorded {
        release: (10, 0),
        session_in: include_str!("fixtures/qemu-10.0/session.in"),
        session_out: include_bytes!("fixtures/qemu-10.0/session.out"),
        schema: include_bytes!("fixtures/qemu-10.0/query-qmp-schema.reply"),
    },
];

fn version((major, minor): (u32, u32)) -> Version {
    Version {
        major,
        minor,
        micro: 0,
    }
}

fn messages(bytes: &[u8]) -> Vec<ServerMessage> {
    let mut codec = ClientCodec::new();
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(message) = codec.decode(&mut buf).expect("recorded QMP decodes") {
        out.push(message);
    }
    out
}

/// Request id (as JSON text) → command name, from `session.in`.
fn commands_by_id(session_in: &str) -> HashMap<String, String> {
    session_in
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|request| {
            let name = request.get("execute").or_else(|| request.get("exec-oob"))?;
            Some((request.get("id")?.to_string(), name.as_str()?.to_owned()))
        })
        .collect()
}

/// `ret` read as the generated output of `name`, printed with `{:?}`.
/// Every command the transcripts use is listed; another one fails loudly.
fn decode_output(name: &str, ret: Value) -> Result<String, serde_json::Error> {
    fn parse<C: Command>(ret: Value) -> Result<String, serde_json::Error>
    where
        C::Output: std::fmt::Debug,
    {
        C::parse_output(ret).map(|output| format!("{output:?}"))
    }
    macro_rules! by_name {
        ($($command:ty),* $(,)?) => {
            match name {
                $(wire if wire == <$command as Command>::NAME => parse::<$command>(ret),)*
                other => panic!("the transcripts use `{other}`: add it to decode_output"),
            }
        };
    }
    by_name!(
        qc::QmpCapabilities,
        qc::QueryVersion,
        qc::QueryStatus,
        qc::QueryName,
        qc::QueryKvm,
        qc::QueryCpusFast,
        qc::Stop,
        qc::Cont,
        qc::QomList,
        qc::QomGet,
        qc::HumanMonitorCommand,
        qc::QueryFdsets,
        qc::BlockdevAdd,
        qc::QueryNamedBlockNodes,
        qc::QueryBlock,
        qc::QueryMigrate,
        qc::MigrateSetCapabilities,
        qc::BlockdevMirror,
        qc::QueryJobs,
        qc::JobComplete,
        qc::BlockdevDel,
        qc::Quit,
    )
}

/// `ret` read as the hand-written output of `name`: the hand-written layer
/// must read every recorded reply the generated one reads.
fn decode_hand_written_output(name: &str, ret: Value) -> Result<String, serde_json::Error> {
    fn parse<C: Command>(ret: Value) -> Result<String, serde_json::Error>
    where
        C::Output: std::fmt::Debug,
    {
        C::parse_output(ret).map(|output| format!("{output:?}"))
    }
    macro_rules! by_name {
        ($($command:ty),* $(,)?) => {
            match name {
                $(wire if wire == <$command as Command>::NAME => parse::<$command>(ret),)*
                other => panic!("the transcripts use `{other}`: add it to decode_hand_written_output"),
            }
        };
    }
    by_name!(
        commands::QmpCapabilities,
        commands::QueryVersion,
        commands::QueryStatus,
        commands::QueryName,
        commands::QueryKvm,
        commands::QueryCpusFast,
        commands::Stop,
        commands::Cont,
        commands::QomList,
        commands::QomGet,
        commands::HumanMonitorCommand,
        commands::QueryFdsets,
        commands::BlockdevAdd,
        commands::QueryNamedBlockNodes,
        commands::QueryBlock,
        commands::QueryMigrate,
        commands::MigrateSetCapabilities,
        commands::BlockdevMirror,
        commands::QueryJobs,
        commands::JobComplete,
        commands::BlockdevDel,
        commands::Quit,
    )
}

/// The event's data read as its generated payload, printed with `{:?}`.
fn decode_event(event: &Event) -> Option<Result<String, serde_json::Error>> {
    fn parse<E: qmp_proto::EventPayload + std::fmt::Debug>(
        event: &Event,
    ) -> Option<Result<String, serde_json::Error>> {
        event
            .payload::<E>()
            .map(|payload| payload.map(|p| format!("{p:?}")))
    }
    parse::<qe::Stop>(event)
        .or_else(|| parse::<qe::Resume>(event))
        .or_else(|| parse::<qe::JobStatusChange>(event))
        .or_else(|| parse::<qe::BlockJobReady>(event))
        .or_else(|| parse::<qe::BlockJobCompleted>(event))
        .or_else(|| parse::<qe::Shutdown>(event))
}

#[test]
fn every_recorded_reply_and_event_decodes_into_its_generated_type() {
    for recorded in &RECORDED {
        let names = commands_by_id(recorded.session_in);
        let (mut replies, mut events) = (0, 0);
        for message in messages(recorded.session_out) {
            match message {
                ServerMessage::Success(reply) => {
                    let id = reply.id.as_ref().map(Value::to_string).unwrap_or_default();
                    let name = &names[&id];
                    let decoded = decode_output(name, reply.ret.clone());
                    assert!(
                        matches!(&decoded, Ok(debug) if !debug.is_empty()),
                        "QEMU {:?}: `{name}` reply {} → {decoded:?}",
                        recorded.release,
                        reply.ret
                    );
                    let hand = decode_hand_written_output(name, reply.ret.clone());
                    assert!(
                        matches!(&hand, Ok(debug) if !debug.is_empty()),
                        "QEMU {:?}: `{name}` reply {} as the hand-written type → {hand:?}",
                        recorded.release,
                        reply.ret
                    );
                    replies += 1;
                }
                ServerMessage::Event(event) => {
                    let decoded = decode_event(&event);
                    assert!(
                        matches!(decoded, Some(Ok(_))),
                        "QEMU {:?}: event {} {:?} → {decoded:?}",
                        recorded.release,
                        event.name,
                        event.data
                    );
                    events += 1;
                }
                _ => {}
            }
        }
        eprintln!(
            "QEMU {:?}: {replies} replies and {events} events decoded",
            recorded.release
        );
        assert_eq!((replies, events), (23, 12), "QEMU {:?}", recorded.release);
    }
}

#[test]
fn typed_replies_read_the_same_on_both_versions() {
    for (recorded, name, ret) in recorded_replies() {
        match name.as_str() {
            "query-status" => {
                let status = qc::QueryStatus::parse_output(ret);
                assert!(
                    matches!(&status, Ok(s) if s.running && s.status == types::RunState::Running),
                    "{status:?}"
                );
            }
            "query-version" => {
                let info = qc::QueryVersion::parse_output(ret);
                assert!(
                    matches!(&info, Ok(v) if (v.qemu.major, v.qemu.minor) == (i64::from(recorded.release.0), i64::from(recorded.release.1))),
                    "{info:?}"
                );
            }
            "query-jobs" => {
                let jobs = qc::QueryJobs::parse_output(ret);
                assert!(
                    matches!(&jobs, Ok(j) if j.len() == 1
                            && j[0].kind == types::JobType::Mirror
                            && j[0].status == types::JobStatus::Ready),
                    "{jobs:?}"
                );
            }
            "query-named-block-nodes" => {
                let nodes = qc::QueryNamedBlockNodes::parse_output(ret);
                let names: BTreeSet<_> = nodes
                    .iter()
                    .flatten()
                    .filter_map(|n| n.node_name.clone())
                    .collect();
                assert_eq!(names, BTreeSet::from(["dst".into(), "src".into()]));
                assert!(
                    matches!(&nodes, Ok(n) if n.iter().all(|n| n.image.virtual_size == 1048576)),
                    "{nodes:?}"
                );
            }
            _ => {}
        }
    }
}

/// Every recorded reply of both versions: the version, the command's name
/// and what it returned.
fn recorded_replies() -> Vec<(&'static Recorded, String, Value)> {
    let mut replies = Vec::new();
    for recorded in &RECORDED {
        let names = commands_by_id(recorded.session_in);
        for message in messages(recorded.session_out) {
            if let ServerMessage::Success(reply) = message {
                let id = reply.id.as_ref().map(Value::to_string).unwrap_or_default();
                replies.push((recorded, names[&id].clone(), reply.ret));
            }
        }
    }
    replies
}

/// Every command and event of both recorded schemas has a typed form, and
/// the typed versions (`SINCE`/`UNTIL`) say exactly which versions have it.
#[test]
fn both_recorded_schemas_are_covered_and_decode_as_schema_info() {
    for recorded in &RECORDED {
        let reply: Value = serde_json::from_slice(recorded.schema).expect("the reply is JSON");
        let schema = qc::QueryQmpSchema::parse_output(reply["return"].clone());
        let schema = match schema {
            Ok(schema) => schema,
            Err(error) => panic!("QEMU {:?}: schema as SchemaInfo: {error}", recorded.release),
        };
        let unknown: Vec<_> = schema
            .iter()
            .filter(|info| matches!(info.variant, types::SchemaInfoVariant::Other(_)))
            .collect();
        assert!(unknown.is_empty(), "{unknown:?}");
        let named = |variant: fn(&types::SchemaInfoVariant) -> bool| -> BTreeSet<String> {
            schema
                .iter()
                .filter(|info| variant(&info.variant))
                .map(|info| info.base.name.clone())
                .collect()
        };
        let in_schema = named(|v| matches!(v, types::SchemaInfoVariant::Command(_)));
        let events_in_schema = named(|v| matches!(v, types::SchemaInfoVariant::Event(_)));
        let qemu = version(recorded.release);
        let available = |table: &[qmp_proto::qapi::Availability]| {
            table
                .iter()
                .filter(|typed| typed.in_version(qemu))
                .map(|typed| typed.name.to_owned())
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(available(qc::ALL), in_schema, "QEMU {:?}", recorded.release);
        assert_eq!(
            available(qe::ALL),
            events_in_schema,
            "QEMU {:?}",
            recorded.release
        );
        eprintln!(
            "QEMU {:?}: {} commands and {} events, all typed",
            recorded.release,
            in_schema.len(),
            events_in_schema.len()
        );
    }
    assert_eq!(qc::ALL.len(), 235);
    assert_eq!(qe::ALL.len(), 57);
}

#[test]
fn unknown_members_values_and_variants_decode() {
    // A member and a run state from a QEMU newer than this crate.
    let status = qc::QueryStatus::parse_output(json!(
        {"status": "hibernating", "running": false, "new-member": {"x": 1}}));
    assert!(
        matches!(&status, Ok(s) if s.status == types::RunState::Other("hibernating".into())),
        "{status:?}"
    );
    // An unknown job type and status inside a list.
    let jobs = qc::QueryJobs::parse_output(json!([{"id": "j", "type": "teleport",
        "status": "beaming", "current-progress": 0, "total-progress": 1, "eta": 3}]));
    assert!(
        matches!(&jobs, Ok(j) if j[0].kind.as_str() == "teleport" && j[0].status.as_str() == "beaming"),
        "{jobs:?}"
    );
    // An unknown union variant keeps its members.
    let schema = qc::QueryQmpSchema::parse_output(json!([
        {"name": "x", "meta-type": "hologram", "depth": 3}]));
    assert!(
        matches!(&schema, Ok(s) if matches!(&s[0].variant,
            types::SchemaInfoVariant::Other(m) if m.get("depth") == Some(&json!(3)))),
        "{schema:?}"
    );
    // An event with an unknown member and value.
    let data = json!({"id": "m0", "status": "dreaming", "since": 1});
    let event = Event::new(
        "JOB_STATUS_CHANGE",
        serde_json::from_value(data).expect("an object"),
        Default::default(),
    );
    let change = event.payload::<qe::JobStatusChange>();
    assert!(
        matches!(&change, Some(Ok(c)) if c.status.as_str() == "dreaming"),
        "{change:?}"
    );
}

fn refused<C: Command>(command: &C, qemu: (u32, u32)) -> Result<(), Unsupported> {
    command.check_version(version(qemu))
}

/// Asserts that `command` passes the version check of QEMU `qemu`.
#[track_caller]
fn assert_accepted<C: Command + std::fmt::Debug>(command: &C, qemu: (u32, u32)) {
    let result = refused(command, qemu);
    assert!(
        matches!(result, Ok(())),
        "{command:?} on {qemu:?}: {result:?}"
    );
}

#[test]
fn version_checks_refuse_what_the_connected_qemu_lacks() {
    // A command 10.0 added.
    let change = qc::BlockdevSetActive::new(true);
    let result = refused(&change, (7, 2));
    assert!(
        matches!(&result, Err(e) if e.item.contains("blockdev-set-active") && e.since == Some((8, 0))),
        "{result:?}"
    );
    assert_accepted(&change, (10, 0));
    // An unrecorded release in between may have it: sent, not refused.
    assert_accepted(&change, (9, 2));
    // A command 10.0 dropped.
    let result = refused(&qc::XQueryRdma, (10, 0));
    assert!(
        matches!(&result, Err(e) if e.until == Some((10, 0))),
        "{result:?}"
    );
    assert_accepted(&qc::XQueryRdma, (7, 2));
    // Arguments: `channels` is new, `blk` is gone.
    let mut migrate = qc::Migrate::default();
    migrate.uri = Some("unix:/tmp/m".into());
    assert_accepted(&migrate, (7, 2));
    assert_accepted(&migrate, (10, 0));
    migrate.blk = Some(true);
    let result = refused(&migrate, (10, 0));
    assert!(
        matches!(&result, Err(e) if e.item.contains("`blk`") && e.until == Some((10, 0))),
        "{result:?}"
    );
    assert_accepted(&migrate, (7, 2));
    // An enumeration value 10.0 added, deep in the arguments.
    let mut dump = qc::DumpGuestMemory::new(false, "file:/tmp/dump");
    dump.format = Some(types::DumpGuestMemoryFormat::KdumpRawZlib);
    let result = refused(&dump, (7, 2));
    assert!(
        matches!(&result, Err(e) if e.item.contains("kdump-raw-zlib")),
        "{result:?}"
    );
    assert_accepted(&dump, (10, 0));
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("7.2"), "{message}");
}

/// Every hand-written command is a generated one, and both say the same
/// about which recorded versions have it.
#[test]
fn hand_written_commands_are_generated_commands_with_the_same_versions() {
    macro_rules! availability {
        ($($command:ident),* $(,)?) => {
            [$((
                <commands::$command as Command>::NAME,
                <commands::$command as Command>::SINCE,
                <commands::$command as Command>::UNTIL,
            )),*]
        };
    }
    let hand_written = availability!(
        BlockdevAdd,
        BlockdevDel,
        BlockdevMirror,
        JobCancel,
        JobComplete,
        JobDismiss,
        QueryBlock,
        QueryJobs,
        QueryNamedBlockNodes,
        ChardevAdd,
        ChardevRemove,
        DeviceAdd,
        DeviceDel,
        NetdevAdd,
        NetdevDel,
        QomGet,
        QomList,
        QomSet,
        AddFd,
        CloseFd,
        GetFd,
        QueryFdsets,
        RemoveFd,
        Cont,
        HumanMonitorCommand,
        QmpCapabilities,
        QueryCommands,
        QueryCpusFast,
        QueryKvm,
        QueryName,
        QueryQmpSchema,
        QueryStatus,
        QueryVersion,
        Quit,
        Screendump,
        Stop,
        SystemPowerdown,
        SystemReset,
        Migrate,
        MigrateIncoming,
        MigrateSetCapabilities,
        QueryMigrate,
    );
    for (name, since, until) in hand_written {
        let generated = qc::ALL.iter().find(|typed| typed.name == name);
        let Some(generated) = generated else {
            panic!("hand-written `{name}` has no generated counterpart");
        };
        for recorded in &RECORDED {
            let qemu = version(recorded.release);
            assert_eq!(
                qemu.within(since, until),
                generated.in_version(qemu),
                "`{name}` on QEMU {qemu}: hand-written {since:?}..{until:?}, generated {generated:?}"
            );
        }
    }
}

/// The hand-written commands that stay (free-form properties, ergonomic
/// constructors) send exactly what the generated ones send.
#[test]
fn hand_written_commands_agree_with_the_generated_ones() {
    let arguments = |command: &dyn Fn() -> Result<
        Option<qmp_proto::JsonObject>,
        qmp_proto::Error,
    >| { command().expect("arguments serialise").map(Value::Object) };
    let hand = commands::BlockdevAdd::new("null-co", "n0")
        .read_only(true)
        .option("size", 1048576);
    let mut base = types::BlockdevOptionsBase::new(types::BlockdevDriver::NullCo);
    base.node_name = Some("n0".into());
    base.read_only = Some(true);
    let mut null = types::BlockdevOptionsNull::default();
    null.size = Some(1048576);
    let generated = qc::BlockdevAdd(types::BlockdevOptions::new(
        base,
        types::BlockdevOptionsVariant::NullCo(null),
    ));
    assert_eq!(
        arguments(&|| hand.arguments()),
        arguments(&|| generated.arguments())
    );

    let hand = commands::DeviceAdd::new("virtio-blk-pci")
        .id("d0")
        .bus("pci.0");
    let mut generated = qc::DeviceAdd::new("virtio-blk-pci");
    generated.id = Some("d0".into());
    generated.bus = Some("pci.0".into());
    assert_eq!(
        arguments(&|| hand.arguments()),
        arguments(&|| generated.arguments())
    );

    // Every hand-written enumeration value is one the schemas know.
    let pairs: [(&[&str], &[&str]); 6] = [
        (commands::RunState::KNOWN, types::RunState::KNOWN),
        (commands::ShutdownCause::KNOWN, types::ShutdownCause::KNOWN),
        (commands::JobType::KNOWN, types::JobType::KNOWN),
        (commands::JobStatus::KNOWN, types::JobStatus::KNOWN),
        (
            commands::MigrationStatus::KNOWN,
            types::MigrationStatus::KNOWN,
        ),
        (
            commands::MigrationCapability::KNOWN,
            types::MigrationCapability::KNOWN,
        ),
    ];
    for (hand, generated) in pairs {
        let missing: Vec<_> = hand.iter().filter(|v| !generated.contains(v)).collect();
        assert!(missing.is_empty(), "unknown to the schemas: {missing:?}");
    }
}

/// The arguments of a command as sent, or why they do not serialise.
fn sent<C: Command>(command: &C) -> Result<Option<qmp_proto::JsonObject>, String> {
    command.arguments().map_err(|error| error.to_string())
}

/// Each hand-written command that stays sends what its generated
/// counterpart sends: same wire name (checked above), same members, the
/// same ones optional.
#[test]
fn kept_hand_written_commands_send_what_the_generated_ones_send() {
    // Without arguments.
    assert_eq!(sent(&commands::QueryVersion), sent(&qc::QueryVersion));
    assert_eq!(sent(&commands::QueryCpusFast), sent(&qc::QueryCpusFast));
    assert_eq!(sent(&commands::QueryQmpSchema), sent(&qc::QueryQmpSchema));
    assert_eq!(sent(&commands::QueryBlock), sent(&qc::QueryBlock));
    // Optional members left out, then set.
    assert_eq!(
        sent(&commands::QmpCapabilities::new()),
        sent(&qc::QmpCapabilities::default())
    );
    let mut generated = qc::QmpCapabilities::default();
    generated.enable = Some(vec![types::QmpCapability::Oob]);
    assert_eq!(
        sent(&commands::QmpCapabilities::enable(vec![
            qmp_proto::Capability::Oob
        ])),
        sent(&generated)
    );
    let mut hand = commands::QueryNamedBlockNodes::new();
    let mut generated = qc::QueryNamedBlockNodes::default();
    assert_eq!(sent(&hand), sent(&generated));
    hand.flat = Some(true);
    generated.flat = Some(true);
    assert_eq!(sent(&hand), sent(&generated));
    // Every capability the hand-written enumeration knows.
    for wire in commands::MigrationCapability::KNOWN {
        let capability: commands::MigrationCapability =
            serde_json::from_value(json!(wire)).expect("a known capability");
        let hand =
            commands::MigrateSetCapabilities::new(vec![commands::MigrationCapabilityStatus::new(
                capability, true,
            )]);
        let generated =
            qc::MigrateSetCapabilities::new(vec![types::MigrationCapabilityStatus::new(
                types::MigrationCapability::from_wire(wire),
                true,
            )]);
        assert_eq!(sent(&hand), sent(&generated), "capability {wire}");
    }
    // Free-form back ends: the hand-written constructors build what the
    // generated unions spell out.
    let hand = commands::NetdevAdd::new("user", "net0");
    let generated = qc::NetdevAdd::new(
        qc::NetdevAddBase::new("net0", types::NetdevAddType::User),
        qc::NetdevAddVariant::User(types::NetdevAddUser::default()),
    );
    assert_eq!(sent(&hand), sent(&generated));
    let hand = commands::ChardevAdd::new("c1", commands::ChardevBackend::file("/tmp/c.log"));
    let generated = qc::ChardevAdd::new(
        "c1",
        types::ChardevBackend::new(
            types::ChardevBackendBase::new(types::ChardevBackendKind::File),
            types::ChardevBackendVariant::File(types::ChardevBackendFile::new(
                types::ChardevBackendFileData::new("/tmp/c.log"),
            )),
        ),
    );
    assert_eq!(sent(&hand), sent(&generated));
}

/// Which top-level members of `ret` (each element, for a list) `C`'s
/// output requires: decoding fails without them.
fn required_members<C: Command>(ret: &Value) -> BTreeSet<String> {
    let (objects, list) = match ret {
        Value::Array(items) => (items.iter().filter_map(Value::as_object).collect(), true),
        Value::Object(object) => (vec![object], false),
        _ => (Vec::new(), false),
    };
    let mut required = BTreeSet::new();
    for object in objects {
        for member in object.keys() {
            let mut without = object.clone();
            without.remove(member);
            let without = if list {
                Value::Array(vec![Value::Object(without)])
            } else {
                Value::Object(without)
            };
            if C::parse_output(without).is_err() {
                required.insert(member.clone());
            }
        }
    }
    required
}

/// Each hand-written reply type that stays reads the recorded replies of
/// both versions with the members the generated type requires, required,
/// and the others optional — except where a reason is given.
#[test]
fn kept_hand_written_replies_require_what_the_generated_ones_require() {
    fn compare<H: Command, G: Command>(ret: &Value) -> Vec<String> {
        let hand = required_members::<H>(ret);
        let generated = required_members::<G>(ret);
        let mut differences: Vec<String> = generated
            .difference(&hand)
            .map(|m| format!("{}: `{m}` optional only in the hand-written type", H::NAME))
            .collect();
        differences.extend(
            hand.difference(&generated)
                .map(|m| format!("{}: `{m}` required only in the hand-written type", H::NAME)),
        );
        differences
    }
    let mut differences = BTreeSet::new();
    let mut checked = BTreeSet::new();
    for (recorded, name, ret) in recorded_replies() {
        let found = match name.as_str() {
            "query-version" => compare::<commands::QueryVersion, qc::QueryVersion>(&ret),
            "query-cpus-fast" => compare::<commands::QueryCpusFast, qc::QueryCpusFast>(&ret),
            "query-block" => compare::<commands::QueryBlock, qc::QueryBlock>(&ret),
            "query-named-block-nodes" => {
                compare::<commands::QueryNamedBlockNodes, qc::QueryNamedBlockNodes>(&ret)
            }
            _ => continue,
        };
        checked.insert((recorded.release, name));
        differences.extend(found);
    }
    assert_eq!(
        checked.len(),
        8,
        "the replies of both transcripts: {checked:?}"
    );
    let expected: BTreeSet<String> = EXPECTED_DIFFERENCES.iter().map(|s| s.to_string()).collect();
    assert_eq!(differences, expected);
}

/// Where a kept hand-written reply type reads differently from the
/// generated one, and why.
const EXPECTED_DIFFERENCES: &[&str] = &[
    // Throttling limits and the write threshold: the hand-written
    // `BlockDeviceInfo` does not type them; they stay in its `other` map,
    // so a reply without them still reads.
    "query-named-block-nodes: `bps` optional only in the hand-written type",
    "query-named-block-nodes: `bps_rd` optional only in the hand-written type",
    "query-named-block-nodes: `bps_wr` optional only in the hand-written type",
    "query-named-block-nodes: `iops` optional only in the hand-written type",
    "query-named-block-nodes: `iops_rd` optional only in the hand-written type",
    "query-named-block-nodes: `iops_wr` optional only in the hand-written type",
    "query-named-block-nodes: `write_threshold` optional only in the hand-written type",
    // `BlockDeviceInfo::cache` was an `Option` before the generated types
    // existed; both recorded versions always send it. Kept optional rather
    // than break code matching on it.
    "query-named-block-nodes: `cache` optional only in the hand-written type",
    // `QueryVersion` returns the greeting's own `VersionInfo`, which reads
    // a greeting without `package` too.
    "query-version: `package` optional only in the hand-written type",
];

/// `$QEMUKIT_QEMU`, else `qemu-system-x86_64` from the `PATH`; fails with
/// the install command when neither exists.
fn qemu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("QEMUKIT_QEMU") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("qemu-system-x86_64"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "qemu-system-x86_64 is not installed: this test needs a real QEMU. \
                 Install it with `sudo apt-get install -y qemu-system-x86` \
                 (or point QEMUKIT_QEMU at a binary)."
            )
        })
}

/// The live QEMU's greeting and `query-qmp-schema` reply lines.
fn live_schema() -> (ServerMessage, Value) {
    let mut child = Process::new(qemu_binary())
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
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(
            b"{\"execute\":\"qmp_capabilities\"}\r\n{\"execute\":\"query-qmp-schema\"}\r\n\
              {\"execute\":\"quit\"}\r\n",
        )
        .expect("write to QEMU");
    // Keep stdin open until QEMU has answered: an end of input seen before
    // the monitor dispatched the queued requests makes QEMU drop them.
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = sender.send(stdout.read_to_end(&mut all).map(|_| all));
    });
    let output = receiver.recv_timeout(Duration::from_secs(60));
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let output = match output {
        Ok(Ok(output)) => output,
        other => panic!("QEMU did not answer and quit within 60 s: {other:?}"),
    };
    let mut messages = messages(&output).into_iter();
    let greeting = messages.next().expect("a greeting");
    let schema = messages
        .find_map(|message| match message {
            ServerMessage::Success(reply) if reply.ret.is_array() => Some(reply.ret),
            _ => None,
        })
        .expect("the schema reply");
    (greeting, schema)
}

/// The generator reads the recorded schemas; the live QEMU (`QEMUKIT_QEMU`:
/// run this on every version we test) must answer exactly the recorded one
/// for its version, so the generated layer covers it.
#[test]
fn the_live_qemu_schema_is_the_recorded_one() {
    let (greeting, live) = live_schema();
    let ServerMessage::Greeting(greeting) = greeting else {
        panic!("QEMU did not greet first: {greeting:?}");
    };
    let qemu = greeting.version();
    let release = qemu.release();
    let Some(recorded) = RECORDED.iter().find(|r| r.release == release) else {
        panic!(
            "QEMU {qemu} has no recorded schema: record it (tests/fixtures/README.md) \
             and run `cargo xtask codegen`"
        );
    };
    let reply: Value = serde_json::from_slice(recorded.schema).expect("the reply is JSON");
    let key = |entity: &Value| entity.to_string();
    let as_set = |list: &Value| -> BTreeSet<String> {
        list.as_array().into_iter().flatten().map(key).collect()
    };
    let (live, recorded_set) = (as_set(&live), as_set(&reply["return"]));
    let missing: Vec<_> = recorded_set.difference(&live).take(5).collect();
    let extra: Vec<_> = live.difference(&recorded_set).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "QEMU {qemu}'s live schema differs from the recorded one: \
         recorded only {missing:?}, live only {extra:?}"
    );
    eprintln!(
        "QEMU {qemu}: live schema = recorded schema ({} entities)",
        live.len()
    );
}
