//! Key-ordered concurrency: how much faster the SDK's [`EventConsumer`] gets through a
//! topic when its receiver waits on something (a service call, stood in for by a 1 ms
//! sleep) and `max_in_flight` lets records of different keys run side by side (issue
//! 18: "10 000 events over 500 keys on 3 partitions, at `max_in_flight` 1, 16, 64,
//! 256: throughput per setting"; target: 256 ≥ 100× the throughput of 1).
//!
//! # What it measures
//!
//! One Apache Kafka node (KRaft, broker and controller in one JVM, heap 1024 MiB, on
//! the same cores as the benchmark) and the embedded schema registry. One topic of
//! `BENCH_PARTITIONS` partitions is filled once, through the SDK's `Producer::enqueue`
//! and `flush`, with `BENCH_EVENTS` `SessionLoginCompleted` events over `BENCH_KEYS`
//! users. The event's key is the username (`user.pii.username`), so a user is a key.
//! Events go round-robin over the users (event `n` belongs to user `n % keys`), and
//! each carries its position among its user's events in `user.id` (0, 1, 2, …): the
//! per-key sequence the receiver checks. The topic is then read back without a group,
//! which checks the count and gives, per partition, its keys in offset order.
//!
//! Then, for each `max_in_flight` in `BENCH_IN_FLIGHT`, a run reads the whole topic in
//! a fresh consumer group: an `EventConsumer` with that `max_in_flight` (above 1 the
//! SDK orders by key: records of one key run one after the other, other keys run side
//! by side; at 1 it handles one record at a time, in partition order) and one async
//! receiver that
//!
//! 1. checks that the event's predecessor of the same key has finished (its sequence
//!    is the key's next expected one);
//! 2. waits `BENCH_RECEIVER_MS` with `tokio::time::sleep`, timing the wait;
//! 3. marks the key's sequence done.
//!
//! A run fails if an event starts before its key's predecessor finished, if a key's
//! events are handled out of order or any is missing, or if the group's committed
//! offsets after the run do not add up to `BENCH_EVENTS`. A record handled twice (at
//! least once allows it) is counted and shown, not failed.
//!
//! A run's throughput is `events / (last receiver end − first receiver start)`: the
//! group join and the registry lookup before the first record are left out, every
//! wait is in. Next to it the run shows the receiver's mean measured wait, and how
//! many receivers were waiting at once on average (total wait / window), so whether
//! the loop kept as many keys busy as it may. tokio's timer works in whole
//! milliseconds and rounds a deadline up, so a 1 ms sleep lasts between 1 and 2 ms: a
//! receiver that starts right after a timer fired waits nearly 2 ms. The measured wait
//! also holds the time from the timer firing to the loop polling the receiver again:
//! every receiver runs inside the consumer loop's task, so when many timers fire in
//! the same millisecond the last of them is seen only once the loop got through the
//! others. At `max_in_flight` 1 the receiver is all there is, so 1 / mean wait is that
//! setting's ceiling.
//!
//! The report gives, per setting: the runs' rates and their median, the ratio to the
//! median at `max_in_flight` 1, the mean wait and the ideal bound,
//! `min(max_in_flight, keys in flight) / mean wait`. Keys in flight is what the data
//! allows: librdkafka hands records over in runs of one partition's records (what one
//! fetch brought), so the records the loop holds are mostly consecutive records of one
//! partition, and the bound counts the
//! distinct keys among `max_in_flight` consecutive records of a partition (the mean
//! over every such window of the topic as read back). With 500 keys over 3 partitions
//! each partition has about 167 keys, which caps `max_in_flight` 256 at about 167
//! receivers running.
//!
//! Unless `BENCH_CEILING=0`, each setting also runs once with a receiver that does not
//! wait at all (same checks): the loop's own rate at that `max_in_flight`, the most any
//! receiver can get on this machine.
//!
//! To say where the time goes, each run also measures (in its window):
//!
//! - **side wait**: a task of its own on the same runtime sleeps the same wait over and
//!   over. If it waits as long as the receivers, a longer wait comes from the timer,
//!   the runtime or the machine, not from the consumer loop being late;
//! - **key idle**: the mean time from the end of a key's event to the start of its
//!   next: how long a key stands still while the loop hands over to its next record
//!   (or has not read it yet);
//! - **CPU used and waited**: from `/proc/self/task/*/schedstat` at the first start and
//!   the last end, the CPUs' worth of time the process's threads ran and were runnable
//!   but waited for a CPU (other work on the machine), and the same for its busiest
//!   thread.
//!
//! Since a run's rate is (receivers waiting at once) / (mean wait) exactly, the report
//! splits the ratio of the largest setting to `max_in_flight` 1 into those two
//! factors.
//!
//! It is a benchmark, not a test: nothing asserts a duration. It fails only if an
//! event is lost, a key's order is broken, the committed offsets are wrong, or the
//! broker cannot start.
//!
//! # Running it
//!
//! ```text
//! scripts/install-test-deps      # once: Apache Kafka's jars (and Java)
//! cargo bench -p event-bus-tests --bench key_ordered_concurrency
//! BENCH_IN_FLIGHT=1,256 BENCH_ROUNDS=1 cargo bench -p event-bus-tests --bench key_ordered_concurrency
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `BENCH_EVENTS` | events on the topic, read whole by every run | 10000 |
//! | `BENCH_KEYS` | distinct keys (users) the events go round-robin over | 500 |
//! | `BENCH_PARTITIONS` | partitions of the topic | 3 |
//! | `BENCH_IN_FLIGHT` | comma-separated `max_in_flight` values | `1,16,64,256` |
//! | `BENCH_RECEIVER_MS` | the receiver's wait in ms (0: no wait) | 1 |
//! | `BENCH_ROUNDS` | measured runs of each `max_in_flight` above 1 | 3 |
//! | `BENCH_SERIAL_ROUNDS` | measured runs of `max_in_flight` 1 (one takes 10–20 s) | 1 |
//! | `BENCH_WARMUP` | `0`: no discarded warm-up run (at the largest `max_in_flight`) | 1 |
//! | `BENCH_CEILING` | `0`: no run with a receiver that does not wait | 1 |
//! | `EVENT_BUS_TEST_KAFKA_LIBS` | the folder of Kafka's jars (default: where `install-test-deps` puts them) | — |
//!
//! With the defaults it takes about a minute on two cores (plus the build), most of
//! it in the run at `max_in_flight` 1. Rounds go through the settings in turn, the
//! order reversed every other round, so drift on the machine favours none.
//! `cargo test` and `cargo nextest` build this target but never run it: without
//! `--bench` it prints a note and exits, and it lists no tests.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_bus_core::{Event, EventBus};
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::config::{KafkaConfig, ProducerConfig, RegistryConfig};
use event_bus_kafka::consumer::{ConsumerConfig, EventConsumer, Shutdown};
use event_bus_kafka::producer::Producer;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::records::read_topic;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use event_bus_tests::bench_support::{
    broker_and_runtime, check_committed, env_list, env_number, load_average, median, run_benchmark,
    BenchResult, BROKER_HEAP_MB,
};
use event_bus_tests::proc_stats::thread_schedstats;
use rdkafka::Message;
use tokio::sync::Notify;

/// How long one run may take to handle every event (group join included).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// How long filling the topic may wait for the broker's acknowledgements.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// The ratio the issue asks for: `max_in_flight` 256 against 1.
const TARGET_RATIO: f64 = 100.0;
/// Order violations kept to show (all are counted).
const VIOLATIONS_SHOWN: usize = 5;

/// What the benchmark is asked to do (from `BENCH_*` variables).
#[derive(Debug, Clone)]
struct Settings {
    events: usize,
    keys: usize,
    partitions: i32,
    in_flight: Vec<usize>,
    wait: Duration,
    rounds: usize,
    serial_rounds: usize,
    warm_up: bool,
    ceiling: bool,
}

impl Settings {
    fn from_env() -> BenchResult<Self> {
        let events: usize = env_number("BENCH_EVENTS", 10_000)?;
        Ok(Self {
            events: events.max(2),
            keys: env_number("BENCH_KEYS", 500_usize)?.clamp(1, events.max(2)),
            partitions: env_number("BENCH_PARTITIONS", 3_i32)?.max(1),
            in_flight: env_list(
                "BENCH_IN_FLIGHT",
                vec![1, 16, 64, 256],
                |n| n.parse::<usize>().ok().filter(|n| *n > 0),
                "a positive number",
            )?,
            wait: Duration::from_millis(env_number("BENCH_RECEIVER_MS", 1)?),
            rounds: env_number("BENCH_ROUNDS", 3_usize)?.max(1),
            serial_rounds: env_number("BENCH_SERIAL_ROUNDS", 1_usize)?.max(1),
            warm_up: env_number("BENCH_WARMUP", 1)? != 0,
            ceiling: env_number("BENCH_CEILING", 1)? != 0,
        })
    }

    /// Measured runs of `in_flight`.
    fn rounds_of(&self, in_flight: usize) -> usize {
        if in_flight == 1 {
            self.serial_rounds
        } else {
            self.rounds
        }
    }
}

/// The username of key `k`: the event's key.
fn username(key: usize) -> String {
    format!("learner{key}")
}

/// What the receiver saw during one run.
#[derive(Debug)]
struct Probe {
    base: Instant,
    wait: Duration,
    /// Nanoseconds after `base` of the first receiver start (`u64::MAX`: none yet).
    first_start: AtomicU64,
    /// Nanoseconds after `base` of the last receiver end.
    last_end: AtomicU64,
    /// Total nanoseconds spent in the wait, over every call.
    waited_ns: AtomicU64,
    /// Receivers running now, and the most seen at once.
    running: AtomicU64,
    running_max: AtomicU64,
    calls: AtomicU64,
    order: Mutex<OrderCheck>,
    /// Scheduler times of the process's threads at the first start and the last end.
    sched: Mutex<(Option<ThreadTimes>, Option<ThreadTimes>)>,
    /// The side timer's total wait and sleeps, inside the window.
    side_ns: AtomicU64,
    side_sleeps: AtomicU64,
    expected: u64,
    all_handled: Notify,
}

/// Per key, the sequence expected next and when its last event ended; the gaps
/// between a key's events; what went wrong.
#[derive(Debug, Default)]
struct OrderCheck {
    next: HashMap<String, KeyState>,
    /// Total nanoseconds from the end of a key's event to the start of its next one,
    /// and how many such hand-overs there were.
    gap_ns: u64,
    gaps: u64,
    /// Events handled for the first time, in their key's order.
    handled: u64,
    /// Events handled again (allowed: at least once).
    duplicates: u64,
    violations: u64,
    shown: Vec<String>,
}

/// Where a key is.
#[derive(Debug, Default, Clone, Copy)]
struct KeyState {
    next: u64,
    /// When its last event ended (nanoseconds after the probe's base).
    last_end: Option<u64>,
}

impl OrderCheck {
    fn next_of(&self, key: &str) -> u64 {
        self.next.get(key).map_or(0, |k| k.next)
    }

    fn violation(&mut self, what: impl FnOnce() -> String) {
        self.violations += 1;
        if self.shown.len() < VIOLATIONS_SHOWN {
            self.shown.push(what());
        }
    }
}

/// Which end of the window a scheduler sample is for.
#[derive(Debug, Clone, Copy)]
enum SchedMark {
    First,
    Last,
}

/// Per thread of this process (by id): its name, nanoseconds on a CPU and
/// nanoseconds runnable but waiting for one (`/proc/self/task/*/schedstat`).
#[derive(Debug, Clone, Default)]
struct ThreadTimes(HashMap<u32, (String, u64, u64)>);

impl ThreadTimes {
    /// `None` where `/proc` does not give them.
    fn sample() -> Option<Self> {
        let threads = thread_schedstats("self")?
            .into_iter()
            .map(|t| {
                let name = std::fs::read_to_string(format!("/proc/self/task/{}/comm", t.id))
                    .map(|n| n.trim().to_owned())
                    .unwrap_or_default();
                (t.id, (name, t.ran_nanos, t.waited_nanos))
            })
            .collect();
        Some(Self(threads))
    }
}

/// The scheduler's view of a run's window, over the threads alive at both ends.
#[derive(Debug, Clone)]
struct SchedWindow {
    /// CPUs' worth of time the process ran (1.0: one CPU all the window).
    cores_used: f64,
    /// CPUs' worth of time its threads were runnable but waited for a CPU.
    cores_waited: f64,
    /// The thread that ran most, the share of the window it ran and it waited.
    busiest: (String, f64, f64),
}

impl SchedWindow {
    fn between(first: &ThreadTimes, last: &ThreadTimes, window: Duration) -> Self {
        let window = window.as_nanos().max(1) as f64;
        let (mut ran, mut waited) = (0u64, 0u64);
        let mut busiest = (String::new(), 0u64, 0u64);
        for (id, (name, on_cpu, waiting)) in &last.0 {
            let Some((_, on_cpu_before, waiting_before)) = first.0.get(id) else {
                continue;
            };
            let (r, w) = (
                on_cpu.saturating_sub(*on_cpu_before),
                waiting.saturating_sub(*waiting_before),
            );
            ran += r;
            waited += w;
            if r > busiest.1 {
                busiest = (name.clone(), r, w);
            }
        }
        Self {
            cores_used: ran as f64 / window,
            cores_waited: waited as f64 / window,
            busiest: (
                busiest.0,
                busiest.1 as f64 / window,
                busiest.2 as f64 / window,
            ),
        }
    }

    fn describe(&self) -> String {
        format!(
            "process on CPU {:.2} cores, runnable but waiting {:.2}; busiest thread {} on CPU {:.0} %, waiting {:.0} %",
            self.cores_used,
            self.cores_waited,
            self.busiest.0,
            self.busiest.1 * 100.0,
            self.busiest.2 * 100.0
        )
    }
}

impl Probe {
    fn new(expected: usize, wait: Duration) -> Self {
        Self {
            base: Instant::now(),
            wait,
            first_start: AtomicU64::new(u64::MAX),
            last_end: AtomicU64::new(0),
            waited_ns: AtomicU64::new(0),
            running: AtomicU64::new(0),
            running_max: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            order: Mutex::new(OrderCheck::default()),
            sched: Mutex::new((None, None)),
            side_ns: AtomicU64::new(0),
            side_sleeps: AtomicU64::new(0),
            expected: expected as u64,
            all_handled: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    fn with_order<T>(&self, f: impl FnOnce(&mut OrderCheck) -> T) -> T {
        // A receiver that panicked holding the lock cannot have left the counts
        // half-updated in a way that matters here: take them as they are.
        let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut order)
    }

    /// The receiver: checks the key's order, waits, marks the event done.
    async fn receive(&self, event: &SessionLoginCompleted) {
        let started = self.now();
        if self.first_start.fetch_min(started, Ordering::Relaxed) == u64::MAX {
            self.sched_at(SchedMark::First);
        }
        let running = self.running.fetch_add(1, Ordering::Relaxed) + 1;
        self.running_max.fetch_max(running, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        let key = event.user.pii.username.as_str();
        // The sequence comes off the wire: a negative one is a violation, not a panic.
        let sequence = u64::try_from(event.user.id).ok();
        self.with_order(|order| {
            let state = order.next.get(key).copied().unwrap_or_default();
            let next = state.next;
            match sequence {
                Some(s) if s < next => {}
                Some(s) if s == next => {
                    if let Some(end) = state.last_end {
                        order.gap_ns += started.saturating_sub(end);
                        order.gaps += 1;
                    }
                }
                Some(s) => order.violation(|| {
                    format!("{key}: event {s} started before event {next} of its key finished")
                }),
                None => order.violation(|| format!("{key}: sequence {}", event.user.id)),
            }
        });
        if !self.wait.is_zero() {
            let before = Instant::now();
            tokio::time::sleep(self.wait).await;
            self.waited_ns
                .fetch_add(before.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        let all_handled = self.with_order(|order| {
            let Some(sequence) = sequence else {
                return false;
            };
            let next = order.next_of(key);
            if sequence == next {
                let end = Some(self.now());
                order.next.insert(
                    key.to_owned(),
                    KeyState {
                        next: next + 1,
                        last_end: end,
                    },
                );
                order.handled += 1;
                order.handled == self.expected
            } else if sequence < next {
                order.duplicates += 1;
                false
            } else {
                order.violation(|| {
                    format!("{key}: event {sequence} finished before event {next} of its key")
                });
                false
            }
        });
        self.running.fetch_sub(1, Ordering::Relaxed);
        self.last_end.fetch_max(self.now(), Ordering::Relaxed);
        if all_handled {
            self.sched_at(SchedMark::Last);
            self.all_handled.notify_one();
        }
    }

    /// Samples the process's threads' scheduler times at the first receiver start or
    /// after the last event (a read of `/proc`, a fraction of a millisecond, once
    /// each per run).
    fn sched_at(&self, mark: SchedMark) {
        let sample = ThreadTimes::sample();
        if let Ok(mut marks) = self.sched.lock() {
            match mark {
                SchedMark::First => marks.0 = sample,
                SchedMark::Last => marks.1 = sample,
            }
        }
    }

    /// The scheduler times of the run's window, if both ends were sampled.
    fn sched_window(&self) -> Option<SchedWindow> {
        let marks = self.sched.lock().ok()?;
        let (first, last) = (marks.0.as_ref()?, marks.1.as_ref()?);
        Some(SchedWindow::between(first, last, self.window()))
    }

    /// While the run's window is open, a task of its own sleeps `wait` over and over:
    /// the timer's and the runtime's delay without the consumer loop in between.
    async fn side_timer(&self) {
        loop {
            let before = Instant::now();
            tokio::time::sleep(self.wait).await;
            let waited = before.elapsed().as_nanos() as u64;
            if self.first_start.load(Ordering::Relaxed) != u64::MAX {
                if self.with_order(|o| o.handled) >= self.expected {
                    return;
                }
                self.side_ns.fetch_add(waited, Ordering::Relaxed);
                self.side_sleeps.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn side_wait(&self) -> Duration {
        let sleeps = self.side_sleeps.load(Ordering::Relaxed).max(1);
        Duration::from_nanos(self.side_ns.load(Ordering::Relaxed) / sleeps)
    }

    /// The mean time a key stood idle between the end of one event and the start of
    /// its next.
    fn mean_gap(&self) -> Duration {
        self.with_order(|o| Duration::from_nanos(o.gap_ns / o.gaps.max(1)))
    }

    fn handled(&self) -> u64 {
        self.with_order(|order| order.handled)
    }

    /// From the first receiver start to the last receiver end.
    fn window(&self) -> Duration {
        let first = self.first_start.load(Ordering::Relaxed);
        let last = self.last_end.load(Ordering::Relaxed);
        Duration::from_nanos(last.saturating_sub(first))
    }

    fn mean_wait(&self) -> Duration {
        let calls = self.calls.load(Ordering::Relaxed).max(1);
        Duration::from_nanos(self.waited_ns.load(Ordering::Relaxed) / calls)
    }

    /// How many receivers were waiting at once, on average over the run's window:
    /// the total time waited divided by the window (Little's law, measured). Counting
    /// the receivers running when one starts would undercount: timers fire at whole
    /// milliseconds, so a batch of receivers ends before the next batch starts.
    fn mean_waiting(&self) -> f64 {
        self.waited_ns.load(Ordering::Relaxed) as f64 / self.window().as_nanos().max(1) as f64
    }
}

/// One timed run.
#[derive(Debug, Clone)]
struct Run {
    in_flight: usize,
    /// The no-wait reference run (else: a measured run with `BENCH_RECEIVER_MS`).
    ceiling: bool,
    rate: f64,
    window: Duration,
    join: Duration,
    mean_wait: Duration,
    mean_waiting: f64,
    max_running: u64,
    duplicates: u64,
    commits: u64,
    /// The mean idle time of a key between two of its events.
    mean_gap: Duration,
    /// The mean wait of the side timer (a task of its own sleeping the same wait).
    side_wait: Duration,
    sched: Option<SchedWindow>,
}

impl Run {
    fn describe(&self) -> String {
        let sched = self
            .sched
            .as_ref()
            .map_or_else(|| "no scheduler times".to_owned(), SchedWindow::describe);
        format!(
            "{}\n      key idle between events {:.3} ms mean; side timer wait {:.3} ms; {sched}",
            self.describe_rate(),
            self.mean_gap.as_secs_f64() * 1e3,
            self.side_wait.as_secs_f64() * 1e3,
        )
    }

    fn describe_rate(&self) -> String {
        format!(
            "{:>9.0} events/s  ({:.3} s, join {:.2} s, mean wait {:.3} ms, waiting {:.1} at once on average, {} receivers running at most, \
             {} commits{})",
            self.rate,
            self.window.as_secs_f64(),
            self.join.as_secs_f64(),
            self.mean_wait.as_secs_f64() * 1e3,
            self.mean_waiting,
            self.max_running,
            self.commits,
            match self.duplicates {
                0 => String::new(),
                n => format!(", {n} handled twice"),
            }
        )
    }
}

/// The filled topic and what its records allow.
#[derive(Debug)]
struct Topic {
    prefix: String,
    name: String,
    /// Events per key (username), as produced.
    per_key: HashMap<String, u64>,
    /// Per partition, its records' keys (raw key bytes) in offset order.
    keys_by_partition: BTreeMap<i32, Vec<Vec<u8>>>,
}

impl Topic {
    /// The mean number of distinct keys among `window` consecutive records of one
    /// partition, over every such window of the topic (a partition shorter than
    /// `window` counts once, whole).
    fn keys_in_window(&self, window: usize) -> f64 {
        let (mut sum, mut windows) = (0.0, 0usize);
        for keys in self.keys_by_partition.values() {
            if keys.is_empty() {
                continue;
            }
            let size = window.min(keys.len());
            let mut counts: HashMap<&[u8], usize> = HashMap::new();
            for key in &keys[..size] {
                *counts.entry(key).or_default() += 1;
            }
            sum += counts.len() as f64;
            windows += 1;
            for i in size..keys.len() {
                *counts.entry(&keys[i]).or_default() += 1;
                let leaving = keys[i - size].as_slice();
                if let Some(count) = counts.get_mut(leaving) {
                    *count -= 1;
                    if *count == 0 {
                        counts.remove(leaving);
                    }
                }
                sum += counts.len() as f64;
                windows += 1;
            }
        }
        sum / windows.max(1) as f64
    }

    /// Distinct keys per partition.
    fn keys_per_partition(&self) -> Vec<(i32, usize)> {
        self.keys_by_partition
            .iter()
            .map(|(partition, keys)| {
                let distinct: std::collections::HashSet<&Vec<u8>> = keys.iter().collect();
                (*partition, distinct.len())
            })
            .collect()
    }
}

struct Bench {
    settings: Settings,
    broker: KafkaCluster,
    registry: EmbeddedRegistry,
}

fn main() -> ExitCode {
    run_benchmark("key_ordered_concurrency", bench_main)
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
        let started = Instant::now();
        let topic = self.fill().await?;
        let keys: Vec<String> = topic
            .keys_per_partition()
            .iter()
            .map(|(p, k)| format!("p{p} {k}"))
            .collect();
        eprintln!(
            "topic {}: {} events filled and read back in {:.1} s; keys per partition: {}",
            topic.name,
            s.events,
            started.elapsed().as_secs_f64(),
            keys.join(", ")
        );
        if s.warm_up {
            if let Some(&largest) = s.in_flight.iter().max() {
                let run = self.run_once(&topic, largest, s.wait).await?;
                eprintln!(
                    "  warm-up max_in_flight {largest:>4}          {} (discarded)",
                    run.describe()
                );
            }
        }
        let mut runs = Vec::new();
        let rounds = s
            .in_flight
            .iter()
            .map(|&m| s.rounds_of(m))
            .max()
            .unwrap_or(1);
        for round in 0..rounds {
            let mut order = s.in_flight.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            for in_flight in order.into_iter().filter(|&m| round < s.rounds_of(m)) {
                let run = self.run_once(&topic, in_flight, s.wait).await?;
                eprintln!(
                    "  max_in_flight {in_flight:>4} round {}       {}",
                    round + 1,
                    run.describe()
                );
                runs.push(run);
            }
        }
        if s.ceiling && !s.wait.is_zero() {
            for &in_flight in &s.in_flight {
                let run = self.run_once(&topic, in_flight, Duration::ZERO).await?;
                eprintln!(
                    "  max_in_flight {in_flight:>4} no wait       {}",
                    run.describe()
                );
                runs.push(run);
            }
        }
        println!("{}", self.report(&topic, &runs));
        Ok(())
    }

    fn header(&self) -> String {
        let s = &self.settings;
        format!(
            "key-ordered concurrency: SDK EventConsumer, one receiver waiting {} ms (tokio::time::sleep)\n\
             {} events over {} keys (round-robin) on {} partitions; max_in_flight {:?}; \
             {} rounds above 1, {} at 1{}{}\n\
             broker: Apache Kafka {} (KRaft, 1 node, heap {BROKER_HEAP_MB} MiB) at {}; registry: embedded; \
             librdkafka {}; load average {} on {} CPUs",
            s.wait.as_millis(),
            s.events,
            s.keys,
            s.partitions,
            s.in_flight,
            s.rounds,
            s.serial_rounds,
            if s.warm_up { " (+1 warm-up)" } else { "" },
            if s.ceiling { "; + one no-wait run per setting" } else { "" },
            self.broker.version(),
            self.broker.bootstrap_servers(),
            rdkafka::util::get_rdkafka_version().1,
            load_average(),
            std::thread::available_parallelism().map_or(0, usize::from),
        )
    }

    /// The options of every client here; the broker's minimum session timeout (as the
    /// testkit's consumers), so a member of a failed run leaves its group within
    /// seconds.
    fn kafka(&self) -> KafkaConfig {
        KafkaConfig::new(self.broker.bootstrap_servers()).with_option("session.timeout.ms", "6000")
    }

    /// Creates the topic, fills it round-robin over the keys through the SDK, and
    /// reads it back.
    async fn fill(&self) -> BenchResult<Topic> {
        let s = &self.settings;
        let prefix = unique_topic("kbench");
        let name = format!("{prefix}-{}", SessionLoginCompleted::TOPIC);
        self.broker.create_topic(&name, s.partitions).await?;
        let kafka = self
            .kafka()
            .with_option("linger.ms", "5")
            .with_option("batch.num.messages", "10000")
            .with_option(
                "queue.buffering.max.messages",
                (s.events + 1).max(100_000).to_string(),
            );
        let config = ProducerConfig::new(kafka, RegistryConfig::new(self.registry.url()))
            .with_service_name("key-order-bench")
            .with_topic_prefix(prefix.clone())
            .with_delivery_timeout(DELIVERY_TIMEOUT);
        let producer = Producer::new(config)?;
        let mut per_key: HashMap<String, u64> = HashMap::new();
        for n in 0..s.events {
            let username = username(n % s.keys);
            let sequence = per_key.entry(username.clone()).or_default();
            let mut user = UserData::example();
            user.id = i64::try_from(*sequence)?;
            user.pii.username = username;
            *sequence += 1;
            producer.enqueue(&SessionLoginCompleted { user }).await?;
        }
        producer.flush(DELIVERY_TIMEOUT).await?;
        if producer.in_flight() != 0 {
            return Err(format!("{} events in flight after flush", producer.in_flight()).into());
        }
        let (servers, topic, expected) = (
            self.broker.bootstrap_servers().to_owned(),
            name.clone(),
            s.events,
        );
        let records = tokio::task::spawn_blocking(move || {
            read_topic(&servers, &topic, expected, DELIVERY_TIMEOUT)
        })
        .await??;
        if records.len() != s.events {
            return Err(format!(
                "{name}: {} records read back, {} produced",
                records.len(),
                s.events
            )
            .into());
        }
        let mut keys_by_partition: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
        for record in &records {
            keys_by_partition
                .entry(record.partition())
                .or_default()
                .push(record.key().unwrap_or_default().to_vec());
        }
        Ok(Topic {
            prefix,
            name,
            per_key,
            keys_by_partition,
        })
    }

    /// One run in a fresh group at `in_flight`, the receiver waiting `wait`.
    async fn run_once(&self, topic: &Topic, in_flight: usize, wait: Duration) -> BenchResult<Run> {
        let events = self.settings.events;
        let group = unique_group(&format!("kbench-{in_flight}"));
        let probe = Arc::new(Probe::new(events, wait));
        let mut bus = EventBus::new();
        let receiver_probe = Arc::clone(&probe);
        bus.connect_async("waits", move |event: Arc<SessionLoginCompleted>, _ctx| {
            let probe = Arc::clone(&receiver_probe);
            async move {
                probe.receive(&event).await;
                Ok(())
            }
        })?;
        let mut config = ConsumerConfig::new(
            self.kafka(),
            RegistryConfig::new(self.registry.url()),
            group.clone(),
            [SessionLoginCompleted::TOPIC],
        )
        .with_topic_prefix(topic.prefix.clone());
        config.max_in_flight = in_flight;
        let consumer = EventConsumer::new(config, Arc::new(bus))?;
        let live = consumer.stats();
        let (trigger, shutdown) = Shutdown::new();
        let side_timer = (!wait.is_zero()).then(|| {
            let probe = Arc::clone(&probe);
            tokio::spawn(async move { probe.side_timer().await })
        });
        let task = tokio::spawn(consumer.run(shutdown));
        let all_handled = tokio::time::timeout(RUN_TIMEOUT, probe.all_handled.notified()).await;
        if let Some(side_timer) = side_timer {
            side_timer.abort();
        }
        // The receiver returned for the last event; let the loop mark it done, then stop.
        let handled_deadline = Instant::now() + Duration::from_secs(10);
        while live.snapshot().records_handled < events as u64 && Instant::now() < handled_deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        trigger.trigger();
        let snapshot = task.await??;
        let (duplicates, violations, shown) =
            probe.with_order(|o| (o.duplicates, o.violations, o.shown.clone()));
        if violations > 0 {
            return Err(format!(
                "max_in_flight {in_flight}: key order broken {violations} times, e.g. {}",
                shown.join("; ")
            )
            .into());
        }
        if all_handled.is_err() || snapshot.records_handled < events as u64 {
            return Err(format!(
                "max_in_flight {in_flight}: {} of {events} events handled in key order, \
                 the consumer counted {} ({} dead-lettered, {} skipped)",
                probe.handled(),
                snapshot.records_handled,
                snapshot.records_dead_lettered,
                snapshot.records_skipped
            )
            .into());
        }
        self.check_every_key(topic, &probe, in_flight)?;
        check_committed(&self.kafka(), &group, &topic.name, self.settings.events).await?;
        let window = probe.window();
        let first_start = probe.first_start.load(Ordering::Relaxed);
        Ok(Run {
            in_flight,
            ceiling: wait.is_zero() && !self.settings.wait.is_zero(),
            rate: events as f64 / window.as_secs_f64().max(f64::EPSILON),
            window,
            join: Duration::from_nanos(first_start),
            mean_wait: probe.mean_wait(),
            mean_waiting: probe.mean_waiting(),
            max_running: probe.running_max.load(Ordering::Relaxed),
            duplicates,
            commits: snapshot.commits,
            mean_gap: probe.mean_gap(),
            side_wait: probe.side_wait(),
            sched: probe.sched_window(),
        })
    }

    /// Every key reached its last event: none is missing.
    fn check_every_key(&self, topic: &Topic, probe: &Probe, in_flight: usize) -> BenchResult<()> {
        let missing: Vec<String> = probe.with_order(|order| {
            topic
                .per_key
                .iter()
                .filter(|(key, count)| order.next_of(key) != **count)
                .take(VIOLATIONS_SHOWN)
                .map(|(key, count)| format!("{key}: {} of {count}", order.next_of(key)))
                .collect()
        });
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "max_in_flight {in_flight}: keys not handled to their end: {}",
                missing.join(", ")
            )
            .into())
        }
    }

    fn report(&self, topic: &Topic, runs: &[Run]) -> String {
        let s = &self.settings;
        let with_wait = |m: usize| -> Vec<&Run> {
            runs.iter()
                .filter(|r| !r.ceiling && r.in_flight == m)
                .collect()
        };
        // The median over the measured runs of `m` of what `f` takes from a run.
        let med = |m: usize, f: &dyn Fn(&Run) -> Option<f64>| -> f64 {
            median(&with_wait(m).into_iter().filter_map(f).collect::<Vec<_>>())
        };
        let rate_of = |m: usize| med(m, &|r| Some(r.rate));
        let wait_of = |m: usize| med(m, &|r| Some(r.mean_wait.as_secs_f64()));
        let waiting_of = |m: usize| med(m, &|r| Some(r.mean_waiting));
        let serial = rate_of(1);
        let mut out = format!(
            "\nreceiver waits {} ms; ratio = median events/s / median at max_in_flight 1 ({serial:.0} events/s)\n\
             {:>13}  {:>10}  {:>8}  {:>10}  {:>9}  {:>11}  {:>10}  {:>8}  {:>13}  runs (events/s)\n",
            s.wait.as_millis(),
            "max_in_flight",
            "events/s",
            "ratio",
            "wait (ms)",
            "waiting",
            "keys/window",
            "ideal ev/s",
            "of ideal",
            "no-wait ev/s",
        );
        for &m in &s.in_flight {
            let (rate, wait, waiting) = (rate_of(m), wait_of(m), waiting_of(m));
            let keys = topic.keys_in_window(m);
            let ideal = (m as f64).min(keys) / wait;
            let ceiling = runs
                .iter()
                .find(|r| r.ceiling && r.in_flight == m)
                .map_or_else(|| "-".to_owned(), |r| format!("{:.0}", r.rate));
            let each: Vec<String> = with_wait(m)
                .iter()
                .map(|r| format!("{:.0}", r.rate))
                .collect();
            out.push_str(&format!(
                "{m:>13}  {rate:>10.0}  {:>8.1}  {:>10.3}  {waiting:>9.1}  {keys:>11.1}  {ideal:>10.0}  {:>8.3}  {ceiling:>13}  {}\n",
                rate / serial,
                wait * 1e3,
                rate / ideal,
                each.join(", "),
            ));
        }
        out.push_str(&format!(
            "\nwhere the time goes (medians): {:>13}  {:>14}  {:>13}  {:>9}  {:>12}  {:>13}  {:>12}\n",
            "max_in_flight",
            "side wait (ms)",
            "key idle (ms)",
            "CPU used",
            "CPU waited",
            "busiest ran",
            "busiest wait"
        ));
        for &m in &s.in_flight {
            let sched = |f: &dyn Fn(&SchedWindow) -> f64| med(m, &|r| r.sched.as_ref().map(f));
            out.push_str(&format!(
                "{:>30}  {m:>13}  {:>14.3}  {:>13.3}  {:>9.2}  {:>12.2}  {:>12.0}%  {:>11.0}%\n",
                "",
                med(m, &|r| Some(r.side_wait.as_secs_f64())) * 1e3,
                med(m, &|r| Some(r.mean_gap.as_secs_f64())) * 1e3,
                sched(&|w| w.cores_used),
                sched(&|w| w.cores_waited),
                sched(&|w| w.busiest.1) * 100.0,
                sched(&|w| w.busiest.2) * 100.0,
            ));
        }
        if let (Some(&top), true) = (s.in_flight.iter().max(), s.in_flight.contains(&1)) {
            let ratio = rate_of(top) / serial;
            // events/s = receivers waiting at once / mean wait, so the ratio splits in two.
            out.push_str(&format!(
                "\ntarget: max_in_flight {top} ≥ {TARGET_RATIO:.0}× max_in_flight 1: {ratio:.1}× — {}\n\
                 the ratio is (receivers waiting at once: {:.1} against {:.1}, of {:.1} keys/window) × \
                 (mean wait: {:.3} ms against {:.3} ms) = {:.1} × {:.3}\n",
                if ratio >= TARGET_RATIO { "met" } else { "not met" },
                waiting_of(top),
                waiting_of(1),
                topic.keys_in_window(top),
                wait_of(top) * 1e3,
                wait_of(1) * 1e3,
                waiting_of(top) / waiting_of(1),
                wait_of(1) / wait_of(top),
            ));
        }
        out.push_str(&format!(
            "waiting: receivers waiting at once, on average (total wait / window); keys/window: mean distinct keys among \
             max_in_flight consecutive records of a partition; ideal: min(max_in_flight, keys/window) / wait\n\
             side wait: a task of its own sleeping the same wait meanwhile; key idle: mean time from the end of a key's \
             event to the start of its next; CPU used / waited: CPUs' worth of time the process's threads ran / were \
             runnable but not running (/proc schedstat), over the window; busiest: the thread that ran most\n\
             load average {} at the end",
            load_average()
        ));
        out
    }
}
