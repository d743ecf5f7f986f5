//! Configuration: one struct per component, with defaults, built in code or from
//! `EVENT_BUS_*` environment variables.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS` | brokers, `host:port,…` | required |
//! | `EVENT_BUS_KAFKA_<OPTION>` | any librdkafka option: `EVENT_BUS_KAFKA_SASL_USERNAME` → `sasl.username` | — |
//! | `EVENT_BUS_SCHEMA_REGISTRY_URL` | schema registry base URL | required |
//! | `EVENT_BUS_SCHEMA_REGISTRY_USERNAME` / `_PASSWORD` | registry basic auth | none |
//! | `EVENT_BUS_TOPIC_PREFIX` | topics become `{prefix}-{topic}`; empty means none | none |
//! | `EVENT_BUS_SERVICE_NAME` | `client.id`, and `ce_source` unless set | `signal-bridge` |
//! | `EVENT_BUS_EVENT_SOURCE` | `ce_source` of produced events | the service name |
//! | `EVENT_BUS_PRODUCER_DELIVERY_TIMEOUT_MS` | how long a send may wait for the broker | `30000` |

mod compression;
mod env;
mod kafka;
mod producer;
mod registry;
pub mod secret;

pub use compression::DEFAULT_COMPRESSION;
pub use env::{ConfigError, EnvSource};
pub use kafka::KafkaConfig;
pub use producer::ProducerConfig;
pub use registry::RegistryConfig;
pub use secret::Secret;
