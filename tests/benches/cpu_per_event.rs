//! CPU per event without a broker (issue 18): the SDK's encode and its decode +
//! dispatch against the peer's (`event_bus_tests::peer`: rdkafka and
//! `schema_registry_converter` by hand), for the benchmarks' event,
//! `SessionLoginCompleted`. `scripts/callgrind` runs it under `valgrind
//! --tool=callgrind` and turns its output into instructions per event; it also counts
//! heap allocations per event itself.
//!
//! # What one run does
//!
//! One operation, named by an argument, on a fresh current-thread Tokio runtime with
//! the embedded schema registry (event-bus-testkit) on it:
//!
//! - `sdk-encode`: `Producer::enqueue` (fresh metadata, the Avro datum and key,
//!   Confluent framing, the CloudEvents headers written into librdkafka's header list,
//!   the delivery ticket) on a producer whose broker address leads nowhere: records
//!   stay queued in librdkafka. `scripts/callgrind` takes librdkafka's own queueing
//!   (`rd_kafka_producev`) out of the count: what remains is what the producer does
//!   before it hands the record to librdkafka.
//! - `peer-encode`: the peer's `produce`: `AvroEncoder::encode_struct` of value and
//!   key, ten headers written by hand, `FutureProducer::send_result` (the same
//!   hand-off taken out).
//! - `sdk-decode`: `SdkRecordPath::handle` (event_bus_tests::sdk_record: the
//!   consumer's per-record steps, headers to dispatch, to one no-op receiver) on
//!   records the SDK encoded.
//! - `peer-decode`: the peer's `decode` (headers read by hand, `AvroDecoder`,
//!   `apache_avro::from_value`) and a call of a no-op handler, on records the peer
//!   encoded.
//!
//! Schemas are registered and the caches filled by a warm-up of `CPU_WARMUP` events
//! (default 100). Then `CPU_EVENTS` events (default 1 000) run with the allocation
//! counter on (this thread only, Rust's allocator: librdkafka's own `malloc`s, e.g. of
//! its header list, are not counted), and the same number again inside
//! `callgrind_measured_section`, the one function callgrind collects in
//! (`--collect-atstart=no --toggle-collect=...`). Each run prints one line:
//!
//! ```text
//! RESULT op=sdk-encode events=1000 allocations_per_event=12.000
//! ```
//!
//! # Running it
//!
//! ```text
//! scripts/callgrind                      # all four under callgrind, with ratios
//! cargo bench -p event-bus-tests --bench cpu_per_event            # allocations only
//! cargo bench -p event-bus-tests --bench cpu_per_event -- peer-decode
//! ```
//!
//! `cargo test` and `cargo nextest` build this target but never run it: without cargo
//! bench's `--bench` argument it prints a note and exits, and it lists no tests.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use event_bus_core::{Event, EventBus};
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::config::{KafkaConfig, ProducerConfig, RegistryConfig};
use event_bus_kafka::producer::{EventEncoder, Producer};
use event_bus_kafka::registry::RegistryClient;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_tests::bench_support::{env_number, run_benchmark, BenchResult};
use event_bus_tests::peer::{Peer, PeerMetadata};
use event_bus_tests::sdk_record::{message_of, SdkRecordPath};
use rdkafka::config::ClientConfig;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;

/// The system allocator, counting the allocations of threads that ask for it.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Whether this thread's allocations are counted now.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count_one() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// The service name (`ce_source`) of both sides, and the consumer group.
const SERVICE: &str = "cpu-per-event";

/// The topic prefix of both sides.
const PREFIX: &str = "bench";

/// A broker address with no broker: records stay in librdkafka's queue.
const NOWHERE: &str = "127.0.0.1:9";

/// Distinct records the decode operations cycle through.
const RECORDS: usize = 100;

/// The operations, in the order `scripts/callgrind` prints them.
const OPERATIONS: [&str; 4] = ["sdk-encode", "peer-encode", "sdk-decode", "peer-decode"];

fn main() -> ExitCode {
    run_benchmark("cpu_per_event", || {
        let named: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--"))
            .collect();
        let operations: Vec<&str> = if named.is_empty() {
            OPERATIONS.to_vec()
        } else {
            named.iter().map(String::as_str).collect()
        };
        let events = env_number("CPU_EVENTS", 1_000_usize)?.max(1);
        let warm_up = env_number("CPU_WARMUP", 100_usize)?;
        for operation in operations {
            measure(operation, events, warm_up)?;
        }
        Ok(())
    })
}

/// The only function callgrind collects in (`--toggle-collect`); not inlined, and no
/// other function's name contains its name.
#[inline(never)]
fn callgrind_measured_section(body: &mut dyn FnMut()) {
    body();
}

/// Runs `body` with this thread's allocations counted; returns its result and the count.
fn counting_allocations<T>(body: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.set(true);
    let out = body();
    COUNTING.set(false);
    (out, ALLOCATIONS.load(Ordering::Relaxed) - before)
}

/// One operation, ready to run.
enum Operation {
    SdkEncode(Producer),
    PeerEncode(Peer, FutureProducer),
    SdkDecode(SdkRecordPath, Vec<OwnedMessage>),
    PeerDecode(Peer, Vec<OwnedMessage>),
}

fn measure(name: &str, events: usize, warm_up: usize) -> BenchResult<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let registry = runtime.block_on(EmbeddedRegistry::start())?;
    let event = SessionLoginCompleted {
        user: UserData::example(),
    };
    let operation = runtime.block_on(Operation::prepare(name, &registry.url(), &event))?;
    runtime.block_on(operation.run(&event, warm_up))?;
    let (counted, allocations) =
        counting_allocations(|| runtime.block_on(operation.run(&event, events)));
    counted?;
    let mut measured = Ok(());
    callgrind_measured_section(&mut || {
        measured = runtime.block_on(operation.run(&event, events));
    });
    measured?;
    println!(
        "RESULT op={name} events={events} allocations_per_event={:.3}",
        allocations as f64 / events as f64
    );
    // The producers hold records for a broker that never comes: leave them to the
    // process's end rather than purge them.
    std::mem::forget(operation);
    Ok(())
}

impl Operation {
    async fn prepare(
        name: &str,
        registry_url: &str,
        event: &SessionLoginCompleted,
    ) -> BenchResult<Self> {
        let topic = format!("{PREFIX}-{}", SessionLoginCompleted::TOPIC);
        Ok(match name {
            "sdk-encode" => {
                let config = ProducerConfig::new(
                    KafkaConfig::new(NOWHERE),
                    RegistryConfig::new(registry_url),
                )
                .with_service_name(SERVICE)
                .with_topic_prefix(PREFIX);
                let producer = Producer::new(config)?;
                producer.register::<SessionLoginCompleted>().await?;
                Self::SdkEncode(producer)
            }
            "peer-encode" => {
                let peer = Peer::new(registry_url, &topic, SERVICE);
                peer.register_schemas().await?;
                let producer: FutureProducer = ClientConfig::new()
                    .set("bootstrap.servers", NOWHERE)
                    .create()?;
                Self::PeerEncode(peer, producer)
            }
            "sdk-decode" => {
                let client = Arc::new(RegistryClient::new(RegistryConfig::new(registry_url))?);
                let encoder = EventEncoder::new(client, Some(PREFIX.to_owned()), SERVICE);
                let mut records = Vec::with_capacity(RECORDS);
                for offset in 0..RECORDS {
                    let record = encoder.encode(event, None, None).await?;
                    records.push(message_of(&record, offset as i64));
                }
                let mut bus = EventBus::new();
                bus.connect_fn("noop", |e: &SessionLoginCompleted, _| {
                    black_box(e);
                    Ok(())
                })?;
                Self::SdkDecode(SdkRecordPath::new(bus, registry_url, SERVICE)?, records)
            }
            "peer-decode" => {
                let peer = Peer::new(registry_url, &topic, SERVICE);
                peer.register_schemas().await?;
                let mut records = Vec::with_capacity(RECORDS);
                for offset in 0..RECORDS {
                    records.push(peer.encode(event).await?.to_message(offset as i64));
                }
                Self::PeerDecode(peer, records)
            }
            other => {
                return Err(
                    format!("`{other}` is not an operation ({})", OPERATIONS.join(", ")).into(),
                )
            }
        })
    }

    /// Runs the operation `events` times.
    async fn run(&self, event: &SessionLoginCompleted, events: usize) -> BenchResult<()> {
        match self {
            Self::SdkEncode(producer) => {
                for _ in 0..events {
                    black_box(producer.enqueue(event).await?);
                }
            }
            Self::PeerEncode(peer, producer) => {
                for _ in 0..events {
                    black_box(peer.produce(producer, event).await?);
                }
            }
            Self::SdkDecode(path, records) => {
                for record in records.iter().cycle().take(events) {
                    path.handle(record).await?;
                }
            }
            Self::PeerDecode(peer, records) => {
                for record in records.iter().cycle().take(events) {
                    let (metadata, decoded) = peer.decode(record).await?;
                    peer_receiver(&metadata, &decoded);
                }
            }
        }
        Ok(())
    }
}

/// The peer's no-op handler, called as a hand-written consumer calls its handler.
#[inline(never)]
fn peer_receiver(metadata: &PeerMetadata, event: &SessionLoginCompleted) {
    black_box((metadata, event));
}
