//! Transcripts recorded from the real QEMU 7.2 and 10.0 (`tests/fixtures/`,
//! see the README there) decode, and their replies and events read as the
//! typed outputs and payloads. Both sessions sent the same requests, so each
//! test runs over both and names what differs.

use std::collections::HashMap;

use bytes::BytesMut;
use qmp_proto::commands::*;
use qmp_proto::events;
use qmp_proto::{
    ClientCodec, ClientMessage, Command, ErrorClass, Event, ServerCodec, ServerMessage,
};
use serde_json::{Value, json};
use tokio_util::codec::Decoder;

/// What one QEMU release sent and received.
struct Transcript {
    /// The release, as the greeting reports it.
    version: &'static str,
    session_out: &'static [u8],
    session_in: &'static [u8],
    greeting: &'static [u8],
    schema_reply: &'static [u8],
}

macro_rules! transcript {
    ($version:literal, $dir:literal) => {
        Transcript {
            version: $version,
            session_out: include_bytes!(concat!("fixtures/", $dir, "/session.out")),
            session_in: include_bytes!(concat!("fixtures/", $dir, "/session.in")),
            greeting: include_bytes!(concat!("fixtures/", $dir, "/greeting.json")),
            schema_reply: include_bytes!(concat!("fixtures/", $dir, "/query-qmp-schema.reply")),
        }
    };
}

const TRANSCRIPTS: [Transcript; 2] = [
    transcript!("7.2.22", "qemu-7.2"),
    transcript!("10.0.2", "qemu-10.0"),
];

fn decode_all<D>(mut codec: D, input: &[u8], chunk: usize) -> Vec<D::Item>
where
    D: Decoder,
    D::Error: std::fmt::Display,
{
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(error) => panic!("decode failed: {error}"),
            }
        }
    }
    match codec.decode_eof(&mut buf) {
        Ok(None) => items,
        Ok(Some(_)) => panic!("a message appeared only at end of stream"),
        Err(error) => panic!("end of stream: {error}"),
    }
}

impl Transcript {
    fn session(&self) -> Vec<ServerMessage> {
        decode_all(ClientCodec::new(), self.session_out, self.session_out.len())
    }

    /// The replies of the recorded session by id.
    fn replies(&self) -> HashMap<String, Value> {
        self.session()
            .into_iter()
            .filter_map(|message| match message {
                ServerMessage::Success(reply) => Some((reply.id?.to_string(), reply.ret)),
                _ => None,
            })
            .collect()
    }
}

fn output<C: Command>(replies: &HashMap<String, Value>, id: &str) -> C::Output {
    let ret = replies
        .get(id)
        .unwrap_or_else(|| panic!("no reply {id}"))
        .clone();
    C::parse_output(ret).unwrap_or_else(|error| panic!("reply {id} as {}: {error}", C::NAME))
}

#[test]
fn greeting() {
    let mut versions = Vec::new();
    for t in &TRANSCRIPTS {
        let messages = decode_all(ClientCodec::new(), t.greeting, 1);
        let [ServerMessage::Greeting(greeting)] = &messages[..] else {
            panic!("not one greeting: {messages:?}");
        };
        assert_eq!(greeting.version().to_string(), t.version);
        assert!(greeting.version.package.starts_with("Debian"));
        assert!(greeting.offers_oob());
        versions.push(greeting.version());
    }
    assert!(versions[0] == (7, 2) && versions[1] == (10, 0));
    assert!(versions[0] < versions[1] && versions[1] >= (9, 0));
}

#[test]
fn the_session_decodes_identically_however_it_is_chunked() {
    for t in &TRANSCRIPTS {
        let whole = t.session();
        assert_eq!(whole.len(), 39, "{}", t.version);
        for chunk in [1, 2, 3, 7, 64, 1000] {
            assert_eq!(
                decode_all(ClientCodec::new(), t.session_out, chunk),
                whole,
                "{} chunk {chunk}",
                t.version
            );
        }
        let unknown = whole
            .iter()
            .filter(|m| matches!(m, ServerMessage::Unknown(_)))
            .count();
        assert_eq!(unknown, 0);
    }
}

#[test]
fn replies_read_as_typed_outputs() {
    for t in &TRANSCRIPTS {
        let replies = t.replies();
        let version = output::<QueryVersion>(&replies, "2");
        assert_eq!(version.qemu.to_string(), t.version);
        let status = output::<QueryStatus>(&replies, "3");
        assert!(status.running);
        // QEMU 10.0 no longer reports `singlestep`.
        let singlestep = (version.qemu < (10, 0)).then_some(false);
        assert_eq!(status.singlestep, singlestep, "{}", t.version);
        assert_eq!(status.status, RunState::Running);
        let name = output::<QueryName>(&replies, "4");
        assert_eq!(name.name.as_deref(), Some("fixture-vm"));
        let kvm = output::<QueryKvm>(&replies, "5");
        assert!(!kvm.enabled);
        assert!(output::<QueryCpusFast>(&replies, "6").is_empty());
        let properties = output::<QomList>(&replies, "11");
        assert!(
            properties
                .iter()
                .any(|p| p.name == "type" && p.kind == "string")
        );
        assert_eq!(output::<QomGet>(&replies, "12"), json!("none-machine"));
        assert!(output::<HumanMonitorCommand>(&replies, "\"hmp\"").starts_with(t.version));
        assert!(output::<QueryFdsets>(&replies, "13").is_empty());
        let nodes = output::<QueryNamedBlockNodes>(&replies, "16");
        let mut names: Vec<_> = nodes.iter().filter_map(|n| n.node_name.clone()).collect();
        names.sort();
        assert_eq!(names, ["dst", "src"]);
        assert!(
            nodes
                .iter()
                .all(|n| n.drv == "null-co" && n.image.virtual_size == 1048576)
        );
        assert!(output::<QueryBlock>(&replies, "17").is_empty());
        assert_eq!(output::<QueryMigrate>(&replies, "18").status, None);
        let jobs = output::<QueryJobs>(&replies, "21");
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            (jobs[0].kind.clone(), jobs[0].status.clone()),
            (JobType::Mirror, JobStatus::Ready)
        );
        for id in ["1", "7", "8", "14", "15", "19", "20", "22", "23", "24"] {
            assert_eq!(output::<Stop>(&replies, id), Empty);
        }
    }
}

#[test]
fn error_replies_keep_class_desc_and_id() {
    for t in &TRANSCRIPTS {
        let errors: Vec<_> = t
            .session()
            .into_iter()
            .filter_map(|message| match message {
                ServerMessage::Error(error) => Some(error),
                _ => None,
            })
            .collect();
        assert_eq!(errors.len(), 3);
        assert_eq!(errors[0].class, ErrorClass::CommandNotFound);
        assert_eq!(errors[0].id, Some(json!(9)));
        assert_eq!(errors[1].class, ErrorClass::GenericError);
        assert_eq!(errors[1].desc, "Parameter 'id' is missing");
        assert_eq!(errors[2].id, Some(json!("oob")));
    }
}

#[test]
fn events_read_as_typed_payloads() {
    for t in &TRANSCRIPTS {
        let events: Vec<Event> = t
            .session()
            .into_iter()
            .filter_map(|message| match message {
                ServerMessage::Event(event) => Some(event),
                _ => None,
            })
            .collect();
        let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "STOP",
                "RESUME",
                "JOB_STATUS_CHANGE",
                "JOB_STATUS_CHANGE",
                "JOB_STATUS_CHANGE",
                "BLOCK_JOB_READY",
                "JOB_STATUS_CHANGE",
                "JOB_STATUS_CHANGE",
                "BLOCK_JOB_COMPLETED",
                "JOB_STATUS_CHANGE",
                "JOB_STATUS_CHANGE",
                "SHUTDOWN",
            ]
        );
        assert!(events.iter().all(|e| e.timestamp.seconds > 1_700_000_000));
        assert!(matches!(events[0].payload::<events::Stop>(), Some(Ok(_))));
        assert!(matches!(events[1].payload::<events::Resume>(), Some(Ok(_))));
        let statuses: Vec<JobStatus> = events
            .iter()
            .filter_map(|e| e.payload::<events::JobStatusChange>())
            .map(|p| p.map(|p| p.status).expect("JOB_STATUS_CHANGE data"))
            .collect();
        use JobStatus::*;
        assert_eq!(
            statuses,
            [Created, Running, Ready, Waiting, Pending, Concluded, Null]
        );
        let ready = events[5].payload::<events::BlockJobReady>();
        let ready = ready.and_then(Result::ok).expect("BLOCK_JOB_READY data");
        assert_eq!(
            (ready.device.as_str(), ready.len, ready.offset),
            ("m0", 1048576, 1048576)
        );
        let completed = events[8].payload::<events::BlockJobCompleted>();
        let completed = completed
            .and_then(Result::ok)
            .expect("BLOCK_JOB_COMPLETED data");
        assert_eq!(completed.error, None);
        let shutdown = events[11].payload::<events::Shutdown>();
        let shutdown = shutdown.and_then(Result::ok).expect("SHUTDOWN data");
        assert!(!shutdown.guest);
        assert_eq!(shutdown.reason, ShutdownCause::HostQmpQuit);
    }
}

#[test]
fn the_requests_we_sent_decode_and_match_the_typed_commands() {
    for t in &TRANSCRIPTS {
        let requests: Vec<_> = decode_all(ServerCodec::new(), t.session_in, 5)
            .into_iter()
            .map(|message| match message {
                ClientMessage::Request(request) => request,
                other => panic!("not a request: {other:?}"),
            })
            .collect();
        assert_eq!(requests.len(), 26);
        let find = |id: Value| {
            requests
                .iter()
                .find(|r| r.id.as_ref() == Some(&id))
                .map(|r| (r.command.clone(), r.arguments.clone()))
        };
        let typed = |command: &dyn Fn() -> qmp_proto::Request| {
            let request = command();
            Some((request.command, request.arguments))
        };
        let mut mirror = BlockdevMirror::new("src", "dst", MirrorSyncMode::Full);
        mirror.job_id = Some("m0".into());
        assert_eq!(
            find(json!(20)),
            typed(&|| mirror.to_request().expect("mirror"))
        );
        let add = BlockdevAdd::new("null-co", "src").option("size", 1048576);
        assert_eq!(find(json!(14)), typed(&|| add.to_request().expect("add")));
        let hmp = HumanMonitorCommand::new("info version");
        assert_eq!(
            find(json!("hmp")),
            typed(&|| hmp.to_request().expect("hmp"))
        );
        assert_eq!(
            find(json!(3)),
            typed(&|| QueryStatus.to_request().expect("status"))
        );
        let capabilities = MigrateSetCapabilities::new(vec![MigrationCapabilityStatus::new(
            MigrationCapability::Events,
            true,
        )]);
        assert_eq!(
            find(json!(19)),
            typed(&|| capabilities.to_request().expect("capabilities"))
        );
    }
}

#[test]
fn the_whole_schema_reply_decodes() {
    for t in &TRANSCRIPTS {
        assert!(t.schema_reply.len() > 200_000);
        let messages = decode_all(ClientCodec::new(), t.schema_reply, 4096);
        let [ServerMessage::Success(reply)] = &messages[..] else {
            panic!("not one reply");
        };
        let schema = QueryQmpSchema::parse_output(reply.ret.clone()).expect("schema");
        let entities = schema.as_array().map_or(0, Vec::len);
        assert!(entities > 1000, "{entities} entities");
        assert!(
            schema
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["name"] == "query-status" && e["meta-type"] == "command")
        );
    }
}
