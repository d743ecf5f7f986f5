//! Errors of the embedded registry, with the HTTP status and Confluent `error_code` each maps to.

use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::media::RegistryJson;

/// Why the embedded registry refused a request.
///
/// Each variant answers with the HTTP status and the Confluent `error_code` a real
/// Confluent Schema Registry uses for the same situation, in a body
/// `{"error_code": N, "message": "…"}`. The `Display` text is that message.
///
/// # Example
///
/// ```
/// use event_bus_testkit::registry::RegistryError;
///
/// let error = RegistryError::SubjectNotFound { subject: "orders-value".into() };
/// assert_eq!(error.http_status(), 404);
/// assert_eq!(error.error_code(), 40401);
/// assert_eq!(error.to_string(), "Subject 'orders-value' not found.");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The subject has no (live) versions. 404, error code 40401.
    #[error("Subject '{subject}' not found.")]
    SubjectNotFound {
        /// The subject asked for.
        subject: String,
    },
    /// The subject exists but not this version. 404, error code 40402.
    #[error("Version {version} not found.")]
    VersionNotFound {
        /// The version asked for.
        version: u32,
    },
    /// The schema is not registered under the subject. 404, error code 40403.
    #[error("Schema not found")]
    SchemaNotFound,
    /// No schema has this id. 404, error code 40403.
    #[error("Schema {id} not found")]
    SchemaIdNotFound {
        /// The id asked for.
        id: u32,
    },
    /// The subject is already soft-deleted; only a permanent delete may follow.
    /// 404, error code 40404.
    #[error("Subject '{subject}' was soft deleted.Set permanent=true to delete permanently")]
    SubjectSoftDeleted {
        /// The subject.
        subject: String,
    },
    /// A permanent delete of a subject that was not soft-deleted first.
    /// 404, error code 40405.
    #[error("Subject '{subject}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted {
        /// The subject.
        subject: String,
    },
    /// The version is already soft-deleted. 404, error code 40406.
    #[error(
        "Subject '{subject}' Version {version} was soft deleted.Set permanent=true to delete permanently"
    )]
    VersionSoftDeleted {
        /// The subject.
        subject: String,
        /// The version.
        version: u32,
    },
    /// A permanent delete of a version that was not soft-deleted first.
    /// 404, error code 40407.
    #[error(
        "Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
    )]
    VersionNotSoftDeleted {
        /// The subject.
        subject: String,
        /// The version.
        version: u32,
    },
    /// `GET /config/{subject}` for a subject without its own level (and without
    /// `?defaultToGlobal=true`). 404, error code 40408.
    #[error("Subject '{subject}' does not have subject-level compatibility configured")]
    SubjectCompatibilityNotConfigured {
        /// The subject.
        subject: String,
    },
    /// The schema breaks the subject's compatibility level. 409, error code 409.
    #[error(
        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
        .reasons.join(", ")
    )]
    Incompatible {
        /// The subject.
        subject: String,
        /// One entry per reason, naming the earlier version and the level.
        reasons: Vec<String>,
    },
    /// The schema text is not a valid Avro schema, is not Avro, or uses references.
    /// 422, error code 42201.
    #[error("Invalid schema: {reason}")]
    InvalidSchema {
        /// What is wrong with it.
        reason: String,
    },
    /// A version path segment that is neither a positive number, `-1` nor `latest`.
    /// 422, error code 42202.
    #[error(
        "The specified version '{given}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion {
        /// The segment given.
        given: String,
    },
    /// A compatibility level the registry does not know. 422, error code 42203.
    #[error(
        "Invalid compatibility level '{given}'. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"
    )]
    InvalidCompatibilityLevel {
        /// The level given.
        given: String,
    },
    /// [`register_with_id`](super::SchemaStore::register_with_id) asked for an id that
    /// already holds a different schema. 422, error code 42207.
    #[error("Schema id {id} is already registered with a different schema")]
    IdConflict {
        /// The id asked for.
        id: u32,
    },
    /// The request body is not JSON. 400, error code 400.
    #[error("{detail}")]
    MalformedBody {
        /// What the JSON parser said.
        detail: String,
    },
    /// The request body is JSON of the wrong shape (a missing or mistyped field).
    /// 422, error code 422.
    #[error("{detail}")]
    UnprocessableBody {
        /// What the JSON parser said.
        detail: String,
    },
    /// A `Content-Type` the registry does not accept. 415, error code 415.
    #[error("HTTP 415 Unsupported Media Type")]
    UnsupportedMediaType,
    /// No such route. 404, error code 404.
    #[error("HTTP 404 Not Found")]
    RouteNotFound,
    /// The route exists but not for this method. 405, error code 405.
    #[error("HTTP 405 Method Not Allowed")]
    MethodNotAllowed,
    /// The in-memory store failed (a poisoned lock). 500, error code 50001.
    #[error("Error in the backend data store: {detail}")]
    Store {
        /// What failed.
        detail: String,
    },
}

impl RegistryError {
    /// The HTTP status code this error answers with.
    ///
    /// ```
    /// use event_bus_testkit::registry::RegistryError;
    ///
    /// let error = RegistryError::InvalidSchema { reason: "not JSON".into() };
    /// assert_eq!(error.http_status(), 422);
    /// ```
    pub fn http_status(&self) -> u16 {
        self.status().as_u16()
    }

    /// The Confluent `error_code` of the response body.
    ///
    /// ```
    /// use event_bus_testkit::registry::RegistryError;
    ///
    /// let error = RegistryError::InvalidSchema { reason: "not JSON".into() };
    /// assert_eq!(error.error_code(), 42201);
    /// ```
    pub fn error_code(&self) -> u32 {
        match self {
            Self::SubjectNotFound { .. } => 40401,
            Self::VersionNotFound { .. } => 40402,
            Self::SchemaNotFound | Self::SchemaIdNotFound { .. } => 40403,
            Self::SubjectSoftDeleted { .. } => 40404,
            Self::SubjectNotSoftDeleted { .. } => 40405,
            Self::VersionSoftDeleted { .. } => 40406,
            Self::VersionNotSoftDeleted { .. } => 40407,
            Self::SubjectCompatibilityNotConfigured { .. } => 40408,
            Self::Incompatible { .. } => 409,
            Self::InvalidSchema { .. } => 42201,
            Self::InvalidVersion { .. } => 42202,
            Self::InvalidCompatibilityLevel { .. } => 42203,
            Self::IdConflict { .. } => 42207,
            Self::MalformedBody { .. } => 400,
            Self::UnprocessableBody { .. } => 422,
            Self::UnsupportedMediaType => 415,
            Self::RouteNotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Store { .. } => 50001,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::SubjectNotFound { .. }
            | Self::VersionNotFound { .. }
            | Self::SchemaNotFound
            | Self::SchemaIdNotFound { .. }
            | Self::SubjectSoftDeleted { .. }
            | Self::SubjectNotSoftDeleted { .. }
            | Self::VersionSoftDeleted { .. }
            | Self::VersionNotSoftDeleted { .. }
            | Self::SubjectCompatibilityNotConfigured { .. }
            | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::Incompatible { .. } => StatusCode::CONFLICT,
            Self::InvalidSchema { .. }
            | Self::InvalidVersion { .. }
            | Self::InvalidCompatibilityLevel { .. }
            | Self::IdConflict { .. }
            | Self::UnprocessableBody { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::MalformedBody { .. } => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Store { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The body every error answers with, as Confluent's REST layer writes it.
#[derive(Serialize)]
struct ErrorBody {
    error_code: u32,
    message: String,
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        if let Self::Store { detail } = &self {
            tracing::error!(error = %detail, "embedded schema registry store failure");
        }
        let body = ErrorBody {
            error_code: self.error_code(),
            message: self.to_string(),
        };
        RegistryJson(self.status(), body).into_response()
    }
}

/// Why the embedded registry could not start or stop.
///
/// # Example
///
/// ```no_run
/// use event_bus_testkit::registry::{EmbeddedRegistry, ServerError};
///
/// # async fn demo() {
/// match EmbeddedRegistry::start_on(([127, 0, 0, 1], 8081).into()).await {
///     Ok(registry) => println!("registry at {}", registry.url()),
///     Err(ServerError::Bind { addr, source }) => eprintln!("port {addr} is taken: {source}"),
///     Err(other) => eprintln!("{other}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening socket could not be bound (address in use, no permission…).
    #[error("cannot bind the embedded schema registry to {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The bound socket could not report its address.
    #[error("cannot read the embedded schema registry's local address")]
    LocalAddr(#[source] std::io::Error),
    /// The HTTP server stopped with an I/O error.
    #[error("the embedded schema registry's HTTP server failed")]
    Serve(#[source] std::io::Error),
    /// The server task panicked or was cancelled.
    #[error("the embedded schema registry's server task ended abnormally: {0}")]
    Task(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_answer_500_with_50001() {
        let response = RegistryError::Store {
            detail: "lock poisoned".into(),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            RegistryError::Store { detail: "x".into() }.error_code(),
            50001
        );
    }

    #[test]
    fn incompatible_message_lists_reasons() {
        let error = RegistryError::Incompatible {
            subject: "s".into(),
            reasons: vec!["one".into(), "two".into()],
        };
        assert_eq!(
            error.to_string(),
            "Schema being registered is incompatible with an earlier schema for subject \"s\", details: [one, two]"
        );
        assert_eq!(error.http_status(), 409);
        assert_eq!(error.error_code(), 409);
    }
}
