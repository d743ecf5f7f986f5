//! The producer-service example: `POST /enrollments` stores an enrollment and its event
//! in one PostgreSQL transaction; the relay beside it publishes the event.
//!
//! ```text
//! EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS=… EVENT_BUS_SCHEMA_REGISTRY_URL=… \
//! EVENT_BUS_OUTBOX_DATABASE_URL=postgres://postgres@127.0.0.1/postgres \
//!   cargo run -p event-bus-examples --bin enrollment_service -- 127.0.0.1:8080
//! curl -XPOST localhost:8080/enrollments -H 'content-type: application/json' \
//!   -d '{"user_id": 7, "username": "ada", "course_key": "course-v1:X+Y+Z"}'
//! ```

use event_bus_examples::enrollment_service::{router, BoxError, EnrollmentService};
use event_bus_kafka::prelude::*;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let database_url = std::env::var("EVENT_BUS_OUTBOX_DATABASE_URL").map_err(|_| {
        "set EVENT_BUS_OUTBOX_DATABASE_URL to the service's PostgreSQL database (postgres://…)"
    })?;
    let pool = sqlx::PgPool::connect(&database_url).await?;
    let producer = Producer::new(ProducerConfig::from_env()?)?;
    let service = EnrollmentService::start(pool, producer).await?;
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("enrollment service listening on http://{address}");
    axum::serve(listener, router(service.clone()))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    service.stop().await;
    Ok(())
}
