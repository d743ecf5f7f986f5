//! The command line shows no password: `event-bus outbox status|relay` and
//! `produce_event` are run with a distinctive secret in the database URL (from the
//! environment and from `--database-url`), the registry URL and password, and the SASL
//! settings, against endpoints that fail; stdout and stderr (logs at trace level) must
//! not contain it, and must show what failed.

use std::process::{Command, Output, Stdio};

use event_bus_core::Event;
use event_bus_examples::openedx::SessionLoginCompleted;
use event_bus_testkit::topics::unique_topic;

const SECRET: &str = "Zq7-never-show-Wx9";

/// A local port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// `binary` with no inherited EVENT_BUS_* settings, logging everything.
fn command(binary: &str) -> Command {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("EVENT_BUS_")) {
        command.env_remove(name);
    }
    command
        .env("RUST_LOG", "trace")
        .env("EVENT_BUS_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
        .env("EVENT_BUS_KAFKA_SASL_MECHANISM", "PLAIN")
        .env("EVENT_BUS_KAFKA_SASL_USERNAME", "svc")
        .env("EVENT_BUS_KAFKA_SASL_PASSWORD", SECRET)
        .env("EVENT_BUS_SCHEMA_REGISTRY_USERNAME", "svc")
        .env("EVENT_BUS_SCHEMA_REGISTRY_PASSWORD", SECRET)
        .env(
            "EVENT_BUS_SCHEMA_REGISTRY_URL",
            format!("http://svc:{SECRET}@127.0.0.1:{}", closed_port()),
        )
        .env(
            "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
            format!("127.0.0.1:{}", closed_port()),
        )
        .stdin(Stdio::null());
    command
}

/// Runs `command`; fails if its output shows the secret or lacks `visible`.
fn run_hiding_the_secret(what: &str, mut command: Command, visible: &str) -> Output {
    let output = command.output().expect("the command runs");
    let shown = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!shown.contains(SECRET), "{what} shows the secret:\n{shown}");
    assert!(
        shown.contains(visible),
        "{what} should show `{visible}`:\n{shown}"
    );
    output
}

#[test]
fn outbox_status_against_an_unreachable_database_shows_no_password() {
    let url = format!("postgres://app:{SECRET}@127.0.0.1:{}/app", closed_port());

    let mut from_env = command(env!("CARGO_BIN_EXE_event-bus"));
    from_env
        .args(["outbox", "status"])
        .env("EVENT_BUS_OUTBOX_DATABASE_URL", &url);
    let output = run_hiding_the_secret(
        "outbox status (URL from the environment)",
        from_env,
        "connecting to PostgreSQL",
    );
    assert_eq!(output.status.code(), Some(3));

    let mut from_flag = command(env!("CARGO_BIN_EXE_event-bus"));
    from_flag.args(["outbox", "status", "--database-url", &url]);
    let output = run_hiding_the_secret(
        "outbox status --database-url",
        from_flag,
        "connecting to PostgreSQL",
    );
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn outbox_relay_with_sasl_and_registry_secrets_shows_none() {
    let dir = std::env::temp_dir().join(unique_topic("secrets-cli"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut relay = command(env!("CARGO_BIN_EXE_event-bus"));
    relay.args(["outbox", "relay", "--drain"]).env(
        "EVENT_BUS_OUTBOX_DATABASE_URL",
        format!("sqlite:{}", dir.join("outbox.db").display()),
    );
    let output = run_hiding_the_secret("outbox relay --drain", relay, "relay stopped");
    assert_eq!(output.status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// librdkafka refuses an option it cannot apply (`ssl.key.password` on a build without
/// OpenSSL, a misspelled name) and rdkafka's message quotes the value: the relay must
/// name the option and hide the value.
#[test]
fn outbox_relay_with_a_refused_secret_option_shows_its_name_only() {
    let dir = std::env::temp_dir().join(unique_topic("secrets-cli-refused"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (variable, option) in [
        ("EVENT_BUS_KAFKA_SSL_KEY_PASSWORD", "ssl.key.password"),
        ("EVENT_BUS_KAFKA_SSL_KEY_PASWORD", "ssl.key.pasword"),
    ] {
        let mut relay = command(env!("CARGO_BIN_EXE_event-bus"));
        relay
            .args(["outbox", "relay", "--drain"])
            .env(
                "EVENT_BUS_OUTBOX_DATABASE_URL",
                format!("sqlite:{}", dir.join("outbox.db").display()),
            )
            .env(variable, SECRET);
        let output = run_hiding_the_secret(
            &format!("outbox relay --drain with {variable}"),
            relay,
            option,
        );
        assert_ne!(output.status.code(), Some(0), "{option} was accepted");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn produce_event_against_an_unreachable_registry_shows_no_password() {
    let data = r#"{"user": {"id": 1, "is_active": true, "pii": {"username": "u", "email": "u@x.example", "name": "U"}}}"#;
    let mut produce = command(env!("CARGO_BIN_EXE_produce_event"));
    produce.args([
        "--event-type",
        SessionLoginCompleted::EVENT_TYPE,
        "--data",
        data,
    ]);
    let output = run_hiding_the_secret("produce_event", produce, "svc:***@127.0.0.1");
    assert_ne!(output.status.code(), Some(0));
}
