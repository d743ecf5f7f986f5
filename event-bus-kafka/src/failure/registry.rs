//! Schema registry errors.

use super::Failure;
use crate::registry::RegistryError;

/// The Confluent error code of "schema not found" (HTTP 404).
const SCHEMA_NOT_FOUND: u32 = 40403;

/// Classifies a schema registry error.
///
/// Only the registry's own word that a schema id does not exist (404 with error code
/// 40403), a schema it refuses (incompatible, invalid, not Avro) or a client set up
/// wrongly are verdicts. Every other answer (401, 403, 408, 429, other 4xx and 5xx, a
/// 404 without that code, a body that is not the registry's JSON, as an HTML page from
/// a proxy) and every transport error means the registry is not usable now.
///
/// ```
/// use event_bus_kafka::failure::{of_registry, Failure};
/// use event_bus_kafka::registry::RegistryError;
///
/// let gone = RegistryError::NotFound { code: 40403, message: "Schema 7 not found".into() };
/// assert_eq!(of_registry(&gone), Failure::Permanent);
/// let denied = RegistryError::Http { status: 401, code: 401, message: "Unauthorized".into() };
/// assert_eq!(of_registry(&denied), Failure::Unavailable);
/// let proxy = RegistryError::BadResponse { request: "GET /schemas/ids/7".into(), detail: "not JSON".into() };
/// assert_eq!(of_registry(&proxy), Failure::Unavailable);
/// ```
pub fn of_registry(error: &RegistryError) -> Failure {
    match error {
        RegistryError::NotFound { code, .. } if *code == SCHEMA_NOT_FOUND => Failure::Permanent,
        RegistryError::Incompatible { .. }
        | RegistryError::InvalidSchema { .. }
        | RegistryError::UnparsableSchema { .. }
        | RegistryError::UnusableSchema { .. }
        | RegistryError::Client(_)
        | RegistryError::BadUrl(_) => Failure::Permanent,
        RegistryError::NotFound { .. }
        | RegistryError::Http { .. }
        | RegistryError::BadResponse { .. }
        | RegistryError::Unreachable { .. } => Failure::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_404_without_the_schema_code_is_not_a_verdict() {
        let subject = RegistryError::NotFound {
            code: 40401,
            message: "Subject not found".into(),
        };
        assert_eq!(of_registry(&subject), Failure::Unavailable);
        for status in [403, 408, 429, 500, 503] {
            let error = RegistryError::Http {
                status,
                code: u32::from(status),
                message: String::new(),
            };
            assert_eq!(of_registry(&error), Failure::Unavailable, "{status}");
        }
    }
}
