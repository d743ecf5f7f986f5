//! Runs an Apache Kafka test cluster until it is told to stop: the one `scripts/test`
//! shares between all the tests of a run, or one for local work.
//!
//! ```text
//! cargo run -p event-bus-testkit --bin kafka-cluster -- [--nodes N] [--heap-mb MB] [--ready-file PATH]
//! ```
//!
//! Prints `EVENT_BUS_TEST_KAFKA_BOOTSTRAP_SERVERS=…` once every node is a registered
//! broker (and writes the address to `--ready-file`, when given), then runs until
//! SIGINT or SIGTERM, or until its standard input closes when `--stop-on-stdin-eof`
//! is given. The nodes die with it, however it ends.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use event_bus_testkit::kafka::{KafkaCluster, KafkaClusterOptions, SHARED_CLUSTER_ENV};

/// Runs an Apache Kafka test cluster (KRaft nodes from the jars scripts/install-test-deps
/// fetched) until SIGINT or SIGTERM.
#[derive(Debug, Parser)]
#[command(name = "kafka-cluster")]
struct Args {
    /// How many nodes (each broker and controller).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=9))]
    nodes: u16,
    /// Maximum heap of each node's JVM, in MiB.
    #[arg(long, default_value_t = 768)]
    heap_mb: u32,
    /// Writes the cluster's bootstrap servers to this file once it is ready (written
    /// whole, by rename, so a reader never sees half of it).
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Also stops when standard input reaches its end.
    #[arg(long)]
    stop_on_stdin_eof: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = KafkaClusterOptions::nodes(usize::from(args.nodes)).with_heap_mb(args.heap_mb);
    let cluster = match KafkaCluster::start_with(options) {
        Ok(cluster) => cluster,
        Err(error) => {
            eprintln!("kafka-cluster: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The ready file first: whoever reads the printed lines may look for it at once.
    if let Some(path) = &args.ready_file {
        let tmp = path.with_extension("tmp");
        let written = std::fs::write(&tmp, format!("{}\n", cluster.bootstrap_servers()))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(error) = written {
            eprintln!("kafka-cluster: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!(
        "Apache Kafka {} (KRaft, {} node(s)) in {}",
        cluster.version(),
        cluster.node_count(),
        cluster
            .dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    );
    println!("{SHARED_CLUSTER_ENV}={}", cluster.bootstrap_servers());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kafka-cluster: cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(wait_for_stop(args.stop_on_stdin_eof));
    // The standard-input reader is a blocking task that may never end; do not wait for it.
    runtime.shutdown_background();
    drop(cluster);
    println!("kafka-cluster: stopped");
    ExitCode::SUCCESS
}

async fn wait_for_stop(stop_on_stdin_eof: bool) {
    use tokio::io::AsyncReadExt;
    use tokio::signal::unix::{signal, SignalKind};

    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(error) => {
            eprintln!("kafka-cluster: cannot watch SIGTERM ({error}); stop it with SIGINT");
            return std::future::pending::<()>().await;
        }
    };
    let stdin_closed = async {
        if !stop_on_stdin_eof {
            return std::future::pending::<()>().await;
        }
        let mut stdin = tokio::io::stdin();
        let mut buffer = [0_u8; 64];
        while let Ok(n) = stdin.read(&mut buffer).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
        () = stdin_closed => {}
    }
}
