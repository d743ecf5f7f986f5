//! End-to-end latency: how long an event takes from the moment it is due to be
//! produced until its receiver runs, at a fixed rate, with the SDK's default settings
//! on both sides (issue 18: "p50/p99/p99.9 at 1 000 and 10 000 events/s for 60 s, with
//! the producer's default settings"; target p99 ≤ 10 ms at 1 000 events/s on
//! loopback).
//!
//! # What it measures
//!
//! One Apache Kafka node (KRaft, broker and controller in one JVM, started here with a
//! heap of 1024 MiB, on the same cores as the benchmark) and the embedded schema
//! registry. A fresh topic of 3 partitions (what `SessionLoginCompleted` declares in
//! its `topic_settings`) carries `SessionLoginCompleted` events (the Open edX login
//! event), one username per event, so the keys spread over the partitions.
//!
//! In the same process, an SDK `EventConsumer` with default settings (a fresh group,
//! one receiver of `SessionLoginCompleted`, `max_in_flight` 1, commits every second)
//! joins first. Before anything is timed it has to receive `PROBES` probe events sent
//! one by one: then the group is joined, every partition assigned, and the schema is
//! registered (producer) and looked up (consumer), so none of that is in a latency.
//!
//! Then, for each rate of `BENCH_RATES`, an SDK `Producer` with default settings (it
//! sets `enable.idempotence`, `acks=all`, `compression.type=lz4`, `message.timeout.ms`
//! and `client.id`; `linger.ms` and every other option keep librdkafka's defaults; the
//! header prints the values in force) produces on an open-loop schedule: event `i` is
//! due at `start + i / rate`, for `BENCH_WARMUP_SECONDS + BENCH_SECONDS`. A pacing
//! thread sleeps until each event is due and starts its send then, whether or not
//! earlier sends were acknowledged. By default every event is sent with
//! `Producer::send` in a task of its own that awaits the acknowledgement, as a service
//! handling requests side by side would; `BENCH_API=enqueue` calls `Producer::enqueue`
//! on the pacing thread instead (no acknowledgement awaited; delivery reported to
//! `tracing`).
//!
//! The event carries its run and index in `user.id`; the receiver's first act is to
//! read the clock, and it stores that instant under the index. Every instant is a
//! `std::time::Instant` of this process, as nanoseconds after one base instant, so
//! they compare directly. The latency of an event is
//!
//! **receive instant − due instant** (the time it was scheduled to be sent).
//!
//! Measuring from the due time, not from the moment the send call actually started,
//! is deliberate: when the process, the runtime or the producer stalls, the events due
//! during the stall are sent late, and a clock started at the late send call would
//! hide the stall from every one of them (coordinated omission). A user's event does
//! wait from the moment it was due. The latency from the actual send call is printed
//! too, with the send lag (send call − due) and, for `send`, the acknowledgement
//! (acknowledged − due), so the difference shows and the time splits into producer
//! and consumer sides.
//!
//! The events due in the first `BENCH_WARMUP_SECONDS` are sent and must arrive, but
//! are left out of the statistics. Every latency of the rest is kept and sorted
//! (percentiles are exact, nearest rank). Per rate the table shows events sent and
//! received, the rate achieved (measured events / the span of their send calls),
//! p50, p90, p99, p99.9 and max in ms, and the load average before and after.
//! To tell a slow pipeline from a crowded machine it also shows, per rate, the CPU used
//! by this process and by the broker, the time their threads spent runnable but
//! waiting for a core (run-queue wait, `/proc/<pid>/task/*/schedstat`), and the
//! machine's CPU pressure (the share of time some task waited for a core,
//! `/proc/pressure/cpu`).
//!
//! It is a benchmark, not a test: nothing asserts a duration, and the target is only
//! reported. It fails if any event is missing `BENCH_GRACE_SECONDS` after the last one
//! was due, if a send fails, or if the broker cannot start.
//!
//! # Running it
//!
//! ```text
//! scripts/install-test-deps            # once: Apache Kafka's jars (and Java)
//! cargo bench -p event-bus-tests --bench end_to_end_latency
//! BENCH_RATES=1000 BENCH_SECONDS=20 cargo bench -p event-bus-tests --bench end_to_end_latency
//! BENCH_PRODUCER_OPTIONS=linger.ms=0 cargo bench -p event-bus-tests --bench end_to_end_latency
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `BENCH_RATES` | comma-separated rates, events/s, run one after the other | `1000,10000` |
//! | `BENCH_SECONDS` | measured seconds per rate | 60 |
//! | `BENCH_WARMUP_SECONDS` | seconds sent first at each rate and left out | 5 |
//! | `BENCH_GRACE_SECONDS` | how long after the last due time every event must have arrived | 30 |
//! | `BENCH_API` | `send` (a task per event awaiting its acknowledgement) or `enqueue` | `send` |
//! | `BENCH_PRODUCER_OPTIONS` | librdkafka options over the producer's defaults, `name=value,…` (diagnosis only) | none |
//! | `BENCH_CONSUMER_OPTIONS` | librdkafka options over the consumer's defaults, `name=value,…` (diagnosis only) | none |
//! | `EVENT_BUS_TEST_KAFKA_LIBS` | the folder of Kafka's jars (default: where `install-test-deps` puts them) | — |
//!
//! With the defaults it takes about 2.5 minutes (two rates of 65 s, plus the broker's
//! start and the build). `cargo test` and `cargo nextest` build this target but never
//! run it: without cargo bench's `--bench` argument it prints a note and exits, and it
//! lists no tests.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_bus_core::{Event, EventBus};
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::config::{KafkaConfig, ProducerConfig, RegistryConfig};
use event_bus_kafka::consumer::{ConsumerConfig, EventConsumer, Shutdown};
use event_bus_kafka::producer::Producer;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use event_bus_tests::bench_support::{
    broker_and_runtime, env_list, env_number, load_average, run_benchmark, BenchResult,
    BROKER_HEAP_MB,
};
use event_bus_tests::proc_stats::{broker_pid, thread_schedstats};
use rdkafka::config::ClientConfig;
use tokio::sync::Notify;

/// Partitions of the topic (what `SessionLoginCompleted` declares).
const PARTITIONS: i32 = 3;
/// Probe events the consumer must receive before any rate starts.
const PROBES: u64 = 30;
/// How long the consumer may take to join and receive the probes.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// The issue's target: p99 at 1 000 events/s, in ms.
const TARGET_RATE: u64 = 1_000;
const TARGET_P99_MS: f64 = 10.0;
/// `user.id` of a probe event; measured events carry `run << INDEX_BITS | index`.
const PROBE_ID: i64 = -1;
const INDEX_BITS: u32 = 40;

/// librdkafka options whose values set a producer's latency, printed in the header.
const PRODUCER_OPTIONS_SHOWN: [&str; 9] = [
    "linger.ms",
    "batch.num.messages",
    "batch.size",
    "acks",
    "enable.idempotence",
    "compression.type",
    "max.in.flight.requests.per.connection",
    "socket.nagle.disable",
    "message.timeout.ms",
];
/// librdkafka options whose values set a consumer's latency, printed in the header.
const CONSUMER_OPTIONS_SHOWN: [&str; 7] = [
    "fetch.wait.max.ms",
    "fetch.min.bytes",
    "fetch.queue.backoff.ms",
    "fetch.error.backoff.ms",
    "queued.min.messages",
    "enable.auto.commit",
    "socket.nagle.disable",
];

/// How each event is handed to the producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// `Producer::send` in a task per event, awaiting the acknowledgement.
    Send,
    /// `Producer::enqueue` on the pacing thread.
    Enqueue,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Api::Send => "send",
            Api::Enqueue => "enqueue",
        }
    }
}

/// What the benchmark is asked to do (from `BENCH_*` variables).
#[derive(Debug, Clone)]
struct Settings {
    rates: Vec<u64>,
    seconds: u64,
    warmup_seconds: u64,
    grace: Duration,
    api: Api,
    producer_options: Vec<(String, String)>,
    consumer_options: Vec<(String, String)>,
}

impl Settings {
    fn from_env() -> BenchResult<Self> {
        let api = match std::env::var("BENCH_API").as_deref().map(str::trim) {
            Ok("") | Ok("send") | Err(_) => Api::Send,
            Ok("enqueue") => Api::Enqueue,
            Ok(other) => {
                return Err(format!("BENCH_API=`{other}` is not `send` or `enqueue`").into())
            }
        };
        Ok(Self {
            rates: env_list(
                "BENCH_RATES",
                vec![1_000, 10_000],
                |n| n.parse::<u64>().ok().filter(|n| *n > 0),
                "a rate in events/s above 0",
            )?,
            seconds: env_number("BENCH_SECONDS", 60_u64)?.max(1),
            warmup_seconds: env_number("BENCH_WARMUP_SECONDS", 5_u64)?,
            grace: Duration::from_secs(env_number("BENCH_GRACE_SECONDS", 30_u64)?),
            api,
            producer_options: options_from_env("BENCH_PRODUCER_OPTIONS")?,
            consumer_options: options_from_env("BENCH_CONSUMER_OPTIONS")?,
        })
    }

    /// Events sent at `rate`: warm-up and measured.
    fn events(&self, rate: u64) -> u64 {
        rate * (self.warmup_seconds + self.seconds)
    }

    /// Events of the warm-up at `rate` (the first indices).
    fn warmup_events(&self, rate: u64) -> u64 {
        rate * self.warmup_seconds
    }
}

/// `name=value` pairs from a comma-separated variable.
fn options_from_env(variable: &str) -> BenchResult<Vec<(String, String)>> {
    Ok(env_list(
        variable,
        Vec::new(),
        |pair| {
            pair.split_once('=')
                .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
                .filter(|(name, _)| !name.is_empty())
        },
        "a librdkafka `name=value`",
    )?)
}

/// The instants of one rate's events, as nanoseconds after [`Clock::base`] (+1, so 0
/// means "not yet").
struct RunStamps {
    rate: u64,
    events: u64,
    /// The pacing thread's schedule starts here (ns after base).
    start: AtomicU64,
    /// When the send call started.
    sent: Vec<AtomicU64>,
    /// When `send` returned the acknowledgement (`BENCH_API=send` only).
    acked: Vec<AtomicU64>,
    /// When the receiver first ran.
    received: Vec<AtomicU64>,
    received_count: AtomicU64,
    duplicates: AtomicU64,
    failed_sends: AtomicU64,
    all_received: Notify,
}

impl RunStamps {
    fn new(rate: u64, events: u64) -> Self {
        let slots = || (0..events).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Self {
            rate,
            events,
            start: AtomicU64::new(0),
            sent: slots(),
            acked: slots(),
            received: slots(),
            received_count: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            failed_sends: AtomicU64::new(0),
            all_received: Notify::new(),
        }
    }

    /// The due instant of event `index` (ns after base).
    fn due(&self, index: u64) -> u64 {
        self.start.load(Ordering::Relaxed) + index * 1_000_000_000 / self.rate
    }

    fn receive(&self, index: u64, now: u64) {
        let Some(slot) = self.received.get(index as usize) else {
            return;
        };
        if slot
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.received_count.fetch_add(1, Ordering::Relaxed) + 1 == self.events {
            self.all_received.notify_one();
        }
    }

    fn received(&self) -> u64 {
        self.received_count.load(Ordering::Relaxed)
    }
}

/// Every run's stamps, and the probes.
struct Clock {
    base: Instant,
    runs: Vec<RunStamps>,
    probes: AtomicU64,
    probes_received: Notify,
}

impl Clock {
    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64 + 1
    }

    /// What the receiver does with an event, `now` being its first instant.
    fn receive(&self, user_id: i64, now: u64) {
        if user_id == PROBE_ID {
            if self.probes.fetch_add(1, Ordering::Relaxed) + 1 == PROBES {
                self.probes_received.notify_one();
            }
            return;
        }
        let (run, index) = (
            (user_id >> INDEX_BITS) as usize,
            user_id & ((1 << INDEX_BITS) - 1),
        );
        if let Some(run) = self.runs.get(run) {
            run.receive(index as u64, now);
        }
    }
}

/// The login event of `index` in `run` (a username of its own, so keys spread).
fn login(run: usize, index: u64) -> SessionLoginCompleted {
    let mut user = UserData::example();
    user.id = ((run as i64) << INDEX_BITS) | index as i64;
    user.pii.username = format!("learner{index}");
    SessionLoginCompleted { user }
}

/// Exact percentiles of a sorted list, in ms (nearest rank).
#[derive(Debug, Clone, Copy)]
struct Summary {
    count: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Summary {
    fn of(mut nanos: Vec<u64>) -> Option<Self> {
        if nanos.is_empty() {
            return None;
        }
        nanos.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * nanos.len() as f64).ceil() as usize).clamp(1, nanos.len());
            nanos[rank - 1] as f64 / 1e6
        };
        Some(Self {
            count: nanos.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        })
    }

    fn line(&self) -> String {
        format!(
            "p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3} ms",
            self.p50, self.p90, self.p99, self.p999, self.max
        )
    }
}

/// What one rate gave.
struct Outcome {
    rate: u64,
    sent: u64,
    received: u64,
    achieved: f64,
    /// Receive − due, of the measured events.
    latency: Option<Summary>,
    load_before: String,
    load_after: String,
    /// Where the CPU went while the rate ran.
    machine: Option<String>,
}

struct Bench {
    settings: Settings,
    broker: KafkaCluster,
    registry: EmbeddedRegistry,
    prefix: String,
    topic: String,
    clock: Arc<Clock>,
    /// The broker JVM's process id, for its CPU and run-queue figures.
    broker_pid: Option<String>,
}

fn main() -> ExitCode {
    run_benchmark("end_to_end_latency", bench_main)
}

fn bench_main() -> BenchResult<()> {
    // Warnings to stderr; RUST_LOG for more.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,librdkafka=error")),
        )
        .init();
    let settings = Settings::from_env()?;
    let (broker, runtime) = broker_and_runtime()?;
    let handle = runtime.handle().clone();
    runtime.block_on(async move {
        let registry = EmbeddedRegistry::start().await?;
        let prefix = unique_topic("lbench");
        let topic = format!("{prefix}-{}", SessionLoginCompleted::TOPIC);
        let runs = settings
            .rates
            .iter()
            .map(|&rate| RunStamps::new(rate, settings.events(rate)))
            .collect();
        let clock = Arc::new(Clock {
            base: Instant::now(),
            runs,
            probes: AtomicU64::new(0),
            probes_received: Notify::new(),
        });
        let broker_pid = broker.dir().and_then(broker_pid);
        let bench = Bench {
            settings,
            broker,
            registry,
            prefix,
            topic,
            clock,
            broker_pid,
        };
        bench.run(handle).await
    })
}

impl Bench {
    async fn run(&self, handle: tokio::runtime::Handle) -> BenchResult<()> {
        self.broker.create_topic(&self.topic, PARTITIONS).await?;
        let producer_config = self.producer_config();
        let consumer_config = self.consumer_config();
        println!("{}", self.header(&producer_config, &consumer_config)?);

        let mut bus = EventBus::new();
        let clock = Arc::clone(&self.clock);
        bus.connect_fn("latency", move |event: &SessionLoginCompleted, _ctx| {
            let now = clock.now();
            clock.receive(event.user.id, now);
            Ok(())
        })?;
        let consumer = EventConsumer::new(consumer_config, Arc::new(bus))?;
        let stats = consumer.stats();
        let (trigger, shutdown) = Shutdown::new();
        let consumer_task = tokio::spawn(consumer.run(shutdown));

        let producer = Producer::new(producer_config)?;
        let joined = self.probe(&producer).await;
        let mut outcomes = Vec::new();
        let mut failure = joined.err();
        if failure.is_none() {
            eprintln!(
                "consumer joined: {} assignment(s), {PROBES} probes received",
                stats.snapshot().assignments
            );
            for index in 0..self.settings.rates.len() {
                match self.run_rate(index, &producer, &handle).await {
                    Ok(outcome) => outcomes.push(outcome),
                    Err(error) => {
                        failure = Some(error);
                        break;
                    }
                }
            }
        }
        trigger.trigger();
        let snapshot = consumer_task.await??;
        println!("{}", self.report(&outcomes));
        eprintln!(
            "consumer: {} records handled, {} commits, {} poll errors",
            snapshot.records_handled, snapshot.commits, snapshot.poll_errors
        );
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn kafka(&self) -> KafkaConfig {
        KafkaConfig::new(self.broker.bootstrap_servers())
    }

    /// The producer's configuration: the SDK's defaults, plus any diagnosis options.
    fn producer_config(&self) -> ProducerConfig {
        let kafka = self
            .settings
            .producer_options
            .iter()
            .fold(self.kafka(), |kafka, (name, value)| {
                kafka.with_option(name, value)
            });
        ProducerConfig::new(kafka, RegistryConfig::new(self.registry.url()))
            .with_service_name("latency-bench")
            .with_topic_prefix(self.prefix.clone())
    }

    /// The consumer's configuration: the SDK's defaults, plus any diagnosis options.
    fn consumer_config(&self) -> ConsumerConfig {
        let kafka = self
            .settings
            .consumer_options
            .iter()
            .fold(self.kafka(), |kafka, (name, value)| {
                kafka.with_option(name, value)
            });
        ConsumerConfig::new(
            kafka,
            RegistryConfig::new(self.registry.url()),
            unique_group("lbench"),
            [SessionLoginCompleted::TOPIC],
        )
        .with_topic_prefix(self.prefix.clone())
    }

    /// What the run is, with the librdkafka values in force on each side.
    fn header(&self, producer: &ProducerConfig, consumer: &ConsumerConfig) -> BenchResult<String> {
        let s = &self.settings;
        // The producer's options as `Producer::new` builds them (the SDK's defaults,
        // then the delivery timeout and client id, then the config's options), read
        // back from librdkafka with its own defaults filled in.
        let timeout_ms = producer.delivery_timeout.as_millis().to_string();
        let producer_client = producer.kafka.producer_client_config(&[
            ("message.timeout.ms", &timeout_ms),
            ("client.id", &producer.service_name),
        ]);
        // The consumer sets none of the options shown except enable.auto.commit=false.
        let mut consumer_client = consumer
            .kafka
            .client_config(&[("enable.auto.commit", "false")]);
        consumer_client.set("group.id", &consumer.group_id);
        let shown = |client: &ClientConfig, names: &[&str]| -> BenchResult<String> {
            let native = client.create_native_config()?;
            Ok(names
                .iter()
                .map(|name| {
                    let value = native.get(name).unwrap_or_else(|_| "?".to_owned());
                    format!("{name}={value}")
                })
                .collect::<Vec<_>>()
                .join(" "))
        };
        let mut out = format!(
            "end-to-end latency: SDK Producer ({}) -> Apache Kafka -> SDK EventConsumer receiver, \
             open-loop, latency = receive - due time\n\
             rates {:?} events/s, {} s each after a {} s warm-up (left out); topic {} ({PARTITIONS} partitions)\n\
             broker: Apache Kafka {} (KRaft, 1 node, heap {BROKER_HEAP_MB} MiB) at {}; registry: embedded; \
             librdkafka {}; load average {} on {} CPUs\n",
            s.api.name(),
            s.rates,
            s.seconds,
            s.warmup_seconds,
            self.topic,
            self.broker.version(),
            self.broker.bootstrap_servers(),
            rdkafka::util::get_rdkafka_version().1,
            load_average(),
            std::thread::available_parallelism().map_or(0, usize::from),
        );
        let _ = writeln!(
            out,
            "producer (librdkafka, in force): {}",
            shown(&producer_client, &PRODUCER_OPTIONS_SHOWN)?
        );
        let _ = writeln!(
            out,
            "consumer (librdkafka, in force): {}",
            shown(&consumer_client, &CONSUMER_OPTIONS_SHOWN)?
        );
        let _ = write!(
            out,
            "consumer (SDK): max_in_flight={} commit_interval={} ms",
            consumer.max_in_flight,
            consumer.commit_interval.as_millis()
        );
        if !s.producer_options.is_empty() || !s.consumer_options.is_empty() {
            let _ = write!(
                out,
                "\nNOT the defaults: producer options {:?}, consumer options {:?}",
                s.producer_options, s.consumer_options
            );
        }
        Ok(out)
    }

    /// Sends the probes one by one and waits for the receiver to have them all: the
    /// consumer has joined, its partitions are assigned and both sides know the schema.
    async fn probe(&self, producer: &Producer) -> BenchResult<()> {
        let all = self.clock.probes_received.notified();
        tokio::pin!(all);
        all.as_mut().enable();
        for n in 0..PROBES {
            let mut user = UserData::example();
            user.id = PROBE_ID;
            user.pii.username = format!("probe{n}");
            producer.send(&SessionLoginCompleted { user }).await?;
        }
        if tokio::time::timeout(JOIN_TIMEOUT, all).await.is_err() {
            return Err(format!(
                "the consumer received {} of {PROBES} probes in {} s",
                self.clock.probes.load(Ordering::Relaxed),
                JOIN_TIMEOUT.as_secs()
            )
            .into());
        }
        Ok(())
    }

    /// Sends the run's events on schedule from a pacing thread, waits for all of them
    /// to arrive, and sums up.
    async fn run_rate(
        &self,
        run: usize,
        producer: &Producer,
        handle: &tokio::runtime::Handle,
    ) -> BenchResult<Outcome> {
        let stamps = &self.clock.runs[run];
        let (rate, events) = (stamps.rate, stamps.events);
        let load_before = load_average();
        let machine_before = MachineSample::take(self.broker_pid.as_deref());
        let all_received = stamps.all_received.notified();
        tokio::pin!(all_received);
        all_received.as_mut().enable();
        eprintln!(
            "rate {rate}/s: sending {events} events over {} s",
            self.settings.warmup_seconds + self.settings.seconds
        );

        let pacer = {
            let (clock, producer, handle, api) = (
                Arc::clone(&self.clock),
                producer.clone(),
                handle.clone(),
                self.settings.api,
            );
            std::thread::Builder::new()
                .name("pacer".into())
                .spawn(move || pace(&clock, run, &producer, &handle, api))?
        };
        // The schedule's end, then the grace period.
        let schedule = Duration::from_nanos(events * 1_000_000_000 / rate);
        let deadline = tokio::time::Instant::now() + schedule + self.settings.grace;
        let arrived = tokio::time::timeout_at(deadline, all_received)
            .await
            .is_ok();
        let paced = tokio::task::spawn_blocking(move || pacer.join())
            .await?
            .map_err(|_| "the pacing thread panicked")?;
        paced?;
        // Acknowledgements of `send` come before or with the receipt, almost always;
        // give the last ones a moment.
        if self.settings.api == Api::Send {
            let acks_deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < acks_deadline && self.acked(stamps) < events {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let machine = MachineSample::take(self.broker_pid.as_deref()).describe(&machine_before);
        let outcome = self.outcome(run, load_before, machine);
        let failed_sends = stamps.failed_sends.load(Ordering::Relaxed);
        if !arrived || stamps.received() != events || failed_sends != 0 {
            let missing: Vec<u64> = (0..events)
                .filter(|&i| stamps.received[i as usize].load(Ordering::Relaxed) == 0)
                .take(10)
                .collect();
            println!("{}", self.report(std::slice::from_ref(&outcome)));
            return Err(format!(
                "rate {rate}/s: {} of {events} events received {} s after the last was due \
                 ({failed_sends} sends failed); first missing indices {missing:?}",
                stamps.received(),
                self.settings.grace.as_secs()
            )
            .into());
        }
        Ok(outcome)
    }

    fn acked(&self, stamps: &RunStamps) -> u64 {
        stamps
            .acked
            .iter()
            .filter(|a| a.load(Ordering::Relaxed) != 0)
            .count() as u64
            + stamps.failed_sends.load(Ordering::Relaxed)
    }

    /// The statistics of a run, printed on stderr as it ends.
    fn outcome(&self, run: usize, load_before: String, machine: Option<String>) -> Outcome {
        let stamps = &self.clock.runs[run];
        let (rate, events) = (stamps.rate, stamps.events);
        let first = self.settings.warmup_events(rate).min(events);
        let load = |slots: &[AtomicU64], i: u64| slots[i as usize].load(Ordering::Relaxed);
        let measured = first..events;
        let mut latency = Vec::with_capacity((events - first) as usize);
        let mut from_send = Vec::with_capacity(latency.capacity());
        let mut send_lag = Vec::with_capacity(latency.capacity());
        let mut ack = Vec::with_capacity(latency.capacity());
        let (mut first_sent, mut last_sent, mut sent) = (u64::MAX, 0, 0_u64);
        for i in measured.clone() {
            let due = stamps.due(i);
            let (s, a, r) = (
                load(&stamps.sent, i),
                load(&stamps.acked, i),
                load(&stamps.received, i),
            );
            if s != 0 {
                sent += 1;
                first_sent = first_sent.min(s);
                last_sent = last_sent.max(s);
                send_lag.push(s.saturating_sub(due));
            }
            if r != 0 {
                latency.push(r.saturating_sub(due));
                if s != 0 {
                    from_send.push(r.saturating_sub(s));
                }
            }
            if a != 0 {
                ack.push(a.saturating_sub(due));
            }
        }
        let received = latency.len() as u64;
        let achieved = if last_sent > first_sent {
            (sent - 1) as f64 / ((last_sent - first_sent) as f64 / 1e9)
        } else {
            f64::NAN
        };
        let latency = Summary::of(latency);
        let mut detail = format!(
            "rate {rate}/s: {sent} measured events sent ({} in the warm-up), {received} received, \
             {} duplicates, achieved {achieved:.1} events/s",
            first,
            stamps.duplicates.load(Ordering::Relaxed),
        );
        let mut add = |name: &str, summary: Option<Summary>| {
            if let Some(summary) = summary {
                let _ = write!(detail, "\n  {name:<32} {}", summary.line());
            }
        };
        add("receive - due (the latency)", latency);
        add("receive - send call", Summary::of(from_send));
        add("send call - due (send lag)", Summary::of(send_lag));
        add("acknowledged - due", Summary::of(ack));
        if let Some(machine) = &machine {
            let _ = write!(detail, "\n  {machine}");
        }
        eprintln!("{detail}");
        Outcome {
            rate,
            sent,
            received,
            achieved,
            latency,
            load_before,
            load_after: load_average(),
            machine,
        }
    }

    fn report(&self, outcomes: &[Outcome]) -> String {
        let mut out = format!(
            "\n{:>8} {:>8} {:>9} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8}  {}\n",
            "rate/s",
            "sent",
            "received",
            "achieved/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "load avg before/after"
        );
        for o in outcomes {
            let l = o.latency;
            let ms = |f: fn(&Summary) -> f64| l.as_ref().map_or(f64::NAN, f);
            let _ = writeln!(
                out,
                "{:>8} {:>8} {:>9} {:>11.1} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3}  {} / {}",
                o.rate,
                o.sent,
                o.received,
                o.achieved,
                ms(|s| s.p50),
                ms(|s| s.p90),
                ms(|s| s.p99),
                ms(|s| s.p999),
                ms(|s| s.max),
                o.load_before,
                o.load_after,
            );
            if let Some(machine) = &o.machine {
                let _ = writeln!(out, "{:>8} {machine}", "");
            }
            if o.rate == TARGET_RATE {
                if let Some(summary) = l {
                    let verdict = if summary.p99 <= TARGET_P99_MS {
                        "meets"
                    } else {
                        "MISSES"
                    };
                    let _ = writeln!(
                        out,
                        "{:>8} p99 {:.3} ms {verdict} the target of {TARGET_P99_MS} ms at {TARGET_RATE} events/s ({} events)",
                        "",
                        summary.p99,
                        summary.count
                    );
                }
            }
        }
        let _ = write!(
            out,
            "latency = receiver's first instant - the event's due time (open loop); {} s measured per rate",
            self.settings.seconds
        );
        out
    }
}

/// The pacing thread: sleeps until each event of run `run` is due, then hands it to
/// the producer without waiting for earlier ones.
fn pace(
    clock: &Arc<Clock>,
    run: usize,
    producer: &Producer,
    handle: &tokio::runtime::Handle,
    api: Api,
) -> BenchResult<()> {
    let stamps = &clock.runs[run];
    // A little ahead, so the first event is not late for the thread's own start.
    let start = clock.now() + 1_000_000;
    stamps.start.store(start, Ordering::Relaxed);
    for index in 0..stamps.events {
        let due = stamps.due(index);
        let now = clock.now();
        if due > now {
            std::thread::sleep(Duration::from_nanos(due - now));
        }
        let event = login(run, index);
        match api {
            Api::Send => {
                let (clock, producer) = (Arc::clone(clock), producer.clone());
                handle.spawn(async move {
                    let stamps = &clock.runs[run];
                    stamps.sent[index as usize].store(clock.now(), Ordering::Relaxed);
                    match producer.send(&event).await {
                        Ok(_) => stamps.acked[index as usize].store(clock.now(), Ordering::Relaxed),
                        Err(error) => {
                            stamps.failed_sends.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(index, error = %error, "send failed");
                        }
                    }
                });
            }
            Api::Enqueue => {
                stamps.sent[index as usize].store(clock.now(), Ordering::Relaxed);
                if let Err(error) = handle.block_on(producer.enqueue(&event)) {
                    stamps.failed_sends.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(index, error = %error, "enqueue failed");
                }
            }
        }
    }
    Ok(())
}

/// CPU and run-queue time of this process and of the broker, and the machine's CPU
/// pressure, at one instant.
struct MachineSample {
    at: Instant,
    client: Option<Sched>,
    broker: Option<Sched>,
    /// `/proc/pressure/cpu`, `some … total=` (µs some task waited for a core).
    pressure_micros: Option<u64>,
}

/// Time a process's threads ran and waited runnable on a run queue, summed.
#[derive(Debug, Clone, Copy)]
struct Sched {
    ran_nanos: u64,
    waited_nanos: u64,
}

impl MachineSample {
    fn take(broker_pid: Option<&str>) -> Self {
        Self {
            at: Instant::now(),
            client: sched("self"),
            broker: broker_pid.and_then(sched),
            pressure_micros: cpu_pressure(),
        }
    }

    /// What happened since `before`, or `None` where `/proc` has none of it.
    fn describe(&self, before: &MachineSample) -> Option<String> {
        let wall = self
            .at
            .duration_since(before.at)
            .as_secs_f64()
            .max(f64::EPSILON);
        let side = |name: &str, after: Option<Sched>, before: Option<Sched>| {
            let (a, b) = (after?, before?);
            Some(format!(
                "{name} {:.2} cores, run-queue wait {:.0} ms/s",
                a.ran_nanos.saturating_sub(b.ran_nanos) as f64 / 1e9 / wall,
                a.waited_nanos.saturating_sub(b.waited_nanos) as f64 / 1e6 / wall,
            ))
        };
        let mut parts: Vec<String> = [
            side("this process", self.client, before.client),
            side("broker", self.broker, before.broker),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let (Some(a), Some(b)) = (self.pressure_micros, before.pressure_micros) {
            parts.push(format!(
                "CPU pressure (some) {:.0} %",
                a.saturating_sub(b) as f64 / 1e4 / wall
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// The sums of the scheduler times of the threads of `pid` alive now
/// ([`thread_schedstats`]); threads that ended are not counted.
fn sched(pid: &str) -> Option<Sched> {
    let threads = thread_schedstats(pid)?;
    Some(Sched {
        ran_nanos: threads.iter().map(|t| t.ran_nanos).sum(),
        waited_nanos: threads.iter().map(|t| t.waited_nanos).sum(),
    })
}

/// Microseconds during which some task waited for a core, since boot (Linux PSI).
fn cpu_pressure() -> Option<u64> {
    let pressure = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    let some = pressure.lines().find(|l| l.starts_with("some"))?;
    some.split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
}
