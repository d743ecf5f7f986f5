//! The log output of `consume-events` when the program has set up none.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs a `tracing` subscriber that writes human-readable logs to stderr, filtered
/// by `RUST_LOG` (default `info`), in colour only when stderr is a terminal and
/// `NO_COLOR` is unset, unless the program has installed one already (then
/// it does nothing). `consume-events` calls it, so its structured logs (deliveries,
/// receiver failures, dead letters, poll backoff) are visible by default.
///
/// ```
/// event_bus_kafka::cli::consume::install_tracing();
/// event_bus_kafka::cli::consume::install_tracing(); // a second call changes nothing
/// tracing::info!(answer = 42, "visible on stderr");
/// ```
pub fn install_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Fails only when a global subscriber is already set: then the program's wins.
    // Log files and collectors get plain text, not terminal colour codes.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}
