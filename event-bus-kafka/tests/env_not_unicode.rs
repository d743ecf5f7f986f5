//! The process environment is outside input: any variable may hold bytes that are not
//! UTF-8. Reading the configuration must not panic on one (`std::env::vars` does), and
//! an `EVENT_BUS_*` value with such bytes must still reach the parsers, to fail there
//! with an error that names the variable.
//!
//! One test in its own binary: it sets process environment variables.

#![cfg(unix)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use event_bus_kafka::config::{ConfigError, EnvSource, ProducerConfig};

#[test]
fn variables_that_are_not_utf8_do_not_panic_and_are_named() {
    let not_utf8 = |bytes: &[u8]| OsString::from_vec(bytes.to_vec());
    std::env::set_var("SIGNAL_BRIDGE_TEST_NOT_UTF8", not_utf8(b"caf\xe9"));
    std::env::set_var("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "b:9092");
    std::env::set_var("EVENT_BUS_SCHEMA_REGISTRY_URL", "http://r:8081");
    std::env::set_var(
        "EVENT_BUS_PRODUCER_DELIVERY_TIMEOUT_MS",
        not_utf8(b"50\xff"),
    );

    let env = EnvSource::from_process();

    assert_eq!(env.get("SIGNAL_BRIDGE_TEST_NOT_UTF8"), None);
    assert_eq!(
        env.get("EVENT_BUS_PRODUCER_DELIVERY_TIMEOUT_MS"),
        Some("50\u{FFFD}")
    );
    let error = ProducerConfig::from_env_source(&env).expect_err("not a number");
    assert!(
        matches!(&error, ConfigError::Invalid { variable, .. } if variable == "EVENT_BUS_PRODUCER_DELIVERY_TIMEOUT_MS"),
        "{error}"
    );

    // Every `event-bus` command reads its configuration this way.
    #[cfg(feature = "cli")]
    {
        let flags = event_bus_kafka::cli::produce::ConnectionArgs {
            bootstrap_servers: Some("flag:9092".into()),
            schema_registry_url: None,
        };
        let env = flags.env_source();
        assert_eq!(
            env.get("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"),
            Some("flag:9092")
        );
        assert_eq!(
            env.get("EVENT_BUS_PRODUCER_DELIVERY_TIMEOUT_MS"),
            Some("50\u{FFFD}")
        );
    }
}
