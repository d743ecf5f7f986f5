//! The transactional receiver: one business row and one derived event per login, in
//! the inbox's transaction.

use async_trait::async_trait;
use event_bus_core::dispatch::DeliveryContext;
use event_bus_examples::openedx::SessionLoginCompleted;
use event_bus_kafka::inbox::{database_failure, outbox_failure, TransactionalReceiver};
use event_bus_kafka::outbox::{PostgresOutbox, TransactionalOutbox};
use event_bus_kafka::prelude::*;
use sqlx::{PgPool, Postgres, Transaction};

use crate::login_counted::LoginCounted;

/// The business table. Deliberately without a unique key on `source_ce_id`: the
/// inbox alone keeps a login from being counted twice (and a unique key would not
/// help an `UPDATE … SET logins = logins + 1`, which is what many counters are).
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS learner_logins (
    source_ce_id UUID NOT NULL,
    user_id BIGINT NOT NULL,
    username TEXT NOT NULL,
    login_number BIGINT NOT NULL,
    counted_at TIMESTAMPTZ NOT NULL DEFAULT now())";

const CREATE_INDEX: &str = "CREATE INDEX IF NOT EXISTS learner_logins_by_username \
    ON learner_logins (username, login_number)";

/// Counts the login: its number is one more than the learner's logins counted so far.
/// Not idempotent, on purpose: running it twice for one event would give the learner
/// a login too many and every later login a wrong number.
const COUNT_LOGIN: &str =
    "INSERT INTO learner_logins (source_ce_id, user_id, username, login_number) \
    SELECT $1, $2, $3, count(*) + 1 FROM learner_logins WHERE username = $3 \
    RETURNING login_number";

/// Creates the business table if it is missing.
pub async fn create_table(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query(CREATE_TABLE).execute(pool).await?;
    sqlx::query(CREATE_INDEX).execute(pool).await?;
    Ok(())
}

/// Counts each login and enqueues a [`LoginCounted`] for it, both in the transaction
/// the inbox gives it (which also holds the inbox row): all three commit together, or
/// none does and the consumer tries again.
pub struct LoginCounter {
    outbox: TransactionalOutbox<PostgresOutbox>,
}

impl LoginCounter {
    /// The name the inbox records the receiver under. Renaming it would make the
    /// inbox treat every event as new for it.
    pub const NAME: &'static str = "login-counter";

    /// A counter enqueuing into `outbox` (on the inbox's database).
    pub fn new(outbox: TransactionalOutbox<PostgresOutbox>) -> Self {
        Self { outbox }
    }
}

#[async_trait]
impl TransactionalReceiver<SessionLoginCompleted, Postgres> for LoginCounter {
    async fn receive(
        &self,
        login: &SessionLoginCompleted,
        ctx: &DeliveryContext,
        tx: &mut Transaction<'static, Postgres>,
    ) -> Result<(), ReceiverError> {
        let username = &login.user.pii.username;
        let login_number: i64 = sqlx::query_scalar(COUNT_LOGIN)
            .bind(ctx.metadata.id)
            .bind(login.user.id)
            .bind(username)
            .fetch_one(&mut **tx)
            .await
            .map_err(database_failure)?;
        let counted = LoginCounted {
            username: username.clone(),
            user_id: login.user.id,
            login_number,
            source_ce_id: ctx.metadata.id.to_string(),
        };
        self.outbox
            .enqueue(tx, &counted)
            .await
            .map_err(outbox_failure)?;
        Ok(())
    }
}
