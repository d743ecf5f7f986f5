//! `/metrics` and `/healthz` from the long-running binaries, against the real broker:
//! `consume_events` and `event-bus outbox relay` serve them (counters move as events go
//! through, health answers with the loop's state), an address already in use stops the
//! command at start with exit code 3 and says what to do, and `off` serves nothing.

use std::collections::HashSet;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use event_bus_core::Event;
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_examples::receivers::{ReceivedLog, RECEIVED_LOG_ENV};
use event_bus_kafka::outbox::{OutboxStore, SqliteOutbox};
use event_bus_kafka::prelude::*;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::ports::free_loopback_port;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use serde_json::Value;
use uuid::Uuid;

/// How long a test waits for anything (a hang is a failure, not a measurement).
const WAIT: Duration = Duration::from_secs(60);
const EXTRA: &str = r#"{"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}"#;
const EVENTS: i64 = 3;

/// A topic with `EVENTS` logins on it, a registry, and a directory for logs.
struct Setup {
    broker: &'static KafkaCluster,
    registry: EmbeddedRegistry,
    prefix: String,
    producer: Producer,
    dir: PathBuf,
}

impl Setup {
    async fn new(name: &str) -> Self {
        let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
        let registry = EmbeddedRegistry::start().await.expect("registry");
        let prefix = unique_topic(name);
        let topic = format!("{prefix}-{}", SessionLoginCompleted::TOPIC);
        broker.create_topic(&topic, 1).await.expect("topic");
        let producer = Producer::new(
            ProducerConfig::new(
                KafkaConfig::new(broker.bootstrap_servers()),
                RegistryConfig::new(registry.url()),
            )
            .with_topic_prefix(prefix.clone()),
        )
        .expect("producer");
        let dir = std::env::temp_dir().join(unique_topic(&format!("obs-{name}")));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self {
            broker,
            registry,
            prefix,
            producer,
            dir,
        }
    }

    fn logins() -> Vec<SessionLoginCompleted> {
        (0..EVENTS)
            .map(|n| {
                let mut user = UserData::example();
                user.id = n;
                SessionLoginCompleted { user }
            })
            .collect()
    }

    async fn send_logins(&self) -> HashSet<Uuid> {
        let mut sent = HashSet::new();
        for login in Self::logins() {
            sent.insert(self.producer.send(&login).await.expect("sent").event_id);
        }
        sent
    }

    /// `binary` with only this setup's `EVENT_BUS_*` settings, its output going to
    /// `<name>.log`.
    fn command(&self, binary: &str, name: &str) -> Command {
        let mut command = Command::new(binary);
        for (variable, _) in std::env::vars().filter(|(n, _)| n.starts_with("EVENT_BUS_")) {
            command.env_remove(variable);
        }
        let log = File::create(self.log_path(name)).expect("log file");
        let errors = log.try_clone().expect("log file");
        command
            .env(
                "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
                self.broker.bootstrap_servers(),
            )
            .env("EVENT_BUS_SCHEMA_REGISTRY_URL", self.registry.url())
            .env("EVENT_BUS_TOPIC_PREFIX", &self.prefix)
            .env("RUST_LOG", "warn,event_bus_kafka=info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(errors);
        command
    }

    /// `consume_events` on the logins topic for `group`, logging what it received to
    /// `<name>.received`.
    fn consumer(&self, name: &str, group: &str) -> Command {
        let mut command = self.command(env!("CARGO_BIN_EXE_consume_events"), name);
        command
            .args(["--topic", SessionLoginCompleted::TOPIC, "--group", group])
            .args(["--extra", EXTRA])
            .env(RECEIVED_LOG_ENV, self.received_path(name));
        command
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    fn received_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.received"))
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `ce_id`s the example's audit receiver handled, from its log.
fn received(path: &Path) -> HashSet<Uuid> {
    ReceivedLog::read_ids(path, "audit")
}

/// Polls `check` until it gives a value, failing with `what` and `log` after [`WAIT`].
async fn wait_for<T, F, Fut>(what: &str, log: impl Fn() -> String, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting: {what}; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET http://127.0.0.1:{port}{path}`: the status and body, or `None` while nothing
/// answers.
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let response = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// The sum of the samples of `metric` whose labels contain `label` (`name="value"`).
fn metric_sum(text: &str, metric: &str, label: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(&format!("{metric}{{")) && line.contains(label))
        .filter_map(|line| line.rsplit_once(' '))
        .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
        .sum()
}

/// Sends SIGTERM and waits for the exit: its code, or `None` if it had to be killed.
async fn stop(mut child: Child) -> Option<i32> {
    tokio::task::spawn_blocking(move || {
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    })
    .await
    .expect("stop task")
}

/// Runs `command` to its end (killing it after [`WAIT`]): its exit code.
async fn exit_code(mut command: Command) -> Option<i32> {
    tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("binary runs");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .expect("blocking task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_events_serves_metrics_and_health_while_it_consumes() {
    let setup = Setup::new("obs-consume").await;
    let sent = setup.send_logins().await;
    let group = unique_group("obs-consume");
    let port = free_loopback_port().expect("free port");
    let child = setup
        .consumer("consumer", &group)
        .args(["--observability-address", &format!("127.0.0.1:{port}")])
        .spawn()
        .expect("consume_events starts");
    let log = || setup.log("consumer");

    let received_path = setup.received_path("consumer");
    wait_for("every event received", log, || {
        let done = sent.is_subset(&received(&received_path));
        async move { done.then_some(()) }
    })
    .await;
    let consumed = format!(r#"group="{group}""#);
    let metrics = wait_for("the consumed events counted on /metrics", log, || {
        let consumed = consumed.clone();
        async move {
            let (status, text) = get(port, "/metrics").await?;
            let counted = metric_sum(&text, "event_bus_events_consumed_total", &consumed);
            (status == 200 && counted >= EVENTS as f64).then_some(text)
        }
    })
    .await;
    assert!(
        metric_sum(
            &metrics,
            "event_bus_receiver_successes_total",
            r#"receiver="audit""#
        ) >= EVENTS as f64,
        "the receivers' successes are counted too:\n{metrics}"
    );
    assert!(
        metrics.contains("# HELP event_bus_events_consumed_total"),
        "metrics are described:\n{metrics}"
    );

    let (status, body) = get(port, "/healthz").await.expect("/healthz answers");
    let health: Value = serde_json::from_str(&body).expect("JSON health");
    assert_eq!(status, 200, "{body}");
    assert_eq!(health["status"], "healthy", "{body}");
    assert_eq!(health["consumers"][0]["name"], group.as_str(), "{body}");
    assert_eq!(health["consumers"][0]["status"], "healthy", "{body}");
    assert_eq!(health["consumers"][0]["running"], true, "{body}");

    assert_eq!(stop(child).await, Some(0), "log:\n{}", log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_relay_serves_metrics_and_its_health() {
    let setup = Setup::new("obs-relay").await;
    let url = format!("sqlite:{}", setup.dir.join("outbox.db").display());
    let store = SqliteOutbox::connect(&url).await.expect("sqlite");
    store.migrate().await.expect("migrate");
    let mut records = Vec::new();
    for login in Setup::logins() {
        let record = setup
            .producer
            .encoder()
            .encode(&login, None, None)
            .await
            .expect("encode");
        records.push(record);
    }
    store.insert_many(&records).await.expect("stored");
    let topic = format!(
        r#"topic="{}-{}""#,
        setup.prefix,
        SessionLoginCompleted::TOPIC
    );
    let port = free_loopback_port().expect("free port");
    let child = setup
        .command(env!("CARGO_BIN_EXE_event-bus"), "relay")
        .args(["outbox", "relay"])
        .env("EVENT_BUS_OUTBOX_DATABASE_URL", &url)
        .env(
            "EVENT_BUS_OBSERVABILITY_ADDRESS",
            format!("127.0.0.1:{port}"),
        )
        .spawn()
        .expect("event-bus outbox relay starts");
    let log = || setup.log("relay");

    let metrics = wait_for("the relayed events counted on /metrics", log, || {
        let topic = topic.clone();
        async move {
            let (status, text) = get(port, "/metrics").await?;
            let relayed = metric_sum(&text, "event_bus_outbox_relayed_total", &topic);
            (status == 200 && relayed >= EVENTS as f64).then_some(text)
        }
    })
    .await;
    assert!(
        metric_sum(&metrics, "event_bus_events_delivered_total", &topic) >= EVENTS as f64,
        "{metrics}"
    );

    let health = wait_for("the relay's totals on /healthz", log, || async move {
        let (status, body) = get(port, "/healthz").await?;
        let health: Value = serde_json::from_str(&body).ok()?;
        (health["relays"][0]["published"].as_i64() >= Some(EVENTS)).then_some((status, health))
    })
    .await;
    let (status, health) = health;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "healthy", "{health}");
    let relay = &health["relays"][0];
    assert_eq!(relay["name"], "outbox", "{health}");
    assert_eq!(relay["status"], "healthy", "{health}");
    assert_eq!(relay["phase"], "running", "{health}");
    assert_eq!(relay["database_errors_in_a_row"], 0, "{health}");

    assert_eq!(stop(child).await, Some(0), "log:\n{}", log());
    store.pool().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_in_use_stops_the_commands_at_start_with_exit_code_3() {
    let setup = Setup::new("obs-in-use").await;
    let taken = TcpListener::bind("127.0.0.1:0").expect("a listener");
    let address = taken.local_addr().expect("its address").to_string();

    let mut consumer = setup.consumer("consumer", &unique_group("obs-in-use"));
    consumer.args(["--observability-address", &address]);
    let url = format!("sqlite:{}", setup.dir.join("outbox.db").display());
    let mut relay = setup.command(env!("CARGO_BIN_EXE_event-bus"), "relay");
    relay
        .args(["outbox", "relay"])
        .env("EVENT_BUS_OUTBOX_DATABASE_URL", &url)
        .env("EVENT_BUS_OBSERVABILITY_ADDRESS", &address);
    let (consumer_code, relay_code) = tokio::join!(exit_code(consumer), exit_code(relay));

    for (name, code) in [("consumer", consumer_code), ("relay", relay_code)] {
        let log = setup.log(name);
        assert_eq!(code, Some(3), "{name}: {log}");
        for needle in [
            address.as_str(),
            "/metrics and /healthz",
            "in use",
            "--observability-address",
            "EVENT_BUS_OBSERVABILITY_ADDRESS",
            "`off`",
        ] {
            assert!(log.contains(needle), "{name}: `{needle}` not in:\n{log}");
        }
    }
    assert!(
        received(&setup.received_path("consumer")).is_empty(),
        "nothing consumed"
    );
    drop(taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_serves_nothing_and_needs_no_free_port() {
    let setup = Setup::new("obs-off").await;
    let sent = setup.send_logins().await;
    // If `off` were not honoured, each consumer below would try a taken address and
    // stop at start: the flag's consumer the variable's address, the variable's
    // consumer the default 0.0.0.0:9464 (taken here unless something else has it).
    let taken = TcpListener::bind("127.0.0.1:0").expect("a listener");
    let address = taken.local_addr().expect("its address").to_string();
    let _default_taken = TcpListener::bind("0.0.0.0:9464");

    let mut by_flag = setup.consumer("by-flag", &unique_group("obs-off-flag"));
    by_flag
        .args(["--observability-address", "off"])
        .env("EVENT_BUS_OBSERVABILITY_ADDRESS", &address);
    let mut by_variable = setup.consumer("by-variable", &unique_group("obs-off-var"));
    by_variable.env("EVENT_BUS_OBSERVABILITY_ADDRESS", "off");
    let children = [
        ("by-flag", by_flag.spawn().expect("consume_events starts")),
        (
            "by-variable",
            by_variable.spawn().expect("consume_events starts"),
        ),
    ];

    for (name, child) in children {
        let received_path = setup.received_path(name);
        wait_for(
            &format!("{name}: every event received"),
            || setup.log(name),
            || {
                let done = sent.is_subset(&received(&received_path));
                async move { done.then_some(()) }
            },
        )
        .await;
        assert_eq!(stop(child).await, Some(0), "{name}: {}", setup.log(name));
        let log = setup.log(name);
        let served = log
            .lines()
            .any(|line| line.contains("serving /metrics") && !line.contains("not serving"));
        assert!(
            log.contains("not serving /metrics and /healthz") && !served,
            "{name}: {log}"
        );
    }
    drop(taken);
}
