//! Metrics overhead: producer and consumer throughput with the Prometheus recorder
//! recording vs not, in the same run (issue 8: "report the ratio; target ≤ 5% slower").
//!
//! # What it measures
//!
//! A `metrics` recorder is process-wide and cannot be uninstalled, so the benchmark
//! installs a *switch*: a recorder whose handles forward to the SDK's Prometheus
//! recorder while on and do nothing while off (what the facade's no-op handles do
//! without a recorder; the SDK caches its per-event handles, so the switch is checked
//! at each increment, not at registration). Runs alternate between on and off, the
//! order flipping every round, after a discarded warm-up round of each; the table
//! shows the median throughput per side and the ratio on/off. One Apache Kafka node
//! (KRaft, broker and controller in one JVM, started here with a heap of 1024 MiB, on
//! the same cores as the benchmark) and the embedded schema registry serve every run;
//! each producer run writes to a fresh one-partition topic.
//!
//! - **producer, enqueue + flush**: `Producer::enqueue` of `BENCH_EVENTS` events, then
//!   `flush` (the SDK's cheapest path per event, so the metric calls weigh most here).
//! - **producer, send (N in flight)**: `Producer::send` awaited with `BENCH_WINDOW`
//!   sends in flight.
//! - **consumer**: a fresh consumer group reads the same `BENCH_EVENTS` pre-produced
//!   events through `EventConsumer` with one receiver; the clock runs from the first
//!   receiver call to the last (group join excluded).
//! - **per call**: the cost of one metric helper call on and off, single-threaded (the
//!   fastest of 50 batches, so a preempted batch does not count): `record_consumed`,
//!   whose handle the SDK caches, and `record_dead_letter`, which registers per call.
//!
//! No `tracing` subscriber is installed, so spans cost what they cost without one. It
//! is a benchmark, not a test: nothing asserts a duration. It fails only if an event is
//! not delivered or consumed, or the broker cannot start.
//!
//! # Running it
//!
//! ```text
//! scripts/install-test-deps            # once: Apache Kafka's jars (and Java)
//! cargo bench -p event-bus-tests --bench metrics_overhead
//! BENCH_EVENTS=50000 BENCH_ROUNDS=5 cargo bench -p event-bus-tests --bench metrics_overhead
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `BENCH_EVENTS` | events per run | 20000 |
//! | `BENCH_ROUNDS` | measured runs per side and workload | 3 |
//! | `BENCH_WINDOW` | sends in flight in the send workload | 1000 |
//! | `EVENT_BUS_TEST_KAFKA_LIBS` | the folder of Kafka's jars (default: where `install-test-deps` puts them) | — |
//!
//! `cargo test`/`cargo nextest` build this target but do not run it: without cargo
//! bench's `--bench` argument it prints a note and exits, and it lists no tests.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_bus_core::{Event, EventBus};
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::config::{KafkaConfig, ProducerConfig, RegistryConfig};
use event_bus_kafka::consumer::{ConsumerConfig, EventConsumer, Shutdown};
use event_bus_kafka::observability::metrics as bus_metrics;
use event_bus_kafka::observability::{PrometheusMetrics, PrometheusRecorder};
use event_bus_kafka::producer::Producer;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use event_bus_tests::bench_support::{
    broker_and_runtime, env_number, run_benchmark, BenchResult, BROKER_HEAP_MB,
};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use tokio::task::JoinSet;

const TIMEOUT: Duration = Duration::from_secs(120);

/// Whether the switch forwards to the Prometheus recorder.
static METRICS_ON: AtomicBool = AtomicBool::new(true);

/// The Prometheus recorder behind an on/off switch.
struct Switch {
    inner: PrometheusRecorder,
}

/// A handle that forwards to `0` only while metrics are on.
struct Switched<H>(H);

impl CounterFn for Switched<Counter> {
    fn increment(&self, value: u64) {
        if METRICS_ON.load(Ordering::Relaxed) {
            self.0.increment(value);
        }
    }
    fn absolute(&self, value: u64) {
        if METRICS_ON.load(Ordering::Relaxed) {
            self.0.absolute(value);
        }
    }
}

impl GaugeFn for Switched<Gauge> {
    fn increment(&self, value: f64) {
        if METRICS_ON.load(Ordering::Relaxed) {
            self.0.increment(value);
        }
    }
    fn decrement(&self, value: f64) {
        if METRICS_ON.load(Ordering::Relaxed) {
            self.0.decrement(value);
        }
    }
    fn set(&self, value: f64) {
        if METRICS_ON.load(Ordering::Relaxed) {
            self.0.set(value);
        }
    }
}

impl HistogramFn for Switched<Histogram> {
    fn record(&self, value: f64) {
        if METRICS_ON.load(Ordering::Relaxed) {
            self.0.record(value);
        }
    }
}

impl Recorder for Switch {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Switched(
            self.inner.register_counter(key, metadata),
        )))
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(Switched(self.inner.register_gauge(key, metadata))))
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Switched(
            self.inner.register_histogram(key, metadata),
        )))
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    events: usize,
    rounds: usize,
    window: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    EnqueueFlush,
    SendWindow,
    Consume,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Self::EnqueueFlush => "producer, enqueue + flush",
            Self::SendWindow => "producer, send (N in flight)",
            Self::Consume => "consumer (first to last receiver call)",
        }
    }
}

struct Bench {
    settings: Settings,
    broker: KafkaCluster,
    registry: EmbeddedRegistry,
    prometheus: PrometheusMetrics,
    /// The topic (prefix, topic) holding `settings.events` events for the consumer runs.
    consume_prefix: String,
}

fn main() -> ExitCode {
    run_benchmark("metrics_overhead", bench_main)
}

fn bench_main() -> BenchResult<()> {
    let settings = Settings {
        events: env_number("BENCH_EVENTS", 20_000)?.max(1),
        rounds: env_number("BENCH_ROUNDS", 3)?.max(1),
        window: env_number("BENCH_WINDOW", 1_000)?.max(1),
    };
    let (recorder, prometheus) = PrometheusMetrics::build()?;
    metrics::set_global_recorder(Switch { inner: recorder })
        .map_err(|_| "a metrics recorder was already installed")?;
    bus_metrics::describe_all();
    let (broker, runtime) = broker_and_runtime()?;
    runtime.block_on(async move {
        let registry = EmbeddedRegistry::start().await?;
        let mut bench = Bench {
            settings,
            broker,
            registry,
            prometheus,
            consume_prefix: String::new(),
        };
        bench.prepare_consume_topic().await?;
        bench.run().await
    })
}

fn kafka(broker: &KafkaCluster, settings: &Settings) -> KafkaConfig {
    KafkaConfig::new(broker.bootstrap_servers())
        .with_option("linger.ms", "5")
        .with_option("batch.num.messages", "10000")
        .with_option("session.timeout.ms", "6000")
        .with_option(
            "queue.buffering.max.messages",
            (settings.events + settings.window + 1)
                .max(100_000)
                .to_string(),
        )
}

fn event(n: usize) -> SessionLoginCompleted {
    let mut user = UserData::example();
    user.id = n as i64;
    SessionLoginCompleted { user }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

impl Bench {
    fn producer(&self, prefix: &str) -> BenchResult<Producer> {
        let config = ProducerConfig::new(
            kafka(&self.broker, &self.settings),
            RegistryConfig::new(self.registry.url()),
        )
        .with_topic_prefix(prefix)
        .with_service_name("metrics-bench");
        Ok(Producer::new(config)?)
    }

    fn set_metrics(&self, on: bool) {
        METRICS_ON.store(on, Ordering::Relaxed);
        bus_metrics::set_lag_sampling(on.then_some(bus_metrics::DEFAULT_LAG_SAMPLING));
    }

    async fn prepare_consume_topic(&mut self) -> BenchResult<()> {
        let prefix = unique_topic("bench-consume");
        let topic = format!("{prefix}-{}", SessionLoginCompleted::TOPIC);
        self.broker.create_topic(&topic, 1).await?;
        let producer = self.producer(&prefix)?;
        for n in 0..self.settings.events {
            producer.enqueue(&event(n)).await?;
        }
        producer.flush(TIMEOUT).await?;
        self.consume_prefix = prefix;
        Ok(())
    }

    async fn run(&self) -> BenchResult<()> {
        let s = self.settings;
        println!(
            "metrics overhead: Prometheus recorder on vs off, {} events per run, {} rounds (+1 warm-up)\n\
             broker: Apache Kafka {} (KRaft, 1 node, heap {BROKER_HEAP_MB} MiB) at {}; librdkafka {}",
            s.events,
            s.rounds,
            self.broker.version(),
            self.broker.bootstrap_servers(),
            rdkafka::util::get_rdkafka_version().1,
        );
        let workloads = [
            Workload::EnqueueFlush,
            Workload::SendWindow,
            Workload::Consume,
        ];
        for workload in workloads {
            for on in [false, true] {
                self.run_once(workload, on, s.events.min(5_000)).await?;
            }
        }
        let mut results: Vec<(Workload, bool, f64)> = Vec::new();
        for round in 0..s.rounds {
            for workload in workloads {
                let order = if round % 2 == 0 {
                    [false, true]
                } else {
                    [true, false]
                };
                for on in order {
                    let rate = self.run_once(workload, on, s.events).await?;
                    eprintln!(
                        "  round {} {:<40} metrics {:<3} {:>9.0} events/s",
                        round + 1,
                        workload.name(),
                        if on { "on" } else { "off" },
                        rate
                    );
                    results.push((workload, on, rate));
                }
            }
        }
        println!();
        println!("| workload | metrics off (events/s, median) | metrics on | on/off | slower by |");
        println!("|---|---:|---:|---:|---:|");
        let mut medians_off = Vec::new();
        for workload in workloads {
            let mut off: Vec<f64> = results
                .iter()
                .filter(|(w, on, _)| *w == workload && !on)
                .map(|r| r.2)
                .collect();
            let mut on: Vec<f64> = results
                .iter()
                .filter(|(w, on, _)| *w == workload && *on)
                .map(|r| r.2)
                .collect();
            let (off, on) = (median(&mut off), median(&mut on));
            medians_off.push((workload, off));
            println!(
                "| {} | {:.0} | {:.0} | {:.3} | {:+.1}% |",
                workload.name(),
                off,
                on,
                on / off,
                (1.0 - on / off) * 100.0
            );
        }
        let per_call = self.per_call();
        for (what, off_ns, on_ns) in per_call {
            println!("| one call of {what} | {off_ns:.0} ns | {on_ns:.0} ns | | |");
        }
        // Throughput on a shared two-core machine varies more between runs than the
        // metrics cost; the per-call figures give the bound that does not.
        let (_, cached_off, cached_on) = per_call[0];
        println!(
            "\ncost model (2 cached counter calls per event: produced + delivered, or consumed + one receiver):"
        );
        for (workload, rate) in medians_off {
            let event_ns = 1e9 / rate;
            println!(
                "  {:<40} {:>7.0} ns per event; metrics on {:.2}% of it, {:+.2}% vs off",
                workload.name(),
                event_ns,
                2.0 * cached_on / event_ns * 100.0,
                2.0 * (cached_on - cached_off) / event_ns * 100.0
            );
        }
        let rendered = self.prometheus.render();
        let recorded = rendered
            .lines()
            .filter(|l| l.starts_with("event_bus_") && !l.starts_with('#'))
            .count();
        println!("\n(the recorder holds {recorded} event_bus_ series after the runs)");
        if recorded == 0 {
            return Err("the recorder recorded nothing while on".into());
        }
        Ok(())
    }

    /// One run; returns events per second.
    async fn run_once(&self, workload: Workload, on: bool, events: usize) -> BenchResult<f64> {
        self.set_metrics(on);
        let elapsed = match workload {
            Workload::EnqueueFlush | Workload::SendWindow => self.produce(workload, events).await?,
            Workload::Consume => self.consume(events).await?,
        };
        Ok(events as f64 / elapsed.as_secs_f64())
    }

    async fn produce(&self, workload: Workload, events: usize) -> BenchResult<Duration> {
        let prefix = unique_topic("bench-produce");
        let topic = format!("{prefix}-{}", SessionLoginCompleted::TOPIC);
        self.broker.create_topic(&topic, 1).await?;
        let producer = self.producer(&prefix)?;
        // Warm-up: registration, metadata, idempotent producer id.
        producer.send(&event(0)).await?;
        let start = Instant::now();
        match workload {
            Workload::EnqueueFlush => {
                for n in 0..events {
                    producer.enqueue(&event(n)).await?;
                }
                producer.flush(TIMEOUT).await?;
                // Until every delivery report was handled (the SDK's report tasks).
                let deadline = Instant::now() + TIMEOUT;
                while producer.in_flight() > 0 {
                    if Instant::now() >= deadline {
                        return Err(
                            format!("{} events still in flight", producer.in_flight()).into()
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            _ => {
                let mut in_flight = JoinSet::new();
                for n in 0..events {
                    if in_flight.len() >= self.settings.window {
                        if let Some(done) = in_flight.join_next().await {
                            done??;
                        }
                    }
                    let producer = producer.clone();
                    in_flight.spawn(async move { producer.send(&event(n)).await.map(drop) });
                }
                while let Some(done) = in_flight.join_next().await {
                    done??;
                }
            }
        }
        let elapsed = start.elapsed();
        Ok(elapsed)
    }

    async fn consume(&self, events: usize) -> BenchResult<Duration> {
        let count = Arc::new(AtomicUsize::new(0));
        let first_last: Arc<Mutex<(Option<Instant>, Option<Instant>)>> = Arc::default();
        let mut bus = EventBus::new();
        let (count2, times2) = (Arc::clone(&count), Arc::clone(&first_last));
        bus.connect_fn("bench", move |_: &SessionLoginCompleted, _| {
            let n = count2.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n == events {
                if let Ok(mut times) = times2.lock() {
                    if n == 1 {
                        times.0 = Some(Instant::now());
                    }
                    if n == events {
                        times.1 = Some(Instant::now());
                    }
                }
            }
            Ok(())
        })?;
        let config = ConsumerConfig::new(
            kafka(&self.broker, &self.settings),
            RegistryConfig::new(self.registry.url()),
            unique_group("bench"),
            [SessionLoginCompleted::TOPIC],
        )
        .with_topic_prefix(self.consume_prefix.clone());
        let consumer = EventConsumer::new(config, Arc::new(bus))?;
        let (trigger, shutdown) = Shutdown::new();
        let task = tokio::spawn(consumer.run(shutdown));
        let started = Instant::now();
        while count.load(Ordering::Relaxed) < events && started.elapsed() < TIMEOUT {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        trigger.trigger();
        task.await??;
        let handled = count.load(Ordering::Relaxed);
        if handled < events {
            return Err(format!("consumed {handled} of {events} events").into());
        }
        let times = *first_last.lock().map_err(|_| "poisoned")?;
        match times {
            (Some(first), Some(last)) => {
                Ok(last.duration_since(first).max(Duration::from_micros(1)))
            }
            _ => Err("no receiver timestamps".into()),
        }
    }

    /// Nanoseconds per call, off and on: a cached per-event counter and, for
    /// comparison, a helper that registers on every call (rare events use those).
    fn per_call(&self) -> [(&'static str, f64, f64); 2] {
        // The fastest of many short batches: robust to the thread being preempted.
        const BATCHES: u32 = 50;
        const CALLS: u32 = 10_000;
        let topic = format!("bench-calls-{}", SessionLoginCompleted::TOPIC);
        let time = |on: bool, f: &dyn Fn()| {
            METRICS_ON.store(on, Ordering::Relaxed);
            (0..BATCHES)
                .map(|_| {
                    let start = Instant::now();
                    for _ in 0..CALLS {
                        f();
                    }
                    start.elapsed().as_nanos() as f64 / f64::from(CALLS)
                })
                .fold(f64::INFINITY, f64::min)
        };
        let consumed = || {
            bus_metrics::record_consumed("bench-group", &topic, SessionLoginCompleted::EVENT_TYPE)
        };
        let dead_letter = || bus_metrics::record_dead_letter("bench-group", &topic, "bench");
        let result = [
            (
                "`record_consumed` (cached handle, 3 labels)",
                time(false, &consumed),
                time(true, &consumed),
            ),
            (
                "`record_dead_letter` (registers per call, 3 labels)",
                time(false, &dead_letter),
                time(true, &dead_letter),
            ),
        ];
        METRICS_ON.store(true, Ordering::Relaxed);
        result
    }
}
