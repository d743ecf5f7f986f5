//! Configuration from outside the process: `EVENT_BUS_*` variables
//! (`KafkaConfig::from_env_source`, and the producer's and consumer's configurations
//! built on it) and the `--extra` JSON of `event-bus consume-events` (`parse_extra`).
//!
//! What must hold:
//! - no panic; refusals are typed (`ConfigError`, `ExtraOptionsError`) and never quote
//!   the value of a secret (registry password, `sasl.password`);
//! - accepted Kafka options map back to what was given: every option comes from one
//!   `EVENT_BUS_KAFKA_<NAME>` variable, with its value unchanged, and every such
//!   variable with a value is there (none silently dropped);
//! - `--extra` accepted as a map gives back, as JSON, the same map; options given as a
//!   list of distinct names come back exactly; a name given twice is refused.
//!
//! Input layout: entries `[kind u8][name_len u8][name][value_len u8][value]` (text read
//! lossily); `kind` picks the variable (see `variable_name`), or the `--extra` text, or
//! one `--extra` option.

#![no_main]

use std::collections::BTreeMap;

use event_bus_kafka::cli::consume::{parse_extra, ExtraOptionsError};
use event_bus_kafka::config::{ConfigError, EnvSource, KafkaConfig, ProducerConfig};
use event_bus_kafka::consumer::ConsumerConfig;
use libfuzzer_sys::fuzz_target;

const KAFKA_PREFIX: &str = "EVENT_BUS_KAFKA_";
const BOOTSTRAP: &str = "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS";

/// What the fuzzer's bytes give.
#[derive(Default)]
struct Input {
    vars: Vec<(String, String)>,
    extra_text: Option<String>,
    extra_options: Vec<(String, String)>,
}

fn read_input(mut data: &[u8]) -> Input {
    let mut input = Input::default();
    while let [kind, name_len, rest @ ..] = data {
        let (name, rest) = rest.split_at(usize::from(*name_len).min(rest.len()));
        let Some((value_len, rest)) = rest.split_first() else {
            break;
        };
        let (value, rest) = rest.split_at(usize::from(*value_len).min(rest.len()));
        data = rest;
        let name = String::from_utf8_lossy(name).into_owned();
        let value = String::from_utf8_lossy(value).into_owned();
        match kind % 12 {
            10 => input.extra_text = Some(value),
            11 => input.extra_options.push((name, value)),
            // Secrets get a prefix no message template holds, so finding one in a
            // message means the value was quoted.
            kind @ (4 | 5) => input
                .vars
                .push((variable_name(kind, &name), format!("s3cr3t-{value}"))),
            kind => input.vars.push((variable_name(kind, &name), value)),
        }
    }
    input
}

fn variable_name(kind: u8, name: &str) -> String {
    match kind {
        0 | 1 => format!("{KAFKA_PREFIX}{name}"),
        2 => BOOTSTRAP.to_owned(),
        3 => "EVENT_BUS_SCHEMA_REGISTRY_URL".to_owned(),
        4 => "EVENT_BUS_SCHEMA_REGISTRY_PASSWORD".to_owned(),
        5 => "EVENT_BUS_KAFKA_SASL_PASSWORD".to_owned(),
        6 => "EVENT_BUS_CONSUMER_GROUP".to_owned(),
        7 => "EVENT_BUS_CONSUMER_TOPICS".to_owned(),
        8 => format!("EVENT_BUS_CONSUMER_{name}"),
        _ => format!("EVENT_BUS_{name}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let input = read_input(data);
    // The environment has one value per name: the last one given, as in `from_pairs`.
    let vars: BTreeMap<String, String> = input.vars.iter().cloned().collect();
    let env = EnvSource::from_pairs(vars.clone());
    let secrets = secrets(&vars, input.extra_text.as_deref().unwrap_or_default());

    check_kafka(&env, &vars, &secrets);
    if let Err(error) = ProducerConfig::from_env_source(&env) {
        assert_typed_and_discreet(&error, &secrets);
    }
    let consumer = ConsumerConfig::from_env_source(&env);
    if let Err(error) = &consumer {
        assert_typed_and_discreet(error, &secrets);
    }

    if let Some(text) = &input.extra_text {
        let parsed = check_extra_text(text);
        if let (Ok(mut config), Some(options)) = (consumer, parsed) {
            // What `consume-events` does with the two: --extra wins, then validation.
            config.kafka.options.extend(options);
            if let Err(error) = config.validate() {
                assert_typed_and_discreet(&error, &secrets);
            }
        }
    }
    check_extra_options(&input.extra_options);
});

/// Values of secret variables long enough to recognise in a message.
fn secrets(vars: &BTreeMap<String, String>, extra: &str) -> Vec<String> {
    let secret_names = [
        "EVENT_BUS_SCHEMA_REGISTRY_PASSWORD",
        "EVENT_BUS_KAFKA_SASL_PASSWORD",
    ];
    let secrets: Vec<String> = secret_names
        .iter()
        .filter_map(|name| vars.get(*name))
        .filter(|value| value.trim().len() >= 6)
        .cloned()
        .collect();
    // A value that also appears in a setting that is not secret may be quoted there.
    secrets
        .into_iter()
        .filter(|secret| !extra.contains(secret.as_str()))
        .filter(|secret| {
            !vars
                .iter()
                .filter(|(name, _)| !secret_names.contains(&name.as_str()))
                .any(|(name, value)| {
                    value.contains(secret.as_str()) || name.contains(secret.as_str())
                })
        })
        .collect()
}

fn assert_typed_and_discreet(error: &ConfigError, secrets: &[String]) {
    let shown = error.to_string();
    assert!(!shown.is_empty());
    for secret in secrets {
        assert!(!shown.contains(secret.as_str()), "a secret in `{shown}`");
    }
}

/// The option name an `EVENT_BUS_KAFKA_<NAME>` variable sets.
fn option_of(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', ".")
}

fn check_kafka(env: &EnvSource, vars: &BTreeMap<String, String>, secrets: &[String]) {
    let config = match KafkaConfig::from_env_source(env) {
        Ok(config) => config,
        Err(error) => {
            assert_typed_and_discreet(&error, secrets);
            return;
        }
    };
    let bootstrap = vars
        .get(BOOTSTRAP)
        .expect("accepted without bootstrap servers");
    assert_eq!(&config.bootstrap_servers, bootstrap);
    let given: Vec<(&str, &str)> = vars
        .iter()
        .filter_map(|(name, value)| Some((name.strip_prefix(KAFKA_PREFIX)?, value.as_str())))
        .filter(|(name, value)| *name != "BOOTSTRAP_SERVERS" && !value.trim().is_empty())
        .collect();
    for (option, value) in &config.options {
        assert!(
            given
                .iter()
                .any(|(name, given)| option_of(name) == *option && given == value),
            "option {option} does not come from a variable"
        );
        assert_ne!(
            option, "bootstrap.servers",
            "the brokers come from {BOOTSTRAP} only"
        );
    }
    for (name, value) in given {
        if option_of(name) == "bootstrap.servers" {
            assert_eq!(value, bootstrap, "{KAFKA_PREFIX}{name} was dropped");
            continue;
        }
        assert_eq!(
            config.options.get(&option_of(name)).map(String::as_str),
            Some(value),
            "{KAFKA_PREFIX}{name} was dropped"
        );
    }
}

/// `--extra` text: what is accepted writes back to JSON that reads the same.
fn check_extra_text(text: &str) -> Option<BTreeMap<String, String>> {
    match parse_extra(text) {
        Ok(options) => {
            assert!(options.keys().all(|name| !name.trim().is_empty()));
            let json = serde_json::to_string(&options).expect("a map of strings is JSON");
            let again = parse_extra(&json).expect("written options read back");
            assert_eq!(again, options);
            Some(options)
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            None
        }
    }
}

/// `--extra` written from a list of options reads back exactly, or names the problem.
fn check_extra_options(options: &[(String, String)]) {
    let members: Vec<String> = options
        .iter()
        .map(|(name, value)| {
            format!(
                "{}:{}",
                serde_json::to_string(name).expect("a string is JSON"),
                serde_json::to_string(value).expect("a string is JSON")
            )
        })
        .collect();
    let text = format!("{{{}}}", members.join(","));
    let blank = options.iter().any(|(name, _)| name.trim().is_empty());
    let mut names: Vec<&str> = options.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    let repeated = names.windows(2).any(|pair| pair[0] == pair[1]);
    match parse_extra(&text) {
        Ok(parsed) => {
            assert!(!blank && !repeated, "{text} accepted");
            let expected: BTreeMap<String, String> = options.iter().cloned().collect();
            assert_eq!(parsed, expected);
        }
        Err(ExtraOptionsError::EmptyName) => assert!(blank, "{text}"),
        Err(error) => assert!(repeated, "{text}: {error}"),
    }
}
