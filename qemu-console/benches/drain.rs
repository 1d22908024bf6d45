//! Drain throughput: how fast a console swallows a flood, with and without
//! a log file, and how fast an expect finds a marker at its end; and `run`
//! over a command that prints megabytes in small writes (as a UART does).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use qemu_console::{Console, ConsoleConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const FLOOD: usize = 16 << 20;
const CHUNK: usize = 64 << 10;

async fn flood(config: ConsoleConfig) {
    let (ours, mut guest) = tokio::io::duplex(CHUNK);
    let console = match Console::attach(ours, config) {
        Ok(console) => console,
        Err(error) => panic!("attach: {error}"),
    };
    let chunk = vec![b'y'; CHUNK];
    let writer = tokio::spawn(async move {
        for _ in 0..FLOOD / CHUNK {
            guest.write_all(&chunk).await?;
        }
        guest.write_all(b"@@END@@").await
    });
    if let Err(error) = console.expect("@@END@@", Duration::from_secs(60)).await {
        panic!("{error}");
    }
    match writer.await {
        Ok(Ok(())) => {}
        other => panic!("writer: {other:?}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => panic!("runtime: {error}"),
    }
}

fn drain(c: &mut Criterion) {
    let runtime = runtime();
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => panic!("tempdir: {error}"),
    };
    let mut group = c.benchmark_group("drain");
    group.throughput(Throughput::Bytes(FLOOD as u64));
    group.sample_size(10);
    let configs = [
        ("memory", ConsoleConfig::default()),
        (
            "log-file",
            ConsoleConfig {
                log_file: Some(dir.path().join("bench.log")),
                ..ConsoleConfig::default()
            },
        ),
    ];
    for (name, config) in configs {
        group.bench_with_input(
            BenchmarkId::new("16MiB-then-expect", name),
            &config,
            |b, config| {
                b.iter(|| runtime.block_on(flood(config.clone())));
            },
        );
    }
    group.finish();
}

const RUN_OUTPUT: usize = 4 << 20;
const SMALL_WRITE: usize = 64;

/// A shell that answers one `Console::run` line with RUN_OUTPUT bytes,
/// written SMALL_WRITE at a time.
async fn chatty_shell(stream: tokio::io::DuplexStream) -> std::io::Result<()> {
    let (reader, mut writer) = tokio::io::split(stream);
    let mut lines = BufReader::new(reader).lines();
    let Some(line) = lines.next_line().await? else {
        return Ok(());
    };
    // echo @@$((A+B))+@@; COMMAND; echo @@$((A+B))-$?@@
    let sum: u64 = line
        .split("$((")
        .nth(1)
        .and_then(|rest| rest.split("))").next())
        .map(|terms| terms.split('+').filter_map(|t| t.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    writer
        .write_all(format!("@@{sum}+@@\r\n").as_bytes())
        .await?;
    let piece = [b'x'; SMALL_WRITE];
    for _ in 0..RUN_OUTPUT / SMALL_WRITE {
        writer.write_all(&piece).await?;
    }
    writer
        .write_all(format!("@@{sum}-0@@\r\n# ").as_bytes())
        .await
}

fn run(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("run");
    group.throughput(Throughput::Bytes(RUN_OUTPUT as u64));
    group.sample_size(10);
    group.bench_function("4MiB-output-in-64-byte-writes", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let (ours, theirs) = tokio::io::duplex(CHUNK);
                let config = ConsoleConfig {
                    buffer_limit: 8 << 20,
                    read_chunk: SMALL_WRITE,
                    ..ConsoleConfig::default()
                };
                let console = match Console::attach(ours, config) {
                    Ok(console) => console,
                    Err(error) => panic!("attach: {error}"),
                };
                let shell = tokio::spawn(chatty_shell(theirs));
                match console.run("cat big", Duration::from_secs(60)).await {
                    Ok(output) => assert_eq!(output.raw.len(), RUN_OUTPUT),
                    Err(error) => panic!("{error}"),
                }
                drop(console);
                if let Ok(Err(error)) = shell.await {
                    panic!("shell: {error}");
                }
            })
        });
    });
    group.finish();
}

criterion_group!(benches, drain, run);
criterion_main!(benches);
