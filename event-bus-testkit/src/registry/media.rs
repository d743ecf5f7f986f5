//! The registry's media types: which request bodies are accepted, how responses are
//! typed, and the extractors that turn bad input into Confluent-style errors.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::errors::RegistryError;

/// The media type every response of the embedded registry carries, as Confluent's does.
///
/// # Example
///
/// ```
/// use event_bus_testkit::registry::RESPONSE_CONTENT_TYPE;
///
/// assert_eq!(RESPONSE_CONTENT_TYPE, "application/vnd.schemaregistry.v1+json");
/// ```
pub const RESPONSE_CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Request media types accepted (parameters such as `charset` are ignored). A request
/// without a `Content-Type` is accepted too.
const ACCEPTED_REQUEST_TYPES: [&str; 4] = [
    RESPONSE_CONTENT_TYPE,
    "application/vnd.schemaregistry+json",
    "application/json",
    // Confluent accepts it as a generic request type; some clients send it.
    "application/octet-stream",
];

/// A JSON response with a status and the registry's media type.
pub(crate) struct RegistryJson<T>(pub StatusCode, pub T);

/// A `200 OK` JSON response.
pub(crate) fn ok<T: Serialize>(body: T) -> RegistryJson<T> {
    RegistryJson(StatusCode::OK, body)
}

impl<T: Serialize> IntoResponse for RegistryJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.1) {
            Ok(bytes) => with_registry_type(self.0, bytes),
            Err(error) => {
                tracing::error!(error = %error, "embedded schema registry cannot serialize a response");
                with_registry_type(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    br#"{"error_code":50001,"message":"Error in the backend data store: cannot serialize the response"}"#
                        .to_vec(),
                )
            }
        }
    }
}

/// A raw body (already JSON text, such as a stored schema) with the registry's media type.
pub(crate) fn raw_json(text: String) -> Response {
    with_registry_type(StatusCode::OK, text.into_bytes())
}

fn with_registry_type(status: StatusCode, bytes: Vec<u8>) -> Response {
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static(RESPONSE_CONTENT_TYPE),
        )],
        bytes,
    )
        .into_response()
}

/// A JSON request body, checked for an accepted media type. Bad JSON answers 400 and JSON
/// of the wrong shape 422, as Confluent's REST layer does.
pub(crate) struct RegistryBody<T>(pub T);

impl<S, T> FromRequest<S> for RegistryBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = RegistryError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(value) = req.headers().get(CONTENT_TYPE) {
            if !is_accepted_media_type(value) {
                return Err(RegistryError::UnsupportedMediaType);
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            RegistryError::MalformedBody {
                detail: rejection.body_text(),
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(RegistryBody)
            .map_err(|error| match error.classify() {
                serde_json::error::Category::Data => RegistryError::UnprocessableBody {
                    detail: error.to_string(),
                },
                _ => RegistryError::MalformedBody {
                    detail: error.to_string(),
                },
            })
    }
}

fn is_accepted_media_type(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text.split(';').next().unwrap_or_default().trim();
    ACCEPTED_REQUEST_TYPES
        .iter()
        .any(|accepted| accepted.eq_ignore_ascii_case(essence))
}

/// Path parameters; a parameter that cannot be decoded answers 404 as Confluent does.
pub(crate) struct RegistryPath<T>(pub T);

impl<S, T> FromRequestParts<S> for RegistryPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = RegistryError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| RegistryPath(value))
            .map_err(|_| RegistryError::RouteNotFound)
    }
}

/// Query-string flags such as `?deleted=true`, `?permanent=true`, `?verbose=true`.
pub(crate) struct Flags(HashMap<String, String>);

impl Flags {
    /// Whether `name` was given as `true` (case-insensitive); absent or anything else is false.
    pub(crate) fn is_set(&self, name: &str) -> bool {
        self.0
            .get(name)
            .is_some_and(|value| value.eq_ignore_ascii_case("true"))
    }
}

impl<S> FromRequestParts<S> for Flags
where
    S: Send + Sync,
{
    type Rejection = RegistryError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Query(map)| Flags(map))
            .map_err(|rejection| RegistryError::MalformedBody {
                detail: rejection.body_text(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_matched_without_parameters_or_case() {
        for accepted in [
            "application/vnd.schemaregistry.v1+json",
            "application/vnd.schemaregistry+json",
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/octet-stream",
        ] {
            assert!(
                is_accepted_media_type(&HeaderValue::from_static(accepted)),
                "{accepted}"
            );
        }
        assert!(!is_accepted_media_type(&HeaderValue::from_static(
            "text/plain"
        )));
    }
}
