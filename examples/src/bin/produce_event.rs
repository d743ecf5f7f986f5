//! `produce_event`: sends one example event given as JSON and prints where it landed;
//! the same as `event-bus produce-event`, for the example events.
//!
//! ```text
//! export EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS=localhost:9092
//! export EVENT_BUS_SCHEMA_REGISTRY_URL=http://localhost:8081
//! cargo run -p event-bus-examples --bin produce_event -- \
//!     --event-type org.openedx.learning.auth.session.login.completed.v1 \
//!     --data '{"user": {"id": 3, "is_active": true, "pii": {"username": "ada", "email": "ada@example.com", "name": "Ada"}}}'
//! cargo run -p event-bus-examples --bin produce_event -- --help
//! ```

// Links the crate whose #[derive(Event)] types register themselves.
use event_bus_examples as _;

fn main() -> std::process::ExitCode {
    event_bus_kafka::cli::produce::main_standalone(event_bus_kafka::cli::App::new())
}
