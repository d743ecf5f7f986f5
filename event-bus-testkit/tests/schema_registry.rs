//! The embedded schema registry over HTTP: every route and status code, identity and
//! compatibility semantics, and a round trip with `schema_registry_converter`.

use apache_avro::types::Value as AvroValue;
use event_bus_testkit::registry::{EmbeddedRegistry, RegistryError, ServerError};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use serde_json::{json, Value};

const SR_JSON: &str = "application/vnd.schemaregistry.v1+json";

/// `{a: string}`.
const V1: &str = r#"{"type":"record","name":"Thing","namespace":"test","fields":[{"name":"a","type":"string"}]}"#;
/// `{a, b: string default "x"}`: BACKWARD-compatible with `V1`, FULL-compatible with `V1_B`.
const V2: &str = r#"{"type":"record","name":"Thing","namespace":"test","fields":[{"name":"a","type":"string"},{"name":"b","type":"string","default":"x"}]}"#;
/// `{a, b: string}` with `b` required.
const V1_B: &str = r#"{"type":"record","name":"Thing","namespace":"test","fields":[{"name":"a","type":"string"},{"name":"b","type":"string"}]}"#;
/// `{a}` after `V1_B`, `V2`: FULL-compatible with `V2` (whose readers default `b`) but
/// not with `V1_B` (whose readers need `b`).
const V3_A: &str = V1;
/// `V1` plus a required field: breaks BACKWARD.
const V1_PLUS_REQUIRED: &str = r#"{"type":"record","name":"Thing","namespace":"test","fields":[{"name":"a","type":"string"},{"name":"c","type":"long"}]}"#;

struct Reply {
    status: u16,
    content_type: String,
    text: String,
    body: Value,
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn new(registry: &EmbeddedRegistry) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: registry.url(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        content_type: Option<&str>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("the registry answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.expect("a readable body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            text,
            body,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, None).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body.to_string()), Some(SR_JSON))
            .await
    }

    async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(body.to_string()), Some(SR_JSON))
            .await
    }

    async fn register(&self, subject: &str, schema: &str) -> Reply {
        self.post(
            &format!("/subjects/{subject}/versions"),
            json!({ "schema": schema }),
        )
        .await
    }

    async fn register_ok(&self, subject: &str, schema: &str) -> u64 {
        let reply = self.register(subject, schema).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.body["id"].as_u64().expect("an id")
    }
}

fn assert_error(reply: &Reply, status: u16, error_code: u64) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(
        reply.body["error_code"],
        json!(error_code),
        "{}",
        reply.text
    );
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        reply.text
    );
    assert_eq!(reply.content_type, SR_JSON);
}

async fn start() -> (EmbeddedRegistry, Api) {
    let registry = EmbeddedRegistry::start().await.expect("registry starts");
    let api = Api::new(&registry);
    (registry, api)
}

#[tokio::test]
async fn register_gives_global_ids_and_same_schema_same_id() {
    let (_registry, api) = start().await;

    let reply = api.register("things-value", V1).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type, SR_JSON);
    assert_eq!(reply.body, json!({ "id": 1 }));

    // Same schema, same subject: same id, no new version.
    assert_eq!(api.register_ok("things-value", V1).await, 1);
    // Whitespace and key order do not make a new schema.
    let reformatted = r#"{
        "namespace": "test", "name": "Thing", "type": "record",
        "fields": [ { "type": "string", "name": "a" } ]
    }"#;
    assert_eq!(api.register_ok("things-value", reformatted).await, 1);
    assert_eq!(
        api.get("/subjects/things-value/versions").await.body,
        json!([1])
    );

    // Same schema in another subject reuses the global id.
    assert_eq!(api.register_ok("other-value", reformatted).await, 1);
    // The text served is the first registration's.
    let by_id = api.get("/schemas/ids/1").await;
    assert_eq!(by_id.status, 200);
    assert_eq!(by_id.body, json!({ "schema": V1 }));

    // A new (compatible) schema gets the next id and a new version.
    assert_eq!(api.register_ok("things-value", V2).await, 2);
    assert_eq!(
        api.get("/subjects/things-value/versions").await.body,
        json!([1, 2])
    );
    // Adding a default is a different schema, not a no-op.
    let with_default = r#"{"type":"record","name":"Thing","namespace":"test","fields":[{"name":"a","type":"string","default":"z"}]}"#;
    assert_eq!(api.register_ok("third-value", V1).await, 1);
    assert_eq!(api.register_ok("third-value", with_default).await, 3);
}

#[tokio::test]
async fn accepted_request_media_types_and_response_type() {
    let (_registry, api) = start().await;
    let body = json!({ "schema": V1 }).to_string();
    for content_type in [
        Some("application/vnd.schemaregistry.v1+json"),
        Some("application/vnd.schemaregistry+json"),
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        None,
    ] {
        let reply = api
            .send(
                Method::POST,
                "/subjects/media-value/versions",
                Some(body.clone()),
                content_type,
            )
            .await;
        assert_eq!(reply.status, 200, "{content_type:?}: {}", reply.text);
        assert_eq!(reply.content_type, SR_JSON);
        assert_eq!(reply.body, json!({ "id": 1 }));
    }
    let reply = api
        .send(
            Method::POST,
            "/subjects/media-value/versions",
            Some(body),
            Some("text/plain"),
        )
        .await;
    assert_error(&reply, 415, 415);
}

#[tokio::test]
async fn bad_bodies_and_bad_schemas_are_rejected_like_confluent() {
    let (_registry, api) = start().await;
    let path = "/subjects/bad-value/versions";

    let not_json = api
        .send(Method::POST, path, Some("{not json".into()), Some(SR_JSON))
        .await;
    assert_error(&not_json, 400, 400);
    let empty = api
        .send(Method::POST, path, Some(String::new()), None)
        .await;
    assert_error(&empty, 400, 400);

    let missing_schema = api.post(path, json!({ "schemaType": "AVRO" })).await;
    assert_error(&missing_schema, 422, 422);
    let schema_not_string = api.post(path, json!({ "schema": 42 })).await;
    assert_error(&schema_not_string, 422, 422);

    let invalid_avro = api
        .post(path, json!({ "schema": "not valid json at all" }))
        .await;
    assert_error(&invalid_avro, 422, 42201);
    let unknown_type = api
        .post(path, json!({ "schema": r#"{"type":"record","name":"R","fields":[{"name":"x","type":"NoSuchType"}]}"# }))
        .await;
    assert_error(&unknown_type, 422, 42201);
    let protobuf = api
        .post(
            path,
            json!({ "schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF" }),
        )
        .await;
    assert_error(&protobuf, 422, 42201);
    let references = api
        .post(
            path,
            json!({
                "schema": V1,
                "schemaType": "AVRO",
                "references": [{ "name": "test.Other", "subject": "other", "version": 1 }]
            }),
        )
        .await;
    assert_error(&references, 422, 42201);

    // Explicit AVRO and unknown extra fields are fine.
    let explicit = api
        .post(
            path,
            json!({ "schema": V1, "schemaType": "AVRO", "metadata": null }),
        )
        .await;
    assert_eq!(explicit.status, 200, "{}", explicit.text);
    // Nothing invalid was stored.
    assert_eq!(
        api.get("/subjects/bad-value/versions").await.body,
        json!([1])
    );
}

#[tokio::test]
async fn lookup_under_subject() {
    let (_registry, api) = start().await;
    api.register_ok("look-value", V1).await;
    api.register_ok("look-value", V2).await;

    let found = api
        .post("/subjects/look-value", json!({ "schema": V2 }))
        .await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(
        found.body,
        json!({ "subject": "look-value", "version": 2, "id": 2, "schema": V2 })
    );
    // Whitespace-different text finds the same version.
    let spaced = V1.replace(',', " ,\n ");
    let found = api
        .post("/subjects/look-value", json!({ "schema": spaced }))
        .await;
    assert_eq!(found.body["version"], json!(1));
    assert_eq!(found.body["schema"], json!(V1));

    let no_subject = api
        .post("/subjects/nobody-value", json!({ "schema": V1 }))
        .await;
    assert_error(&no_subject, 404, 40401);
    let no_schema = api
        .post("/subjects/look-value", json!({ "schema": V1_B }))
        .await;
    assert_error(&no_schema, 404, 40403);
    let invalid = api
        .post("/subjects/look-value", json!({ "schema": "{" }))
        .await;
    assert_error(&invalid, 422, 42201);
}

#[tokio::test]
async fn subjects_versions_and_version_reads() {
    let (_registry, api) = start().await;
    assert_eq!(api.get("/subjects").await.body, json!([]));
    api.register_ok("b-value", V1).await;
    api.register_ok("a-value", V1).await;
    api.register_ok("a-value", V2).await;

    let subjects = api.get("/subjects").await;
    assert_eq!(subjects.status, 200);
    assert_eq!(subjects.content_type, SR_JSON);
    assert_eq!(subjects.body, json!(["a-value", "b-value"]));
    assert_eq!(
        api.get("/subjects/a-value/versions").await.body,
        json!([1, 2])
    );
    assert_error(&api.get("/subjects/none-value/versions").await, 404, 40401);

    let v1 = api.get("/subjects/a-value/versions/1").await;
    assert_eq!(v1.status, 200);
    assert_eq!(
        v1.body,
        json!({ "subject": "a-value", "version": 1, "id": 1, "schema": V1 })
    );
    let expected_latest = json!({ "subject": "a-value", "version": 2, "id": 2, "schema": V2 });
    assert_eq!(
        api.get("/subjects/a-value/versions/latest").await.body,
        expected_latest
    );
    assert_eq!(
        api.get("/subjects/a-value/versions/-1").await.body,
        expected_latest
    );

    assert_error(&api.get("/subjects/a-value/versions/99").await, 404, 40402);
    assert_error(
        &api.get("/subjects/none-value/versions/1").await,
        404,
        40401,
    );
    assert_error(
        &api.get("/subjects/none-value/versions/latest").await,
        404,
        40401,
    );
    assert_error(&api.get("/subjects/a-value/versions/abc").await, 422, 42202);
    assert_error(&api.get("/subjects/a-value/versions/0").await, 422, 42202);

    let raw = api.get("/subjects/a-value/versions/1/schema").await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.content_type, SR_JSON);
    assert_eq!(raw.text, V1);
    assert_eq!(
        api.get("/subjects/a-value/versions/latest/schema")
            .await
            .text,
        V2
    );
    assert_error(
        &api.get("/subjects/a-value/versions/7/schema").await,
        404,
        40402,
    );
}

#[tokio::test]
async fn schemas_by_id() {
    let (_registry, api) = start().await;
    api.register_ok("x-value", V1).await;
    api.register_ok("y-value", V1).await;

    let found = api.get("/schemas/ids/1").await;
    assert_eq!(found.status, 200);
    assert_eq!(found.content_type, SR_JSON);
    assert_eq!(found.body, json!({ "schema": V1 }));
    // schema_registry_converter asks with `?deleted=true`.
    assert_eq!(
        api.get("/schemas/ids/1?deleted=true").await.body,
        found.body
    );
    assert_eq!(api.get("/schemas/ids/1/schema").await.text, V1);

    assert_eq!(
        api.get("/schemas/ids/1/versions").await.body,
        json!([
            { "subject": "x-value", "version": 1 },
            { "subject": "y-value", "version": 1 }
        ])
    );
    assert_eq!(
        api.get("/schemas/ids/1/subjects").await.body,
        json!(["x-value", "y-value"])
    );

    let missing = api.get("/schemas/ids/999").await;
    assert_error(&missing, 404, 40403);
    assert_eq!(missing.body["message"], json!("Schema 999 not found"));
    assert_error(&api.get("/schemas/ids/999/versions").await, 404, 40403);
    assert_error(&api.get("/schemas/ids/abc").await, 404, 404);
    assert_eq!(api.get("/schemas/types").await.body, json!(["AVRO"]));
}

#[tokio::test]
async fn global_config() {
    let (_registry, api) = start().await;
    let reply = api.get("/config").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type, SR_JSON);
    assert_eq!(reply.body, json!({ "compatibilityLevel": "BACKWARD" }));

    let put = api
        .put("/config", json!({ "compatibility": "FULL_TRANSITIVE" }))
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.body, json!({ "compatibility": "FULL_TRANSITIVE" }));
    assert_eq!(
        api.get("/config").await.body,
        json!({ "compatibilityLevel": "FULL_TRANSITIVE" })
    );

    // Level names are case-insensitive, answers upper-case.
    let put = api
        .put("/config", json!({ "compatibility": "forward" }))
        .await;
    assert_eq!(put.body, json!({ "compatibility": "FORWARD" }));

    assert_error(
        &api.put("/config", json!({ "compatibility": "SIDEWAYS" }))
            .await,
        422,
        42203,
    );
    assert_error(&api.put("/config", json!({})).await, 422, 42203);
    assert_error(
        &api.send(Method::PUT, "/config", Some("{".into()), Some(SR_JSON))
            .await,
        400,
        400,
    );

    // DELETE answers the level it removes and restores the default.
    let deleted = api.delete("/config").await;
    assert_eq!(deleted.body, json!({ "compatibilityLevel": "FORWARD" }));
    assert_eq!(
        api.get("/config").await.body,
        json!({ "compatibilityLevel": "BACKWARD" })
    );
}

#[tokio::test]
async fn subject_config() {
    let (_registry, api) = start().await;
    assert_error(&api.get("/config/cfg-value").await, 404, 40408);
    assert_eq!(
        api.get("/config/cfg-value?defaultToGlobal=true").await.body,
        json!({ "compatibilityLevel": "BACKWARD" })
    );

    // A subject's level can be set before the subject exists.
    let put = api
        .put("/config/cfg-value", json!({ "compatibility": "NONE" }))
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.body, json!({ "compatibility": "NONE" }));
    assert_eq!(
        api.get("/config/cfg-value").await.body,
        json!({ "compatibilityLevel": "NONE" })
    );
    assert_error(
        &api.put("/config/cfg-value", json!({ "compatibility": "ALMOST" }))
            .await,
        422,
        42203,
    );

    // The subject's level overrides the global one: NONE lets anything in.
    api.register_ok("cfg-value", V1).await;
    api.register_ok("cfg-value", V1_PLUS_REQUIRED).await;

    let deleted = api.delete("/config/cfg-value").await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body, json!({ "compatibilityLevel": "NONE" }));
    assert_error(&api.get("/config/cfg-value").await, 404, 40408);
    assert_error(&api.delete("/config/cfg-value").await, 404, 40401);
}

#[tokio::test]
async fn incompatible_schema_is_409_with_reasons() {
    let (_registry, api) = start().await;
    api.register_ok("inc-value", V1).await;

    let refused = api.register("inc-value", V1_PLUS_REQUIRED).await;
    assert_error(&refused, 409, 409);
    let message = refused.body["message"].as_str().unwrap_or_default();
    assert!(message.contains("incompatible"), "{message}");
    assert!(message.contains("inc-value"), "{message}");
    assert!(message.contains("version 1"), "{message}");
    assert!(message.contains('c'), "{message}");
    assert!(message.contains("BACKWARD"), "{message}");
    // Nothing was registered.
    assert_eq!(
        api.get("/subjects/inc-value/versions").await.body,
        json!([1])
    );
}

#[tokio::test]
async fn full_transitive_rejects_what_full_accepts() {
    let (_registry, api) = start().await;
    // v1 requires b; v2 gives b a default (FULL with v1); v3 drops b: FULL with v2
    // (v2 readers default b), but v1 readers cannot read v3 data.
    for (subject, level) in [
        ("full-value", "FULL"),
        ("transitive-value", "FULL_TRANSITIVE"),
    ] {
        let put = api
            .put(
                &format!("/config/{subject}"),
                json!({ "compatibility": level }),
            )
            .await;
        assert_eq!(put.status, 200);
        api.register_ok(subject, V1_B).await;
        api.register_ok(subject, V2).await;
    }

    assert_eq!(api.register("full-value", V3_A).await.status, 200);
    let refused = api.register("transitive-value", V3_A).await;
    assert_error(&refused, 409, 409);
    let message = refused.body["message"].as_str().unwrap_or_default();
    assert!(message.contains("version 1"), "{message}");
    assert!(!message.contains("version 2"), "{message}");
    assert!(message.contains("FULL_TRANSITIVE"), "{message}");

    // The compatibility endpoint agrees: against all versions it fails, against the
    // latest alone it passes.
    let all = api
        .post(
            "/compatibility/subjects/transitive-value/versions?verbose=true",
            json!({ "schema": V3_A }),
        )
        .await;
    assert_eq!(all.body["is_compatible"], json!(false), "{}", all.text);
    let latest = api
        .post(
            "/compatibility/subjects/transitive-value/versions/latest",
            json!({ "schema": V3_A }),
        )
        .await;
    assert_eq!(latest.body, json!({ "is_compatible": true }));
    let v1 = api
        .post(
            "/compatibility/subjects/transitive-value/versions/1",
            json!({ "schema": V3_A }),
        )
        .await;
    assert_eq!(v1.body, json!({ "is_compatible": false }));
}

#[tokio::test]
async fn compatibility_endpoint() {
    let (_registry, api) = start().await;
    api.register_ok("chk-value", V1).await;
    let path = "/compatibility/subjects/chk-value/versions/latest";

    let compatible = api.post(path, json!({ "schema": V2 })).await;
    assert_eq!(compatible.status, 200);
    assert_eq!(compatible.content_type, SR_JSON);
    assert_eq!(compatible.body, json!({ "is_compatible": true }));

    let incompatible = api.post(path, json!({ "schema": V1_PLUS_REQUIRED })).await;
    assert_eq!(incompatible.body, json!({ "is_compatible": false }));

    let verbose = api
        .post(
            &format!("{path}?verbose=true"),
            json!({ "schema": V1_PLUS_REQUIRED }),
        )
        .await;
    assert_eq!(verbose.body["is_compatible"], json!(false));
    let messages = verbose.body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(messages.len() >= 2, "{}", verbose.text);
    assert!(
        messages
            .iter()
            .any(|m| m.as_str().is_some_and(|m| m.contains("version 1"))),
        "{}",
        verbose.text
    );
    assert_eq!(messages.last(), Some(&json!("compatibility: BACKWARD")));
    let verbose_ok = api
        .post(&format!("{path}?verbose=true"), json!({ "schema": V2 }))
        .await;
    assert_eq!(
        verbose_ok.body,
        json!({ "is_compatible": true, "messages": [] })
    );

    // Against a numbered version, and "-1" for latest.
    let v1 = api
        .post(
            "/compatibility/subjects/chk-value/versions/1",
            json!({ "schema": V2 }),
        )
        .await;
    assert_eq!(v1.body, json!({ "is_compatible": true }));
    assert_eq!(
        api.post(
            "/compatibility/subjects/chk-value/versions/-1",
            json!({ "schema": V1_PLUS_REQUIRED })
        )
        .await
        .body,
        json!({ "is_compatible": false })
    );
    // Against all versions.
    assert_eq!(
        api.post(
            "/compatibility/subjects/chk-value/versions",
            json!({ "schema": V2 })
        )
        .await
        .body,
        json!({ "is_compatible": true })
    );

    // Missing versions and subjects, as Confluent: a missing numbered version is 40402
    // (even for an unknown subject); `latest` of an unknown subject is compatible.
    assert_error(
        &api.post(
            "/compatibility/subjects/chk-value/versions/5",
            json!({ "schema": V2 }),
        )
        .await,
        404,
        40402,
    );
    assert_error(
        &api.post(
            "/compatibility/subjects/nobody-value/versions/1",
            json!({ "schema": V2 }),
        )
        .await,
        404,
        40402,
    );
    assert_eq!(
        api.post(
            "/compatibility/subjects/nobody-value/versions/latest",
            json!({ "schema": V2 })
        )
        .await
        .body,
        json!({ "is_compatible": true })
    );
    assert_error(
        &api.post(
            "/compatibility/subjects/chk-value/versions/zero",
            json!({ "schema": V2 }),
        )
        .await,
        422,
        42202,
    );

    // An invalid schema is 42201, or with verbose an incompatible answer saying why.
    assert_error(&api.post(path, json!({ "schema": "{" })).await, 422, 42201);
    let verbose_invalid = api
        .post(&format!("{path}?verbose=true"), json!({ "schema": "{" }))
        .await;
    assert_eq!(verbose_invalid.body["is_compatible"], json!(false));
    assert!(verbose_invalid.body["messages"][0]
        .as_str()
        .is_some_and(|m| m.starts_with("Invalid schema")));
}

#[tokio::test]
async fn delete_subject_soft_then_permanent() {
    let (_registry, api) = start().await;
    api.register_ok("del-value", V1).await;
    api.register_ok("del-value", V2).await;
    api.register_ok("keep-value", V1).await;

    assert_error(
        &api.delete("/subjects/del-value?permanent=true").await,
        404,
        40405,
    );

    let deleted = api.delete("/subjects/del-value").await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.content_type, SR_JSON);
    assert_eq!(deleted.body, json!([1, 2]));

    assert_error(&api.get("/subjects/del-value/versions").await, 404, 40401);
    assert_error(&api.get("/subjects/del-value/versions/1").await, 404, 40401);
    assert_eq!(api.get("/subjects").await.body, json!(["keep-value"]));
    assert_eq!(
        api.get("/subjects?deleted=true").await.body,
        json!(["del-value", "keep-value"])
    );
    assert_eq!(
        api.get("/subjects/del-value/versions?deleted=true")
            .await
            .body,
        json!([1, 2])
    );
    assert_eq!(
        api.get("/subjects/del-value/versions/2?deleted=true")
            .await
            .body["id"],
        json!(2)
    );
    // Ids stay resolvable so framed bytes remain decodable.
    assert_eq!(
        api.get("/schemas/ids/2").await.body,
        json!({ "schema": V2 })
    );

    assert_error(&api.delete("/subjects/del-value").await, 404, 40404);
    let permanent = api.delete("/subjects/del-value?permanent=true").await;
    assert_eq!(permanent.body, json!([1, 2]));
    assert_eq!(
        api.get("/subjects?deleted=true").await.body,
        json!(["keep-value"])
    );
    assert_error(&api.delete("/subjects/del-value").await, 404, 40401);
    assert_error(&api.delete("/subjects/never-value").await, 404, 40401);

    // Re-registering after a delete reuses the global id.
    assert_eq!(api.register_ok("del-value", V2).await, 2);
}

#[tokio::test]
async fn delete_version_soft_then_permanent() {
    let (_registry, api) = start().await;
    api.register_ok("dv-value", V1).await;
    api.register_ok("dv-value", V2).await;

    let deleted = api.delete("/subjects/dv-value/versions/2").await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body, json!(2));
    assert_eq!(
        api.get("/subjects/dv-value/versions").await.body,
        json!([1])
    );
    assert_eq!(
        api.get("/subjects/dv-value/versions/latest").await.body["version"],
        json!(1)
    );
    assert_error(&api.get("/subjects/dv-value/versions/2").await, 404, 40402);

    assert_error(
        &api.delete("/subjects/dv-value/versions/2").await,
        404,
        40406,
    );
    assert_error(
        &api.delete("/subjects/dv-value/versions/1?permanent=true")
            .await,
        404,
        40407,
    );
    assert_eq!(
        api.delete("/subjects/dv-value/versions/2?permanent=true")
            .await
            .body,
        json!(2)
    );
    assert_error(
        &api.delete("/subjects/dv-value/versions/9").await,
        404,
        40402,
    );
    assert_error(
        &api.delete("/subjects/nobody-value/versions/1").await,
        404,
        40401,
    );
    assert_error(
        &api.delete("/subjects/dv-value/versions/x").await,
        422,
        42202,
    );

    // `latest` deletes the latest live version; versions then continue after the max.
    assert_eq!(
        api.delete("/subjects/dv-value/versions/latest").await.body,
        json!(1)
    );
    assert_error(&api.get("/subjects/dv-value/versions").await, 404, 40401);
    api.register_ok("dv-value", V2).await;
    assert_eq!(
        api.get("/subjects/dv-value/versions").await.body,
        json!([2])
    );
}

#[tokio::test]
async fn register_with_id_serves_fixed_ids() {
    let (registry, api) = start().await;
    let registered = registry
        .register_with_id("edx-value", V1, 100019)
        .expect("import works");
    assert_eq!((registered.version, registered.id), (1, 100019));
    assert_eq!(registered.schema, V1);

    assert_eq!(
        api.get("/schemas/ids/100019").await.body,
        json!({ "schema": V1 })
    );
    assert_eq!(
        api.get("/subjects/edx-value/versions/1").await.body,
        json!({ "subject": "edx-value", "version": 1, "id": 100019, "schema": V1 })
    );
    // Idempotent.
    let again = registry
        .register_with_id("edx-value", V1, 100019)
        .expect("same import again");
    assert_eq!(again, registered);
    // The same schema posted normally keeps the imported id.
    assert_eq!(api.register_ok("edx-value", V1).await, 100019);
    assert_eq!(api.register_ok("elsewhere-value", V1).await, 100019);
    // Automatic ids continue after the largest one.
    assert_eq!(api.register_ok("edx-value", V2).await, 100020);

    assert!(matches!(
        registry.register_with_id("edx-value", V1_B, 100019),
        Err(RegistryError::IdConflict { id: 100019 })
    ));
    assert!(matches!(
        registry.register_with_id("edx-value", "{", 7),
        Err(RegistryError::InvalidSchema { .. })
    ));
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let (_registry, api) = start().await;
    assert_error(&api.get("/nothing/here").await, 404, 404);
    assert_error(
        &api.send(Method::PUT, "/subjects", None, None).await,
        405,
        405,
    );
    let root = api.get("/").await;
    assert_eq!(root.status, 200);
    assert_eq!(root.body, json!({}));
}

#[tokio::test]
async fn subjects_with_slashes_are_percent_decoded() {
    let (_registry, api) = start().await;
    assert_eq!(api.register_ok("team%2Fthings-value", V1).await, 1);
    assert_eq!(
        api.get("/subjects").await.body,
        json!(["team/things-value"])
    );
    assert_eq!(
        api.get("/subjects/team%2Fthings-value/versions/latest")
            .await
            .body["subject"],
        json!("team/things-value")
    );
}

#[tokio::test]
async fn converter_encodes_and_decodes_against_the_registry() {
    let (registry, api) = start().await;
    let settings = SrSettings::new(registry.url());
    let encoder = AvroEncoder::new(settings.clone());
    let decoder = AvroDecoder::new(SrSettings::new(registry.url()));

    let strategy = SubjectNameStrategy::TopicRecordNameStrategyWithSchema(
        "dev-things".to_owned(),
        SuppliedSchema::new(
            Some("test.Thing".to_owned()),
            SchemaType::Avro,
            V2.to_owned(),
        ),
    );
    let bytes = encoder
        .encode(
            vec![
                ("a", AvroValue::String("hello".into())),
                ("b", AvroValue::String("world".into())),
            ],
            strategy,
        )
        .await
        .expect("encodes");

    // Confluent framing: magic byte 0, then the schema id as 4 big-endian bytes.
    assert_eq!(bytes[0], 0);
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    assert_eq!(id, 1);
    // The converter registered the schema under TopicRecordNameStrategy's subject.
    assert_eq!(
        api.get("/subjects").await.body,
        json!(["dev-things-test.Thing"])
    );

    let decoded = decoder.decode(Some(&bytes)).await.expect("decodes");
    assert_eq!(
        decoded.value,
        AvroValue::Record(vec![
            ("a".into(), AvroValue::String("hello".into())),
            ("b".into(), AvroValue::String("world".into())),
        ])
    );
    assert_eq!(
        decoded.name.map(|name| name.fullname(None)),
        Some("test.Thing".to_owned())
    );
}

#[tokio::test]
async fn converter_decodes_bytes_framed_with_an_imported_id() {
    let (registry, _api) = start().await;
    registry
        .register_with_id("edx-test.Thing", V1, 100019)
        .expect("import works");
    let schema = apache_avro::Schema::parse_str(V1).expect("V1 parses");
    let datum = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .expect("a datum writer")
        .write_value_to_vec(AvroValue::Record(vec![(
            "a".into(),
            AvroValue::String("edx".into()),
        )]))
        .expect("encodes a datum");
    let mut framed = vec![0u8];
    framed.extend_from_slice(&100019u32.to_be_bytes());
    framed.extend_from_slice(&datum);

    let decoder = AvroDecoder::new(SrSettings::new(registry.url()));
    let decoded = decoder.decode(Some(&framed)).await.expect("decodes");
    assert_eq!(
        decoded.value,
        AvroValue::Record(vec![("a".into(), AvroValue::String("edx".into()))])
    );
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let registry = EmbeddedRegistry::start().await.expect("starts");
    let addr = registry.local_addr();
    assert!(registry.url().starts_with("http://127.0.0.1:"));
    let api = Api::new(&registry);
    assert_eq!(api.get("/subjects").await.status, 200);
    registry.shutdown().await.expect("stops cleanly");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    let registry = EmbeddedRegistry::start().await.expect("starts");
    let addr = registry.local_addr();
    drop(registry);
    let mut refused = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "the port is still open after drop");
}

#[tokio::test]
async fn start_on_a_taken_port_is_a_bind_error() {
    let registry = EmbeddedRegistry::start().await.expect("starts");
    let taken = registry.local_addr();
    let second = EmbeddedRegistry::start_on(taken).await;
    assert!(matches!(second, Err(ServerError::Bind { addr, .. }) if addr == taken));

    // A fixed port works when free (the one just released).
    registry.shutdown().await.expect("stops");
    let again = EmbeddedRegistry::start_on(taken).await.expect("rebinds");
    assert_eq!(again.url(), format!("http://{taken}"));
}

#[tokio::test]
async fn router_serves_the_same_state() {
    let registry = EmbeddedRegistry::start().await.expect("starts");
    registry
        .store()
        .register("shared-value", V1)
        .expect("registers");
    // A second server built from `router()` sees the same state.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("has an address");
    let app = axum::Router::new().nest("/registry", registry.router());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let reply = reqwest::get(format!("http://{addr}/registry/subjects"))
        .await
        .expect("answers")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(reply, json!(["shared-value"]));
    server.abort();
}
