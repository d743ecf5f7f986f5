//! `event-bus dev` from the example application's binary: another process (this test)
//! registers a schema with the printed registry URL and produces and consumes a record
//! through the printed bootstrap servers with plain rdkafka; SIGTERM or Ctrl-C stops
//! the stack with exit code 0. Also its `--help`, bad options, taken ports, and the
//! error of a binary built without the dev stack.

use std::error::Error;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value as AvroValue;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::{json, Value};

type TestResult = Result<(), Box<dyn Error>>;

const BIN: &str = env!("CARGO_BIN_EXE_event-bus");
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const CONSUME_TIMEOUT: Duration = Duration::from_secs(60);

const PING_SCHEMA: &str = r#"{
  "type": "record",
  "name": "DevPing",
  "namespace": "org.example.dev",
  "fields": [{"name": "message", "type": "string"}]
}"#;

/// A running `event-bus dev` process; killed on drop if a test fails before it stops it.
struct DevProcess {
    child: Child,
    stdout: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    seen: Vec<String>,
}

/// What `event-bus dev` printed for other processes to use.
struct Addresses {
    bootstrap_servers: String,
    registry_url: String,
}

impl DevProcess {
    fn start(args: &[&str]) -> Result<Self, Box<dyn Error>> {
        let mut child = Command::new(BIN)
            .arg("dev")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            text
        });
        Ok(DevProcess {
            child,
            stdout: lines_rx,
            stderr: Some(stderr),
            seen: Vec::new(),
        })
    }

    /// Reads stdout until both `export` lines have been printed.
    fn addresses(&mut self) -> Result<Addresses, Box<dyn Error>> {
        let deadline = Instant::now() + START_TIMEOUT;
        let (mut bootstrap_servers, mut registry_url) = (None, None);
        while bootstrap_servers.is_none() || registry_url.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.stdout.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "no addresses within {START_TIMEOUT:?}; stdout: {:?}",
                        self.seen
                    )
                    .into())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait()?;
                    let stderr = self.stderr_text();
                    return Err(format!(
                        "`event-bus dev` exited ({status}) before printing its addresses; \
                         stdout: {:?}; stderr: {stderr}",
                        self.seen
                    )
                    .into());
                }
            };
            if let Some(value) = line.strip_prefix("export EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS=") {
                bootstrap_servers = Some(value.to_owned());
            }
            if let Some(value) = line.strip_prefix("export EVENT_BUS_SCHEMA_REGISTRY_URL=") {
                registry_url = Some(value.to_owned());
            }
            self.seen.push(line);
        }
        Ok(Addresses {
            bootstrap_servers: bootstrap_servers.ok_or("no bootstrap servers")?,
            registry_url: registry_url.ok_or("no registry URL")?,
        })
    }

    /// Sends `signal` (`TERM`, `INT`) and waits for the process to exit.
    fn stop_with(&mut self, signal: &str) -> Result<ExitStatus, Box<dyn Error>> {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()?;
        if !sent.success() {
            return Err(format!("`kill -{signal}` failed: {sent}").into());
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.seen.extend(self.stdout.try_iter());
                // The reader thread ends at EOF; pick up lines it sent meanwhile.
                while let Ok(line) = self.stdout.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "`event-bus dev` still running {STOP_TIMEOUT:?} after SIG{signal}"
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr_text(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Registers the ping schema under `subject` over HTTP; returns its id after reading
/// it back by id.
async fn register_schema(registry_url: &str, subject: &str) -> Result<u32, Box<dyn Error>> {
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{registry_url}/subjects/{subject}/versions"))
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .body(json!({ "schema": PING_SCHEMA }).to_string())
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    assert_eq!(status, reqwest::StatusCode::OK, "register answered {body}");
    let id = body["id"].as_u64().ok_or("no id in the answer")?;
    let id = u32::try_from(id)?;

    let stored: Value = http
        .get(format!("{registry_url}/schemas/ids/{id}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let stored = stored["schema"].as_str().ok_or("no schema in the answer")?;
    assert_eq!(Schema::parse_str(stored)?, Schema::parse_str(PING_SCHEMA)?);
    Ok(id)
}

/// Produces one Confluent-framed Avro record to a new topic through
/// `bootstrap_servers` and consumes it back in a consumer group; checks value,
/// key and header.
async fn produce_and_consume(bootstrap_servers: &str, schema_id: u32) -> TestResult {
    let topic = unique("dev-stack");
    let schema = Schema::parse_str(PING_SCHEMA)?;
    let datum = AvroValue::Record(vec![(
        "message".to_owned(),
        AvroValue::String("hello from another process".to_owned()),
    )]);
    let mut value = vec![0u8];
    value.extend_from_slice(&schema_id.to_be_bytes());
    value.extend(
        GenericDatumWriter::builder(&schema)
            .build()?
            .write_value_to_vec(datum.clone())?,
    );

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("message.timeout.ms", "30000")
        .create()?;
    let headers = OwnedHeaders::new().insert(Header {
        key: "ce_type",
        value: Some("org.example.dev.ping.sent.v1"),
    });
    let delivered = producer
        .send(
            FutureRecord::to(&topic)
                .key("ping-1")
                .payload(&value)
                .headers(headers),
            Duration::from_secs(30),
        )
        .await;
    let (partition, offset) = match delivered {
        Ok(delivery) => (delivery.partition, delivery.offset),
        Err((error, _)) => return Err(format!("produce to {topic} failed: {error}").into()),
    };

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", unique("dev-stack-group"))
        .set("session.timeout.ms", "6000")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[&topic])?;
    let message = tokio::time::timeout(CONSUME_TIMEOUT, consumer.recv())
        .await
        .map_err(|_| format!("nothing consumed from {topic} within {CONSUME_TIMEOUT:?}"))??;
    assert_eq!((message.partition(), message.offset()), (partition, offset));
    assert_eq!(message.key(), Some(&b"ping-1"[..]));
    let header = message
        .headers()
        .and_then(|headers| headers.iter().find(|header| header.key == "ce_type"))
        .and_then(|header| header.value)
        .ok_or("no ce_type header")?;
    assert_eq!(header, b"org.example.dev.ping.sent.v1");

    let payload = message.payload().ok_or("no payload")?;
    assert!(payload.len() > 5, "payload too short: {payload:?}");
    assert_eq!(payload[0], 0, "Confluent magic byte");
    assert_eq!(payload[1..5], schema_id.to_be_bytes(), "schema id");
    let decoded = GenericDatumReader::builder(&schema)
        .build()?
        .read_value(&mut &payload[5..])?;
    assert_eq!(decoded, datum);
    Ok(())
}

#[tokio::test]
async fn dev_stack_serves_kafka_and_registry_until_sigterm() -> TestResult {
    let mut dev = DevProcess::start(&[])?;
    let addresses = dev.addresses()?;
    assert!(
        addresses.bootstrap_servers.starts_with("127.0.0.1:"),
        "{}",
        addresses.bootstrap_servers
    );
    assert!(
        addresses.registry_url.starts_with("http://127.0.0.1:"),
        "{}",
        addresses.registry_url
    );

    let subject = format!("{}-org.example.dev.DevPing", unique("dev-stack"));
    let schema_id = register_schema(&addresses.registry_url, &subject).await?;
    produce_and_consume(&addresses.bootstrap_servers, schema_id).await?;

    let status = dev.stop_with("TERM")?;
    let stderr = dev.stderr_text();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status}; stderr: {stderr}"
    );
    let banner = dev.seen.join("\n");
    assert!(banner.contains("not for production"), "{banner}");
    assert!(banner.contains("Ctrl-C"), "{banner}");
    assert!(banner.contains("stopped"), "no stop message in {banner}");
    // Stopped means stopped: the registry no longer answers.
    assert!(reqwest::get(format!("{}/subjects", addresses.registry_url))
        .await
        .is_err());
    Ok(())
}

#[tokio::test]
async fn fixed_ports_three_brokers_and_ctrl_c() -> TestResult {
    let kafka_port = event_bus_testkit::ports::free_loopback_port()?;
    let registry_port = event_bus_testkit::ports::free_loopback_port()?;
    let mut dev = DevProcess::start(&[
        "--brokers",
        "3",
        "--kafka-port",
        &kafka_port.to_string(),
        "--registry-port",
        &registry_port.to_string(),
        "--topic",
        "dev-stack-precreated:2",
    ])?;
    let addresses = dev.addresses()?;
    assert_eq!(
        addresses.bootstrap_servers,
        format!("127.0.0.1:{kafka_port}")
    );
    assert_eq!(
        addresses.registry_url,
        format!("http://127.0.0.1:{registry_port}")
    );
    let banner = dev.seen.join("\n");
    assert!(banner.contains("3 brokers"), "{banner}");

    let subject = format!("{}-org.example.dev.DevPing", unique("dev-stack"));
    let schema_id = register_schema(&addresses.registry_url, &subject).await?;
    produce_and_consume(&addresses.bootstrap_servers, schema_id).await?;

    // The pre-created topic exists with its partition count before any producer asks.
    let bootstrap = addresses.bootstrap_servers.clone();
    let partitions = tokio::task::spawn_blocking(move || -> Result<usize, String> {
        let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("allow.auto.create.topics", "false")
            .create()
            .map_err(|e| e.to_string())?;
        let metadata = consumer
            .fetch_metadata(Some("dev-stack-precreated"), Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        Ok(metadata
            .topics()
            .first()
            .map_or(0, |topic| topic.partitions().len()))
    })
    .await??;
    assert_eq!(partitions, 2);

    let status = dev.stop_with("INT")?;
    let stderr = dev.stderr_text();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status}; stderr: {stderr}"
    );
    // Both fixed ports are free again.
    std::net::TcpListener::bind(("127.0.0.1", kafka_port))?;
    std::net::TcpListener::bind(("127.0.0.1", registry_port))?;
    Ok(())
}

#[test]
fn dev_help_documents_the_stack() -> TestResult {
    let output = Command::new(BIN).args(["dev", "--help"]).output()?;
    let help = String::from_utf8(output.stdout)?;
    assert_eq!(output.status.code(), Some(0), "{help}");
    for expected in [
        "--brokers",
        "--kafka-port",
        "--registry-port",
        "--topic",
        "mock Kafka cluster",
        "schema registry",
        "Ctrl-C",
        "development tool",
        "Production uses a real Kafka cluster",
        "export EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
        "no setting for a fixed mock broker port",
    ] {
        assert!(
            help.contains(expected),
            "`dev --help` lacks {expected:?}:\n{help}"
        );
    }

    let output = Command::new(BIN).arg("--help").output()?;
    let help = String::from_utf8(output.stdout)?;
    assert!(help.contains("dev"), "{help}");
    Ok(())
}

#[test]
fn bad_dev_options_are_usage_errors() -> TestResult {
    let output = Command::new(BIN).args(["dev", "--brokers", "0"]).output()?;
    let stderr = String::from_utf8(output.stderr)?;
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--brokers"), "{stderr}");

    let output = Command::new(BIN).args(["dev", "--no-such-flag"]).output()?;
    let stderr = String::from_utf8(output.stderr)?;
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
    Ok(())
}

#[test]
fn a_taken_port_fails_to_start_with_the_reason() -> TestResult {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = taken.local_addr()?.port().to_string();
    for flag in ["--kafka-port", "--registry-port"] {
        let output = Command::new(BIN).args(["dev", flag, &port]).output()?;
        let stderr = String::from_utf8(output.stderr)?;
        assert_eq!(output.status.code(), Some(3), "{flag}: {stderr}");
        assert!(
            stderr.contains(&format!("127.0.0.1:{port}")),
            "{flag}: {stderr}"
        );
        assert!(stderr.to_lowercase().contains("in use"), "{flag}: {stderr}");
    }
    Ok(())
}

#[tokio::test]
async fn json_output_is_passed_to_the_stack() -> TestResult {
    let mut child = Command::new(BIN)
        .args(["--output", "json", "dev"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().ok_or("no output")??;
    let running: Value = serde_json::from_str(&first)?;
    assert_eq!(running["status"], "running", "{first}");
    let registry_url = running["schema_registry_url"].as_str().ok_or("no URL")?;
    let subjects: Value = reqwest::get(format!("{registry_url}/subjects"))
        .await?
        .json()
        .await?;
    assert_eq!(subjects, json!([]));

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    let last = lines.next().ok_or("no stop line")??;
    let stopped: Value = serde_json::from_str(&last)?;
    assert_eq!(stopped["status"], "stopped", "{last}");
    assert_eq!(child.wait()?.code(), Some(0));
    Ok(())
}

#[tokio::test]
async fn without_the_hook_dev_says_how_to_build_it() -> TestResult {
    use event_bus_kafka::cli::dev::DevArgs;
    use event_bus_kafka::cli::{exit_code, run_with, Cli, CliContext, CliError, Command};

    let cli = Cli {
        output: Default::default(),
        command: Command::Dev(DevArgs { args: Vec::new() }),
    };
    let mut out = Vec::new();
    let err = run_with(cli, &CliContext::default(), &mut out)
        .await
        .err()
        .ok_or("`dev` without a hook succeeded")?;
    assert!(matches!(err, CliError::Dev(_)), "{err:?}");
    assert_eq!(err.exit_code(), exit_code::ERROR);
    let message = err.to_string();
    assert!(
        message.contains("App::new().with_dev(event_bus_testkit::dev::run)"),
        "{message}"
    );
    assert!(out.is_empty());

    // The same through the SDK's plain entry point, which has no dev stack.
    let code = event_bus_kafka::cli::run_from_args(["event-bus", "dev"]).await;
    assert_eq!(code, std::process::ExitCode::from(exit_code::ERROR));
    Ok(())
}
