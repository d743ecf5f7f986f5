//! The peer baseline (`event_bus_tests::peer`, issue 18) speaks the SDK's wire format:
//! what the peer writes, the SDK's consumer path decodes into the same event and
//! metadata, and what the SDK writes, the peer reads back. So `cpu_per_event`
//! compares two pipelines that do the same work. No broker: records are handed over
//! as rdkafka messages; the schemas live in the embedded registry.

use std::sync::{Arc, Mutex};

use chrono::SubsecRound;
use event_bus_core::dispatch::DeliveryContext;
use event_bus_core::{EventBus, EventMetadata};
use event_bus_examples::openedx::{SessionLoginCompleted, UserData, UserPersonalData};
use event_bus_kafka::config::RegistryConfig;
use event_bus_kafka::producer::EventEncoder;
use event_bus_kafka::registry::RegistryClient;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_tests::peer::{Peer, EVENT_TYPE};
use event_bus_tests::sdk_record::{message_of, SdkRecordPath};

const PREFIX: &str = "interop";

fn learner() -> SessionLoginCompleted {
    SessionLoginCompleted {
        user: UserData {
            id: 4_242,
            is_active: false,
            pii: UserPersonalData {
                username: "ada-l".into(),
                email: "ada@example.org".into(),
                name: "Ada Lovelace".into(),
            },
        },
    }
}

fn topic() -> String {
    format!(
        "{PREFIX}-{}",
        <SessionLoginCompleted as event_bus_core::Event>::TOPIC
    )
}

/// The SDK's encoder on `registry`, its schemas registered; the peer on the same
/// registry, its own registered too.
async fn sides(registry: &EmbeddedRegistry) -> (EventEncoder, Peer) {
    let client = RegistryClient::new(RegistryConfig::new(registry.url())).expect("a client");
    let encoder = EventEncoder::new(Arc::new(client), Some(PREFIX.to_owned()), "sdk-service");
    let ids = encoder
        .register::<SessionLoginCompleted>(None)
        .await
        .expect("the SDK registers its schemas");
    let peer = Peer::new(&registry.url(), &topic(), "peer-service");
    let (value_id, key_id) = peer
        .register_schemas()
        .await
        .expect("the peer registers its schemas");
    // The same schemas under the same subjects: the registry gives the same ids.
    assert_eq!(value_id, ids.value_id);
    assert_eq!(Some(key_id), ids.key_id);
    (encoder, peer)
}

#[tokio::test]
async fn the_sdk_decodes_what_the_peer_writes() {
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let (encoder, peer) = sides(&registry).await;
    let event = learner();
    let written = peer.encode(&event).await.expect("the peer encodes");

    // Byte for byte what the SDK writes, framing and schema ids included.
    let sdk = encoder
        .encode(&event, None, None)
        .await
        .expect("SDK encodes");
    assert_eq!(written.value, sdk.value);
    assert_eq!(Some(&written.key), sdk.key.as_ref());
    assert_eq!(written.topic, sdk.topic);

    let received: Arc<Mutex<Vec<(SessionLoginCompleted, DeliveryContext)>>> = Arc::default();
    let mut bus = EventBus::new();
    let sink = Arc::clone(&received);
    bus.connect_fn("capture", move |e: &SessionLoginCompleted, ctx| {
        sink.lock().expect("lock").push((e.clone(), ctx.clone()));
        Ok(())
    })
    .expect("connects");
    let path = SdkRecordPath::new(bus, &registry.url(), "interop-group").expect("path");
    path.handle(&written.to_message(11))
        .await
        .expect("the SDK decodes and dispatches the peer's record");

    let received = received.lock().expect("lock");
    assert_eq!(received.len(), 1, "one dispatch to the one receiver");
    let (decoded, ctx) = &received[0];
    assert_eq!(decoded, &event);
    let metadata: &EventMetadata = &ctx.metadata;
    assert_eq!(metadata.id, written.id);
    assert_eq!(metadata.event_type, EVENT_TYPE);
    assert_eq!(metadata.source, "peer-service");
    assert_eq!(metadata.time, written.time.trunc_subsecs(6));
    assert_eq!(metadata.minorversion, 0);
    assert!(!metadata.sourcehost.is_empty());
    assert_eq!(ctx.consumer_group.as_deref(), Some("interop-group"));
}

#[tokio::test]
async fn the_peer_reads_what_the_sdk_writes() {
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let (encoder, peer) = sides(&registry).await;
    let event = learner();
    let record = encoder
        .encode(&event, None, None)
        .await
        .expect("SDK encodes");
    let sent = record
        .header("ce_time")
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .expect("a ce_time header");

    let (metadata, decoded) = peer
        .decode(&message_of(&record, 3))
        .await
        .expect("the peer decodes the SDK's record");
    assert_eq!(decoded, event);
    assert_eq!(metadata.id, record.event_id);
    assert_eq!(metadata.event_type, EVENT_TYPE);
    assert_eq!(metadata.source, "sdk-service");
    assert_eq!(
        metadata
            .time
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, false),
        sent
    );
    assert_eq!(metadata.minorversion, 0);
}

#[tokio::test]
async fn the_peer_refuses_another_event_type() {
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let (encoder, peer) = sides(&registry).await;
    let mut record = encoder
        .encode(&learner(), None, None)
        .await
        .expect("SDK encodes");
    for (name, value) in &mut record.headers {
        if name == "ce_type" {
            *value = b"org.openedx.learning.course.enrollment.created.v1".to_vec();
        }
    }
    let refused = peer.decode(&message_of(&record, 3)).await;
    assert!(
        refused.is_err_and(|e| e.to_string().contains("unexpected ce_type")),
        "the peer checks ce_type, as the SDK does"
    );
}
