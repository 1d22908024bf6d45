//! Drain throughput: how fast a console swallows a flood, with and without
//! a log file, and how fast an expect finds a marker at its end.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use qemu_console::{Console, ConsoleConfig};
use tokio::io::AsyncWriteExt;

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

fn drain(c: &mut Criterion) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => panic!("runtime: {error}"),
    };
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

criterion_group!(benches, drain);
criterion_main!(benches);
