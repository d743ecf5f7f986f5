//! Producer throughput: the SDK's [`Producer`] against raw rdkafka, same broker, same
//! run (issue 4: "report the ratio; target ≥ 0.90").
//!
//! # What it measures
//!
//! One Apache Kafka node (KRaft, broker and controller in one JVM, started here with a
//! heap of 1024 MiB, on the same cores as the benchmark) and the embedded schema
//! registry serve every run. Each run gets a fresh one-partition topic and a fresh
//! producer, warmed up with one acknowledged send (metadata, idempotent producer id,
//! and for the SDK the schema registration); then it produces `BENCH_EVENTS` events of
//! `SessionLoginCompleted` (the Open edX login event, a fixed key) and the clock stops
//! when every one of them is acknowledged. Two modes:
//!
//! - **(a) enqueue + flush**: SDK `Producer::enqueue` (encode, queue, delivery report
//!   logged by librdkafka's callback) for every event, then `flush`; against raw
//!   `FutureProducer::send_result` of records the SDK encoded before the runs (same
//!   key, value and header bytes), then `flush`. A third, diagnostic side ("lean")
//!   does what raw does, but encodes every record first with the SDK's
//!   `EventEncoder::encode` (owned records, as the outbox stores them): lean vs raw is
//!   the cost of encoding alone, SDK vs lean the SDK's own sending path.
//! - **(b) send, `BENCH_WINDOW` in flight**: SDK `Producer::send` awaited with a window
//!   of sends in flight (one tokio task each, in a `JoinSet`); against raw
//!   `FutureProducer::send` of the pre-encoded records, awaited the same way.
//! - In (a) and (b), a **peer** side too (issue 18): what a user writes instead of the
//!   SDK, rdkafka and `schema_registry_converter` by hand (`event_bus_tests::peer`):
//!   every event encoded with the `AvroEncoder` through serde, its headers written by
//!   hand, then `FutureProducer::send_result` (a) or `send_result` awaited (b). Raw stays
//!   the ceiling; SDK/peer says what the SDK costs over that choice.
//! - **(c) codecs**: the SDK's `Producer` once per compression codec (`none`, `lz4`,
//!   `zstd`, `snappy`, `gzip`; those librdkafka was not built with are skipped and
//!   named) on realistic Open edX traffic (`event_bus_tests::traffic`), in bursts
//!   (enqueue + flush) and one send at a time; it reports bytes the broker stored per
//!   event, events/s and CPU per event of this process and of the broker, with ratios
//!   against `none`. See `producer_throughput/codecs.rs`.
//!
//! So the SDK side pays for everything it does per event (Avro encoding, framing,
//! metadata and headers, delivery reporting) and the raw side only for producing the
//! bytes. Both sides use the same librdkafka options, set explicitly (the SDK passes
//! them through unchanged, over its own defaults): `enable.idempotence=true`,
//! `acks=all`, `linger.ms=BENCH_LINGER_MS` (5), `batch.num.messages=10000`,
//! `message.timeout.ms=60000`, `compression.type` = the SDK's default codec
//! (`DEFAULT_COMPRESSION`, lz4), and a `queue.buffering.max.messages` large enough for
//! a whole run.
//!
//! In mode (a) both sides wait for the producer's in-flight count to reach zero
//! (checked every millisecond) before the final `flush`. rdkafka's `flush` polls in
//! 100 ms steps while a `FutureProducer`'s own thread takes the delivery reports, so a
//! bare `flush` would add up to 100 ms to every run, whichever the side, and hide the
//! difference being measured.
//!
//! Runs alternate between the sides, and the order rotates every round (raw, SDK, lean
//! | SDK, lean, raw | …) so drift on the machine does not favour one side; a shorter
//! warm-up round of each is discarded. The table shows every run's throughput, the median per
//! side and the ratio SDK/raw of the medians. A breakdown follows: single-thread loops
//! over the pieces of the SDK's per-event work (fresh metadata, the Avro datum, the
//! whole encoder) and the "queue phase" of mode (a) (the loop handing events to
//! librdkafka, before the wait for acknowledgements) of each side. The load average
//! is printed at the start and the end: other work on the machine (a build) moves the
//! numbers more than anything measured here.
//!
//! It is a benchmark, not a test: nothing asserts a duration. It fails only if an
//! event is not delivered or the broker cannot start.
//!
//! # Running it
//!
//! ```text
//! scripts/install-test-deps            # once: Apache Kafka's jars (and Java)
//! cargo bench -p event-bus-tests --bench producer_throughput
//! BENCH_EVENTS=20000 BENCH_ROUNDS=3 BENCH_MODE=send cargo bench -p event-bus-tests --bench producer_throughput
//! BENCH_MODE=codecs BENCH_ROUNDS=3 cargo bench -p event-bus-tests --bench producer_throughput
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `BENCH_EVENTS` | events per run | 100000 |
//! | `BENCH_ROUNDS` | measured runs per side and mode | 5 |
//! | `BENCH_MODE` | `enqueue` (a), `send` (b), `codecs` (c), a comma-separated list of them, or `all` | all |
//! | `BENCH_WINDOW` | sends in flight in mode (b) | 1000 |
//! | `BENCH_LINGER_MS` | librdkafka `linger.ms`, both sides | 5 |
//! | `BENCH_CODECS` | codecs of mode (c), comma-separated; `none` is always measured | none,lz4,zstd,snappy,gzip |
//! | `BENCH_TRICKLE_EVENTS` | events per one-at-a-time run of mode (c) | 500 |
//! | `BENCH_VERIFY` | `1`: read every run's topic back and count its records | off |
//! | `EVENT_BUS_TEST_KAFKA_LIBS` | the folder of Kafka's jars (default: where `install-test-deps` puts them) | — |
//!
//! With the defaults, modes (a) and (b) take about 75 s on two cores (plus the build),
//! the broker's start included; mode (c) about as long again.
//! `cargo test` and `cargo nextest` build this target but never run it: it lists no
//! tests, and without cargo bench's `--bench` argument it prints a note and exits.

use std::fmt::Write as _;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_bus_core::{Event, EventMetadata};
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::config::{KafkaConfig, ProducerConfig, RegistryConfig, DEFAULT_COMPRESSION};
use event_bus_kafka::producer::{EncodedRecord, Producer};
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::records::read_topic;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::unique_topic;
use event_bus_tests::bench_support::{
    broker_and_runtime, env_number, median, run_benchmark, BenchResult, BROKER_HEAP_MB,
};
use event_bus_tests::peer::Peer;
use rdkafka::admin::AdminOptions;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use tokio::task::JoinSet;

#[path = "producer_throughput/codecs.rs"]
mod codecs;

/// How long a send may wait to be queued, a message to be delivered, a flush to end.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// The SDK's service name, `client.id` and `ce_source`.
const SERVICE: &str = "producer-bench";

/// What the benchmark is asked to do (from `BENCH_*` variables).
#[derive(Debug, Clone, Copy)]
struct Settings {
    events: usize,
    rounds: usize,
    window: usize,
    linger_ms: u64,
    verify: bool,
    /// Modes (a) and (b) to run, in order.
    modes: &'static [Mode],
    /// Whether to run mode (c).
    codecs: bool,
}

impl Settings {
    fn from_env() -> BenchResult<Self> {
        Self {
            events: env_number("BENCH_EVENTS", 100_000)?.max(1),
            rounds: env_number("BENCH_ROUNDS", 5)?.max(1),
            window: env_number("BENCH_WINDOW", 1_000)?.max(1),
            linger_ms: env_number("BENCH_LINGER_MS", 5)?,
            verify: std::env::var("BENCH_VERIFY").is_ok_and(|v| v.trim() == "1"),
            modes: &[],
            codecs: false,
        }
        .with_modes(&std::env::var("BENCH_MODE").unwrap_or_default())
    }

    /// The modes of `BENCH_MODE`: comma-separated `enqueue`, `send`, `codecs`, or
    /// `all` (also when empty).
    fn with_modes(mut self, listed: &str) -> BenchResult<Self> {
        let names: Vec<&str> = listed
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        let all = names.is_empty() || names.contains(&"all");
        if let Some(other) = names
            .iter()
            .find(|n| !["all", "enqueue", "send", "codecs"].contains(n))
        {
            return Err(format!(
                "BENCH_MODE=`{listed}`: `{other}` is not a mode (enqueue, send, codecs or all)"
            )
            .into());
        }
        let wants = |name: &str| all || names.contains(&name);
        self.modes = match (wants("enqueue"), wants("send")) {
            (true, true) => &[Mode::EnqueueFlush, Mode::SendWindow],
            (true, false) => &[Mode::EnqueueFlush],
            (false, true) => &[Mode::SendWindow],
            (false, false) => &[],
        };
        self.codecs = wants("codecs");
        Ok(self)
    }

    /// The librdkafka options both sides use.
    fn librdkafka_options(&self) -> Vec<(&'static str, String)> {
        vec![
            ("enable.idempotence", "true".to_owned()),
            ("acks", "all".to_owned()),
            ("linger.ms", self.linger_ms.to_string()),
            ("batch.num.messages", "10000".to_owned()),
            (
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            ),
            // A whole run fits in the queue, so `enqueue` never meets QueueFull.
            (
                "queue.buffering.max.messages",
                (self.events + self.window + 1).max(100_000).to_string(),
            ),
            ("client.id", SERVICE.to_owned()),
            // The SDK's default codec, set for raw too: both sides send the same batches.
            ("compression.type", DEFAULT_COMPRESSION.to_owned()),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `enqueue` / `send_result` for every event, then `flush`.
    EnqueueFlush,
    /// `send` / `FutureProducer::send` awaited with a window of sends in flight.
    SendWindow,
}

impl Mode {
    fn sides(self) -> &'static [Side] {
        match self {
            Mode::EnqueueFlush => &[Side::Raw, Side::Sdk, Side::Lean, Side::Peer],
            Mode::SendWindow => &[Side::Raw, Side::Sdk, Side::Peer],
        }
    }

    fn short_name(self) -> &'static str {
        match self {
            Mode::EnqueueFlush => "enqueue+flush",
            Mode::SendWindow => "send window",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// rdkafka producing the pre-encoded records.
    Raw,
    /// The SDK's `Producer`.
    Sdk,
    /// Diagnostic: raw's loop, encoding each record with the SDK's encoder first.
    Lean,
    /// rdkafka and `schema_registry_converter` by hand (`event_bus_tests::peer`).
    Peer,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Raw => "raw",
            Side::Sdk => "sdk",
            Side::Lean => "lean",
            Side::Peer => "peer",
        }
    }
}

/// One timed run.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// From the first event handed over to the last acknowledgement (and, in mode
    /// (a), the end of `flush`).
    total: Duration,
    /// Mode (a): until the last event was handed to librdkafka.
    queued: Duration,
}

/// Single-thread costs of the pieces of the SDK's per-event work, for one round.
#[derive(Debug, Clone, Copy)]
struct PieceTimes {
    metadata: Duration,
    datum: Duration,
    encode: Duration,
}

/// Shared state: broker, registry, the event and its pre-encoded records.
struct Bench {
    settings: Settings,
    broker: KafkaCluster,
    registry: EmbeddedRegistry,
    event: Arc<SessionLoginCompleted>,
    /// `settings.events` records encoded by the SDK before any run: the raw side's input.
    records: Arc<Vec<EncodedRecord>>,
    /// The producer whose encoder made `records`; reused for the single-thread loops.
    encoder_producer: Producer,
    /// Tokio tasks alive between runs (the embedded registry's).
    idle_tasks: usize,
    /// Mode (c): its settings and the Open edX traffic it sends (empty without (c)).
    codec_settings: codecs::CodecSettings,
    traffic: codecs::Traffic,
}

fn main() -> ExitCode {
    run_benchmark("producer_throughput", bench_main)
}

fn bench_main() -> BenchResult<()> {
    let settings = Settings::from_env()?;
    let (broker, runtime) = broker_and_runtime()?;
    runtime.block_on(async move {
        let bench = Bench::prepare(settings, broker).await?;
        bench.run().await
    })
}

impl Bench {
    async fn prepare(settings: Settings, broker: KafkaCluster) -> BenchResult<Self> {
        let registry = EmbeddedRegistry::start().await?;
        let event = Arc::new(SessionLoginCompleted {
            user: UserData::example(),
        });
        let encoder_producer = Producer::new(sdk_config(
            &settings,
            broker.bootstrap_servers(),
            &registry.url(),
            &unique_topic("bench-encode"),
        ))?;
        encoder_producer.register::<SessionLoginCompleted>().await?;
        let mut records = Vec::with_capacity(settings.events);
        for _ in 0..settings.events {
            records.push(
                encoder_producer
                    .encoder()
                    .encode(&*event, None, None)
                    .await?,
            );
        }
        let codec_settings = codecs::CodecSettings::from_env()?;
        let traffic_events = if settings.codecs {
            settings.events.max(codec_settings.trickle_events)
        } else {
            0
        };
        let traffic = codecs::Traffic::prepare(traffic_events, &encoder_producer).await?;
        Ok(Self {
            settings,
            broker,
            registry,
            event,
            records: Arc::new(records),
            encoder_producer,
            idle_tasks: tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            codec_settings,
            traffic,
        })
    }

    async fn run(&self) -> BenchResult<()> {
        println!("{}", self.header());
        if !self.settings.modes.is_empty() {
            self.run_modes_a_b().await?;
        }
        if self.settings.codecs {
            println!("{}", codecs::run(self, &self.codec_settings).await?);
        }
        Ok(())
    }

    /// Modes (a) and (b): SDK against raw rdkafka.
    async fn run_modes_a_b(&self) -> BenchResult<()> {
        let s = self.settings;

        // Warm-up: a short run of each, discarded.
        let warm_up = s.events.min(5_000);
        for &mode in s.modes {
            for &side in mode.sides() {
                self.run_once(mode, side, warm_up).await?;
            }
        }

        let mut runs: Vec<(Mode, Side, Run)> = Vec::new();
        let mut pieces = Vec::with_capacity(s.rounds);
        for round in 0..s.rounds {
            for &mode in s.modes {
                let mut order = mode.sides().to_vec();
                let len = order.len();
                order.rotate_left(round % len);
                for side in order {
                    let run = self.run_once(mode, side, s.events).await?;
                    eprintln!(
                        "  round {} {:<14} {:<5} {:>9.0} events/s",
                        round + 1,
                        mode.short_name(),
                        side.name(),
                        throughput(s.events, run.total)
                    );
                    runs.push((mode, side, run));
                }
            }
            pieces.push(self.piece_times().await?);
        }

        println!("{}", self.report(&runs, &pieces));
        Ok(())
    }

    fn header(&self) -> String {
        let s = self.settings;
        let record = &self.records[0];
        let header_bytes: usize = record.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        let options: Vec<String> = s
            .librdkafka_options()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "producer throughput: SDK vs raw rdkafka and the peer, {} events per run, {} rounds (+1 warm-up), \
             window {} in mode (b)\n\
             broker: Apache Kafka {} (KRaft, 1 node, heap {BROKER_HEAP_MB} MiB) at {}, \
             a fresh 1-partition topic per run of (a) and (b)\n\
             record of (a) and (b): key {} B, value {} B, {} headers {} B\n\
             librdkafka {}, both sides ((c) sets compression.type per codec): {}\n\
             load average at start: {}",
            s.events,
            s.rounds,
            s.window,
            self.broker.version(),
            self.broker.bootstrap_servers(),
            record.key.as_ref().map_or(0, Vec::len),
            record.value.len(),
            record.headers.len(),
            header_bytes,
            rdkafka::util::get_rdkafka_version().1,
            options.join(" "),
            load_average(),
        )
    }

    /// One run on a fresh topic with a fresh, warmed-up producer.
    async fn run_once(&self, mode: Mode, side: Side, events: usize) -> BenchResult<Run> {
        let prefix = unique_topic("bench");
        let topic = format!("{prefix}-{}", SessionLoginCompleted::TOPIC);
        self.broker.create_topic(&topic, 1).await?;
        let run = match side {
            Side::Raw => self.run_raw(mode, &topic, events).await?,
            Side::Peer => self.run_peer(mode, &topic, events).await?,
            Side::Sdk | Side::Lean => self.run_sdk(mode, side, &prefix, &topic, events).await?,
        };
        if self.settings.verify {
            self.verify(&topic, events + 1).await?;
        }
        // Let the SDK's delivery-report tasks end before the next run starts.
        self.settle().await;
        // Every run writes a new topic to the broker's disk: delete it, so a run leaves
        // nothing behind (best effort: a failed deletion loses nothing).
        let _ = self
            .broker
            .admin()
            .delete_topics(&[topic.as_str()], &AdminOptions::new())
            .await;
        Ok(run)
    }

    async fn run_raw(&self, mode: Mode, topic: &str, events: usize) -> BenchResult<Run> {
        let producer = raw_producer(&self.settings, self.broker.bootstrap_servers())?;
        // Warm-up: metadata and the idempotent producer id.
        producer
            .send(
                future_record(topic, &self.records[0]),
                Timeout::After(DELIVERY_TIMEOUT),
            )
            .await
            .map_err(|(e, _)| e)?;
        match mode {
            Mode::EnqueueFlush => {
                let start = Instant::now();
                let mut deliveries = Vec::with_capacity(events);
                for record in &self.records[..events] {
                    let delivery = producer
                        .send_result(future_record(topic, record))
                        .map_err(|(e, _)| e)?;
                    deliveries.push(delivery);
                }
                let queued = start.elapsed();
                wait_until_delivered(|| producer.in_flight_count()).await?;
                flush(&producer).await?;
                let total = start.elapsed();
                check_failures(count_failures(deliveries).await, "raw send_result")?;
                Ok(Run { total, queued })
            }
            Mode::SendWindow => {
                let topic: Arc<str> = Arc::from(topic);
                let start = Instant::now();
                let failed = windowed(events, self.settings.window, |i| {
                    let (producer, records, topic) = (
                        producer.clone(),
                        Arc::clone(&self.records),
                        Arc::clone(&topic),
                    );
                    async move {
                        producer
                            .send(
                                future_record(&topic, &records[i]),
                                Timeout::After(DELIVERY_TIMEOUT),
                            )
                            .await
                            .is_ok()
                    }
                })
                .await;
                let total = start.elapsed();
                check_failures(failed, "raw send")?;
                Ok(Run {
                    total,
                    queued: total,
                })
            }
        }
    }

    /// The peer: a plain rdkafka producer, every event encoded as a hand-written
    /// pipeline does it (schemas registered first, as a deployment step would).
    async fn run_peer(&self, mode: Mode, topic: &str, events: usize) -> BenchResult<Run> {
        let producer = raw_producer(&self.settings, self.broker.bootstrap_servers())?;
        let peer = Arc::new(Peer::new(&self.registry.url(), topic, SERVICE));
        peer.register_schemas().await.map_err(|e| e.to_string())?;
        // Warm-up: metadata, the idempotent producer id, the encoder's schema lookups.
        let warm = peer
            .produce(&producer, &self.event)
            .await
            .map_err(|e| e.to_string())?;
        if !matches!(warm.await, Ok(Ok(_))) {
            return Err("the peer's warm-up event was not delivered".into());
        }
        match mode {
            Mode::EnqueueFlush => {
                let start = Instant::now();
                let mut deliveries = Vec::with_capacity(events);
                for _ in 0..events {
                    let delivery = peer
                        .produce(&producer, &self.event)
                        .await
                        .map_err(|e| e.to_string())?;
                    deliveries.push(delivery);
                }
                let queued = start.elapsed();
                wait_until_delivered(|| producer.in_flight_count()).await?;
                flush(&producer).await?;
                let total = start.elapsed();
                check_failures(count_failures(deliveries).await, "peer send_result")?;
                Ok(Run { total, queued })
            }
            Mode::SendWindow => {
                let start = Instant::now();
                let failed = windowed(events, self.settings.window, |_| {
                    let (producer, peer, event) =
                        (producer.clone(), Arc::clone(&peer), Arc::clone(&self.event));
                    async move {
                        match peer.produce(&producer, &event).await {
                            Ok(delivery) => matches!(delivery.await, Ok(Ok(_))),
                            Err(_) => false,
                        }
                    }
                })
                .await;
                let total = start.elapsed();
                check_failures(failed, "peer send")?;
                Ok(Run {
                    total,
                    queued: total,
                })
            }
        }
    }

    async fn run_sdk(
        &self,
        mode: Mode,
        side: Side,
        prefix: &str,
        topic: &str,
        events: usize,
    ) -> BenchResult<Run> {
        let config = sdk_config(
            &self.settings,
            self.broker.bootstrap_servers(),
            &self.registry.url(),
            prefix,
        );
        let producer = Producer::new(config)?;
        // Warm-up: registration (FULL_TRANSITIVE, schemas), metadata, producer id.
        let delivery = producer.send(&*self.event).await?;
        if delivery.topic != topic {
            return Err(format!("the SDK produced to {}, expected {topic}", delivery.topic).into());
        }
        match (mode, side) {
            (Mode::EnqueueFlush, Side::Lean) => {
                // The SDK's owned records (what the outbox stores) on a plain rdkafka
                // producer, awaited like raw's: raw plus the cost of encoding.
                let plain = raw_producer(&self.settings, self.broker.bootstrap_servers())?;
                let encoder = producer.encoder();
                let warm = encoder.encode(&*self.event, None, None).await?;
                plain
                    .send(
                        future_record(&warm.topic, &warm),
                        Timeout::After(DELIVERY_TIMEOUT),
                    )
                    .await
                    .map_err(|(e, _)| e)?;
                let start = Instant::now();
                let mut deliveries = Vec::with_capacity(events);
                for _ in 0..events {
                    let record = encoder.encode(&*self.event, None, None).await?;
                    let delivery = plain
                        .send_result(future_record(&record.topic, &record))
                        .map_err(|(e, _)| e)?;
                    deliveries.push(delivery);
                }
                let queued = start.elapsed();
                wait_until_delivered(|| plain.in_flight_count()).await?;
                flush(&plain).await?;
                let total = start.elapsed();
                check_failures(count_failures(deliveries).await, "lean send_result")?;
                Ok(Run { total, queued })
            }
            (Mode::EnqueueFlush, _) => {
                let start = Instant::now();
                for _ in 0..events {
                    producer.enqueue(&*self.event).await?;
                }
                let queued = start.elapsed();
                wait_until_delivered(|| producer.in_flight()).await?;
                producer.flush(DELIVERY_TIMEOUT).await?;
                let total = start.elapsed();
                Ok(Run { total, queued })
            }
            (Mode::SendWindow, _) => {
                let start = Instant::now();
                let failed = windowed(events, self.settings.window, |_| {
                    let (producer, event) = (producer.clone(), Arc::clone(&self.event));
                    async move { producer.send(&*event).await.is_ok() }
                })
                .await;
                let total = start.elapsed();
                check_failures(failed, "SDK send")?;
                Ok(Run {
                    total,
                    queued: total,
                })
            }
        }
    }

    /// Waits (up to 10 s) until no more tokio tasks are alive than when the benchmark
    /// started (the embedded registry's), so work left from one run (the SDK's
    /// per-event report tasks) does not land in the next.
    async fn settle(&self) {
        let metrics = tokio::runtime::Handle::current().metrics();
        let deadline = Instant::now() + Duration::from_secs(10);
        while metrics.num_alive_tasks() > self.idle_tasks && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Single-thread loops over the SDK's per-event work, schema ids cached: fresh
    /// metadata (`EventMetadata::for_event`), the Avro datum, the whole encoder.
    async fn piece_times(&self) -> BenchResult<PieceTimes> {
        let n = self.settings.events;
        let event = &*self.event;
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(
                EventMetadata::for_event::<SessionLoginCompleted>().with_source(SERVICE),
            );
        }
        let metadata = start.elapsed();
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(event.to_avro_datum()?);
        }
        let datum = start.elapsed();
        let encoder = self.encoder_producer.encoder();
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(encoder.encode(event, None, None).await?);
        }
        let encode = start.elapsed();
        Ok(PieceTimes {
            metadata,
            datum,
            encode,
        })
    }

    /// Reads `topic` back and checks that `expected` records are on it.
    async fn verify(&self, topic: &str, expected: usize) -> BenchResult<()> {
        let (servers, name) = (self.broker.bootstrap_servers().to_owned(), topic.to_owned());
        let found = tokio::task::spawn_blocking(move || {
            read_topic(&servers, &name, expected, DELIVERY_TIMEOUT).map(|r| r.len())
        })
        .await??;
        if found != expected {
            return Err(format!("{topic}: {found} records read back, {expected} produced").into());
        }
        Ok(())
    }

    fn report(&self, runs: &[(Mode, Side, Run)], pieces: &[PieceTimes]) -> String {
        let s = self.settings;
        let n = s.events;
        let us_per_event = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        let median_of = |mode: Mode, side: Side, value: &dyn Fn(&Run) -> f64| {
            median(
                &runs
                    .iter()
                    .filter(|(m, sd, _)| *m == mode && *sd == side)
                    .map(|(_, _, r)| value(r))
                    .collect::<Vec<_>>(),
            )
        };

        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n{:<26} {:<6} {:>34} {:>10}",
            "mode", "side", "runs (events/s)", "median"
        );
        let mut ratios = Vec::new();
        for &mode in s.modes {
            let label = match mode {
                Mode::EnqueueFlush => "(a) enqueue + flush".to_owned(),
                Mode::SendWindow => format!("(b) send, {} in flight", s.window),
            };
            for (i, &side) in mode.sides().iter().enumerate() {
                let rates: Vec<String> = runs
                    .iter()
                    .filter(|(m, sd, _)| *m == mode && *sd == side)
                    .map(|(_, _, r)| format!("{:.0}", throughput(n, r.total)))
                    .collect();
                let _ = writeln!(
                    out,
                    "{:<26} {:<6} {:>34} {:>10.0}",
                    if i == 0 { label.as_str() } else { "" },
                    side.name(),
                    rates.join(" "),
                    median_of(mode, side, &|r| throughput(n, r.total)),
                );
            }
            let raw = median_of(mode, Side::Raw, &|r| throughput(n, r.total));
            let sdk = median_of(mode, Side::Sdk, &|r| throughput(n, r.total));
            let peer = median_of(mode, Side::Peer, &|r| throughput(n, r.total));
            let ratio = sdk / raw;
            let _ = writeln!(out, "{:<26} ratio SDK/raw = {ratio:.3}", "");
            let _ = writeln!(
                out,
                "{:<26} peer/raw = {:.3}, SDK/peer = {:.3} (peer: rdkafka + schema_registry_converter by hand)",
                "",
                peer / raw,
                sdk / peer
            );
            if mode == Mode::EnqueueFlush {
                let lean = median_of(mode, Side::Lean, &|r| throughput(n, r.total)) / raw;
                let _ = writeln!(
                    out,
                    "{:<26} (lean/raw = {lean:.3}: raw plus encoding with the SDK)",
                    ""
                );
            }
            ratios.push((label, ratio));
        }

        let piece = |f: fn(&PieceTimes) -> Duration| {
            median(
                &pieces
                    .iter()
                    .map(|p| us_per_event(f(p)))
                    .collect::<Vec<_>>(),
            )
        };
        let queue = |side: Side| median_of(Mode::EnqueueFlush, side, &|r| us_per_event(r.queued));
        let (raw_q, sdk_q, lean_q) = (queue(Side::Raw), queue(Side::Sdk), queue(Side::Lean));
        let _ = writeln!(out, "\nbreakdown, microseconds per event (medians):");
        let _ = writeln!(out, "  single-thread loops, no broker traffic:");
        let _ = writeln!(
            out,
            "    EventMetadata::for_event        {:>7.2}",
            piece(|p| p.metadata)
        );
        let _ = writeln!(
            out,
            "    Event::to_avro_datum            {:>7.2}",
            piece(|p| p.datum)
        );
        let _ = writeln!(
            out,
            "    EventEncoder::encode (all)      {:>7.2}",
            piece(|p| p.encode)
        );
        if s.modes.contains(&Mode::EnqueueFlush) {
            let _ = writeln!(
                out,
                "  (a) queue phase, broker and librdkafka busy alongside:"
            );
            let _ = writeln!(out, "    raw send_result                 {raw_q:>7.2}");
            let _ = writeln!(out, "    lean: encode + send_result      {lean_q:>7.2}");
            let _ = writeln!(out, "    SDK enqueue                     {sdk_q:>7.2}");
            let _ = writeln!(
                out,
                "    peer: encode + send_result      {:>7.2}",
                queue(Side::Peer)
            );
        }
        let _ = writeln!(out, "\nload average at end: {}", load_average());
        let _ = writeln!(out, "summary (target: SDK/raw >= 0.90)");
        for (label, ratio) in &ratios {
            let verdict = if *ratio >= 0.90 {
                "meets the target"
            } else {
                "BELOW the target"
            };
            let _ = writeln!(out, "  {label:<26} SDK/raw {ratio:.3}  {verdict}");
        }
        out
    }
}

/// Runs `task(i)` for `i in 0..count`, at most `window` at a time, one tokio task
/// each; returns how many reported failure (`false`) or panicked.
async fn windowed<F, Fut>(count: usize, window: usize, mut task: F) -> usize
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    let mut failed = 0;
    for i in 0..count {
        if tasks.len() >= window {
            if let Some(result) = tasks.join_next().await {
                failed += usize::from(!matches!(result, Ok(true)));
            }
        }
        tasks.spawn(task(i));
    }
    while let Some(result) = tasks.join_next().await {
        failed += usize::from(!matches!(result, Ok(true)));
    }
    failed
}

/// How many of `deliveries` failed (awaited after the clock stopped; all are done).
async fn count_failures(deliveries: Vec<DeliveryFuture>) -> usize {
    let mut failed = 0;
    for delivery in deliveries {
        failed += usize::from(!matches!(delivery.await, Ok(Ok(_))));
    }
    failed
}

fn check_failures(failed: usize, what: &str) -> BenchResult<()> {
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{what}: {failed} events were not delivered").into())
    }
}

/// Waits until librdkafka has nothing queued or in flight and every delivery report
/// was served (checked every millisecond), so the `flush` after it returns at once.
async fn wait_until_delivered(in_flight: impl Fn() -> i32) -> BenchResult<()> {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    while in_flight() > 0 {
        if Instant::now() >= deadline {
            return Err(format!(
                "{} events still in flight after {DELIVERY_TIMEOUT:?}",
                in_flight()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

fn sdk_config(
    settings: &Settings,
    bootstrap: &str,
    registry_url: &str,
    prefix: &str,
) -> ProducerConfig {
    let kafka = settings
        .librdkafka_options()
        .into_iter()
        .fold(KafkaConfig::new(bootstrap), |kafka, (name, value)| {
            kafka.with_option(name, value)
        });
    ProducerConfig::new(kafka, RegistryConfig::new(registry_url))
        .with_service_name(SERVICE)
        .with_topic_prefix(prefix)
        .with_delivery_timeout(DELIVERY_TIMEOUT)
}

fn raw_producer(settings: &Settings, bootstrap: &str) -> BenchResult<FutureProducer> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (name, value) in settings.librdkafka_options() {
        config.set(name, value);
    }
    Ok(config.create()?)
}

/// The rdkafka record for a pre-encoded event, as an application using rdkafka
/// directly builds it: borrowed key and value, headers copied into librdkafka's list.
fn future_record<'a>(topic: &'a str, record: &'a EncodedRecord) -> FutureRecord<'a, [u8], [u8]> {
    let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
    for (name, value) in &record.headers {
        headers = headers.insert(Header {
            key: name,
            value: Some(value.as_slice()),
        });
    }
    let future = FutureRecord::to(topic)
        .payload(record.value.as_slice())
        .headers(headers);
    match &record.key {
        Some(key) => future.key(key.as_slice()),
        None => future,
    }
}

/// `flush` off the async workers, as the SDK's `Producer::flush` does it.
async fn flush(producer: &FutureProducer) -> BenchResult<()> {
    let producer = producer.clone();
    tokio::task::spawn_blocking(move || producer.flush(Timeout::After(DELIVERY_TIMEOUT))).await??;
    Ok(())
}

/// The machine's load (Linux), printed because other work on it skews the numbers.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

fn throughput(events: usize, elapsed: Duration) -> f64 {
    events as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}
