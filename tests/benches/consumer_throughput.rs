//! Consumer throughput: the SDK's [`EventConsumer`] against a raw rdkafka
//! `StreamConsumer`, same broker, same topic, same run (issue 6: "consume + decode +
//! dispatch to a no-op receiver with commit-after-success … Target ratio ≥ 0.80").
//!
//! # What it measures
//!
//! One Apache Kafka node (KRaft, broker and controller in one JVM, started here with a
//! heap of 1024 MiB, on the same cores as the benchmark) and the embedded schema
//! registry serve every run. For each partition count in `BENCH_PARTITIONS` a fresh
//! topic is filled once with `BENCH_EVENTS` `SessionLoginCompleted` events (the Open edX
//! login event, one username per event so keys spread over partitions) through the
//! SDK's `Producer::enqueue` + `flush`, and read back to check the count. Then, on that
//! same topic, runs alternate (the order reverses every round, so drift on the machine
//! favours no side). Every run reads the whole topic in a fresh consumer group:
//!
//! - **raw** (the baseline): an rdkafka `StreamConsumer` with the SDK's librdkafka
//!   defaults set by hand (`enable.auto.commit=false`, `enable.auto.offset.store=false`,
//!   `auto.offset.reset=earliest`, `partition.assignment.strategy=cooperative-sticky`).
//!   Its loop is what a careful hand-written consumer does: `select!` over a commit
//!   timer and `recv()`; per record it touches the payload (sums key and value
//!   lengths), remembers the partition's next offset and calls the receiver stand-in.
//!   It commits asynchronously every `BENCH_COMMIT_MS` and synchronously at the end —
//!   the SDK's commit pattern.
//! - **sdk**: an `EventConsumer` with the same options, one no-op receiver of
//!   `SessionLoginCompleted` and default settings (strict partition order,
//!   `commit_interval` = `BENCH_COMMIT_MS`): headers parsed, value decoded from Avro
//!   (writer schema by id from the registry, cached), event dispatched, offset marked
//!   done and committed after success.
//! - **raw+decode** (a reference, not the baseline): the raw loop that also parses the
//!   headers (`parse_headers`) and decodes the value (`from_avro_datum`) with the SDK's
//!   own functions. It splits the SDK's cost in two: decoding (raw+decode − raw) and the
//!   loop, dispatch and offset tracking (sdk − raw+decode).
//! - **peer** (issue 18): the raw loop decoding as a hand-written rdkafka +
//!   `schema_registry_converter` consumer does (`event_bus_tests::peer`: the
//!   CloudEvents headers read by hand, `AvroDecoder`, `apache_avro::from_value`), then a
//!   no-op handler: what a user would run instead of the SDK. SDK/peer is the ratio
//!   that says what the SDK costs over that choice.
//! - **raw+headers** (a reference): the raw loop that also asks librdkafka for each
//!   record's headers and counts them. librdkafka parses a record's headers into a
//!   list (an allocation per header) when they are first asked for, and frees it with
//!   the record; raw never pays that, every consumer that reads headers does (the SDK
//!   and the peer too). raw+headers − raw is that cost alone.
//!
//! The receiver stand-in is the same on every side: it stamps the time and counts the
//! record. A run's throughput is `(records − 1) / (last stamp − first stamp)`, so the
//! group join (about 0.2 s: the broker runs with `group.initial.rebalance.delay.ms=0`)
//! and the first record's one-off costs (the registry lookup of its schema) are not
//! in it; the join time is shown apart. The final synchronous commit and leaving the
//! group come after the last record and are not timed (on any side). After every run
//! the group's committed offsets are read back and must add up to `BENCH_EVENTS`:
//! commit-after-success really happened. The table also shows the commits made and
//! the heap allocations per record (a counting global allocator: the whole process,
//! Rust allocations only; librdkafka's own `malloc`s are not counted).
//!
//! Mind `BENCH_EVENTS`: librdkafka fetches ahead, so on a small topic the raw side may
//! drain records already fetched rather than measure the broker. Against the one-node
//! Kafka here the topic size hardly changed raw's rate (20 000 to 200 000 events, see
//! `docs/benchmarks.md`). The SDK is far slower than raw, so it is hardly affected
//! either.
//!
//! A breakdown follows: the SDK's per-record CPU outside librdkafka, stage by stage,
//! measured in one thread on the topic's records (no broker): the headers view,
//! `parse_headers`, the cached schema lookup, the Avro decode, the dispatch as the
//! retry wrapper does it, the offset tracker — time and allocations.
//!
//! It is a benchmark, not a test: nothing asserts a duration. It fails only if a run
//! does not see every record, a group's committed offsets are wrong, or the broker
//! cannot start.
//!
//! # Running it
//!
//! ```text
//! scripts/install-test-deps            # once: Apache Kafka's jars (and Java)
//! cargo bench -p event-bus-tests --bench consumer_throughput
//! BENCH_EVENTS=20000 BENCH_PARTITIONS=1 BENCH_SIDES=raw,sdk cargo bench -p event-bus-tests --bench consumer_throughput
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `BENCH_EVENTS` | events on each topic, read whole by every run | 100000 |
//! | `BENCH_ROUNDS` | measured runs per side and topic | 3 |
//! | `BENCH_PARTITIONS` | comma-separated partition counts, one topic each | `1,3` |
//! | `BENCH_SIDES` | comma-separated sides, in round order: `raw`, `sdk`, `raw+decode`, `peer`, `raw+headers` | all five |
//! | `BENCH_COMMIT_MS` | async commit interval of every side | 1000 |
//! | `BENCH_WARMUP` | `0`: no discarded warm-up run of each side on the first topic | 1 |
//! | `BENCH_BREAKDOWN` | `0`: skip the in-process breakdown | 1 |
//! | `EVENT_BUS_TEST_KAFKA_LIBS` | the folder of Kafka's jars (default: where `install-test-deps` puts them) | — |
//!
//! With the defaults it takes under a minute on two cores (plus the build).
//! `cargo test`/`cargo nextest` build this target but do not run it: without cargo
//! bench's `--bench` argument it prints a note and exits, and it lists no tests.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_bus_core::codec;
use event_bus_core::dispatch::DeliveryContext;
use event_bus_core::headers::parse_headers;
use event_bus_core::{Event, EventBus};
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::config::{KafkaConfig, ProducerConfig, RegistryConfig};
use event_bus_kafka::consumer::{ConsumerConfig, EventConsumer, OffsetTracker, Shutdown};
use event_bus_kafka::producer::Producer;
use event_bus_kafka::registry::RegistryClient;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::records::read_topic;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use event_bus_tests::bench_support::{
    broker_and_runtime, env_number, median, run_benchmark, BenchResult, BROKER_HEAP_MB,
};
use event_bus_tests::peer::Peer;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::Notify;

/// The system allocator, counting allocations: the table shows allocations per record
/// (whole process, Rust allocator; librdkafka's own `malloc`s are not counted).
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// The ratio SDK/raw the issue asks for.
const TARGET_RATIO: f64 = 0.80;
/// How long one run may take to see every record (group join included).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// How long filling a topic may wait for the broker's acknowledgements.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Records the in-process breakdown times, at least (the topic's records, repeated).
const MICRO_RECORDS: usize = 100_000;

/// What the benchmark is asked to do (from `BENCH_*` variables).
#[derive(Debug, Clone)]
struct Settings {
    events: usize,
    rounds: usize,
    partitions: Vec<i32>,
    commit_interval: Duration,
    warm_up: bool,
    /// The sides to run, in the order of a round (reversed every other round).
    sides: Vec<Side>,
    breakdown: bool,
}

impl Settings {
    fn from_env() -> BenchResult<Self> {
        let partitions = match std::env::var("BENCH_PARTITIONS") {
            Ok(list) if !list.trim().is_empty() => list
                .split(',')
                .map(|p| {
                    p.trim()
                        .parse::<i32>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("BENCH_PARTITIONS: `{p}` is not a partition count"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => vec![1, 3],
        };
        Ok(Self {
            events: env_number("BENCH_EVENTS", 100_000)?.max(2),
            rounds: env_number("BENCH_ROUNDS", 3)?.max(1),
            partitions,
            commit_interval: Duration::from_millis(env_number("BENCH_COMMIT_MS", 1_000)?.max(1)),
            warm_up: env_number("BENCH_WARMUP", 1)? != 0,
            sides: match std::env::var("BENCH_SIDES") {
                Ok(list) if !list.trim().is_empty() => list
                    .split(',')
                    .map(|name| {
                        Side::ALL
                            .into_iter()
                            .find(|side| side.name() == name.trim())
                            .ok_or_else(|| {
                                format!("BENCH_SIDES: `{name}` is not one of raw, sdk, raw+decode, peer, raw+headers")
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                _ => Side::ALL.to_vec(),
            },
            breakdown: env_number("BENCH_BREAKDOWN", 1)? != 0,
        })
    }

    /// The librdkafka options every side uses, on top of `bootstrap.servers` and
    /// `group.id`: the SDK's own defaults, spelled out for the raw side, and the
    /// broker's minimum session timeout (as the testkit's `consumer_config`), so a
    /// member of a failed run leaves its group within seconds.
    fn consumer_options() -> [(&'static str, &'static str); 5] {
        [
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("session.timeout.ms", "6000"),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The baseline: rdkafka, payload touched, offsets committed.
    Raw,
    /// The SDK's `EventConsumer`.
    Sdk,
    /// A reference, not the baseline: the raw loop that also parses the headers and
    /// decodes the value with the SDK's own functions (no dispatch, no offset tracker).
    RawDecode,
    /// The peer baseline: the raw loop decoding as a hand-written rdkafka +
    /// `schema_registry_converter` consumer does.
    Peer,
    /// A reference: the raw loop that also asks librdkafka for each record's headers,
    /// which it parses into a list on that first request (an allocation per header)
    /// and frees with the record. The floor of any consumer that reads headers.
    RawHeaders,
}

impl Side {
    const ALL: [Side; 5] = [
        Side::Raw,
        Side::Sdk,
        Side::RawDecode,
        Side::Peer,
        Side::RawHeaders,
    ];

    fn name(self) -> &'static str {
        match self {
            Side::Raw => "raw",
            Side::Sdk => "sdk",
            Side::RawDecode => "raw+decode",
            Side::Peer => "peer",
            Side::RawHeaders => "raw+headers",
        }
    }
}

/// The receiver stand-in of every side: stamps each record and counts it.
#[derive(Debug)]
struct Clock {
    base: Instant,
    /// Nanoseconds after `base` (+1, so 0 means "not yet") of the first and last record.
    first: AtomicU64,
    last: AtomicU64,
    /// The process's allocation count at the first and at the last record.
    allocs_first: AtomicU64,
    allocs_last: AtomicU64,
    seen: AtomicU64,
    expected: u64,
    all_seen: Notify,
}

impl Clock {
    fn new(expected: usize) -> Self {
        Self {
            base: Instant::now(),
            first: AtomicU64::new(0),
            last: AtomicU64::new(0),
            allocs_first: AtomicU64::new(0),
            allocs_last: AtomicU64::new(0),
            seen: AtomicU64::new(0),
            expected: expected as u64,
            all_seen: Notify::new(),
        }
    }

    /// One record reached the receiver.
    fn tick(&self) {
        let now = self.base.elapsed().as_nanos() as u64 + 1;
        if self.first.load(Ordering::Relaxed) == 0 {
            let first = self
                .first
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            if first.is_ok() {
                self.allocs_first.store(allocations(), Ordering::Relaxed);
            }
        }
        self.last.fetch_max(now, Ordering::Relaxed);
        if self.seen.fetch_add(1, Ordering::Relaxed) + 1 == self.expected {
            self.allocs_last.store(allocations(), Ordering::Relaxed);
            self.all_seen.notify_one();
        }
    }

    fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// From the start (subscription) to the first record: the group join, mostly.
    fn join(&self) -> Duration {
        Duration::from_nanos(self.first.load(Ordering::Relaxed).saturating_sub(1))
    }

    /// From the first record to the last.
    fn window(&self) -> Duration {
        Duration::from_nanos(
            self.last
                .load(Ordering::Relaxed)
                .saturating_sub(self.first.load(Ordering::Relaxed)),
        )
    }

    /// Allocations per record between the first record and the last.
    fn allocs_per_record(&self) -> f64 {
        let allocs = self
            .allocs_last
            .load(Ordering::Relaxed)
            .saturating_sub(self.allocs_first.load(Ordering::Relaxed));
        allocs as f64 / (self.seen().saturating_sub(1)).max(1) as f64
    }

    /// Records per second after the first one.
    fn rate(&self) -> f64 {
        (self.seen().saturating_sub(1)) as f64 / self.window().as_secs_f64().max(f64::EPSILON)
    }
}

/// One timed run.
#[derive(Debug, Clone, Copy)]
struct Run {
    side: Side,
    partitions: i32,
    rate: f64,
    window: Duration,
    join: Duration,
    /// Commits made while reading and at the end.
    commits: u64,
    allocs_per_record: f64,
}

/// A filled topic.
#[derive(Debug)]
struct Topic {
    prefix: String,
    name: String,
    partitions: i32,
    fill: Duration,
}

struct Bench {
    settings: Settings,
    broker: KafkaCluster,
    registry: EmbeddedRegistry,
}

fn main() -> ExitCode {
    run_benchmark("consumer_throughput", bench_main)
}

fn bench_main() -> BenchResult<()> {
    let settings = Settings::from_env()?;
    let (broker, runtime) = broker_and_runtime()?;
    runtime.block_on(async move {
        let registry = EmbeddedRegistry::start().await?;
        let bench = Bench {
            settings,
            broker,
            registry,
        };
        bench.run().await
    })
}

impl Bench {
    async fn run(&self) -> BenchResult<()> {
        let s = &self.settings;
        println!("{}", self.header());
        let mut runs = Vec::new();
        let mut sample: Vec<OwnedMessage> = Vec::new();
        for (index, &partitions) in s.partitions.iter().enumerate() {
            let topic = self.fill(partitions).await?;
            let records = self.read_back(&topic).await?;
            eprintln!(
                "topic {} ({} partition(s)): {} events, filled in {:.1} s",
                topic.name,
                partitions,
                records.len(),
                topic.fill.as_secs_f64()
            );
            if index == 0 {
                println!("{}", describe_record(&records[0]));
                if s.warm_up {
                    for &side in &s.sides {
                        let run = self.run_once(side, &topic).await?;
                        eprintln!(
                            "  warm-up {:<10} {:>9.0} events/s (discarded)",
                            side.name(),
                            run.rate
                        );
                    }
                }
            }
            if sample.is_empty() {
                sample = records;
            }
            for round in 0..s.rounds {
                let mut order = s.sides.clone();
                if round % 2 == 1 {
                    order.reverse();
                }
                for side in order {
                    let run = self.run_once(side, &topic).await?;
                    eprintln!(
                        "  {}p round {} {:<10} {:>9.0} events/s  ({:.3} s for {} records, join {:.2} s, {} commits, {:.1} allocs/record)",
                        partitions,
                        round + 1,
                        side.name(),
                        run.rate,
                        run.window.as_secs_f64(),
                        s.events,
                        run.join.as_secs_f64(),
                        run.commits,
                        run.allocs_per_record
                    );
                    runs.push(run);
                }
            }
        }
        let breakdown = if s.breakdown {
            self.breakdown(&sample).await?
        } else {
            Vec::new()
        };
        println!("{}", self.report(&runs, &breakdown));
        Ok(())
    }

    fn load_average() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "?".to_owned())
    }

    fn header(&self) -> String {
        let s = &self.settings;
        let options: Vec<String> = Settings::consumer_options()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "consumer throughput: SDK EventConsumer vs raw rdkafka StreamConsumer\n\
             {} events per topic, partitions {:?}, {} rounds{}, async commit every {} ms + final sync commit\n\
             broker: Apache Kafka {} (KRaft, 1 node, heap {BROKER_HEAP_MB} MiB) at {}; \
             registry: embedded; load average {} on {} CPUs\n\
             librdkafka {} (every side): {}",
            s.events,
            s.partitions,
            s.rounds,
            if s.warm_up { " (+1 warm-up)" } else { "" },
            s.commit_interval.as_millis(),
            self.broker.version(),
            self.broker.bootstrap_servers(),
            Self::load_average(),
            std::thread::available_parallelism().map_or(0, usize::from),
            rdkafka::util::get_rdkafka_version().1,
            options.join(" "),
        )
    }

    fn kafka(&self) -> KafkaConfig {
        KafkaConfig::new(self.broker.bootstrap_servers())
    }

    /// A fresh topic with `events` login events, produced through the SDK.
    async fn fill(&self, partitions: i32) -> BenchResult<Topic> {
        let events = self.settings.events;
        let prefix = unique_topic("cbench");
        let name = format!("{prefix}-{}", SessionLoginCompleted::TOPIC);
        self.broker.create_topic(&name, partitions).await?;
        let kafka = self
            .kafka()
            .with_option("linger.ms", "5")
            .with_option("batch.num.messages", "10000")
            .with_option(
                "queue.buffering.max.messages",
                (events + 1).max(100_000).to_string(),
            );
        let config = ProducerConfig::new(kafka, RegistryConfig::new(self.registry.url()))
            .with_service_name("consumer-bench")
            .with_topic_prefix(prefix.clone())
            .with_delivery_timeout(DELIVERY_TIMEOUT);
        let producer = Producer::new(config)?;
        let started = Instant::now();
        for n in 0..events {
            producer.enqueue(&login(n)).await?;
        }
        producer.flush(DELIVERY_TIMEOUT).await?;
        if producer.in_flight() != 0 {
            return Err(format!(
                "{} events still in flight after flush",
                producer.in_flight()
            )
            .into());
        }
        Ok(Topic {
            prefix,
            name,
            partitions,
            fill: started.elapsed(),
        })
    }

    /// Reads the whole topic without a group and checks the count.
    async fn read_back(&self, topic: &Topic) -> BenchResult<Vec<OwnedMessage>> {
        let (servers, name, expected) = (
            self.broker.bootstrap_servers().to_owned(),
            topic.name.clone(),
            self.settings.events,
        );
        let records = tokio::task::spawn_blocking(move || {
            read_topic(&servers, &name, expected, DELIVERY_TIMEOUT)
        })
        .await??;
        if records.len() != expected {
            return Err(format!(
                "{}: {} records read back, {expected} produced",
                topic.name,
                records.len()
            )
            .into());
        }
        Ok(records)
    }

    async fn run_once(&self, side: Side, topic: &Topic) -> BenchResult<Run> {
        let (group, clock, commits) = match side {
            Side::Raw => self.run_raw(topic, Decoding::None).await?,
            Side::RawHeaders => self.run_raw(topic, Decoding::Headers).await?,
            Side::RawDecode => self.run_raw(topic, Decoding::Sdk).await?,
            Side::Peer => {
                let peer = Peer::new(&self.registry.url(), &topic.name, "cbench-peer");
                self.run_raw(topic, Decoding::Peer(Arc::new(peer))).await?
            }
            Side::Sdk => self.run_sdk(topic).await?,
        };
        let committed = self.committed(&group, topic).await?;
        let expected = self.settings.events as i64;
        if committed != expected {
            return Err(format!(
                "{} run on {}: group {group} committed {committed} records, {expected} were handled",
                side.name(),
                topic.name
            )
            .into());
        }
        Ok(Run {
            side,
            partitions: topic.partitions,
            rate: clock.rate(),
            window: clock.window(),
            join: clock.join(),
            commits,
            allocs_per_record: clock.allocs_per_record(),
        })
    }

    /// The raw baseline (decoding: the raw+decode reference or the peer); returns its
    /// group, clock and commit count.
    async fn run_raw(
        &self,
        topic: &Topic,
        decoding: Decoding,
    ) -> BenchResult<(String, Arc<Clock>, u64)> {
        let group = unique_group("cbench-raw");
        let mut config = ClientConfig::new();
        for (name, value) in Settings::consumer_options() {
            config.set(name, value);
        }
        config
            .set("bootstrap.servers", self.broker.bootstrap_servers())
            .set("group.id", &group);
        let consumer: StreamConsumer = config.create()?;
        let clock = Arc::new(Clock::new(self.settings.events));
        consumer.subscribe(&[topic.name.as_str()])?;
        let side = decoding.side();
        let task = tokio::spawn(raw_loop(
            consumer,
            Arc::clone(&clock),
            topic.name.clone(),
            self.settings.commit_interval,
            decoding,
        ));
        let abort = task.abort_handle();
        let commits = tokio::time::timeout(RUN_TIMEOUT, task)
            .await
            .map_err(|_| {
                abort.abort();
                self.timed_out(side, &clock, topic)
            })???;
        Ok((group, clock, commits))
    }

    /// The SDK consumer with one no-op receiver; returns its group, clock and commits.
    async fn run_sdk(&self, topic: &Topic) -> BenchResult<(String, Arc<Clock>, u64)> {
        let group = unique_group("cbench-sdk");
        let clock = Arc::new(Clock::new(self.settings.events));
        let mut bus = EventBus::new();
        let receiver_clock = Arc::clone(&clock);
        bus.connect_fn("noop", move |_: &SessionLoginCompleted, _| {
            receiver_clock.tick();
            Ok(())
        })?;
        let kafka = Settings::consumer_options()
            .into_iter()
            .fold(self.kafka(), |kafka, (name, value)| {
                kafka.with_option(name, value)
            });
        let mut config = ConsumerConfig::new(
            kafka,
            RegistryConfig::new(self.registry.url()),
            group.clone(),
            [SessionLoginCompleted::TOPIC],
        )
        .with_topic_prefix(topic.prefix.clone());
        config.commit_interval = self.settings.commit_interval;
        let consumer = EventConsumer::new(config, Arc::new(bus))?;
        let stats = consumer.stats();
        let (trigger, shutdown) = Shutdown::new();
        let task = tokio::spawn(consumer.run(shutdown));
        let all_seen = tokio::time::timeout(RUN_TIMEOUT, clock.all_seen.notified()).await;
        // The receiver ran for the last record; let the loop mark it done, then stop.
        let handled_deadline = Instant::now() + Duration::from_secs(10);
        while stats.snapshot().records_handled < self.settings.events as u64
            && Instant::now() < handled_deadline
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        trigger.trigger();
        let snapshot = task.await??;
        if all_seen.is_err() {
            return Err(self.timed_out(Side::Sdk, &clock, topic));
        }
        if snapshot.records_handled != self.settings.events as u64 {
            return Err(format!(
                "sdk run: {} records handled, {} expected ({} dead-lettered, {} skipped)",
                snapshot.records_handled,
                self.settings.events,
                snapshot.records_dead_lettered,
                snapshot.records_skipped
            )
            .into());
        }
        Ok((group, clock, snapshot.commits))
    }

    fn timed_out(&self, side: Side, clock: &Clock, topic: &Topic) -> Box<dyn Error + Send + Sync> {
        format!(
            "{} run on {}: {} of {} records in {} s",
            side.name(),
            topic.name,
            clock.seen(),
            self.settings.events,
            RUN_TIMEOUT.as_secs()
        )
        .into()
    }

    /// The sum of the committed positions of `group` over the topic's partitions.
    async fn committed(&self, group: &str, topic: &Topic) -> BenchResult<i64> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.broker.bootstrap_servers())
            .set("group.id", group);
        let mut partitions = TopicPartitionList::new();
        for partition in 0..topic.partitions {
            partitions.add_partition(&topic.name, partition);
        }
        let committed = tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = config.create()?;
            consumer.committed_offsets(partitions, Duration::from_secs(10))
        })
        .await??;
        Ok(committed
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(position) => position,
                _ => 0,
            })
            .sum())
    }
}

/// What the raw loop does with each record besides touching it.
enum Decoding {
    /// Nothing (raw).
    None,
    /// librdkafka's header list only, counted (raw+headers).
    Headers,
    /// The SDK's `parse_headers` and Avro decode (raw+decode).
    Sdk,
    /// The peer's decode and a no-op handler (peer).
    Peer(Arc<Peer>),
}

impl Decoding {
    fn side(&self) -> Side {
        match self {
            Decoding::None => Side::Raw,
            Decoding::Headers => Side::RawHeaders,
            Decoding::Sdk => Side::RawDecode,
            Decoding::Peer(_) => Side::Peer,
        }
    }
}

/// The raw consumer's loop: what a hand-written rdkafka consumer with the SDK's commit
/// pattern does. With `decoding`, it also decodes every record: with the SDK's functions
/// (the raw+decode reference) or as the peer does. Returns how many commits it made.
async fn raw_loop(
    consumer: StreamConsumer,
    clock: Arc<Clock>,
    topic: String,
    commit_interval: Duration,
    decoding: Decoding,
) -> BenchResult<u64> {
    // The subscription is one topic: the next offset to read, per partition.
    let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
    let mut dirty = false;
    let mut touched = 0usize;
    let mut commits = 0;
    let mut timer = tokio::time::interval(commit_interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while clock.seen() < clock.expected {
        // The timer first: a backlog of records must not starve the interval commits.
        tokio::select! {
            biased;
            _ = timer.tick() => {
                if dirty {
                    commit(&consumer, &topic, &positions, CommitMode::Async)?;
                    commits += 1;
                    dirty = false;
                }
            }
            message = consumer.recv() => {
                let message = message?;
                touched += message.payload().map_or(0, <[u8]>::len)
                    + message.key().map_or(0, <[u8]>::len);
                match &decoding {
                    Decoding::None => {}
                    Decoding::Headers => touched += message.headers().map_or(0, |h| h.count()),
                    Decoding::Sdk => decode_in_place(&message)?,
                    Decoding::Peer(peer) => {
                        let (metadata, event) = peer.decode(&message).await?;
                        black_box((metadata, event));
                    }
                }
                let next = message.offset() + 1;
                positions.insert(message.partition(), next);
                dirty = true;
                clock.tick();
            }
        }
    }
    commit(&consumer, &topic, &positions, CommitMode::Sync)?;
    commits += 1;
    black_box(touched);
    consumer.unsubscribe();
    Ok(commits)
}

/// What the raw+decode reference adds per record: the SDK's header parsing and Avro
/// decoding (writer schema = the local schema, as on this topic).
fn decode_in_place<M: Message>(message: &M) -> BenchResult<()> {
    let headers: Vec<(&str, Option<&[u8]>)> = message
        .headers()
        .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
        .unwrap_or_default();
    let metadata = parse_headers(headers.iter().copied())?.metadata;
    let (_, datum) = codec::unframe(message.payload().unwrap_or_default())?;
    let event = SessionLoginCompleted::from_avro_datum(datum, SessionLoginCompleted::schema())?;
    black_box((metadata, event));
    Ok(())
}

fn commit(
    consumer: &StreamConsumer,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
    mode: CommitMode,
) -> BenchResult<()> {
    let mut offsets = TopicPartitionList::new();
    for (partition, position) in positions {
        offsets.add_partition_offset(topic, *partition, Offset::Offset(*position))?;
    }
    consumer.commit(&offsets, mode)?;
    Ok(())
}

fn login(n: usize) -> SessionLoginCompleted {
    let mut user = UserData::example();
    user.id = n as i64;
    user.pii.username = format!("learner{n}");
    SessionLoginCompleted { user }
}

fn describe_record(record: &OwnedMessage) -> String {
    let headers = record.headers();
    let (count, bytes) = headers.map_or((0, 0), |h| {
        (
            h.count(),
            h.iter()
                .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
                .sum::<usize>(),
        )
    });
    format!(
        "record: key {} B, value {} B, {count} headers {bytes} B",
        record.key().map_or(0, <[u8]>::len),
        record.payload().map_or(0, <[u8]>::len),
    )
}

/// What one stage of the in-process breakdown costs per record.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    micros: f64,
    /// Heap allocations (through the Rust allocator).
    allocs: f64,
}

impl std::ops::Sub for Cost {
    type Output = Cost;
    fn sub(self, other: Cost) -> Cost {
        Cost {
            micros: self.micros - other.micros,
            allocs: self.allocs - other.allocs,
        }
    }
}

/// One stage of the in-process breakdown.
#[derive(Debug, Clone)]
struct Stage {
    name: &'static str,
    cost: Cost,
    /// Part of the SDK's per-record path (counted in the total), or a detail of one.
    counted: bool,
}

/// Elapsed time and allocations since it started.
struct Meter {
    started: Instant,
    allocs: u64,
}

impl Meter {
    fn start() -> Self {
        Self {
            allocs: allocations(),
            started: Instant::now(),
        }
    }

    fn per_call(&self, calls: usize) -> Cost {
        let elapsed = self.started.elapsed();
        let allocs = allocations() - self.allocs;
        Cost {
            micros: elapsed.as_secs_f64() * 1e6 / calls as f64,
            allocs: allocs as f64 / calls as f64,
        }
    }
}

/// How many times the records are gone through to make at least [`MICRO_RECORDS`] calls.
fn repetitions(records: &[OwnedMessage]) -> usize {
    MICRO_RECORDS.div_ceil(records.len()).max(1)
}

/// Runs `f` over the records, repeated to at least [`MICRO_RECORDS`] calls, three
/// times; returns the median time and allocations per call.
fn per_record(records: &[OwnedMessage], mut f: impl FnMut(&OwnedMessage)) -> Cost {
    let reps = repetitions(records);
    let mut samples = Vec::with_capacity(3);
    for _ in 0..3 {
        let meter = Meter::start();
        for _ in 0..reps {
            for record in records {
                f(record);
            }
        }
        samples.push(meter.per_call(reps * records.len()));
    }
    samples.sort_by(|a, b| a.micros.total_cmp(&b.micros));
    samples[1]
}

/// The Avro datum of a record's value (after the Confluent framing).
fn datum(record: &OwnedMessage) -> &[u8] {
    codec::unframe(record.payload().unwrap_or_default())
        .map(|(_, d)| d)
        .unwrap_or_default()
}

/// The record's headers as the SDK's `RecordView::of` collects them.
fn header_view(record: &OwnedMessage) -> Vec<(&str, Option<&[u8]>)> {
    // As RecordView::of: sized up front (the header iterator gives no size hint).
    record
        .headers()
        .map(|h| {
            let mut view = Vec::with_capacity(h.count());
            view.extend(h.iter().map(|h| (h.key, h.value)));
            view
        })
        .unwrap_or_default()
}

impl Bench {
    /// The SDK's per-record work outside librdkafka, stage by stage, on real records.
    async fn breakdown(&self, records: &[OwnedMessage]) -> BenchResult<Vec<Stage>> {
        let mut bus = EventBus::new();
        bus.connect_fn("noop", |_: &SessionLoginCompleted, _| Ok(()))?;
        let event_type = SessionLoginCompleted::EVENT_TYPE;
        let registry = RegistryClient::new(RegistryConfig::new(self.registry.url()))?;
        let value = records[0].payload().ok_or("a record without a value")?;
        let (schema_id, _) = codec::unframe(value)?;
        registry.schema_by_id(schema_id).await?;
        let reps = repetitions(records);
        let calls = reps * records.len();
        let mut stages = Vec::new();
        let mut stage = |name, cost, counted| {
            stages.push(Stage {
                name,
                cost,
                counted,
            })
        };

        let view = per_record(records, |r| {
            black_box(header_view(r));
        });
        stage(
            "headers view (RecordView::of: a Vec of header refs)",
            view,
            true,
        );
        let parsed = per_record(records, |r| {
            let view = header_view(r);
            black_box(parse_headers(view.iter().copied()).ok());
        });
        stage(
            "parse_headers (ce_* headers -> EventMetadata)",
            parsed - view,
            true,
        );

        // The schema lookup, as RecordDecoder::decode does it once the schema id is
        // known: the bus's own name of the type, unframe, the "same as reader" cache
        // keyed by (id, &'static event type); the registry client is not asked.
        let same_as_reader: std::sync::RwLock<
            std::collections::HashMap<(u32, &'static str), bool>,
        > = Default::default();
        if let Ok(mut cache) = same_as_reader.write() {
            cache.insert((schema_id, event_type), true);
        }
        black_box(registry.schema_by_id(schema_id).await?);
        let meter = Meter::start();
        for _ in 0..reps {
            for record in records {
                let value = record.payload().unwrap_or_default();
                let Ok((id, datum)) = codec::unframe(value) else {
                    continue;
                };
                let Some(known) = bus.known_type(event_type) else {
                    continue;
                };
                let same = same_as_reader
                    .read()
                    .ok()
                    .and_then(|c| c.get(&(id, known)).copied());
                black_box((same, datum));
            }
        }
        stage(
            "schema lookup (unframe, known type, same-as-reader cache)",
            meter.per_call(calls),
            true,
        );

        stage(
            "Avro decode (EventBus::decode_as_reader -> Arc<SessionLoginCompleted>)",
            per_record(records, |r| {
                black_box(bus.decode_as_reader(event_type, datum(r)));
            }),
            true,
        );

        // Dispatch as RetryRun does it: context from the record, shared (Arc) with the
        // receivers, dispatch_decoded, the report checked.
        let metadata = parse_headers(header_view(&records[0]).iter().copied())?.metadata;
        let event = bus
            .decode_as_reader(event_type, datum(&records[0]))
            .ok_or("no decoder")??;
        let meter = Meter::start();
        for _ in 0..reps {
            for record in records {
                let ctx = DeliveryContext::from_record(
                    metadata.clone(),
                    record.topic(),
                    record.partition(),
                    record.offset(),
                );
                let report = bus
                    .dispatch_decoded(event_type, Arc::clone(&event), Arc::new(ctx), None)
                    .await;
                black_box(report.all_succeeded());
            }
        }
        let dispatch = meter.per_call(calls);
        // The metadata is parsed above, not cloned, in the loop; take its clone out.
        let metadata_clone = per_record(records, |_| {
            black_box(metadata.clone());
        });
        stage(
            "dispatch to the no-op receiver (as RetryRun: shared ctx + dispatch_decoded)",
            dispatch - metadata_clone,
            true,
        );

        let tracker = Mutex::new(OffsetTracker::default());
        if let Ok(mut t) = tracker.lock() {
            for r in records.iter() {
                if !t.owns(r.topic(), r.partition()) {
                    t.assigned(r.topic(), r.partition());
                }
            }
        }
        stage(
            "offset tracker (started_at + finished, two Mutex locks)",
            per_record(records, |r| {
                let assignment = tracker.lock().ok().and_then(|mut t| {
                    t.started_at(
                        r.topic(),
                        r.partition(),
                        r.offset(),
                        r.timestamp().to_millis(),
                    )
                });
                if let (Ok(mut t), Some(assignment)) = (tracker.lock(), assignment) {
                    t.finished(r.topic(), r.partition(), r.offset(), &assignment);
                }
            }),
            true,
        );
        let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
        let mut touched = 0usize;
        stage(
            "raw loop's own per-record work (for reference)",
            per_record(records, |r| {
                touched += r.payload().map_or(0, <[u8]>::len) + r.key().map_or(0, <[u8]>::len);
                positions.insert(r.partition(), r.offset() + 1);
            }),
            false,
        );
        black_box(touched);
        Ok(stages)
    }
    fn report(&self, runs: &[Run], stages: &[Stage]) -> String {
        let sides = &self.settings.sides;
        let mut out = format!("load average at the end: {}\n", Self::load_average());
        let _ = writeln!(
            out,
            "\n{:<11} {:<10} {:>30} {:>10} {:>9} {:>8} {:>11}",
            "partitions", "side", "runs (events/s)", "median", "join (s)", "commits", "allocs/rec"
        );
        let mut gaps = Vec::new();
        for &partitions in &self.settings.partitions {
            let mut medians = [f64::NAN; Side::ALL.len()];
            for (slot, side) in Side::ALL.into_iter().enumerate() {
                if !sides.contains(&side) {
                    continue;
                }
                let mine: Vec<&Run> = runs
                    .iter()
                    .filter(|r| r.partitions == partitions && r.side == side)
                    .collect();
                let rates: Vec<f64> = mine.iter().map(|r| r.rate).collect();
                let joins: Vec<f64> = mine.iter().map(|r| r.join.as_secs_f64()).collect();
                let commits: Vec<f64> = mine.iter().map(|r| r.commits as f64).collect();
                let allocs: Vec<f64> = mine.iter().map(|r| r.allocs_per_record).collect();
                medians[slot] = median(&rates);
                let listed: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
                let label = if side == sides[0] {
                    partitions.to_string()
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "{:<11} {:<10} {:>30} {:>10.0} {:>9.2} {:>8.0} {:>11.1}",
                    label,
                    side.name(),
                    listed.join(" "),
                    medians[slot],
                    median(&joins),
                    median(&commits),
                    median(&allocs)
                );
            }
            let [raw, sdk, raw_decode, peer, raw_headers] = medians;
            let ratio = sdk / raw;
            if ratio.is_finite() {
                let verdict = if ratio >= TARGET_RATIO {
                    "meets"
                } else {
                    "BELOW"
                };
                let _ = writeln!(
                    out,
                    "{:<11} ratio SDK/raw = {ratio:.3} ({verdict} the {TARGET_RATIO:.2} target)",
                    ""
                );
            }
            if (raw_headers / raw).is_finite() {
                let _ = writeln!(
                    out,
                    "{:<11} raw+headers/raw = {:.3} (ceiling for any consumer that reads headers through librdkafka)",
                    "",
                    raw_headers / raw
                );
            }
            if (raw_decode / raw).is_finite() {
                let _ = writeln!(
                    out,
                    "{:<11} raw+decode/raw = {:.3} (ceiling for a consumer decoding with these functions)",
                    "",
                    raw_decode / raw
                );
            }
            if (sdk / raw_decode).is_finite() {
                let _ = writeln!(out, "{:<11} SDK/raw+decode = {:.3}", "", sdk / raw_decode);
            }
            if (peer / raw).is_finite() {
                let _ = writeln!(out, "{:<11} peer/raw = {:.3}", "", peer / raw);
            }
            if (sdk / peer).is_finite() {
                let _ = writeln!(
                    out,
                    "{:<11} SDK/peer = {:.3} (against rdkafka + schema_registry_converter by hand)",
                    "",
                    sdk / peer
                );
            }
            let micros = |rate: f64| 1e6 / rate;
            let mut line = format!("{:<11} us/record:", "");
            for (side, rate) in Side::ALL.into_iter().zip(medians) {
                if rate.is_finite() {
                    let _ = write!(line, " {} {:.2} |", side.name(), micros(rate));
                }
            }
            if (raw + sdk + raw_decode).is_finite() {
                let _ = write!(
                    line,
                    " decoding (raw+decode - raw) {:.2}, SDK loop + dispatch + offsets (sdk - raw+decode) {:.2}",
                    micros(raw_decode) - micros(raw),
                    micros(sdk) - micros(raw_decode)
                );
            }
            let _ = writeln!(out, "{}", line.trim_end_matches(" |"));
            gaps.push((
                partitions,
                micros(sdk) - micros(raw),
                micros(raw_headers) - micros(raw),
            ));
        }
        if stages.is_empty() {
            return out;
        }

        let _ = writeln!(
            out,
            "\nSDK per-record CPU outside librdkafka, in-process on the topic's records (median of 3):\n  {:<84} {:>7} {:>7}",
            "stage", "us/rec", "allocs"
        );
        let mut total = Cost::default();
        for stage in stages {
            if stage.counted {
                total.micros += stage.cost.micros;
                total.allocs += stage.cost.allocs;
            }
            let _ = writeln!(
                out,
                "  {:<84} {:>7.3} {:>7.1}",
                stage.name, stage.cost.micros, stage.cost.allocs
            );
        }
        let _ = writeln!(
            out,
            "  {:<84} {:>7.3} {:>7.1}",
            "total of the SDK stages", total.micros, total.allocs
        );
        for (partitions, gap, headers) in gaps {
            if !gap.is_finite() {
                continue;
            }
            let _ = write!(
                out,
                "  {partitions} partition(s): the SDK spends {gap:.2} us/record more than raw; \
                 the stages above add up to {:.2} (measured apart, in one thread, on records whose \
                 headers librdkafka had already parsed",
                total.micros
            );
            if headers.is_finite() {
                let _ = write!(out, "; that parse, raw+headers - raw, costs {headers:.2}");
            }
            let _ = writeln!(out, "; the rest is the loop's own machinery, and noise)");
        }
        out
    }
}
