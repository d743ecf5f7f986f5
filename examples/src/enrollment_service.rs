//! A producer service: an HTTP endpoint that stores an enrollment and its event in one
//! PostgreSQL transaction (transactional outbox), with the relay publishing beside it.
//!
//! `POST /enrollments` with `{"user_id": 7, "username": "ada", "course_key": "…"}`
//! inserts a row into `enrollments` and enqueues a `CourseEnrollmentCreated` event in
//! the same transaction: the event exists if and only if the enrollment does. A
//! duplicate enrollment (same user and course) is refused with 409 and no event.
//!
//! ```no_run
//! # async fn demo(pool: sqlx::PgPool, producer: event_bus_kafka::prelude::Producer) -> Result<(), event_bus_examples::enrollment_service::BoxError> {
//! use event_bus_examples::enrollment_service::{router, EnrollmentService};
//! let service = EnrollmentService::start(pool, producer).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, router(service.clone())).await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use event_bus_kafka::outbox::{
    PostgresOutbox, Relay, RelayConfig, RelayHandle, TransactionalOutbox,
};
use event_bus_kafka::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;

use crate::openedx::{
    CourseData, CourseEnrollmentCreated, CourseEnrollmentData, UserData, UserPersonalData,
};

/// Any error of the service, with its cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of `POST /enrollments`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The learner's id.
    pub user_id: i64,
    /// The learner's login name.
    pub username: String,
    /// The course key.
    pub course_key: String,
}

/// The service's shared state: the database and the transactional outbox.
#[derive(Clone)]
pub struct EnrollmentService {
    pool: PgPool,
    outbox: Arc<TransactionalOutbox<PostgresOutbox>>,
    relay: Arc<tokio::sync::Mutex<Option<RelayHandle>>>,
}

impl EnrollmentService {
    /// Creates the `enrollments` table and the outbox tables if needed, and starts the
    /// relay in this process.
    ///
    /// See the module example.
    pub async fn start(pool: PgPool, producer: Producer) -> Result<Self, BoxError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS enrollments (
                user_id BIGINT NOT NULL, course_key TEXT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                PRIMARY KEY (user_id, course_key))",
        )
        .execute(&pool)
        .await?;
        let store = Arc::new(PostgresOutbox::new(pool.clone()));
        store.migrate().await?;
        let outbox = TransactionalOutbox::new(producer.encoder().clone(), store.clone());
        let relay = Relay::new(store, producer, RelayConfig::default()).spawn();
        Ok(Self {
            pool,
            outbox: Arc::new(outbox),
            relay: Arc::new(tokio::sync::Mutex::new(Some(relay))),
        })
    }

    /// Stops the relay after its current batch.
    ///
    /// See the module example.
    pub async fn stop(&self) {
        if let Some(relay) = self.relay.lock().await.take() {
            if let Err(error) = relay.shutdown().await {
                tracing::warn!(error = %error, "relay stopped with an error");
            }
        }
    }
}

/// The HTTP routes.
///
/// See the module example.
pub fn router(service: EnrollmentService) -> Router {
    Router::new()
        .route("/enrollments", post(enroll))
        .with_state(service)
}

async fn enroll(
    State(service): State<EnrollmentService>,
    Json(request): Json<EnrollRequest>,
) -> (StatusCode, Json<serde_json::Value>) {
    match enroll_in_one_transaction(&service, &request).await {
        Ok(Some(event_id)) => (
            StatusCode::CREATED,
            Json(json!({"enrolled": true, "ce_id": event_id.to_string()})),
        ),
        Ok(None) => (
            StatusCode::CONFLICT,
            Json(json!({"error": "already enrolled"})),
        ),
        Err(error) => {
            tracing::error!(error = %error, "enrollment failed; nothing was stored");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": error.to_string()})),
            )
        }
    }
}

/// Inserts the enrollment and enqueues its event in one transaction; `None` when the
/// learner was already enrolled (nothing stored, no event).
async fn enroll_in_one_transaction(
    service: &EnrollmentService,
    request: &EnrollRequest,
) -> Result<Option<uuid::Uuid>, BoxError> {
    let mut tx = service.pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO enrollments (user_id, course_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(request.user_id)
    .bind(&request.course_key)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(None);
    }
    let enqueued = service.outbox.enqueue(&mut tx, &event_for(request)).await?;
    tx.commit().await?;
    Ok(Some(enqueued.event_id))
}

fn event_for(request: &EnrollRequest) -> CourseEnrollmentCreated {
    CourseEnrollmentCreated {
        enrollment: CourseEnrollmentData {
            user: UserData {
                id: request.user_id,
                is_active: true,
                pii: UserPersonalData {
                    username: request.username.clone(),
                    email: String::new(),
                    name: String::new(),
                },
            },
            course: CourseData {
                course_key: request.course_key.clone(),
                display_name: request.course_key.clone(),
                start: None,
                end: None,
            },
            mode: "audit".into(),
            is_active: true,
            creation_date: chrono::Utc::now(),
            created_by: None,
        },
    }
}
