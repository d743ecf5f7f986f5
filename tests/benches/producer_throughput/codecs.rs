//! Mode (c), the codec dimension: the SDK's `Producer` once per compression codec,
//! on realistic Open edX traffic ([`event_bus_tests::traffic`]: logins and
//! enrollments of many learners, each event with its own ids, names, times, `ce_id`).
//!
//! Per codec and round, a fresh pair of topics (the example events' own: user-login
//! and learning-course-enrollment, 3 partitions each as they declare) and a fresh
//! producer with `compression.type` set, warmed up by one send per event type. Two
//! shapes of load:
//!
//! - **burst**: `enqueue` every event, then wait for the acknowledgements and
//!   `flush` (as mode (a)): full batches, the best case for compression.
//! - **trickle**: `send` awaited one event at a time: one record per batch, as a
//!   service emitting a few events per second sends them.
//!
//! Measured in the same run: events/s; the bytes the broker appended to the topics'
//! log segments per event (the partition folders' `.log` files before and after:
//! the record batches as the producer sent them, so this is the payload on the wire
//! without the Produce requests' own framing); the CPU time of this process
//! (producer, encoding, librdkafka's threads) and of the broker's JVM (which checks
//! every compressed batch by decompressing it) per event, from `/proc`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use event_bus_core::Event;
use event_bus_examples::openedx::{CourseEnrollmentCreated, SessionLoginCompleted};
use event_bus_kafka::producer::Producer;
use event_bus_testkit::topics::unique_topic;
use event_bus_tests::proc_stats::broker_pid;
use event_bus_tests::traffic::{openedx_traffic, TrafficEvent};
use rdkafka::admin::AdminOptions;
use rdkafka::config::ClientConfig;

use super::{
    env_number, load_average, median, sdk_config, throughput, wait_until_delivered, Bench,
    BenchResult, DELIVERY_TIMEOUT,
};

/// What mode (c) measures, from `BENCH_CODECS` and `BENCH_TRICKLE_EVENTS`.
#[derive(Debug, Clone)]
pub struct CodecSettings {
    /// Codecs asked for, in order (`none` first for the ratios).
    pub codecs: Vec<String>,
    /// Events per trickle run.
    pub trickle_events: usize,
}

impl CodecSettings {
    pub fn from_env() -> BenchResult<Self> {
        let listed = std::env::var("BENCH_CODECS")
            .unwrap_or_else(|_| "none,lz4,zstd,snappy,gzip".to_owned());
        let mut codecs: Vec<String> = vec!["none".to_owned()];
        for codec in listed.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if !["none", "lz4", "zstd", "snappy", "gzip"].contains(&codec) {
                return Err(format!(
                    "BENCH_CODECS: `{codec}` is not a codec (none, lz4, zstd, snappy, gzip)"
                )
                .into());
            }
            if !codecs.iter().any(|c| c == codec) {
                codecs.push(codec.to_owned());
            }
        }
        Ok(Self {
            codecs,
            trickle_events: env_number("BENCH_TRICKLE_EVENTS", 500)?.max(1),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Burst,
    Trickle,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Burst => "burst",
            Shape::Trickle => "trickle",
        }
    }
}

/// One timed run of one codec.
#[derive(Debug, Clone, Copy)]
struct CodecRun {
    events: usize,
    elapsed: Duration,
    log_bytes: u64,
    client_cpu: Duration,
    broker_cpu: Option<Duration>,
}

impl CodecRun {
    fn rate(&self) -> f64 {
        throughput(self.events, self.elapsed)
    }

    fn bytes_per_event(&self) -> f64 {
        self.log_bytes as f64 / self.events as f64
    }

    fn client_us(&self) -> f64 {
        self.client_cpu.as_secs_f64() * 1e6 / self.events as f64
    }

    fn broker_us(&self) -> Option<f64> {
        self.broker_cpu
            .map(|cpu| cpu.as_secs_f64() * 1e6 / self.events as f64)
    }
}

/// The traffic, and what its records weigh before any framing or compression.
pub struct Traffic {
    events: Vec<TrafficEvent>,
    /// Average key, value and header bytes of one record, encoded by the SDK.
    key: f64,
    value: f64,
    headers: f64,
}

impl Traffic {
    /// `count` events of the traffic, weighed with `encoder_producer`'s encoder.
    pub async fn prepare(count: usize, encoder_producer: &Producer) -> BenchResult<Self> {
        let events = openedx_traffic(count);
        let encoder = encoder_producer.encoder();
        let (mut key, mut value, mut headers) = (0usize, 0usize, 0usize);
        for event in &events {
            let record = match event {
                TrafficEvent::Login(e) => encoder.encode(e, None, None).await?,
                TrafficEvent::Enrollment(e) => encoder.encode(e, None, None).await?,
            };
            key += record.key.as_ref().map_or(0, Vec::len);
            value += record.value.len();
            headers += record
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        }
        let n = events.len().max(1) as f64;
        Ok(Self {
            events,
            key: key as f64 / n,
            value: value as f64 / n,
            headers: headers as f64 / n,
        })
    }
}

/// Runs mode (c) and returns its report.
pub async fn run(bench: &Bench, codec_settings: &CodecSettings) -> BenchResult<String> {
    let features = builtin_features()?;
    let (codecs, missing): (Vec<&str>, Vec<&str>) = codec_settings
        .codecs
        .iter()
        .map(String::as_str)
        .partition(|c| *c == "none" || features.iter().any(|f| f == c));
    let broker_pid = bench.broker.dir().and_then(broker_pid);
    println!(
        "\n(c) codecs: {} (librdkafka builtin.features: {}){}\n    traffic: {} Open edX events per \
         burst run, {} per trickle run, 7 logins : 3 enrollments of 50 000 learners; record \
         before framing: key {:.1} B, value {:.1} B, headers {:.1} B\n    broker CPU: {}",
        codecs.join(", "),
        features.join(","),
        if missing.is_empty() {
            String::new()
        } else {
            format!(
                "; not in this build, skipped: {} (rdkafka feature `zstd` for zstd)",
                missing.join(", ")
            )
        },
        bench.settings.events,
        codec_settings.trickle_events,
        bench.traffic.key,
        bench.traffic.value,
        bench.traffic.headers,
        broker_pid.as_deref().map_or_else(
            || "unknown (not this benchmark's broker)".to_owned(),
            |pid| format!("from /proc/{pid}/stat"),
        ),
    );

    let mut runs: Vec<(&str, Shape, CodecRun)> = Vec::new();
    // Round 0 is a warm-up, discarded.
    for round in 0..=bench.settings.rounds {
        let mut order = codecs.clone();
        let len = order.len();
        order.rotate_left(round % len);
        for shape in [Shape::Burst, Shape::Trickle] {
            for &codec in &order {
                let events = match shape {
                    Shape::Burst => bench.settings.events,
                    Shape::Trickle => codec_settings.trickle_events,
                };
                let events = if round == 0 {
                    events.min(2_000)
                } else {
                    events
                };
                let run = run_once(bench, codec, shape, events, broker_pid.as_deref()).await?;
                eprintln!(
                    "  round {} {:<7} {:<6} {:>9.0} events/s {:>7.1} B/event",
                    round,
                    shape.name(),
                    codec,
                    run.rate(),
                    run.bytes_per_event()
                );
                if round > 0 {
                    runs.push((codec, shape, run));
                }
            }
        }
    }
    Ok(report(&codecs, &runs))
}

/// One run: fresh topics, a fresh producer with `compression.type=codec`, `events`
/// events of the traffic.
async fn run_once(
    bench: &Bench,
    codec: &str,
    shape: Shape,
    events: usize,
    broker_pid: Option<&str>,
) -> BenchResult<CodecRun> {
    let prefix = unique_topic("bench-codec");
    let topics = [
        topic_of::<SessionLoginCompleted>(&prefix),
        topic_of::<CourseEnrollmentCreated>(&prefix),
    ];
    for (topic, partitions) in &topics {
        bench.broker.create_topic(topic, *partitions).await?;
    }
    let mut config = sdk_config(
        &bench.settings,
        bench.broker.bootstrap_servers(),
        &bench.registry.url(),
        &prefix,
    );
    config.kafka = config.kafka.with_option("compression.type", codec);
    let producer = Producer::new(config)?;
    let traffic = &bench.traffic.events[..events.min(bench.traffic.events.len())];
    // Warm-up: registration, metadata and producer id, for both event types.
    for event in traffic.iter().take(10) {
        send(&producer, event).await?;
    }
    let segments: Vec<PathBuf> = match bench.broker.dir() {
        Some(dir) => topics
            .iter()
            .flat_map(|(topic, partitions)| {
                (0..*partitions).map(move |p| dir.join(format!("node-0/data/{topic}-{p}")))
            })
            .collect(),
        None => Vec::new(),
    };
    let bytes_before = log_bytes(&segments);
    let (client_before, broker_before) = (cpu_time("self"), broker_pid.and_then(cpu_time));
    let start = Instant::now();
    match shape {
        Shape::Burst => {
            for event in traffic {
                match event {
                    TrafficEvent::Login(e) => producer.enqueue(e).await?,
                    TrafficEvent::Enrollment(e) => producer.enqueue(e).await?,
                };
            }
            wait_until_delivered(|| producer.in_flight()).await?;
            producer.flush(DELIVERY_TIMEOUT).await?;
        }
        Shape::Trickle => {
            for event in traffic {
                send(&producer, event).await?;
            }
        }
    }
    let elapsed = start.elapsed();
    let client_cpu = cpu_time("self")
        .zip(client_before)
        .map_or(Duration::ZERO, |(after, before)| {
            after.saturating_sub(before)
        });
    let broker_cpu = broker_pid
        .and_then(cpu_time)
        .zip(broker_before)
        .map(|(after, before)| after.saturating_sub(before));
    let log_bytes = log_bytes(&segments).saturating_sub(bytes_before);
    drop(producer);
    let names: Vec<&str> = topics.iter().map(|(t, _)| t.as_str()).collect();
    // Best effort, as in the other modes: a failed deletion loses nothing.
    let _ = bench
        .broker
        .admin()
        .delete_topics(&names, &AdminOptions::new())
        .await;
    Ok(CodecRun {
        events: traffic.len(),
        elapsed,
        log_bytes,
        client_cpu,
        broker_cpu,
    })
}

async fn send(producer: &Producer, event: &TrafficEvent) -> BenchResult<()> {
    match event {
        TrafficEvent::Login(e) => producer.send(e).await?,
        TrafficEvent::Enrollment(e) => producer.send(e).await?,
    };
    Ok(())
}

/// The full topic name of `E` under `prefix` and the partitions `E` declares.
fn topic_of<E: Event>(prefix: &str) -> (String, i32) {
    let partitions = E::TOPIC_SETTINGS.partitions.unwrap_or(1);
    (
        format!("{prefix}-{}", E::TOPIC),
        i32::try_from(partitions).unwrap_or(1),
    )
}

/// The codecs librdkafka was built with (`builtin.features`).
fn builtin_features() -> BenchResult<Vec<String>> {
    let native = ClientConfig::new().create_native_config()?;
    Ok(native
        .get("builtin.features")?
        .split(',')
        .map(str::to_owned)
        .collect())
}

/// Total size of the `.log` segment files in `folders`.
fn log_bytes(folders: &[PathBuf]) -> u64 {
    folders
        .iter()
        .filter_map(|folder| std::fs::read_dir(folder).ok())
        .flatten()
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "log"))
        .filter_map(|entry| entry.metadata().ok())
        .map(|meta| meta.len())
        .sum()
}

/// User plus system CPU time of process `pid` (`self` for this one), from
/// `/proc/{pid}/stat` (Linux; clock ticks of 10 ms, USER_HZ).
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: count fields after it.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

fn report(codecs: &[&str], runs: &[(&str, Shape, CodecRun)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n(c) codecs, medians of {} rounds (ratios against none):",
        runs.iter()
            .filter(|(c, s, _)| *c == "none" && *s == Shape::Burst)
            .count()
    );
    for shape in [Shape::Burst, Shape::Trickle] {
        let _ = writeln!(
            out,
            "\n{:<8} {:<7} {:>12} {:>8} {:>10} {:>7} {:>11} {:>11}   runs (events/s)",
            shape.name(),
            "codec",
            "B/event",
            "ratio",
            "events/s",
            "ratio",
            "client µs/e",
            "broker µs/e"
        );
        let per_codec: BTreeMap<&str, Vec<CodecRun>> = codecs
            .iter()
            .map(|&codec| {
                let of_codec = runs
                    .iter()
                    .filter(|(c, s, _)| *c == codec && *s == shape)
                    .map(|(_, _, r)| *r)
                    .collect();
                (codec, of_codec)
            })
            .collect();
        let med = |codec: &str, value: &dyn Fn(&CodecRun) -> f64| {
            median(&per_codec[codec].iter().map(value).collect::<Vec<_>>())
        };
        let none_bytes = med("none", &CodecRun::bytes_per_event);
        let none_rate = med("none", &CodecRun::rate);
        for &codec in codecs {
            let bytes = med(codec, &CodecRun::bytes_per_event);
            let rate = med(codec, &CodecRun::rate);
            let broker = med(codec, &|r| r.broker_us().unwrap_or(f64::NAN));
            let rates: Vec<String> = per_codec[codec]
                .iter()
                .map(|r| format!("{:.0}", r.rate()))
                .collect();
            let _ = writeln!(
                out,
                "{:<8} {:<7} {:>12.1} {:>8.3} {:>10.0} {:>7.3} {:>11.2} {:>11.2}   {}",
                "",
                codec,
                bytes,
                bytes / none_bytes,
                rate,
                rate / none_rate,
                med(codec, &CodecRun::client_us),
                broker,
                rates.join(" "),
            );
        }
    }
    let _ = writeln!(out, "\nload average at end of (c): {}", load_average());
    out
}
