//! Round trips against one real `qemu-system-x86_64 -machine none`:
//! `Client` vs a raw client (write the request bytes, read one line, no
//! JSON parsing), 16 tasks sharing a `Client`, `query-qmp-schema` end to
//! end, and the heap held by 10,000 buffered events. Prints a table.
//!
//! CPU per call is the scheduler's exact per-thread count, with its
//! user/system split from `getrusage` beside it: most of a call's CPU is
//! the kernel's (a write, a wake-up, a read), alike for both clients, so
//! the ratio moves with the host's load; the user share is what the client
//! itself adds. The schema line is bounded below by building the reply's
//! `serde_json::Value`, printed on its own as a floor.
//!
//! Run with `cargo bench -p qmp-client --bench roundtrip`.
#![allow(clippy::print_stdout, missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::IntoFuture;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use qmp_client::{Client, Config};
use qmp_proto::commands::QueryStatus;

/// Counts live heap bytes, to measure what buffered events cost; only
/// while `COUNTING` is on (the heap measure at the end), so the lock-prefixed
/// adds of the count (one per allocation and free, about 29,000 for one
/// parse of the schema reply) do not slow the Client's side of the timed
/// measures, where no user program has them.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Net bytes allocated while counting (wraps below zero when counting
/// frees memory allocated before it started).
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates to the system allocator, only counting sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `dealloc`'s contract, which we pass on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Net heap bytes allocated since `before` (a `LIVE` reading), at least 0.
fn heap_since(before: usize) -> usize {
    let net = LIVE.load(Ordering::Relaxed).wrapping_sub(before) as isize;
    net.max(0) as usize
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const BATCHES: usize = 15;
const CALLS: usize = 400;
const SCHEMA_CALLS: usize = 150;
const EVENTS: usize = 10_000;
/// The shortest request QEMU accepts: no spaces, no id, no line ending
/// (QEMU takes a request at its closing brace).
const QUERY_STATUS: &[u8] = b"{\"execute\":\"query-status\"}";
const QUERY_SCHEMA: &[u8] = b"{\"execute\": \"query-qmp-schema\"}\r\n";
/// The raw client's read buffer: more than the largest reply.
const RAW_BUFFER: usize = 1 << 20;

/// A raw QMP client: bytes out, one line in.
struct Raw {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    line: Vec<u8>,
    request: Vec<u8>,
}

impl Raw {
    fn new(stream: UnixStream) -> Raw {
        let writer = match stream.try_clone() {
            Ok(writer) => writer,
            Err(error) => panic!("{error}"),
        };
        let mut raw = Raw {
            writer,
            // Room for the whole schema reply: with BufReader's default
            // 8 KiB it took ~30 reads and measured ~1.5% slower, which
            // flattered the Client (one read of what is there).
            reader: BufReader::with_capacity(RAW_BUFFER, stream),
            line: Vec::new(),
            request: Vec::new(),
        };
        raw.read_line(); // the greeting
        raw.call(b"{\"execute\": \"qmp_capabilities\"}\r\n");
        raw
    }

    fn read_line(&mut self) -> usize {
        self.line.clear();
        match self.reader.read_until(b'\n', &mut self.line) {
            Ok(0) | Err(_) => panic!("QEMU closed the raw monitor"),
            Ok(n) => n,
        }
    }

    /// The same request with a numeric id, as a client with several
    /// commands in flight sends it.
    fn call_with_id(&mut self, id: usize) -> usize {
        self.request.clear();
        let _ = write!(self.request, "{{\"execute\":\"query-status\",\"id\":{id}}}");
        let request = std::mem::take(&mut self.request);
        let n = self.call(&request);
        self.request = request;
        n
    }

    fn call(&mut self, request: &[u8]) -> usize {
        if let Err(error) = self.writer.write_all(request) {
            panic!("{error}");
        }
        self.read_line()
    }
}

/// CPU time (user + system) of the calling thread so far, in seconds, to
/// the nanosecond (the scheduler's own count; `/proc/self/stat` counts in
/// 10 ms ticks). The current-thread runtime's `block_on` and the raw
/// client each run on a measuring thread of their own (see `Worker`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let nanos = stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    nanos / 1e9
}

/// User and system CPU time of the calling thread so far, in seconds
/// (`getrusage(RUSAGE_THREAD)`). Linux keeps the sum exact (the same
/// scheduler count as `cpu_seconds`) but splits it between user and
/// system in proportion to timer ticks that landed in each, so the split
/// is a sample: trust it over many batches, not one.
fn user_system_seconds() -> (f64, f64) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_THREAD only
    // reads the calling thread's counters.
    let status = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    if status != 0 {
        return (f64::NAN, f64::NAN);
    }
    // SAFETY: getrusage succeeded, so it filled `usage` (and zeroed is a
    // valid rusage anyway).
    let usage = unsafe { usage.assume_init() };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    (seconds(usage.ru_utime), seconds(usage.ru_stime))
}

/// CPU of the calling thread: the exact total and the sampled split.
#[derive(Clone, Copy, Default)]
struct Cpu {
    total: f64,
    user: f64,
    system: f64,
}

impl Cpu {
    fn now() -> Cpu {
        let (user, system) = user_system_seconds();
        Cpu {
            total: cpu_seconds(),
            user,
            system,
        }
    }

    fn since(self, start: Cpu) -> Cpu {
        Cpu {
            total: self.total - start.total,
            user: self.user - start.user,
            system: self.system - start.system,
        }
    }

    fn add(&mut self, other: Cpu) {
        self.total += other.total;
        self.user += other.user;
        self.system += other.system;
    }
}

/// A thread that runs one batch each time it is asked and hands back its
/// result, so the batches' CPU is counted on that thread alone.
struct Worker<R> {
    start: mpsc::Sender<()>,
    done: mpsc::Receiver<R>,
}

impl<R: Send> Worker<R> {
    fn spawn<'scope, F>(scope: &'scope std::thread::Scope<'scope, '_>, mut batch: F) -> Self
    where
        F: FnMut() -> R + Send + 'scope,
        R: 'scope,
    {
        let (start, starts) = mpsc::channel();
        let (finished, done) = mpsc::channel();
        scope.spawn(move || {
            for () in starts {
                if finished.send(batch()).is_err() {
                    return;
                }
            }
        });
        Worker { start, done }
    }

    fn run(&self) -> R {
        if self.start.send(()).is_err() {
            panic!("a measuring thread ended");
        }
        match self.done.recv() {
            Ok(result) => result,
            Err(_) => panic!("a measuring thread ended"),
        }
    }
}

fn rate(calls: usize, elapsed: Duration) -> f64 {
    calls as f64 / elapsed.as_secs_f64()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn median_ms(values: &mut [f64]) -> f64 {
    median(values) * 1000.0
}

/// `min-max` of `values`, to show how much the batches disagree.
fn spread(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{min:.2}-{max:.2}")
}

async fn client_for(stream: UnixStream, config: Config) -> Client {
    if let Err(error) = stream.set_nonblocking(true) {
        panic!("{error}");
    }
    let io = match tokio::net::UnixStream::from_std(stream) {
        Ok(io) => io,
        Err(error) => panic!("{error}"),
    };
    match Client::from_stream(io, &config).await {
        Ok(client) => client,
        Err(error) => panic!("{error}"),
    }
}

async fn sequential(client: &Client) -> f64 {
    let started = Instant::now();
    for _ in 0..CALLS {
        if let Err(error) = client.execute(QueryStatus).await {
            panic!("{error}");
        }
    }
    rate(CALLS, started.elapsed())
}

async fn shared(client: &Client) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..CALLS / 16 {
                    if let Err(error) = client.execute(QueryStatus).await {
                        panic!("{error}");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    rate(CALLS / 16 * 16, started.elapsed())
}

/// Sequential `query-status` rate of Python's qemu.qmp over `stream`, if
/// python3 with qemu.qmp is available.
fn python_rate(stream: UnixStream) -> Option<f64> {
    use std::os::fd::{AsRawFd, BorrowedFd};
    use std::os::unix::process::CommandExt;
    const SCRIPT: &str = r#"
import asyncio, socket, sys, time
from qemu.qmp import QMPClient
async def main():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=int(sys.argv[1]))
    qmp = QMPClient("bench")
    await qmp.connect(sock)
    for _ in range(200):
        await qmp.execute("query-status")
    rates = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(400):
            await qmp.execute("query-status")
        rates.append(400 / (time.perf_counter() - start))
    print(sorted(rates)[2])
    await qmp.disconnect()
asyncio.run(main())
"#;
    let fd = stream.as_raw_fd();
    let mut command = std::process::Command::new("python3");
    command.args(["-c", SCRIPT, &fd.to_string()]);
    // SAFETY: runs between fork and exec and only calls fcntl, which is
    // async-signal-safe; `stream` outlives the spawn.
    unsafe {
        command.pre_exec(move || {
            let fd = BorrowedFd::borrow_raw(fd);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()).map_err(std::io::Error::from)
        });
    }
    let output = command.stderr(std::process::Stdio::null()).output().ok()?;
    drop(stream);
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

fn runtime(threads: Option<usize>) -> tokio::runtime::Runtime {
    let mut builder = match threads {
        Some(threads) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads);
            builder
        }
        None => tokio::runtime::Builder::new_current_thread(),
    };
    match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => panic!("{error}"),
    }
}

fn main() {
    // One QEMU, three monitors: Client on a current-thread runtime, the
    // raw client, and Client on a multi-thread runtime.
    let (_qemu, ends) = support::Qemu::with_socketpairs(5);
    let Ok([single_end, raw_end, multi_end, python_end, memory_end]) =
        <[UnixStream; 5]>::try_from(ends)
    else {
        panic!("no sockets");
    };
    let config = Config::default();
    let single = runtime(None);
    let multi = runtime(Some(2));
    let client = single.block_on(client_for(single_end, config.clone()));
    let multi_client = multi.block_on(client_for(multi_end, config));
    let mut raw = Raw::new(raw_end);

    // Warm up every path.
    for _ in 0..300 {
        raw.call(QUERY_STATUS);
    }
    single.block_on(sequential(&client));
    multi.block_on(sequential(&multi_client));

    // Interleaved batches, so the (noisy, shared) machine's load hits
    // every measure alike; medians of the per-batch rates and ratios.
    // (a) and (b) each run on a thread of their own: the kernel splits a
    // thread's CPU into user and system by the timer ticks that land in
    // it, cumulatively, so one thread shared by both would smear each
    // one's ticks over the other's batches.
    let (mut a, mut a_multi, mut b, mut b_id, mut c) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ratios, mut cpu_ratios) = (Vec::new(), Vec::new());
    let (mut cpu_a, mut cpu_b) = (Cpu::default(), Cpu::default());
    std::thread::scope(|scope| {
        let client_thread = Worker::spawn(scope, || {
            let cpu = Cpu::now();
            let rate_a = single.block_on(sequential(&client));
            (rate_a, Cpu::now().since(cpu))
        });
        let raw_thread = Worker::spawn(scope, || {
            let cpu = Cpu::now();
            let started = Instant::now();
            for _ in 0..CALLS {
                raw.call(QUERY_STATUS);
            }
            let rate_b = rate(CALLS, started.elapsed());
            let cpu_b = Cpu::now().since(cpu);
            let started = Instant::now();
            for id in 0..CALLS {
                raw.call_with_id(id);
            }
            (rate_b, cpu_b, rate(CALLS, started.elapsed()))
        });
        // A first batch on each new thread warms it up, uncounted.
        client_thread.run();
        raw_thread.run();
        for _ in 0..BATCHES {
            let (rate_a, batch_cpu_a) = client_thread.run();
            let (rate_b, batch_cpu_b, rate_b_id) = raw_thread.run();
            b_id.push(rate_b_id);
            let spawned = multi_client.clone();
            let rate_multi = multi.block_on(async move {
                match tokio::spawn(async move { sequential(&spawned).await }).await {
                    Ok(rate) => rate,
                    Err(error) => panic!("{error}"),
                }
            });
            a_multi.push(rate_multi);
            c.push(multi.block_on(shared(&multi_client)));
            a.push(rate_a);
            b.push(rate_b);
            ratios.push(rate_a / rate_b);
            cpu_a.add(batch_cpu_a);
            cpu_b.add(batch_cpu_b);
            cpu_ratios.push(batch_cpu_a.total / batch_cpu_b.total);
        }
    });

    let python = python_rate(python_end);

    // query-qmp-schema: about 200 KB in one line.
    let mut schema_client = Vec::new();
    let mut schema_raw = Vec::new();
    let mut schema_ratios = Vec::new();
    let mut schema_value = Vec::new();
    let mut floor_ratios = Vec::new();
    let mut schema_text = Vec::new();
    let mut schema_bytes = 0;
    for pair in 0..SCHEMA_CALLS {
        // Client (Value) and Client (text) take turns before and after
        // raw, so none always meets QEMU just after another's reply.
        let as_text = || {
            let started = Instant::now();
            let call = client.call(qmp_client::Raw::new("query-qmp-schema").text());
            let text = single.block_on(call.into_future());
            let elapsed = started.elapsed().as_secs_f64();
            match text {
                Ok(text) => (elapsed, text),
                Err(error) => panic!("{error}"),
            }
        };
        let through_client = || {
            let started = Instant::now();
            let schema = single.block_on(client.execute_raw("query-qmp-schema", None));
            let elapsed = started.elapsed().as_secs_f64();
            match schema {
                Ok(schema) => (elapsed, schema),
                Err(error) => panic!("{error}"),
            }
        };
        let mut through_raw = || {
            let started = Instant::now();
            let bytes = raw.call(QUERY_SCHEMA);
            (started.elapsed().as_secs_f64(), bytes)
        };
        let ((client_time, schema), (raw_time, bytes), (text_time, text)) = if pair % 2 == 0 {
            let client = through_client();
            let raw = through_raw();
            (client, raw, as_text())
        } else {
            let text = as_text();
            let raw = through_raw();
            (through_client(), raw, text)
        };
        if text.get().len() + "{\"return\": }\r\n".len() != bytes {
            panic!(
                "the text is not the reply's: {} of {bytes} bytes",
                text.get().len()
            );
        }
        drop(text);
        schema_text.push(text_time / raw_time);
        schema_client.push(client_time);
        schema_raw.push(raw_time);
        schema_bytes = bytes;
        // What any Value-returning client adds at least: the reply's
        // serde_json::Value, built from the raw client's bytes as the codec
        // builds it (one UTF-8 check, then from_str); dropped untimed.
        let started = Instant::now();
        let value = std::str::from_utf8(&raw.line)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok());
        schema_value.push(started.elapsed().as_secs_f64());
        if !value.as_ref().is_some_and(serde_json::Value::is_object) {
            panic!("the raw schema reply is no JSON object");
        }
        drop(std::hint::black_box(value));
        drop(schema);
        // Each pair runs back to back, so the host's load hits both alike.
        if let (Some(client), Some(raw), Some(value)) =
            (schema_client.last(), schema_raw.last(), schema_value.last())
        {
            schema_ratios.push(client / raw);
            floor_ratios.push((raw + value) / raw);
        }
    }
    let schema_client = median_ms(&mut schema_client);
    let schema_raw = median_ms(&mut schema_raw);
    let schema_value = median_ms(&mut schema_value);
    let floor_ratio = median(&mut floor_ratios);
    let text_spread = spread(&schema_text);
    let text_ratio = median(&mut schema_text);

    // Heap of a client (its own connection) holding 10,000 events for an
    // idle subscriber, buffers sized for them; QEMU sends every event to
    // every monitor, so the other client generates them.
    let (buffered, empty, held) = single.block_on(async {
        COUNTING.store(true, Ordering::Relaxed);
        let before = LIVE.load(Ordering::Relaxed);
        let sized = Config::default().event_buffer(EVENTS).event_backlog(EVENTS);
        let memory_client = client_for(memory_end, sized).await;
        let mut events = memory_client.events();
        let empty = heap_since(before);
        for _ in 0..EVENTS / 2 {
            let _ = client.execute_raw("stop", None).await;
            let _ = client.execute_raw("cont", None).await;
        }
        // Every event has reached the idle client once it answers.
        let _ = memory_client.execute(QueryStatus).await;
        let held = heap_since(before);
        let mut buffered = 0usize;
        while let Ok(Some(Ok(_))) =
            tokio::time::timeout(Duration::from_millis(100), events.recv()).await
        {
            buffered += 1;
        }
        (buffered, empty, held)
    });

    let (a, a_multi, b, b_id, c) = (
        median(&mut a),
        median(&mut a_multi),
        median(&mut b),
        median(&mut b_id),
        median(&mut c),
    );
    let (ratio_spread, cpu_spread, schema_spread) =
        (spread(&ratios), spread(&cpu_ratios), spread(&schema_ratios));
    let ratio = median(&mut ratios);
    let cpu_ratio = median(&mut cpu_ratios);
    let schema_ratio = median(&mut schema_ratios);
    let row = |name: &str, value: String| println!("{name:<58} {value:>12}");
    println!();
    println!(
        "qmp-client against one QEMU -machine none (medians of {BATCHES} interleaved batches of {CALLS} calls)"
    );
    row("measure", "value".into());
    row(
        "(a) Client, sequential query-status, current-thread rt",
        format!("{a:.0}/s"),
    );
    row(
        "(a') the same, in a task on a 2-thread rt",
        format!("{a_multi:.0}/s"),
    );
    row(
        &format!(
            "(b) raw, shortest request ({} bytes), one line in",
            QUERY_STATUS.len()
        ),
        format!("{b:.0}/s"),
    );
    row(
        "(b') raw, the same with an id (33 bytes)",
        format!("{b_id:.0}/s"),
    );
    row(
        "(c) Client, 16 tasks sharing it, 2-thread rt",
        format!("{c:.0}/s"),
    );
    row(
        "a/b, median of per-batch ratios (target >= 0.95)",
        format!("{ratio:.3}"),
    );
    row("  a/b per batch, min-max", ratio_spread);
    let per_call = |cpu: f64| format!("{:.1}us", cpu / (BATCHES * CALLS) as f64 * 1e6);
    let split = |cpu: Cpu| format!("{} / {}", per_call(cpu.user), per_call(cpu.system));
    row(
        "client-side CPU per call: Client (a)",
        per_call(cpu_a.total),
    );
    row("  user / system (getrusage, sampled split)", split(cpu_a));
    row("client-side CPU per call: raw (b)", per_call(cpu_b.total));
    row("  user / system (getrusage, sampled split)", split(cpu_b));
    row(
        "CPU per call a/b, median of batches (target <= 2)",
        format!("{cpu_ratio:.2}"),
    );
    row("  CPU a/b per batch, min-max", cpu_spread);
    row("a'/b", format!("{:.3}", a_multi / b));
    row("b'/b (cost of an id)", format!("{:.3}", b_id / b));
    match python {
        Some(rate) => {
            row(
                "Python qemu.qmp, sequential query-status",
                format!("{rate:.0}/s"),
            );
            row("a/Python", format!("{:.2}", a / rate));
        }
        None => row("Python qemu.qmp (pip install qemu.qmp)", "not run".into()),
    }
    row(
        "query-qmp-schema via Client (median)",
        format!("{schema_client:.2}ms"),
    );
    row(
        &format!("query-qmp-schema raw, {schema_bytes} bytes (median)"),
        format!("{schema_raw:.2}ms"),
    );
    row(
        "schema Client/raw, median of pairs (target <= 1.05)",
        format!("{schema_ratio:.3}"),
    );
    row("  schema Client/raw per pair, min-max", schema_spread);
    row(
        "  building the reply's serde_json::Value alone (median)",
        format!("{schema_value:.2}ms"),
    );
    row(
        "  (raw + that Value)/raw: floor of any Value-returning client",
        format!("{floor_ratio:.3}"),
    );
    row(
        "  Client/floor: what the Client adds to building the Value",
        format!("{:.3}", schema_ratio / floor_ratio),
    );
    row(
        "schema as JSON text (Raw::text)/raw (target <= 1.05)",
        format!("{text_ratio:.3}"),
    );
    row("  text/raw per pair, min-max", text_spread);
    row(
        "client heap, buffers for 10,000 events, none yet",
        format!("{:.0}KB", empty as f64 / 1024.0),
    );
    row(
        &format!("client heap with {buffered} events buffered"),
        format!("{:.0}KB", held as f64 / 1024.0),
    );
    row(
        "  per buffered event",
        format!("{}B", held.saturating_sub(empty) / buffered.max(1)),
    );
}
