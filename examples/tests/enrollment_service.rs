//! The producer-service example: business row and event in one transaction.

use std::time::Duration;

use event_bus_examples::enrollment_service::{router, EnrollmentService};
use event_bus_examples::openedx::CourseEnrollmentCreated;
use event_bus_kafka::prelude::*;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::postgres::TestDatabase;
use event_bus_testkit::records::read_topic;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::unique_topic;
use rdkafka::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrollment_and_its_event_commit_together_and_a_duplicate_stores_neither() {
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let db = TestDatabase::create().await.expect("database");
    let prefix = unique_topic("enroll");
    let config = ProducerConfig::new(
        KafkaConfig::new(broker.bootstrap_servers()),
        RegistryConfig::new(registry.url()),
    )
    .with_topic_prefix(prefix.clone());
    let topic = config.full_topic(CourseEnrollmentCreated::TOPIC);
    broker.create_topic(&topic, 1).await.expect("topic");
    let producer = Producer::new(config).expect("producer");
    let service = EnrollmentService::start(db.pool().clone(), producer)
        .await
        .expect("service");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let app = router(service.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::new();
    let url = format!("http://{address}/enrollments");
    let body =
        serde_json::json!({"user_id": 7, "username": "ada", "course_key": "course-v1:X+Y+Z"});
    let created = client.post(&url).json(&body).send().await.expect("request");
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.expect("json");
    let again = client.post(&url).json(&body).send().await.expect("request");
    assert_eq!(again.status(), 409, "a duplicate is refused");

    let records = read_topic(
        broker.bootstrap_servers(),
        &topic,
        2,
        Duration::from_secs(20),
    )
    .expect("read");
    assert_eq!(
        records.len(),
        1,
        "one event for one enrollment, none for the refused duplicate"
    );
    let ce_id = records[0]
        .headers()
        .and_then(|h| {
            use rdkafka::message::Headers;
            h.iter()
                .find(|x| x.key == "ce_id")
                .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
        })
        .expect("ce_id header");
    assert_eq!(Some(ce_id.as_str()), created["ce_id"].as_str());
    let (_, datum) =
        event_bus_core::codec::unframe(records[0].payload().expect("value")).expect("framed");
    let event = CourseEnrollmentCreated::from_avro_datum(datum, CourseEnrollmentCreated::schema())
        .expect("decodes");
    assert_eq!(event.enrollment.user.pii.username, "ada");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM enrollments")
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(rows, 1);

    service.stop().await;
    server.abort();
    db.drop_database().await.expect("drop");
}
