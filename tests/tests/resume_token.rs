//! Resume tokens: a consumer on cluster A exports one, the same records are mirrored
//! to cluster B with their timestamps, and the group resumes on B from the token
//! without missing anything.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::cli::{run_with, Cli, CliContext};
use event_bus_kafka::consumer::{ConsumerConfig, EventConsumer, RetryPolicy, Shutdown};
use event_bus_kafka::prelude::*;
use event_bus_kafka::replay::{self, OffsetAdmin, ResumeToken, TokenError};
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::records::read_topic;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

const WAIT: Duration = Duration::from_secs(60);
const EVENTS: i64 = 40;

fn login(n: i64) -> SessionLoginCompleted {
    let mut user = UserData::example();
    user.id = n;
    SessionLoginCompleted { user }
}

fn kafka(broker: &KafkaCluster) -> KafkaConfig {
    KafkaConfig::new(broker.bootstrap_servers())
        .with_option("session.timeout.ms", "6000")
        .with_option("linger.ms", "0")
}

fn consumer_config(
    broker: &KafkaCluster,
    registry: &EmbeddedRegistry,
    prefix: &str,
    group: &str,
) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(
        kafka(broker),
        RegistryConfig::new(registry.url()),
        group,
        [SessionLoginCompleted::TOPIC],
    )
    .with_topic_prefix(prefix)
    .with_retry(RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    });
    config.commit_interval = Duration::from_millis(100);
    config
}

/// Runs a consumer until `done` holds for the user ids it saw; returns them and the
/// resume token of its progress, exported while it still runs (a consumer forgets
/// the partitions it gives up, so the token is taken before it stops).
async fn consume_until(
    config: ConsumerConfig,
    done: impl Fn(&[i64]) -> bool,
) -> (Vec<i64>, ResumeToken) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let mut bus = EventBus::new();
    bus.connect_fn("recorder", move |event: &SessionLoginCompleted, _| {
        sink.lock().expect("lock").push(event.user.id);
        Ok(())
    })
    .expect("connect");
    let consumer = EventConsumer::new(config, Arc::new(bus)).expect("consumer");
    let progress = consumer.progress();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    let started = Instant::now();
    while !done(&seen.lock().expect("lock")) && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = ResumeToken::from_progress(&progress);
    trigger.trigger();
    task.await.expect("task").expect("clean stop");
    let seen = seen.lock().expect("lock").clone();
    (seen, token)
}

/// Copies every record of `topic` from one broker to the other with its key, value,
/// headers and timestamp, one record per batch (as a mirror would).
async fn mirror(from: &KafkaCluster, to: &KafkaCluster, topic: &str, count: usize) {
    let records = read_topic(from.bootstrap_servers(), topic, count, WAIT).expect("read A");
    assert_eq!(records.len(), count);
    let producer: FutureProducer = to.producer_config().create().expect("producer B");
    for record in &records {
        let mut headers = OwnedHeaders::new();
        if let Some(source) = record.headers() {
            for header in source.iter() {
                headers = headers.insert(Header {
                    key: header.key,
                    value: header.value,
                });
            }
        }
        let mut copy: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
            .partition(record.partition())
            .headers(headers);
        if let Some(ts) = record.timestamp().to_millis() {
            copy = copy.timestamp(ts);
        }
        if let Some(key) = record.key() {
            copy = copy.key(key);
        }
        if let Some(value) = record.payload() {
            copy = copy.payload(value);
        }
        producer
            .send(copy, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("mirrored");
    }
}

#[tokio::test]
async fn a_group_resumes_on_another_cluster_from_a_token_missing_nothing() {
    let broker_a = KafkaCluster::shared().expect("Apache Kafka A (run scripts/install-test-deps)");
    let broker_b = KafkaCluster::start(1).expect("Apache Kafka B");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let prefix = unique_topic("failover");
    let topic = format!("{prefix}-{}", SessionLoginCompleted::TOPIC);
    for broker in [broker_a, &broker_b] {
        broker.create_topic(&topic, 1).await.expect("topic");
        broker
            .create_topic(&format!("{topic}.dlq"), 1)
            .await
            .expect("dlq topic");
    }
    let group = unique_group("failover");

    // Events a second apart, with explicit timestamps, on cluster A.
    let producer = Producer::new(
        ProducerConfig::new(kafka(broker_a), RegistryConfig::new(registry.url()))
            .with_topic_prefix(prefix.clone()),
    )
    .expect("producer");
    let raw: FutureProducer = broker_a.producer_config().create().expect("raw producer");
    let base = chrono::Utc::now().timestamp_millis() - 3_600_000;
    for n in 0..EVENTS {
        let encoded = producer
            .encoder()
            .encode(&login(n), None, None)
            .await
            .expect("encoded");
        let headers = encoded
            .headers
            .iter()
            .fold(OwnedHeaders::new(), |h, (k, v)| {
                h.insert(Header {
                    key: k,
                    value: Some(v.as_slice()),
                })
            });
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic)
            .payload(encoded.value.as_slice())
            .headers(headers)
            .timestamp(base + n * 1_000);
        if let Some(key) = &encoded.key {
            record = record.key(key.as_slice());
        }
        raw.send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("sent");
    }

    // Consume about half on A, then export the token (as text, like an operator would).
    let (on_a, token) = consume_until(
        consumer_config(broker_a, &registry, &prefix, &group),
        |seen| seen.len() >= 20,
    )
    .await;
    assert_eq!(
        on_a,
        (0..on_a.len() as i64).collect::<Vec<_>>(),
        "A consumed in order"
    );
    let last_a = *on_a.last().expect("A consumed something");
    let text = token.to_string();
    let token: ResumeToken = text.parse().expect("the exported token parses");
    let millis = token
        .timestamp(&topic, 0)
        .expect("the token covers the partition");
    // The time of an event A had finished when the token was taken (A may have
    // finished more before it stopped: those come again on B, as duplicates).
    let resume_at = (millis - base) / 1_000;
    assert_eq!(millis, base + resume_at * 1_000, "an event's timestamp");
    assert!(
        (19..=last_a).contains(&resume_at),
        "token at {resume_at}, A finished up to {last_a}"
    );

    // Cluster A is lost; its records were mirrored to B with their timestamps.
    mirror(broker_a, &broker_b, &topic, EVENTS as usize).await;
    let config_b = consumer_config(&broker_b, &registry, &prefix, &group);
    let plan = replay::reset_consumer_to_token(&config_b, &token)
        .await
        .expect("reset on B");
    assert_eq!(plan.changes().count(), 1);

    let (on_b, _) = consume_until(config_b, |seen| seen.last() == Some(&(EVENTS - 1))).await;
    let from = *on_b.first().expect("B consumed something");
    assert!(
        from <= last_a + 1,
        "nothing missed: A finished up to {last_a}, B started at {from}"
    );
    assert_eq!(
        from, resume_at,
        "B resumed exactly at the token's event, not from the start"
    );
    assert_eq!(
        on_b,
        (from..EVENTS).collect::<Vec<_>>(),
        "B delivered the rest in order"
    );
}

#[tokio::test]
async fn offsets_reset_to_token_maps_times_to_offsets_on_any_cluster() {
    let broker = KafkaCluster::shared().expect("Apache Kafka");
    let topic = unique_topic("token-cli");
    broker.create_topic(&topic, 1).await.expect("topic");
    let producer: FutureProducer = broker.producer_config().create().expect("producer");
    let base = 1_600_000_000_000;
    for i in 0..8 {
        producer
            .send(
                FutureRecord::<(), str>::to(&topic)
                    .payload("x")
                    .timestamp(base + i * 1_000),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("sent");
    }
    let group = unique_group("token-cli");
    let token = ResumeToken::from_timestamps([(topic.clone(), 0, base + 6_000)]);
    let cli = Cli::try_parse_from([
        "event-bus",
        "offsets",
        "reset",
        "--group",
        &group,
        "--topic",
        &topic,
        "--to-token",
        &token.to_string(),
        "--execute",
        "--bootstrap-servers",
        broker.bootstrap_servers(),
    ])
    .expect("flags");
    let mut out = Vec::new();
    run_with(cli, &CliContext::default(), &mut out)
        .await
        .expect("reset");
    let admin =
        OffsetAdmin::new(&KafkaConfig::new(broker.bootstrap_servers()), &group).expect("admin");
    let committed = admin.offsets(&[topic]).await.expect("offsets")[0]
        .committed
        .expect("committed");
    assert_eq!(committed, 6, "the record at the token's time");
}

#[test]
fn tokens_round_trip_as_text_and_bad_text_gets_typed_errors() {
    let mut token = ResumeToken::from_timestamps([
        ("orders".to_string(), 0, 1_000),
        ("orders".to_string(), 1, 2_000),
    ]);
    token.merge(&ResumeToken::from_timestamps([
        ("orders".to_string(), 1, 1_500),
        ("audit".to_string(), 0, 7),
    ]));
    assert_eq!(
        token.timestamp("orders", 1),
        Some(1_500),
        "merging keeps the earlier time"
    );
    assert_eq!(token.len(), 3);
    let text = token.to_string();
    assert_eq!(ResumeToken::parse(&text), Ok(token.clone()));
    assert_eq!(text.parse::<ResumeToken>(), Ok(token));

    assert_eq!(ResumeToken::parse(""), Err(TokenError::Empty));
    assert!(matches!(
        ResumeToken::parse("%%%"),
        Err(TokenError::NotBase64 { .. })
    ));
    // Valid base64 of something that is not a token.
    assert!(matches!(
        ResumeToken::parse("aGVsbG8"),
        Err(TokenError::InvalidDocument { .. })
    ));
    let err = ResumeToken::parse(&text[..text.len() / 2]).expect_err("cut short");
    assert!(
        matches!(
            err,
            TokenError::InvalidDocument { .. } | TokenError::NotBase64 { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("resume token"), "{err}");
}
