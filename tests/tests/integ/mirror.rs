//! Scenario 6, a block mirror job: `blockdev-mirror` of the guest's disk
//! onto a new node while the guest keeps writing, through `ready` and
//! `job-complete`; the target image holds every write.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use qmp_client::{Client, EventStream};
use qmp_proto::commands::{BlockdevAdd, BlockdevMirror, JobComplete, JobStatus, MirrorSyncMode};
use qmp_proto::events::{BlockJobCompleted, BlockJobReady, JobStatusChange};
use serde_json::json;
use tokio::time::Instant;

use crate::migration::{COMMAND, JOB, TestResult, Vm};

const DISK_SIZE: u64 = 32 << 20;
const SECTOR: u64 = 512;
/// Where the write made while the job is `ready` goes (sector number).
const READY_SECTOR: u64 = 60_000;

/// A raw image: a JSON `-blockdev` (no comma escaping of the path).
fn raw_node(node: &str, path: &Path) -> String {
    json!({"driver": "raw", "node-name": node,
           "file": {"driver": "file", "filename": path}})
    .to_string()
}

/// Events of the job `job` from `events` until (and including) the first
/// one named `last` (or `JOB_STATUS_CHANGE` to `last`): the statuses of
/// `JOB_STATUS_CHANGE`, and that event.
async fn job_events(
    events: &mut EventStream,
    job: &str,
    last: &str,
) -> TestResult<(Vec<JobStatus>, qmp_client::Event)> {
    let deadline = Instant::now() + JOB;
    let mut statuses = Vec::new();
    loop {
        let event = match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => return Err(format!("no {last} after {JOB:?}: {statuses:?}").into()),
            Ok(None) => return Err(format!("QMP closed before {last}: {statuses:?}").into()),
            Ok(Some(event)) => event?,
        };
        if let Some(change) = event.payload::<JobStatusChange>() {
            let change = change?;
            if change.id == job {
                let done = change.status.as_str() == last;
                statuses.push(change.status);
                if done {
                    return Ok((statuses, event));
                }
            }
        }
        if event.name == last && event.data.get("device") == Some(&json!(job)) {
            return Ok((statuses, event));
        }
    }
}

/// Reads `len` bytes at `sector` of the image.
fn read_sector(image: &File, sector: u64, len: usize) -> std::io::Result<String> {
    let mut buf = vec![0; len];
    image.read_exact_at(&mut buf, sector * SECTOR)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

async fn count(vm: &Vm) -> TestResult<u64> {
    // The writer replaces the file with `mv`: never seen half-written.
    let out = vm.console().run("cat /tmp/count", COMMAND).await?;
    parse_count(&out.output)
}

fn parse_count(output: &str) -> TestResult<u64> {
    let count = output.trim().parse();
    Ok(count.map_err(|error| format!("the record count {output:?}: {error}"))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_job_copies_a_disk_the_guest_keeps_writing() -> TestResult {
    let guest = qemukit_tests::guest();
    let dir = tempfile::tempdir()?;
    let source_image = dir.path().join("source.raw");
    let target_image = dir.path().join("target.raw");
    for image in [&source_image, &target_image] {
        File::create(image)?.set_len(DISK_SIZE)?;
    }

    let mut args = guest.args(false);
    for arg in [
        "-blockdev".to_owned(),
        raw_node("src", &source_image),
        "-device".to_owned(),
        "virtio-blk-pci,drive=src,id=disk0".to_owned(),
    ] {
        args.push(arg.into());
    }
    let vm = Vm::restore("mirror", args).await?;
    let qmp: &Client = vm.qmp();

    // A writer: record N in sector N, synced, until told to stop.
    let writer = "rm -f /tmp/stop; echo 0 > /tmp/count; { (i=0; \
        while [ ! -e /tmp/stop ] && [ $i -lt 50000 ]; do \
        echo rec-$i | dd of=/dev/vda bs=512 seek=$i conv=notrunc,fsync 2>/dev/null; \
        i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; done) </dev/null >/dev/null 2>&1 & }";
    assert!(vm.console().run(writer, COMMAND).await?.success());

    qmp.execute(
        BlockdevAdd::new("raw", "tgt")
            .option("file", json!({"driver": "file", "filename": target_image})),
    )
    .await?;
    let mut events = qmp.events();
    let mut mirror = BlockdevMirror::new("src", "tgt", MirrorSyncMode::Full);
    mirror.job_id = Some("m0".into());
    qmp.execute(mirror).await?;
    let before = count(&vm).await?;

    let (statuses, ready) = job_events(&mut events, "m0", "BLOCK_JOB_READY").await?;
    assert_eq!(
        statuses,
        [JobStatus::Created, JobStatus::Running, JobStatus::Ready]
    );
    let ready = ready.payload::<BlockJobReady>().ok_or("no payload")??;
    assert_eq!(ready.len, ready.offset);

    // Written while the job is ready (still mirroring every write).
    let marker = format!(
        "echo during-ready-$((40+2)) | dd of=/dev/vda bs=512 seek={READY_SECTOR} \
         conv=notrunc,fsync 2>/dev/null"
    );
    assert!(vm.console().run(&marker, COMMAND).await?.success());
    let at_ready = count(&vm).await?;

    qmp.execute(JobComplete::new("m0")).await?;
    let (statuses, completed) = job_events(&mut events, "m0", "BLOCK_JOB_COMPLETED").await?;
    let completed = completed
        .payload::<BlockJobCompleted>()
        .ok_or("no payload")??;
    assert_eq!(completed.error, None);
    // `len` is progress, not the disk size: it grows with every write the
    // job copies again, so the guest's writes push it past the size.
    assert!(completed.len > DISK_SIZE as i64, "{completed:?}");
    assert_eq!(completed.len, completed.offset);
    assert_eq!(statuses, [JobStatus::Waiting, JobStatus::Pending]);
    // QEMU 7.2 sends BLOCK_JOB_COMPLETED before the job concludes.
    let (statuses, _) = job_events(&mut events, "m0", "null").await?;
    assert_eq!(statuses, [JobStatus::Concluded, JobStatus::Null]);

    let stopped = vm
        .console()
        .run("touch /tmp/stop; wait; cat /tmp/count", COMMAND)
        .await?;
    let written = parse_count(&stopped.output)?;
    assert!(
        before < at_ready && at_ready < written,
        "the guest was not writing during the job: {before} {at_ready} {written}"
    );
    vm.power_off().await?;

    // The target holds every record, including those written during the job.
    let target = File::open(&target_image)?;
    for record in 0..written {
        let expected = format!("rec-{record}\n");
        assert_eq!(read_sector(&target, record, expected.len())?, expected);
    }
    let expected = "during-ready-42\n";
    assert_eq!(
        read_sector(&target, READY_SECTOR, expected.len())?,
        expected
    );
    Ok(())
}
