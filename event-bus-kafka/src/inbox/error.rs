//! Inbox errors, and how they reach the consumer as a receiver's failure.

use event_bus_core::ReceiverError;

use crate::failure::{self, Failure};
use crate::outbox::OutboxError;

/// Why an inbox operation failed.
///
/// A transactional receiver's event that meets one of these is not lost: the error
/// becomes the receiver's failure (`ReceiverError::from`, retryable as
/// [`failure`](Self::failure) says), retried with backoff or dead-lettered by the
/// consumer like any other.
///
/// ```
/// use event_bus_kafka::inbox::InboxError;
/// let err = InboxError::NoInboxTable { table: "event_bus.inbox" };
/// assert!(err.to_string().contains("event-bus outbox migrate"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// No transaction could be begun: the database is unreachable, refuses the
    /// connection, or the pool is exhausted. This says nothing about the event, so it is
    /// always retryable.
    #[error(
        "cannot begin a transaction on the inbox database: {source}; check that it is \
         reachable (the event was not handled and will be tried again)"
    )]
    Begin {
        /// sqlx's error.
        #[source]
        source: sqlx::Error,
    },
    /// The commit of a handled event failed; whether it took effect may be unknown.
    /// Retryable: if it did commit, the retry finds the inbox row and skips the event.
    #[error(
        "cannot commit the inbox transaction: {source}; the event will be tried again \
         (if the commit took effect after all, the retry is skipped as a duplicate)"
    )]
    Commit {
        /// sqlx's error.
        #[source]
        source: sqlx::Error,
    },
    /// A statement in the transaction failed but the receiver returned `Ok`: PostgreSQL
    /// had aborted the transaction, and its `COMMIT` would have rolled back while
    /// reporting success. Nothing was committed; retryable under the retry policy.
    #[error(
        "the inbox transaction was aborted by a failed statement whose error the receiver          did not return ({source}); nothing was committed and the event will be tried          again: return the statement's error from the receiver (e.g. with          `database_failure`) so it is logged and classified"
    )]
    Aborted {
        /// The error PostgreSQL gave the check (SQLSTATE 25P02).
        #[source]
        source: sqlx::Error,
    },
    /// A database statement failed.
    #[error(
        "inbox database error while {operation}: {source}; {}",
        database_hint(source)
    )]
    Database {
        /// What the inbox was doing.
        operation: &'static str,
        /// sqlx's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database has no inbox table: the migrations that create it (the outbox's,
    /// which include the inbox) were not run there.
    #[error(
        "no inbox table ({table}) in this database: run `event-bus outbox migrate` (the \
         outbox migrations create the inbox table too), or call `migrate()` on the inbox or \
         outbox store at start-up; if it should be there, check the database URL"
    )]
    NoInboxTable {
        /// The table looked for.
        table: &'static str,
    },
    /// The database could not be opened (the outbox's connection path is used).
    #[error("cannot open the inbox database: {0}")]
    Connect(#[source] OutboxError),
    /// The migrations (the outbox's, which create the inbox table) failed.
    #[error("cannot create the inbox table: {0}")]
    Migrate(#[source] OutboxError),
    /// The database URL names no supported store.
    #[error("unsupported inbox database URL `{scheme}…`: use postgres://… or sqlite:…")]
    UnsupportedUrl {
        /// The URL's scheme (never the whole URL: it may hold a password).
        scheme: String,
    },
}

/// What to do about a database error: a column the SDK's queries name is missing when
/// the inbox table predates its migrations.
fn database_hint(error: &sqlx::Error) -> &'static str {
    if failure::is_missing_column(error) {
        "the inbox table is older than this SDK: run `event-bus outbox migrate` (or call \
         `migrate()` on the store at start-up)"
    } else {
        "check that the database is reachable and migrated"
    }
}

impl InboxError {
    /// A database error while doing `operation` on `table`: a missing table becomes
    /// [`InboxError::NoInboxTable`].
    pub(crate) fn db(
        operation: &'static str,
        table: &'static str,
    ) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| {
            if failure::is_missing_table(&source) {
                Self::NoInboxTable { table }
            } else {
                Self::Database { operation, source }
            }
        }
    }

    /// What the failure classifier makes of this error (see
    /// [`failure::of_inbox`](crate::failure::of_inbox)).
    ///
    /// ```
    /// use event_bus_kafka::failure::Failure;
    /// use event_bus_kafka::inbox::InboxError;
    /// let err = InboxError::Begin { source: sqlx::Error::PoolTimedOut };
    /// assert_eq!(err.failure(), Failure::Unavailable);
    /// ```
    pub fn failure(&self) -> Failure {
        failure::of_inbox(self)
    }
}

/// The receiver's failure for an inbox error: retryable when the classifier says so
/// (the database down, a busy lock, the table missing), else permanent.
///
/// ```
/// use event_bus_core::ReceiverError;
/// use event_bus_kafka::inbox::InboxError;
/// let err: ReceiverError = InboxError::NoInboxTable { table: "event_bus_inbox" }.into();
/// assert!(err.is_retryable());
/// assert!(err.is_unavailable()); // waits for the migration, never dead-lettered for it
/// assert!(err.message().contains("event-bus outbox migrate"));
/// ```
impl From<InboxError> for ReceiverError {
    fn from(error: InboxError) -> Self {
        receiver_failure(error.failure(), error)
    }
}

/// A receiver's own database error as its failure, retryable or permanent by the
/// failure classifier ([`of_database`](crate::failure::of_database)): a lost
/// connection or a deadlock is tried again, a constraint violation is not.
///
/// ```
/// use event_bus_kafka::inbox::database_failure;
/// assert!(database_failure(sqlx::Error::PoolTimedOut).is_retryable());
/// assert!(!database_failure(sqlx::Error::RowNotFound).is_retryable());
/// ```
pub fn database_failure(error: sqlx::Error) -> ReceiverError {
    receiver_failure(failure::of_database(&error), error)
}

/// The failure of a receiver that could not enqueue an event in its transaction (a
/// [`TransactionalOutbox`](crate::outbox::TransactionalOutbox) in the inbox's
/// transaction: consume, then produce), retryable or permanent by the failure
/// classifier ([`of_outbox`](crate::failure::of_outbox)): a full outbox, a lost
/// connection or an unreachable schema registry is tried again, an event the registry
/// refuses is not.
///
/// ```
/// use event_bus_kafka::inbox::outbox_failure;
/// use event_bus_kafka::outbox::OutboxError;
/// assert!(outbox_failure(OutboxError::Full { pending: 10, max_backlog: 10 }).is_retryable());
/// assert!(!outbox_failure(OutboxError::NoOutboxTable { table: "event_bus.outbox" }).is_retryable());
/// ```
pub fn outbox_failure(error: OutboxError) -> ReceiverError {
    receiver_failure(failure::of_outbox(&error), error)
}

/// `error` as a receiver's failure: an outage of the database
/// ([`Failure::Unavailable`]) makes the record wait until it is back
/// ([`ReceiverError::unavailable`]: attempts not counted, never dead-lettered for it),
/// another retryable failure is retried under the retry policy, the rest is permanent.
fn receiver_failure(
    failure: Failure,
    error: impl std::error::Error + Send + Sync + 'static,
) -> ReceiverError {
    match failure {
        Failure::Unavailable => ReceiverError::from_error(error).into_unavailable(),
        _ if failure.is_retryable() => ReceiverError::from_error(error),
        _ => ReceiverError::permanent(error.to_string()),
    }
}
