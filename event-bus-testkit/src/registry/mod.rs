//! An embedded, in-memory, Confluent-compatible schema registry for development and tests.
//!
//! **A development tool.** Production points at Confluent Schema Registry, Karapace,
//! Redpanda or Apicurio. This one keeps everything in memory, speaks only Avro, and has no
//! schema references, contexts, modes, metadata or rules.
//!
//! It serves the subset of the Confluent REST API the SDK and `schema_registry_converter`
//! use, with the same status codes and `{"error_code", "message"}` bodies:
//!
//! | route | answer |
//! |---|---|
//! | `POST /subjects/{s}/versions` | `{"id": N}`; 409 incompatible, 422/42201 invalid schema |
//! | `POST /subjects/{s}` | `{"subject","version","id","schema"}`; 404/40401, 404/40403 |
//! | `GET /subjects` | `["s", …]` (`?deleted=true` includes soft-deleted ones) |
//! | `GET /subjects/{s}/versions` | `[1, 2, …]`; 404/40401 |
//! | `GET /subjects/{s}/versions/{v\|latest\|-1}` | `{"subject","version","id","schema"}`; 40401, 40402, 422/42202 |
//! | `GET /subjects/{s}/versions/{v}/schema` | the schema text itself |
//! | `DELETE /subjects/{s}` | deleted versions; soft, or `?permanent=true` after a soft delete (40404, 40405) |
//! | `DELETE /subjects/{s}/versions/{v}` | the version; soft or permanent (40406, 40407) |
//! | `GET /schemas/ids/{id}` | `{"schema": …}`; 404/40403 (also `/schema`, `/versions`, `/subjects`) |
//! | `GET\|PUT\|DELETE /config` | `{"compatibilityLevel": …}`; PUT answers `{"compatibility": …}`; 422/42203 |
//! | `GET\|PUT\|DELETE /config/{s}` | as above; GET 404/40408 unless `?defaultToGlobal=true`; DELETE 40401 if unset |
//! | `POST /compatibility/subjects/{s}/versions[/{v}]` | `{"is_compatible"}`, plus `"messages"` with `?verbose=true` |
//!
//! Request bodies may be `application/vnd.schemaregistry.v1+json`,
//! `application/vnd.schemaregistry+json`, `application/json`, `application/octet-stream`
//! or untyped (others: 415); responses are `application/vnd.schemaregistry.v1+json`.
//! Malformed JSON answers 400, JSON of the wrong shape 422, internal failures 500/50001.
//!
//! Faults: [`EmbeddedRegistry::faults`] makes the server answer 401, 429, 503 or a
//! proxy's HTML page for the next N requests or until cleared, and counts requests, so
//! tests can drive a client through a registry that is not usable for a while.
//!
//! Semantics: ids are global and start at 1; the global level defaults to `BACKWARD`;
//! compatibility is judged by `event_bus_core::schema::compat`, the same rules as
//! `schemas check`. Two submissions are the same schema when their parsed forms match
//! (whitespace, key order and type shorthand do not count; defaults, docs and aliases do),
//! and the text of the first registration is what is served back.
//!
//! # Example
//!
//! ```
//! use event_bus_testkit::registry::EmbeddedRegistry;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let registry = EmbeddedRegistry::start().await?;
//!     let schema = r#"{"type":"record","name":"Ping","fields":[{"name":"n","type":"long"}]}"#;
//!     // Seed a schema under the id a recorded wire vector carries.
//!     registry.register_with_id("pings-value", schema, 100019)?;
//!     // Clients talk to `registry.url()` as to any Confluent registry.
//!     println!("schema registry at {}", registry.url());
//!     registry.shutdown().await?;
//!     Ok(())
//! }
//! ```

mod compatibility;
mod errors;
mod faults;
mod media;
mod routes;
mod schema;
mod server;
mod store;

pub use errors::{RegistryError, ServerError};
pub use faults::{Fault, RegistryFaults};
pub use media::RESPONSE_CONTENT_TYPE;
pub use routes::router;
pub use server::EmbeddedRegistry;
pub use store::{SchemaStore, SubjectVersion};
