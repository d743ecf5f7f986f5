//! Poison records on a real Apache Kafka broker, the cases of issue 19 that
//! `consumer.rs` does not cover: duplicated `ce_id`, non-UTF-8 header values, a schema
//! id of another event type, a valid record of a type unknown here, tombstones, a
//! record without a key, and header names that are not UTF-8. Each is sent between two valid events and must end where
//! docs/operations.md ("A record that cannot be decoded") says: dead-lettered with its
//! error kind and its original key, value and header bytes, skipped and counted, or
//! handled; the loop goes on and every valid event is handled once.
//!
//! One test in this binary, so it may install the process-wide metrics recorder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::consumer::dlq::{headers as dlq, is_dlq_header};
use event_bus_kafka::consumer::{EventConsumer, Shutdown};
use event_bus_kafka::observability::PrometheusMetrics;
use event_bus_kafka::prelude::*;
use event_bus_kafka::producer::{EncodedRecord, EventEncoder};
use event_bus_kafka::record_headers::owned_header_pairs;
use event_bus_testkit::records::{read_topic, with_raw_header};
use event_bus_tests::stack::{login, Stack, WAIT};
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Another event type with the login's very shape, on the login's topic, with no
/// receiver in the consumer below: its datum decodes as a login by Avro's rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(
    type = "org.example.poison.login.mirrored.v1",
    topic = "user-login",
    key = "user.pii.username"
)]
struct LoginMirrored {
    user: UserData,
}

/// Where a record must end.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// On the dead-letter topic with this `dlq_error_kind`.
    DeadLettered(&'static str),
    /// Skipped (type unknown here) and committed, no receiver called.
    Skipped,
    /// Handed to the receivers, once, with this `ce_id`.
    Handled(Uuid),
}

/// A record as sent: `None` headers means none at all.
struct Raw {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Option<Vec<(String, Vec<u8>)>>,
    /// Headers added after those, whose names are any bytes.
    raw_named: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Raw {
    fn of(record: EncodedRecord) -> Self {
        Self {
            key: record.key,
            value: Some(record.value),
            headers: Some(record.headers),
            raw_named: Vec::new(),
        }
    }

    /// Sets the first header `name` to `value` (adding it when absent).
    fn with_header(mut self, name: &str, value: &[u8]) -> Self {
        let headers = self.headers.get_or_insert_with(Vec::new);
        match headers.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_vec(),
            None => headers.push((name.to_owned(), value.to_vec())),
        }
        self
    }

    /// Adds a header `name` even if one is there already.
    fn plus_header(mut self, name: &str, value: &[u8]) -> Self {
        self.headers
            .get_or_insert_with(Vec::new)
            .push((name.to_owned(), value.to_vec()));
        self
    }

    /// Adds a header whose name is `name`'s bytes, UTF-8 or not.
    fn plus_raw_named(mut self, name: &[u8], value: &[u8]) -> Self {
        self.headers.get_or_insert_with(Vec::new);
        self.raw_named.push((name.to_vec(), value.to_vec()));
        self
    }

    async fn send(&self, producer: &FutureProducer, topic: &str) {
        let mut record = FutureRecord::<[u8], [u8]>::to(topic);
        if let Some(key) = &self.key {
            record = record.key(key);
        }
        if let Some(value) = &self.value {
            record = record.payload(value);
        }
        if let Some(headers) = &self.headers {
            let headers = headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
                h.insert(Header {
                    key: k,
                    value: Some(v.as_slice()),
                })
            });
            let headers = self
                .raw_named
                .iter()
                .fold(headers, |h, (k, v)| with_raw_header(h, k, v));
            record = record.headers(headers);
        }
        producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("raw record sent");
    }
}

/// `event` as the SDK's producer puts it on the wire.
async fn encode<E: Event>(encoder: &EventEncoder, event: E) -> EncodedRecord {
    encoder.encode(&event, None, None).await.expect("encoded")
}

/// Not UTF-8 (a lone continuation byte and an invalid lead byte).
const NOT_UTF8: &[u8] = b"\x80abc\xff";

/// A record's headers in order, without the dead-letter ones: values as they are,
/// names that are not UTF-8 read lossily (rdkafka's own iterator panics on them).
fn original_headers(message: &OwnedMessage) -> Vec<(String, Option<Vec<u8>>)> {
    owned_header_pairs(message)
        .into_iter()
        .filter(|(name, _)| !is_dlq_header(name))
        .collect()
}

fn header_text(message: &OwnedMessage, name: &str) -> Option<String> {
    owned_header_pairs(message)
        .into_iter()
        .find(|(key, _)| key == name)
        .and_then(|(_, value)| value.map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// The sample line of `name` with all of `labels`, parsed.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with('{'))
        .find(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// The odd records, each with where it must end: the SDK's own records, changed as a
/// raw or foreign producer could send them.
async fn poison_cases(encoder: &EventEncoder) -> Vec<(&'static str, Raw, Outcome)> {
    let encoded = |n: i64| encode(encoder, login(n));
    let mirrored = |n: i64| {
        encode(
            encoder,
            LoginMirrored {
                user: login(n).user,
            },
        )
    };

    let mut cases: Vec<(&str, Raw, Outcome)> = Vec::new();
    let dup_same = encoded(10).await;
    let id = dup_same.event_id.to_string();
    cases.push((
        "ce_id twice, same value",
        Raw::of(dup_same).plus_header("ce_id", id.as_bytes()),
        Outcome::DeadLettered("invalid_headers"),
    ));
    cases.push((
        "ce_id twice, two values",
        Raw::of(encoded(11).await).plus_header("ce_id", Uuid::new_v4().to_string().as_bytes()),
        Outcome::DeadLettered("invalid_headers"),
    ));
    for (n, header) in (12..).zip(["ce_id", "ce_type", "ce_source", "sourcehost"]) {
        cases.push((
            header,
            Raw::of(encoded(n).await).with_header(header, NOT_UTF8),
            Outcome::DeadLettered("invalid_headers"),
        ));
    }
    // A trace context that cannot be read is ignored (W3C Trace Context); the event
    // is fine. So is a header the SDK does not read, whatever its bytes.
    let bad_trace = encoded(16).await;
    let bad_trace_id = bad_trace.event_id;
    cases.push((
        "traceparent not UTF-8",
        Raw::of(bad_trace).with_header("traceparent", NOT_UTF8),
        Outcome::Handled(bad_trace_id),
    ));
    let foreign = encoded(17).await;
    let foreign_id = foreign.event_id;
    cases.push((
        "a header the SDK does not read, not UTF-8",
        Raw::of(foreign).with_header("x-origin", NOT_UTF8),
        Outcome::Handled(foreign_id),
    ));
    // A header name that is not UTF-8 (Go and C clients can send one): rdkafka's own
    // header reader panics on it, so the consumer read it straight from librdkafka.
    let odd_name = encoded(24).await;
    let odd_name_id = odd_name.event_id;
    cases.push((
        "a header name that is not UTF-8",
        Raw::of(odd_name).plus_raw_named(b"x-\xffname", b"v"),
        Outcome::Handled(odd_name_id),
    ));
    cases.push((
        "a header name that is not UTF-8 on a record dead-lettered",
        Raw::of(encoded(25).await)
            .with_header("ce_id", NOT_UTF8)
            .plus_raw_named(b"x-\xffname", NOT_UTF8),
        Outcome::DeadLettered("invalid_headers"),
    ));
    // The login's headers with the value of the mirrored type: the same datum bytes,
    // framed with the schema id registered under the mirrored type's subject.
    let mut other_schema = Raw::of(encoded(18).await);
    other_schema.value = Some(mirrored(18).await.value);
    cases.push((
        "schema id of another event type",
        other_schema,
        Outcome::DeadLettered("schema_mismatch"),
    ));
    cases.push((
        "a valid event of a type unknown here",
        Raw::of(mirrored(19).await),
        Outcome::Skipped,
    ));
    let mut tombstone = Raw::of(encoded(20).await);
    tombstone.value = None;
    cases.push((
        "tombstone with the headers of a type handled here",
        tombstone,
        Outcome::DeadLettered("missing_value"),
    ));
    let mut foreign_tombstone = Raw::of(mirrored(21).await);
    foreign_tombstone.value = None;
    cases.push((
        "tombstone of a type unknown here",
        foreign_tombstone,
        Outcome::Skipped,
    ));
    let bare_key = encoded(22).await.key;
    cases.push((
        "tombstone without headers",
        Raw {
            key: bare_key,
            value: None,
            headers: None,
            raw_named: Vec::new(),
        },
        Outcome::DeadLettered("missing_value"),
    ));
    let keyless = encoded(23).await;
    let keyless_id = keyless.event_id;
    let mut keyless = Raw::of(keyless);
    keyless.key = None;
    cases.push((
        "a valid event without a key",
        keyless,
        Outcome::Handled(keyless_id),
    ));

    cases
}

/// What ended elsewhere than `expected` says, one line each: `originals` are the
/// topic's records (offset = index), `letters` the dead letters by original offset,
/// `seen` the `ce_id`s the receivers got.
fn misplaced(
    expected: &[(String, Outcome)],
    originals: &[OwnedMessage],
    letters: &HashMap<i64, &OwnedMessage>,
    seen: &[Uuid],
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (offset, ((name, outcome), original)) in expected.iter().zip(originals).enumerate() {
        let offset = offset as i64;
        let letter = letters.get(&offset);
        let calls = |id: &Uuid| seen.iter().filter(|s| *s == id).count();
        let ended = match (letter, outcome) {
            (Some(letter), Outcome::DeadLettered(kind)) => {
                let got = header_text(letter, dlq::ERROR_KIND);
                if got.as_deref() != Some(*kind) {
                    wrong.push(format!("{name}: dead-lettered as {got:?}, not {kind}"));
                }
                // A redrive must be able to send the very same record again.
                if letter.key() != original.key()
                    || letter.payload() != original.payload()
                    || original_headers(letter) != original_headers(original)
                {
                    wrong.push(format!(
                        "{name}: the dead letter is not the original record"
                    ));
                }
                continue;
            }
            (Some(letter), _) => format!(
                "dead-lettered ({:?}: {:?})",
                header_text(letter, dlq::ERROR_KIND),
                header_text(letter, dlq::ERROR_MESSAGE)
            ),
            (None, Outcome::DeadLettered(kind)) => format!("not dead-lettered (wanted {kind})"),
            (None, Outcome::Handled(id)) if calls(id) == 1 => continue,
            (None, Outcome::Handled(id)) => format!("handled {} times", calls(id)),
            (None, Outcome::Skipped) => continue,
        };
        wrong.push(format!("{name} (offset {offset}): {ended}"));
    }
    let handled: Vec<Uuid> = expected
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Handled(id) => Some(*id),
            _ => None,
        })
        .collect();
    let strays: Vec<&Uuid> = seen.iter().filter(|id| !handled.contains(id)).collect();
    if !strays.is_empty() {
        wrong.push(format!(
            "receivers got events they must not see: {strays:?}"
        ));
    }
    wrong
}

#[tokio::test]
async fn each_poison_ends_where_the_policy_says_and_nothing_after_it_is_lost() {
    let prometheus = PrometheusMetrics::install().expect("recorder (the only one here)");
    let stack = Stack::start("poison", "g")
        .await
        .with_service_name("poison-test");
    let producer = stack.producer();
    let raw: FutureProducer = stack
        .broker
        .producer_config()
        .create()
        .expect("raw producer");
    let cases = poison_cases(producer.encoder()).await;

    // Every case between two valid events: offsets 0, 2, 4… are valid.
    let mut expected: Vec<(String, Outcome)> = Vec::new();
    for (n, (name, record, outcome)) in cases.iter().enumerate() {
        let valid = producer.send(&login(n as i64)).await.expect("sent");
        expected.push((format!("valid event {n}"), Outcome::Handled(valid.event_id)));
        record.send(&raw, &stack.topic).await;
        expected.push(((*name).to_owned(), outcome.clone()));
    }
    let last = producer.send(&login(99)).await.expect("sent");
    expected.push((
        "the last valid event".into(),
        Outcome::Handled(last.event_id),
    ));
    let total = expected.len();

    let seen: Arc<Mutex<Vec<Uuid>>> = Arc::default();
    let mut bus = EventBus::new();
    let seen2 = Arc::clone(&seen);
    bus.connect_fn("seen", move |_: &SessionLoginCompleted, ctx| {
        seen2.lock().expect("lock").push(ctx.metadata.id);
        Ok(())
    })
    .expect("connect");
    let consumer = EventConsumer::new(stack.consumer_config(), Arc::new(bus)).expect("consumer");
    let stats = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    let started = Instant::now();
    while stats.snapshot().records_handled < total as u64 && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!task.is_finished(), "the loop is still running");
    trigger.trigger();
    let stats = task.await.expect("task").expect("the loop ends cleanly");

    let originals = read_topic(stack.broker.bootstrap_servers(), &stack.topic, total, WAIT)
        .expect("read the topic");
    assert_eq!(originals.len(), total);
    let letters = read_topic(
        stack.broker.bootstrap_servers(),
        &stack.dlq_topic,
        total,
        Duration::from_secs(5),
    )
    .expect("read the dead-letter topic");
    let letters: HashMap<i64, &OwnedMessage> = letters
        .iter()
        .map(|l| {
            let offset = header_text(l, dlq::ORIGINAL_OFFSET).expect("dlq_original_offset");
            (offset.parse().expect("an offset"), l)
        })
        .collect();
    let seen = seen.lock().expect("lock").clone();

    let wrong = misplaced(&expected, &originals, &letters, &seen);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    let count = |o: fn(&Outcome) -> bool| expected.iter().filter(|(_, x)| o(x)).count() as u64;
    assert_eq!(stats.records_handled, total as u64);
    assert_eq!(
        stats.records_dead_lettered,
        count(|o| matches!(o, Outcome::DeadLettered(_)))
    );
    let skipped = count(|o| *o == Outcome::Skipped);
    assert_eq!(stats.records_skipped, skipped);
    assert_eq!(letters.len() as u64, stats.records_dead_lettered);
    assert_eq!(
        stack.committed(),
        Some(total as i64),
        "committed to the end"
    );

    // A dead letter holds the record itself: redriven, the very same bytes go back.
    let (result, out) = stack
        .cli(&["dlq", "redrive", "--topic", &stack.dlq_topic, "--execute"])
        .await;
    result.expect("redrive");
    assert!(
        out.contains(&format!("Redrove {} record(s)", letters.len())),
        "{out}"
    );
    let after = read_topic(
        stack.broker.bootstrap_servers(),
        &stack.topic,
        total + letters.len(),
        WAIT,
    )
    .expect("read the topic again");
    let mut dead: Vec<i64> = letters.keys().copied().collect();
    dead.sort_unstable();
    assert_eq!(after.len(), total + dead.len());
    for (redriven, offset) in after[total..].iter().zip(dead) {
        let original = &originals[offset as usize];
        assert_eq!(redriven.key(), original.key(), "offset {offset}");
        assert_eq!(redriven.payload(), original.payload(), "offset {offset}");
        assert_eq!(
            original_headers(redriven),
            original_headers(original),
            "offset {offset}"
        );
    }

    let metrics = prometheus.render();
    let labels = [
        ("group", stack.group.as_str()),
        ("topic", stack.topic.as_str()),
    ];
    assert_eq!(
        sample(&metrics, "event_bus_records_skipped_total", &labels),
        Some(skipped as f64),
        "{metrics}"
    );
    let mismatch = [
        ("group", stack.group.as_str()),
        ("error_kind", "schema_mismatch"),
    ];
    assert_eq!(
        sample(&metrics, "event_bus_dlq_records_total", &mismatch),
        Some(1.0)
    );
}
