//! The example application's `event-bus` command: the SDK's command line, run from a
//! binary that links the example events so their registrations are present.
//!
//! ```text
//! cargo run -p event-bus-examples --bin event-bus -- schemas generate
//! cargo run -p event-bus-examples --bin event-bus -- schemas check
//! cargo run -p event-bus-examples --bin event-bus -- dev   # mock Kafka + registry, until Ctrl-C
//! cargo run -p event-bus-examples --bin event-bus -- catalog --format html --out catalog.html
//! ```

// Links the crate whose #[derive(Event)] types register themselves.
use event_bus_examples::openedx::{CourseEnrollmentCreated, SessionLoginCompleted};

fn main() -> std::process::ExitCode {
    // `dev` runs the testkit's embedded development stack (not for production).
    event_bus_kafka::cli::App::new()
        .with_dev(event_bus_testkit::dev::run)
        // The example services send both events (`catalog` lists them as sent).
        .with_produced::<SessionLoginCompleted>()
        .with_produced::<CourseEnrollmentCreated>()
        .main()
}
