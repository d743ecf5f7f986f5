//! `exactly_once_effect`: consume, then produce, in one database transaction, so a
//! service that reacts to an event by writing data and emitting another event does
//! each exactly once in effect, although Kafka delivers at least once.
//!
//! # The lesson
//!
//! The service counts logins. For each `SessionLoginCompleted` it inserts a row into
//! `learner_logins` whose `login_number` is one more than the learner's logins so far,
//! and emits a `LoginCounted` event (topic `learner-login-counts`) carrying that
//! number and the login's `ce_id`. Neither effect may happen twice: a login counted
//! twice gives the learner a login too many and every later login a wrong number,
//! and a second `LoginCounted` tells everyone downstream so.
//!
//! Yet the same login *will* arrive twice: the consumer commits offsets only after
//! handling (every `EVENT_BUS_CONSUMER_COMMIT_INTERVAL_MS`), so a crash, a kill or a
//! rebalance hands the next owner records that were already handled. Upstream (Open
//! edX's Python bus) leaves each receiver to cope. Here the receiver is a
//! [`TransactionalReceiver`](event_bus_kafka::inbox::TransactionalReceiver) connected
//! through an [`Inbox`](event_bus_kafka::inbox::Inbox); for each delivery, in **one**
//! PostgreSQL transaction:
//!
//! 1. the inbox inserts `(group, receiver, ce_id)` into `event_bus.inbox`; if the row
//!    is there, the login was handled before: roll back, skip it (logged at debug:
//!    `duplicate delivery skipped`);
//! 2. the receiver inserts its `learner_logins` row;
//! 3. the receiver enqueues `LoginCounted` with a
//!    [`TransactionalOutbox`](event_bus_kafka::outbox::TransactionalOutbox) (a row in
//!    `event_bus.outbox`);
//! 4. commit: all three rows, or none (then the consumer retries the login).
//!
//! The relay running in this process publishes committed outbox rows to Kafka and
//! deletes them. It too delivers at least once: killed after the broker acknowledged
//! a batch but before deleting it, it publishes those rows again on restart, with the
//! same `ce_id`. Consumers of `learner-login-counts` deduplicate by `ce_id` (with an
//! inbox of their own). What can no longer happen is a *second* `LoginCounted`, with
//! a new `ce_id` and a wrong number, for one login.
//!
//! Limits: only what is written through the transaction is covered (an e-mail sent
//! from the receiver could go twice), and inbox rows are pruned after
//! `EVENT_BUS_INBOX_RETENTION` (default 7 days), after which a replayed login would be
//! counted again. `examples/tests/exactly_once_effect.rs` kills this process with
//! SIGKILL three times while 5 000 logins flow and checks that exactly 5 000 are
//! counted, numbered without gaps, and reach `learner-login-counts`.
//!
//! # Running it
//!
//! With no arguments it runs the service until SIGINT/SIGTERM. Configuration comes
//! from the usual `EVENT_BUS_*` variables (`docs/configuration.md`): the consumer's
//! (group `login-counter` unless `EVENT_BUS_CONSUMER_GROUP` says otherwise; the topic is
//! always `user-login`), the producer's, the outbox's (its PostgreSQL database holds
//! the business table, the outbox and the inbox; `EVENT_BUS_OUTBOX_MAX_CONNECTIONS`
//! must be at least `EVENT_BUS_CONSUMER_MAX_IN_FLIGHT` + 2) and the inbox retention's.
//!
//! ```text
//! export EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS=localhost:9092
//! export EVENT_BUS_SCHEMA_REGISTRY_URL=http://localhost:8081
//! export EVENT_BUS_OUTBOX_DATABASE_URL=postgres://postgres@127.0.0.1/postgres
//! cargo run -p event-bus-examples --bin exactly_once_effect
//! ```
//!
//! With arguments it is this application's `event-bus` command line, which knows
//! `LoginCounted` (the example's `event-bus` binary does not):
//!
//! ```text
//! cargo run -p event-bus-examples --bin exactly_once_effect -- schemas check
//! cargo run -p event-bus-examples --bin exactly_once_effect -- inbox status
//! cargo run -p event-bus-examples --bin exactly_once_effect -- tail --topic learner-login-counts --from-beginning
//! ```

mod counter;
mod login_counted;
mod service;

use std::process::ExitCode;

use event_bus_kafka::cli::{consume::install_tracing, exit_code, App};

use crate::login_counted::LoginCounted;

fn main() -> ExitCode {
    if std::env::args_os().len() > 1 {
        return App::new().with_produced::<LoginCounted>().main();
    }
    install_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            return ExitCode::from(exit_code::ERROR);
        }
    };
    match runtime.block_on(service::run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "the login counter stopped");
            ExitCode::from(exit_code::ERROR)
        }
    }
}
