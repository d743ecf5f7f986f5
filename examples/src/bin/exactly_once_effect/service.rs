//! The service's wiring: configuration, the database, the inbox, the relay and the
//! consumer loop, until SIGINT/SIGTERM.

use std::sync::Arc;

use event_bus_examples::openedx::SessionLoginCompleted;
use event_bus_kafka::config::{ConfigError, EnvSource};
use event_bus_kafka::consumer::{ConsumerConfig, EventConsumer, Shutdown};
use event_bus_kafka::inbox::{AnyInbox, Inbox, InboxPruner, InboxRetention, PostgresInbox};
use event_bus_kafka::outbox::{OutboxConfig, PostgresOutbox, Relay, TransactionalOutbox};
use event_bus_kafka::prelude::*;

use crate::counter::{create_table, LoginCounter};

/// Any error of the service, with its cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The consumer group when `EVENT_BUS_CONSUMER_GROUP` is unset.
const DEFAULT_GROUP: &str = "login-counter";

/// Pooled connections the relay holds (its claim and its lease).
const RELAY_CONNECTIONS: u32 = 2;

/// The process's `EVENT_BUS_*` variables over the service's defaults.
fn environment() -> EnvSource {
    let process = EnvSource::from_process();
    match process.get("EVENT_BUS_CONSUMER_GROUP") {
        Some(_) => process,
        None => process.with_var("EVENT_BUS_CONSUMER_GROUP", DEFAULT_GROUP),
    }
}

/// Each event in flight holds a pooled connection for its transaction, and the relay
/// two more: a smaller pool would leave events waiting for a connection until their
/// begin times out.
fn check_pool_size(outbox: &OutboxConfig, consumer: &ConsumerConfig) -> Result<(), ConfigError> {
    let in_flight = u32::try_from(consumer.max_in_flight).unwrap_or(u32::MAX);
    let needed = in_flight.saturating_add(RELAY_CONNECTIONS);
    if outbox.max_connections < needed {
        return Err(ConfigError::Invalid {
            variable: "EVENT_BUS_OUTBOX_MAX_CONNECTIONS".into(),
            value: outbox.max_connections.to_string(),
            expected: "at least EVENT_BUS_CONSUMER_MAX_IN_FLIGHT + 2 (one connection per event in flight, two for the relay)",
        });
    }
    Ok(())
}

/// Runs the service until SIGINT/SIGTERM, then stops the consumer (committing what
/// it handled), the relay and the pruner, and logs what the inbox did.
pub async fn run() -> Result<(), BoxError> {
    let env = environment();
    let mut consumer_config = ConsumerConfig::from_env_source(&env)?;
    consumer_config.topics = vec![SessionLoginCompleted::TOPIC.to_owned()];
    let outbox_config = OutboxConfig::from_env_source(&env)?;
    check_pool_size(&outbox_config, &consumer_config)?;
    let retention = InboxRetention::from_env_source(&env)?;
    let producer = Producer::new(ProducerConfig::from_env_source(&env)?)?;

    // One database, one pool: the business table, the outbox and the inbox.
    let store = PostgresOutbox::connect_with_pool_size(
        outbox_config.database_url.expose(),
        outbox_config.max_connections,
    )
    .await?;
    store.migrate().await?; // the outbox and inbox tables
    create_table(store.pool()).await?;
    let inbox = Inbox::new(PostgresInbox::from_outbox(&store));
    let store = Arc::new(store);

    let outbox = TransactionalOutbox::new(producer.encoder().clone(), Arc::clone(&store));
    let mut bus = EventBus::new();
    inbox.connect(&mut bus, LoginCounter::NAME, LoginCounter::new(outbox))?;

    let relay = Relay::new(store, producer, outbox_config.relay).spawn();
    let pruner = InboxPruner::spawn(AnyInbox::Postgres(inbox.store().clone()), retention);
    let group = consumer_config.group_id.clone();
    let consumer = EventConsumer::new(consumer_config, Arc::new(bus))?;
    tracing::info!(
        group = %group,
        receiver = LoginCounter::NAME,
        "counting logins: one row and one derived event per login, in one transaction"
    );
    let consumed = consumer.run(Shutdown::on_signals()).await;
    let relayed = relay.shutdown().await;
    let pruned = pruner.stop().await;
    let counts = inbox.stats().receiver(LoginCounter::NAME);
    tracing::info!(
        handled = counts.handled,
        duplicates_skipped = counts.duplicates,
        inbox_rows_pruned = pruned,
        "stopped"
    );
    consumed?;
    relayed?;
    Ok(())
}
