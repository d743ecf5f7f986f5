//! What the benchmarks under `benches/` share: running only under `cargo bench`, their
//! own broker and runtime, reading their `BENCH_*` settings, and summing up rounds.

use std::error::Error;
use std::process::ExitCode;
use std::str::FromStr;

use event_bus_testkit::kafka::{KafkaCluster, KafkaClusterOptions};

/// What a benchmark's body returns.
pub type BenchResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Maximum heap of a benchmark's broker JVM, in MiB.
pub const BROKER_HEAP_MB: u32 = 1024;

/// A benchmark's own Apache Kafka node (KRaft, heap [`BROKER_HEAP_MB`]; not the test
/// run's shared one) and the multi-thread runtime the benchmark's body runs in. The
/// node starts before the runtime, so no async worker waits for it.
///
/// ```no_run
/// use event_bus_tests::bench_support::{broker_and_runtime, run_benchmark};
///
/// fn main() -> std::process::ExitCode {
///     run_benchmark("my_throughput", || {
///         let (broker, runtime) = broker_and_runtime()?;
///         runtime.block_on(async { println!("{}", broker.bootstrap_servers()) });
///         Ok(())
///     })
/// }
/// ```
pub fn broker_and_runtime() -> BenchResult<(KafkaCluster, tokio::runtime::Runtime)> {
    let broker =
        KafkaCluster::start_with(KafkaClusterOptions::nodes(1).with_heap_mb(BROKER_HEAP_MB))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok((broker, runtime))
}

/// Runs `body` if cargo bench started the process (it passes `--bench`) and turns its
/// result into the exit code, printing the error as `{name} failed: …`. Without
/// `--bench` (`cargo test --all-targets` runs every harness-less target) it says how
/// to run the benchmark and succeeds; with `--list` (`cargo nextest list`) it lists no
/// tests and succeeds. Neither starts anything.
///
/// ```no_run
/// use event_bus_tests::bench_support::run_benchmark;
///
/// fn main() -> std::process::ExitCode {
///     run_benchmark("my_throughput", || {
///         println!("measuring…");
///         Ok(())
///     })
/// }
/// ```
pub fn run_benchmark(name: &str, body: impl FnOnce() -> BenchResult<()>) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    if !args.iter().any(|a| a == "--bench") {
        eprintln!(
            "{name} is a benchmark; run it with `cargo bench -p event-bus-tests --bench {name}`"
        );
        return ExitCode::SUCCESS;
    }
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name} failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The value of the environment variable `name` parsed as a `T`, or `default` when it
/// is unset or blank; an error naming the variable when it does not parse.
///
/// ```
/// use event_bus_tests::bench_support::env_number;
///
/// assert_eq!(env_number("BENCH_DOC_UNSET_VARIABLE", 5_usize).unwrap(), 5);
/// std::env::set_var("BENCH_DOC_ROUNDS", "x");
/// assert!(env_number("BENCH_DOC_ROUNDS", 3_usize).unwrap_err().contains("BENCH_DOC_ROUNDS"));
/// ```
pub fn env_number<T: FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .map_err(|_| format!("{name}=`{value}` is not a whole number")),
        _ => Ok(default),
    }
}

/// The comma-separated list in the environment variable `name`, each item through
/// `parse` (`None`: not valid, the error names the item and says what `expected`
/// is), or `default` when it is unset or blank.
///
/// ```
/// use event_bus_tests::bench_support::env_list;
///
/// std::env::set_var("BENCH_DOC_COUNTS", "1, 64");
/// let counts = env_list("BENCH_DOC_COUNTS", vec![1], |n| n.parse::<usize>().ok(), "a number");
/// assert_eq!(counts.unwrap(), vec![1, 64]);
/// std::env::set_var("BENCH_DOC_COUNTS", "1,many");
/// let error = env_list("BENCH_DOC_COUNTS", vec![1], |n| n.parse::<usize>().ok(), "a number");
/// assert_eq!(error.unwrap_err(), "BENCH_DOC_COUNTS: `many` is not a number");
/// ```
pub fn env_list<T>(
    name: &str,
    default: Vec<T>,
    parse: impl Fn(&str) -> Option<T>,
    expected: &str,
) -> Result<Vec<T>, String> {
    match std::env::var(name) {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|item| {
                let item = item.trim();
                parse(item).ok_or_else(|| format!("{name}: `{item}` is not {expected}"))
            })
            .collect(),
        _ => Ok(default),
    }
}

/// The median of `values` (the mean of the middle two for an even count; NaN for
/// none).
///
/// ```
/// use event_bus_tests::bench_support::median;
///
/// assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
/// assert!(median(&[]).is_nan());
/// ```
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The 1-minute load average from `/proc/loadavg`, or `?` where there is none.
///
/// ```
/// let load = event_bus_tests::bench_support::load_average();
/// assert!(load == "?" || load.parse::<f64>().is_ok());
/// ```
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// Checks that consumer group `group` committed `expected` records of `topic` in all
/// (the sum of its committed offsets, a partition without one counting 0): a run
/// that claims commit-after-success really committed everything it handled.
///
/// ```no_run
/// # async fn demo() -> event_bus_tests::bench_support::BenchResult<()> {
/// let kafka = event_bus_kafka::config::KafkaConfig::new("127.0.0.1:9092");
/// event_bus_tests::bench_support::check_committed(&kafka, "bench-group", "bench-topic", 10_000).await?;
/// # Ok(()) }
/// ```
pub async fn check_committed(
    kafka: &event_bus_kafka::config::KafkaConfig,
    group: &str,
    topic: &str,
    expected: usize,
) -> BenchResult<()> {
    let admin = event_bus_kafka::replay::OffsetAdmin::new(kafka, group)?;
    let committed: i64 = admin
        .offsets(&[topic.to_owned()])
        .await?
        .iter()
        .map(|p| p.committed.unwrap_or(0))
        .sum();
    if committed != expected as i64 {
        return Err(format!(
            "group {group} committed {committed} records, {expected} were handled"
        )
        .into());
    }
    Ok(())
}
