//! The HTTP routes: the Confluent Schema Registry REST API subset, mapped onto
//! [`SchemaStore`].

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::compatibility::{level_name, parse_level};
use super::errors::RegistryError;
use super::media::{ok, raw_json, Flags, RegistryBody, RegistryPath};
use super::schema::check_supported;
use super::store::{SchemaStore, VersionSelector};

/// The registry's routes over `store`, ready to serve or to nest into another router.
///
/// # Example
///
/// ```
/// use event_bus_testkit::registry::{router, SchemaStore};
///
/// let store = SchemaStore::new();
/// let app: axum::Router = axum::Router::new().nest("/registry", router(store.clone()));
/// # let _ = app;
/// ```
pub fn router(store: SchemaStore) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/schemas/types", get(schema_types))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
        )
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_of_id))
        .route("/schemas/ids/{id}/subjects", get(subjects_of_id))
        .route(
            "/config",
            get(get_global_config)
                .put(put_global_config)
                .delete(delete_global_config),
        )
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(check_all_versions),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(check_version),
        )
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(store)
}

type ApiResult = Result<Response, RegistryError>;

/// Body of `POST /subjects/{s}/versions`, `POST /subjects/{s}` and the compatibility
/// checks. Unknown fields (`metadata`, `ruleSet`, `id`, `version`…) are ignored.
#[derive(Deserialize)]
struct SchemaRequest {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Value>,
}

impl SchemaRequest {
    fn checked_text(&self) -> Result<&str, RegistryError> {
        check_supported(self.schema_type.as_deref(), self.references.len())?;
        Ok(&self.schema)
    }
}

/// Body of `PUT /config[/{subject}]`.
#[derive(Deserialize)]
struct ConfigRequest {
    #[serde(alias = "compatibilityLevel")]
    compatibility: Option<String>,
}

#[derive(Serialize)]
struct CompatibilityLevelBody {
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: &'static str,
}

fn level_body(level: event_bus_core::schema::compat::CompatibilityLevel) -> Response {
    ok(CompatibilityLevelBody {
        compatibility_level: level_name(level),
    })
    .into_response()
}

#[derive(Serialize)]
struct CompatibilityCheckBody {
    is_compatible: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<String>>,
}

async fn root() -> Response {
    ok(json!({})).into_response()
}

async fn schema_types() -> Response {
    ok(["AVRO"]).into_response()
}

async fn list_subjects(State(store): State<SchemaStore>, flags: Flags) -> ApiResult {
    Ok(ok(store.subjects(flags.is_set("deleted"))?).into_response())
}

async fn register(
    State(store): State<SchemaStore>,
    RegistryPath(subject): RegistryPath<String>,
    RegistryBody(request): RegistryBody<SchemaRequest>,
) -> ApiResult {
    let id = store.register(&subject, request.checked_text()?)?;
    Ok(ok(json!({ "id": id })).into_response())
}

async fn lookup(
    State(store): State<SchemaStore>,
    RegistryPath(subject): RegistryPath<String>,
    flags: Flags,
    RegistryBody(request): RegistryBody<SchemaRequest>,
) -> ApiResult {
    let found = store.lookup(&subject, request.checked_text()?, flags.is_set("deleted"))?;
    Ok(ok(found).into_response())
}

async fn list_versions(
    State(store): State<SchemaStore>,
    RegistryPath(subject): RegistryPath<String>,
    flags: Flags,
) -> ApiResult {
    Ok(ok(store.versions(&subject, flags.is_set("deleted"))?).into_response())
}

async fn get_version(
    State(store): State<SchemaStore>,
    RegistryPath((subject, version)): RegistryPath<(String, String)>,
    flags: Flags,
) -> ApiResult {
    let selector = VersionSelector::parse(&version)?;
    Ok(ok(store.version(&subject, selector, flags.is_set("deleted"))?).into_response())
}

async fn get_version_schema(
    State(store): State<SchemaStore>,
    RegistryPath((subject, version)): RegistryPath<(String, String)>,
    flags: Flags,
) -> ApiResult {
    let selector = VersionSelector::parse(&version)?;
    let found = store.version(&subject, selector, flags.is_set("deleted"))?;
    Ok(raw_json(found.schema))
}

async fn delete_subject(
    State(store): State<SchemaStore>,
    RegistryPath(subject): RegistryPath<String>,
    flags: Flags,
) -> ApiResult {
    Ok(ok(store.delete_subject(&subject, flags.is_set("permanent"))?).into_response())
}

async fn delete_version(
    State(store): State<SchemaStore>,
    RegistryPath((subject, version)): RegistryPath<(String, String)>,
    flags: Flags,
) -> ApiResult {
    let selector = VersionSelector::parse(&version)?;
    let deleted = store.delete_version(&subject, selector, flags.is_set("permanent"))?;
    Ok(ok(deleted).into_response())
}

/// Schema ids that are not numbers answer 404 like Confluent (its path parameter is an
/// integer, so such a URL matches no resource).
fn parse_id(given: &str) -> Result<u32, RegistryError> {
    given.parse().map_err(|_| RegistryError::RouteNotFound)
}

async fn schema_by_id(
    State(store): State<SchemaStore>,
    RegistryPath(id): RegistryPath<String>,
) -> ApiResult {
    let schema = store.schema_text(parse_id(&id)?)?;
    Ok(ok(json!({ "schema": schema })).into_response())
}

async fn raw_schema_by_id(
    State(store): State<SchemaStore>,
    RegistryPath(id): RegistryPath<String>,
) -> ApiResult {
    Ok(raw_json(store.schema_text(parse_id(&id)?)?))
}

async fn versions_of_id(
    State(store): State<SchemaStore>,
    RegistryPath(id): RegistryPath<String>,
    flags: Flags,
) -> ApiResult {
    let pairs = store.subject_versions_of(parse_id(&id)?, flags.is_set("deleted"))?;
    let body: Vec<Value> = pairs
        .into_iter()
        .map(|(subject, version)| json!({ "subject": subject, "version": version }))
        .collect();
    Ok(ok(body).into_response())
}

async fn subjects_of_id(
    State(store): State<SchemaStore>,
    RegistryPath(id): RegistryPath<String>,
    flags: Flags,
) -> ApiResult {
    let pairs = store.subject_versions_of(parse_id(&id)?, flags.is_set("deleted"))?;
    let mut subjects: Vec<String> = pairs.into_iter().map(|(subject, _)| subject).collect();
    subjects.dedup();
    Ok(ok(subjects).into_response())
}

fn requested_level(
    request: &ConfigRequest,
) -> Result<event_bus_core::schema::compat::CompatibilityLevel, RegistryError> {
    match request.compatibility.as_deref() {
        Some(given) => parse_level(given),
        None => Err(RegistryError::InvalidCompatibilityLevel {
            given: String::new(),
        }),
    }
}

async fn get_global_config(State(store): State<SchemaStore>) -> ApiResult {
    Ok(level_body(store.global_compatibility()?))
}

async fn put_global_config(
    State(store): State<SchemaStore>,
    RegistryBody(request): RegistryBody<ConfigRequest>,
) -> ApiResult {
    let level = requested_level(&request)?;
    store.set_global_compatibility(level)?;
    Ok(ok(json!({ "compatibility": level_name(level) })).into_response())
}

async fn delete_global_config(State(store): State<SchemaStore>) -> ApiResult {
    Ok(level_body(store.reset_global_compatibility()?))
}

async fn get_subject_config(
    State(store): State<SchemaStore>,
    RegistryPath(subject): RegistryPath<String>,
    flags: Flags,
) -> ApiResult {
    match store.subject_compatibility(&subject)? {
        Some(level) => Ok(level_body(level)),
        None if flags.is_set("defaultToGlobal") => Ok(level_body(store.global_compatibility()?)),
        None => Err(RegistryError::SubjectCompatibilityNotConfigured { subject }),
    }
}

async fn put_subject_config(
    State(store): State<SchemaStore>,
    RegistryPath(subject): RegistryPath<String>,
    RegistryBody(request): RegistryBody<ConfigRequest>,
) -> ApiResult {
    let level = requested_level(&request)?;
    store.set_subject_compatibility(&subject, level)?;
    Ok(ok(json!({ "compatibility": level_name(level) })).into_response())
}

async fn delete_subject_config(
    State(store): State<SchemaStore>,
    RegistryPath(subject): RegistryPath<String>,
) -> ApiResult {
    Ok(level_body(store.delete_subject_compatibility(&subject)?))
}

async fn check_all_versions(
    State(store): State<SchemaStore>,
    RegistryPath(subject): RegistryPath<String>,
    flags: Flags,
    RegistryBody(request): RegistryBody<SchemaRequest>,
) -> ApiResult {
    compatibility_answer(&store, &subject, None, &request, flags.is_set("verbose"))
}

async fn check_version(
    State(store): State<SchemaStore>,
    RegistryPath((subject, version)): RegistryPath<(String, String)>,
    flags: Flags,
    RegistryBody(request): RegistryBody<SchemaRequest>,
) -> ApiResult {
    let selector = VersionSelector::parse(&version)?;
    compatibility_answer(
        &store,
        &subject,
        Some(selector),
        &request,
        flags.is_set("verbose"),
    )
}

/// `{"is_compatible": …}`, with `messages` only when `verbose` (as Confluent). An invalid
/// schema is 42201, or with `verbose` an incompatible answer carrying the parse error.
fn compatibility_answer(
    store: &SchemaStore,
    subject: &str,
    selector: Option<VersionSelector>,
    request: &SchemaRequest,
    verbose: bool,
) -> ApiResult {
    let outcome = request
        .checked_text()
        .and_then(|text| store.check(subject, text, selector));
    let messages = match outcome {
        Ok(messages) => messages,
        Err(error @ RegistryError::InvalidSchema { .. }) if verbose => vec![error.to_string()],
        Err(error) => return Err(error),
    };
    Ok(ok(CompatibilityCheckBody {
        is_compatible: messages.is_empty(),
        messages: verbose.then_some(messages),
    })
    .into_response())
}

async fn route_not_found() -> RegistryError {
    RegistryError::RouteNotFound
}

async fn method_not_allowed() -> RegistryError {
    RegistryError::MethodNotAllowed
}
