//! `consume_events`: consumes the example Open edX events and dispatches them to the
//! example receivers (an audit log and a counter); the same as
//! `event-bus consume-events` in an application with those receivers.
//!
//! ```text
//! export EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS=localhost:9092
//! export EVENT_BUS_SCHEMA_REGISTRY_URL=http://localhost:8081
//! cargo run -p event-bus-examples --bin consume_events -- \
//!     --topic user-login --topic learning-course-enrollment --group example-audit
//! cargo run -p event-bus-examples --bin consume_events -- --help
//! ```
//!
//! It serves Prometheus metrics and a health probe while it runs:
//! `curl localhost:9464/metrics`, `curl localhost:9464/healthz` (move them with
//! `--observability-address 127.0.0.1:9100`, or turn them off with `off`).
//!
//! With `EXAMPLE_RECEIVED_LOG=/path/file` set, each receiver appends
//! `receiver<TAB>ce_id` for every event it handled (see
//! `event_bus_examples::receivers::ReceivedLog`).

use std::process::ExitCode;

use event_bus_examples::receivers::{example_bus, ReceivedLog, RECEIVED_LOG_ENV};
use event_bus_kafka::cli::{consume, exit_code, App};

fn main() -> ExitCode {
    let log = match ReceivedLog::from_env() {
        Ok(log) => log,
        Err(err) => {
            eprintln!("error: cannot open the file named by {RECEIVED_LOG_ENV}: {err}");
            return ExitCode::from(exit_code::ERROR);
        }
    };
    let bus = match example_bus(log) {
        Ok(bus) => bus,
        Err(err) => {
            eprintln!("error: cannot connect the example receivers: {err}");
            return ExitCode::from(exit_code::ERROR);
        }
    };
    consume::main_standalone(App::new().with_bus(bus))
}
