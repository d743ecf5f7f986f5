//! The HTTP client.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use apache_avro::Schema;
use event_bus_core::schema::compat::CompatibilityLevel;
use reqwest::{Method, Url};
use serde_json::{json, Value};

use super::answer::{
    compatibility_from_answer, read_answer, schema_from_answer, schema_id_from_answer,
    subjects_from_answer,
};
use super::error::RegistryError;
use crate::config::secret::redact_url;
use crate::config::RegistryConfig;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A schema registry client with a cache of schemas by id.
///
/// ```no_run
/// use event_bus_kafka::{config::RegistryConfig, registry::RegistryClient};
/// use event_bus_core::schema::compat::CompatibilityLevel;
/// # async fn demo() -> Result<(), event_bus_kafka::registry::RegistryError> {
/// let registry = RegistryClient::new(RegistryConfig::new("http://localhost:8081"))?;
/// registry.set_compatibility("orders-value", CompatibilityLevel::FullTransitive).await?;
/// let id = registry.register("orders-value", r#""string""#).await?;
/// let schema = registry.schema_by_id(id).await?;
/// # Ok(()) }
/// ```
pub struct RegistryClient {
    http: reqwest::Client,
    config: RegistryConfig,
    base: Url,
    by_id: RwLock<HashMap<u32, Arc<Schema>>>,
}

/// Shows the configuration (password hidden, also in the URL), not the HTTP client.
impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// A client for the configured registry.
    ///
    /// ```
    /// use event_bus_kafka::{config::RegistryConfig, registry::RegistryClient};
    /// assert!(RegistryClient::new(RegistryConfig::new("not a url")).is_err());
    /// assert!(RegistryClient::new(RegistryConfig::new("http://localhost:8081")).is_ok());
    /// ```
    pub fn new(config: RegistryConfig) -> Result<Self, RegistryError> {
        let base = Url::parse(&config.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| RegistryError::BadUrl(redact_url(&config.url)))?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(RegistryError::Client)?;
        Ok(Self {
            http,
            config,
            base,
            by_id: RwLock::new(HashMap::new()),
        })
    }

    /// The registry's base URL as configured, a `user:password@` part included: to
    /// show it (logs, messages), pass it through
    /// [`redact_url`](crate::config::secret::redact_url).
    ///
    /// ```
    /// # use event_bus_kafka::{config::RegistryConfig, registry::RegistryClient};
    /// let c = RegistryClient::new(RegistryConfig::new("http://r:8081")).unwrap();
    /// assert_eq!(c.url(), "http://r:8081");
    /// ```
    pub fn url(&self) -> &str {
        &self.config.url
    }

    fn url_for(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Value>,
        subject: &str,
    ) -> Result<Value, RegistryError> {
        let url = self.url_for(segments);
        let request_name = format!("{method} /{}", segments.join("/"));
        let mut request = self
            .http
            .request(method, url)
            .header(reqwest::header::ACCEPT, CONTENT_TYPE);
        if let (Some(user), password) = (&self.config.username, &self.config.password) {
            request = request.basic_auth(user, password.as_ref().map(|p| p.expose()));
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|source| RegistryError::Unreachable {
                url: redact_url(&self.config.url),
                source: source.without_url(),
            })?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|source| RegistryError::Unreachable {
                url: redact_url(&self.config.url),
                source: source.without_url(),
            })?;
        read_answer(&request_name, subject, status, &text)
    }

    /// Sets a subject's compatibility level.
    ///
    /// ```no_run
    /// # use event_bus_kafka::{config::RegistryConfig, registry::RegistryClient};
    /// # use event_bus_core::schema::compat::CompatibilityLevel;
    /// # async fn demo(registry: RegistryClient) -> Result<(), event_bus_kafka::registry::RegistryError> {
    /// registry.set_compatibility("orders-value", CompatibilityLevel::FullTransitive).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_compatibility(
        &self,
        subject: &str,
        level: CompatibilityLevel,
    ) -> Result<(), RegistryError> {
        self.call(
            Method::PUT,
            &["config", subject],
            Some(json!({"compatibility": level.as_str()})),
            subject,
        )
        .await
        .map(drop)
    }

    /// A subject's own compatibility level; `None` when it has none (the global
    /// default applies).
    ///
    /// ```no_run
    /// # use event_bus_kafka::registry::RegistryClient;
    /// # async fn demo(registry: RegistryClient) -> Result<(), event_bus_kafka::registry::RegistryError> {
    /// let level = registry.compatibility("orders-value").await?;
    /// # Ok(()) }
    /// ```
    pub async fn compatibility(
        &self,
        subject: &str,
    ) -> Result<Option<CompatibilityLevel>, RegistryError> {
        let answer = self
            .call(Method::GET, &["config", subject], None, subject)
            .await;
        compatibility_from_answer(subject, answer)
    }

    /// Registers `schema` (Avro JSON text) under `subject` and returns its id; the same
    /// schema again returns the same id.
    ///
    /// ```no_run
    /// # use event_bus_kafka::registry::RegistryClient;
    /// # async fn demo(registry: RegistryClient) -> Result<(), event_bus_kafka::registry::RegistryError> {
    /// let id = registry.register("orders-string", r#"{"name": "order_id", "type": "string"}"#).await?;
    /// # Ok(()) }
    /// ```
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let body = self
            .call(
                Method::POST,
                &["subjects", subject, "versions"],
                Some(json!({"schema": schema})),
                subject,
            )
            .await?;
        schema_id_from_answer(&format!("POST /subjects/{subject}/versions"), &body)
    }

    /// Sets `subject` to FULL_TRANSITIVE, then registers `schema` under it.
    ///
    /// ```no_run
    /// # use event_bus_kafka::registry::RegistryClient;
    /// # async fn demo(registry: RegistryClient) -> Result<(), event_bus_kafka::registry::RegistryError> {
    /// let id = registry.register_full_transitive("orders-string", r#""string""#).await?;
    /// # Ok(()) }
    /// ```
    pub async fn register_full_transitive(
        &self,
        subject: &str,
        schema: &str,
    ) -> Result<u32, RegistryError> {
        self.set_compatibility(subject, CompatibilityLevel::FullTransitive)
            .await?;
        self.register(subject, schema).await
    }

    /// The schema with `id`, fetched once and then served from the cache.
    ///
    /// ```no_run
    /// # use event_bus_kafka::registry::RegistryClient;
    /// # async fn demo(registry: RegistryClient) -> Result<(), event_bus_kafka::registry::RegistryError> {
    /// let schema = registry.schema_by_id(1).await?;
    /// # Ok(()) }
    /// ```
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        if let Some(schema) = self.cached(id) {
            return Ok(schema);
        }
        let id_text = id.to_string();
        let body = self
            .call(Method::GET, &["schemas", "ids", &id_text], None, "")
            .await?;
        let schema = schema_from_answer(id, &body)?;
        let schema = Arc::new(schema);
        if let Ok(mut cache) = self.by_id.write() {
            cache.insert(id, Arc::clone(&schema));
        }
        Ok(schema)
    }

    /// A cached schema, without a network call.
    ///
    /// ```
    /// # use event_bus_kafka::{config::RegistryConfig, registry::RegistryClient};
    /// let c = RegistryClient::new(RegistryConfig::new("http://r:8081")).unwrap();
    /// assert!(c.cached(1).is_none());
    /// ```
    pub fn cached(&self, id: u32) -> Option<Arc<Schema>> {
        self.by_id
            .read()
            .ok()
            .and_then(|cache| cache.get(&id).cloned())
    }

    /// All subjects.
    ///
    /// ```no_run
    /// # use event_bus_kafka::registry::RegistryClient;
    /// # async fn demo(registry: RegistryClient) -> Result<(), event_bus_kafka::registry::RegistryError> {
    /// let subjects = registry.subjects().await?;
    /// # Ok(()) }
    /// ```
    pub async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        let body = self.call(Method::GET, &["subjects"], None, "").await?;
        subjects_from_answer(body)
    }
}
