//! Registry errors, by what the caller can do about them.

/// What went wrong talking to the schema registry.
///
/// ```
/// use event_bus_kafka::registry::RegistryError;
/// let err = RegistryError::Incompatible { subject: "t-x.CloudEvent".into(), message: "field b".into() };
/// assert!(err.to_string().contains("t-x.CloudEvent"));
/// assert!(!err.is_retryable());
/// ```
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not be reached or did not answer in time.
    #[error("schema registry at {url} is unreachable: {source}; check EVENT_BUS_SCHEMA_REGISTRY_URL and that the registry is running")]
    Unreachable {
        /// The registry's base URL.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The schema is not compatible with the subject's earlier versions (HTTP 409).
    #[error(
        "schema for subject `{subject}` is incompatible with its registered versions: {message}"
    )]
    Incompatible {
        /// The subject.
        subject: String,
        /// The registry's explanation.
        message: String,
    },
    /// The registry rejected the schema itself (HTTP 422, code 42201).
    #[error("schema registry rejected the schema of `{subject}` as invalid: {message}")]
    InvalidSchema {
        /// The subject.
        subject: String,
        /// The registry's explanation.
        message: String,
    },
    /// No such schema id, subject or version (HTTP 404).
    #[error("not found in the schema registry ({code}): {message}")]
    NotFound {
        /// Confluent error code (40401 subject, 40402 version, 40403 schema).
        code: u32,
        /// The registry's message.
        message: String,
    },
    /// Any other error answer.
    #[error("schema registry answered HTTP {status} ({code}): {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// Confluent error code, or the status when the body had none.
        code: u32,
        /// The registry's message.
        message: String,
    },
    /// The registry answered, but not with what the API promises.
    #[error("schema registry sent an unexpected answer to {request}: {detail}")]
    BadResponse {
        /// The request.
        request: String,
        /// What was wrong.
        detail: String,
    },
    /// A schema served by the registry does not parse as Avro.
    #[error("schema {id} from the registry is not valid Avro: {source}")]
    UnparsableSchema {
        /// The schema id.
        id: u32,
        /// The parser's error.
        #[source]
        source: Box<apache_avro::Error>,
    },
    /// A schema served by the registry that the Avro library fails on instead of
    /// refusing it: apache-avro 0.22 panics on some schemas (an alias that is not a
    /// name, a `size`, `precision` or `scale` attribute that is not a number), and a
    /// registry's answer must not take the process down.
    #[error("schema {id} from the registry cannot be used: the Avro library failed on it ({reason}); check the schema registered under this id")]
    UnusableSchema {
        /// The schema id.
        id: u32,
        /// What the library reported.
        reason: String,
    },
    /// The client could not be built (TLS setup).
    #[error("cannot build the schema registry HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The configured URL is not a valid URL.
    #[error("schema registry URL `{0}` is not a valid http(s) URL")]
    BadUrl(String),
}

impl RegistryError {
    /// Whether trying again later may succeed: the registry is unreachable or answered
    /// anything but a verdict on the request (see [`crate::failure::of_registry`]).
    ///
    /// ```
    /// use event_bus_kafka::registry::RegistryError;
    /// assert!(RegistryError::Http { status: 503, code: 503, message: String::new() }.is_retryable());
    /// assert!(!RegistryError::NotFound { code: 40403, message: String::new() }.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        crate::failure::of_registry(self).is_retryable()
    }
}
