//! The example application's `event-bus` command: the SDK's command line, run from a
//! binary that links the example events so their registrations are present.
//!
//! ```text
//! cargo run -p event-bus-examples --bin event-bus -- schemas generate
//! cargo run -p event-bus-examples --bin event-bus -- schemas check
//! ```

// Links the crate whose #[derive(Event)] types register themselves.
use event_bus_examples as _;

fn main() -> std::process::ExitCode {
    event_bus_kafka::cli::main()
}
