//! No password in errors, `Debug` output or logs: a distinctive secret is put in each
//! place that can hold one (registry URL and password, database URL, SASL and TLS
//! settings, the environment), each error path is driven against real parts (a closed
//! port, the real PostgreSQL server), and everything shown is searched for the secret.
//! Each check also looks for the part that must stay visible, so a check that sees
//! nothing fails too.

use std::io::Write;
use std::sync::{Arc, Mutex};

use event_bus_kafka::config::{
    ConfigError, EnvSource, KafkaConfig, ProducerConfig, RegistryConfig,
};
use event_bus_kafka::consumer::ConsumerConfig;
use event_bus_kafka::outbox::{AnyOutbox, OutboxConfig, PostgresOutbox};
use event_bus_kafka::registry::RegistryClient;
use event_bus_testkit::postgres::TestDatabase;

const SECRET: &str = "Zq7-never-show-Wx9";

/// Everything an error shows: `Display`, `Debug` and each source's `Display`.
fn error_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("{err}\n{err:?}");
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!("\n{cause}"));
        source = cause.source();
    }
    text
}

/// Fails if `text` shows the secret, or does not show `visible`.
fn assert_hidden(what: &str, text: &str, visible: &str) {
    assert!(!text.contains(SECRET), "{what} shows the secret:\n{text}");
    assert!(
        text.contains(visible),
        "{what} should show `{visible}`:\n{text}"
    );
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Log lines captured at every level while the guard lives (this thread only: the
/// tests run on a current-thread runtime).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || logs.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The URL of the test database `db`, `password` (`:…` or empty) after the user name and
/// `query` (`?…` or empty) at the end.
fn database_url(db: &TestDatabase, password: &str, query: &str) -> String {
    let options = db.connect_options();
    format!(
        "postgres://{}{password}@{}:{}/{}{query}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        db.name()
    )
}

#[tokio::test]
async fn a_registry_url_with_a_password_stays_hidden() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let url = format!("http://svc:{SECRET}@127.0.0.1:{}", closed_port());
    let config = RegistryConfig::new(&url).with_basic_auth("svc", SECRET);
    assert_hidden(
        "RegistryConfig Debug",
        &format!("{config:?}"),
        "svc:***@127.0.0.1",
    );

    let client = RegistryClient::new(config).expect("client");
    assert_hidden(
        "RegistryClient Debug",
        &format!("{client:?}"),
        "svc:***@127.0.0.1",
    );
    let err = client.schema_by_id(1).await.expect_err("unreachable");
    assert_hidden(
        "unreachable registry error",
        &error_text(&err),
        "svc:***@127.0.0.1",
    );

    let err = RegistryClient::new(RegistryConfig::new(format!("ftp://svc:{SECRET}@registry")))
        .expect_err("not http");
    assert_hidden(
        "bad registry URL error",
        &error_text(&err),
        "ftp://svc:***@registry",
    );

    let env = EnvSource::from_pairs([(
        "EVENT_BUS_SCHEMA_REGISTRY_URL",
        format!("registry:8081/?password={SECRET}"),
    )]);
    let err: ConfigError = RegistryConfig::from_env_source(&env).expect_err("no scheme");
    assert_hidden(
        "invalid registry URL setting",
        &error_text(&err),
        "password=***",
    );
    assert!(!logs.text().contains(SECRET), "logs:\n{}", logs.text());
}

#[tokio::test]
async fn a_database_url_with_a_password_stays_hidden() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let unreachable = format!("postgres://app:{SECRET}@127.0.0.1:{}/app", closed_port());
    let config = OutboxConfig::new(&unreachable);
    assert_hidden("OutboxConfig Debug", &format!("{config:?}"), "OutboxConfig");
    let err = AnyOutbox::connect(&config)
        .await
        .expect_err("nothing listens there");
    assert_hidden(
        "unreachable database error",
        &error_text(&err),
        "connecting to PostgreSQL",
    );
    let err = PostgresOutbox::connect(&format!("postgres://app:{SECRET}@127.0.0.1:port/app"))
        .await
        .expect_err("not a port");
    assert_hidden(
        "bad database URL error",
        &error_text(&err),
        "parsing the PostgreSQL URL",
    );

    // The real server (trust authentication: the password is sent and ignored).
    let db = TestDatabase::create().await.expect("database");
    let url = database_url(&db, &format!(":{SECRET}"), "");
    let outbox = AnyOutbox::open_existing(&OutboxConfig::new(&url))
        .await
        .expect("connects");
    assert_hidden("AnyOutbox Debug", &format!("{outbox:?}"), "Postgres");
    let err = outbox.status(5).await.expect_err("not migrated");
    assert_hidden("status error", &error_text(&err), "no outbox table");
    drop(outbox);
    db.drop_database().await.expect("drop");
    assert!(!logs.text().contains(SECRET), "logs:\n{}", logs.text());
}

/// sqlx logs a URL parameter it does not know with its value; the SDK drops such
/// parameters first and names them without their value.
#[tokio::test]
async fn an_unknown_database_url_parameter_keeps_its_value_out_of_the_logs() {
    let db = TestDatabase::create().await.expect("database");
    let url = database_url(&db, "", &format!("?sslpassword={SECRET}&sslmode=disable"));
    let logs = Logs::default();
    let guard = logs.capture();
    let outbox = PostgresOutbox::connect(&url).await.expect("connects");
    drop(guard);
    drop(outbox);
    db.drop_database().await.expect("drop");
    assert_hidden("connect logs", &logs.text(), "sslpassword");
}

/// librdkafka refuses `ssl.key.password` on a build without OpenSSL, and a misspelled
/// option on any build, quoting the value: the producer's and the consumer's errors
/// name the option and hide the value.
#[test]
fn a_refused_kafka_option_hides_its_value() {
    for option in ["ssl.key.password", "sasl.pasword"] {
        let kafka = KafkaConfig::new("127.0.0.1:9092").with_option(option, SECRET);
        let registry = RegistryConfig::new("http://127.0.0.1:8081");
        match event_bus_kafka::producer::Producer::new(ProducerConfig::new(
            kafka.clone(),
            registry.clone(),
        )) {
            Ok(_) => panic!("{option} was accepted"),
            Err(err) => assert_hidden("producer error", &error_text(&err), option),
        }
        let config = ConsumerConfig::new(kafka, registry, "g", ["orders"]);
        match event_bus_kafka::consumer::EventConsumer::new(
            config,
            std::sync::Arc::new(event_bus_core::EventBus::new()),
        ) {
            Ok(_) => panic!("{option} was accepted"),
            Err(err) => assert_hidden("consumer error", &error_text(&err), option),
        }
    }
}

#[test]
fn configurations_from_the_environment_hide_their_secrets() {
    let env = EnvSource::from_pairs([
        (
            "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
            "broker:9093".to_owned(),
        ),
        ("EVENT_BUS_KAFKA_SECURITY_PROTOCOL", "SASL_SSL".to_owned()),
        ("EVENT_BUS_KAFKA_SASL_USERNAME", "svc".to_owned()),
        ("EVENT_BUS_KAFKA_SASL_PASSWORD", SECRET.to_owned()),
        ("EVENT_BUS_KAFKA_SSL_KEY_PASSWORD", SECRET.to_owned()),
        (
            "EVENT_BUS_KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET",
            SECRET.to_owned(),
        ),
        (
            "EVENT_BUS_KAFKA_SASL_OAUTHBEARER_CONFIG",
            format!("clientId=svc clientSecret={SECRET}"),
        ),
        (
            "EVENT_BUS_SCHEMA_REGISTRY_URL",
            format!("https://svc:{SECRET}@registry:8081"),
        ),
        ("EVENT_BUS_SCHEMA_REGISTRY_USERNAME", "svc".to_owned()),
        ("EVENT_BUS_SCHEMA_REGISTRY_PASSWORD", SECRET.to_owned()),
        (
            "EVENT_BUS_OUTBOX_DATABASE_URL",
            format!("postgres://app:{SECRET}@db/app"),
        ),
        ("EVENT_BUS_CONSUMER_GROUP", "g".to_owned()),
        ("EVENT_BUS_CONSUMER_TOPICS", "orders".to_owned()),
    ]);
    assert_hidden(
        "EnvSource Debug",
        &format!("{env:?}"),
        "postgres://app:***@db/app",
    );
    let kafka = KafkaConfig::from_env_source(&env).expect("kafka");
    let shown = format!("{kafka:?}");
    assert_hidden("KafkaConfig Debug", &shown, "sasl.password");
    assert_hidden(
        "KafkaConfig Debug",
        &shown,
        "sasl.oauthbearer.client.secret",
    );
    assert_hidden("KafkaConfig Debug", &shown, "ssl.key.password");
    let producer = ProducerConfig::from_env_source(&env).expect("producer config");
    assert_hidden(
        "ProducerConfig Debug",
        &format!("{producer:?}"),
        "https://svc:***@registry:8081",
    );
    let consumer = ConsumerConfig::from_env_source(&env).expect("consumer config");
    assert_hidden(
        "ConsumerConfig Debug",
        &format!("{consumer:?}"),
        "https://svc:***@registry:8081",
    );
    let outbox = OutboxConfig::from_env_source(&env).expect("outbox config");
    assert_hidden("OutboxConfig Debug", &format!("{outbox:?}"), "OutboxConfig");
}
