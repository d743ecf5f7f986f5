//! `event-bus catalog`: the example app's AsyncAPI document passes the real AsyncAPI
//! parser (`@asyncapi/parser` from npm, run with node by `asyncapi/validate.cjs`), and
//! its HTML page shows the schema history with what changed per version, escaped.
//!
//! The parser is installed by `scripts/install-test-deps` (pinned in
//! `examples/tests/asyncapi/package-lock.json`) into
//! `$HOME/.cache/signal-bridge/asyncapi-validator`, or `EVENT_BUS_TEST_ASYNCAPI_DIR`.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use event_bus_core::Event;
use event_bus_examples::openedx::{CourseEnrollmentCreated, SessionLoginCompleted};
use event_bus_examples::receivers::{example_bus, ReceivedLog};
use event_bus_kafka::cli::catalog::{self, CatalogArgs, CatalogFormat};
use event_bus_kafka::cli::CliContext;
use serde_json::{json, Value};

type TestResult = Result<(), Box<dyn Error>>;

const LOGIN: &str = SessionLoginCompleted::EVENT_TYPE;
const ENROLLMENT: &str = CourseEnrollmentCreated::EVENT_TYPE;
const AVRO: &str = "application/vnd.apache.avro;version=1.9.0";

/// `schemas/` at the repository root, where the history is committed.
fn committed_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("schemas")
}

/// Runs the example app's `event-bus` binary.
fn event_bus(args: &[&str]) -> Result<Output, Box<dyn Error>> {
    Ok(Command::new(env!("CARGO_BIN_EXE_event-bus"))
        .args(args)
        .env_remove("EVENT_BUS_SCHEMAS_DIR")
        .env_remove("EVENT_BUS_TOPIC_PREFIX")
        .env_remove("EVENT_BUS_OUTPUT")
        .output()?)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path_arg(path: &Path) -> Result<&str, Box<dyn Error>> {
    path.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()).into())
}

/// The folder `scripts/install-test-deps` installs the pinned parser into.
fn validator_dir() -> Result<PathBuf, Box<dyn Error>> {
    if let Some(dir) = std::env::var_os("EVENT_BUS_TEST_ASYNCAPI_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
    Ok(PathBuf::from(home).join(".cache/signal-bridge/asyncapi-validator"))
}

/// The validator script and its pinned packages, in the repository.
fn validator_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asyncapi")
}

/// Runs the real AsyncAPI parser on `document`: its exit code and its report.
fn validate(document: &Path) -> Result<(Option<i32>, Value), Box<dyn Error>> {
    let installed = validator_dir()?;
    let pinned = fs::read(validator_source().join("package-lock.json"))?;
    if fs::read(installed.join("package-lock.json")).ok().as_ref() != Some(&pinned) {
        return Err(format!(
            "the pinned AsyncAPI parser is not installed in {}: run scripts/install-test-deps",
            installed.display()
        )
        .into());
    }
    let output = Command::new("node")
        .arg(validator_source().join("validate.cjs"))
        .arg(document)
        .env("NODE_PATH", installed.join("node_modules"))
        .output()?;
    let report: Value = serde_json::from_slice(&output.stdout).map_err(|err| {
        format!(
            "validate.cjs printed no report ({err}); stderr: {}",
            text(&output.stderr)
        )
    })?;
    Ok((output.status.code(), report))
}

/// Validates `document` and fails on any diagnostic of error severity; returns what
/// the parser read from it.
fn assert_valid(document: &Path) -> Result<Value, Box<dyn Error>> {
    let (code, report) = validate(document)?;
    let errors: Vec<&Value> = report["diagnostics"]
        .as_array()
        .ok_or("no diagnostics array")?
        .iter()
        .filter(|d| d["severity"] == "error")
        .collect();
    assert!(
        errors.is_empty(),
        "the AsyncAPI parser found errors: {errors:#?}"
    );
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["parsed"], true, "{report:#}");
    Ok(report["document"].clone())
}

/// The parser's reading of the operation `id`.
fn operation<'a>(reading: &'a Value, id: &str) -> Option<&'a Value> {
    reading["operations"]
        .as_array()?
        .iter()
        .find(|operation| operation["id"] == id)
}

/// Runs `event-bus catalog` in-process with the example receivers, the login event
/// declared as sent and the topic prefix `prod`; returns the document.
fn catalog_with_receivers() -> Result<String, Box<dyn Error>> {
    let args = CatalogArgs {
        format: CatalogFormat::Asyncapi,
        dir: committed_root(),
        topic_prefix: Some("prod".into()),
        title: "Example app".into(),
        app_version: "1.0.0".into(),
        out: None,
    };
    let context = CliContext {
        bus: Some(Arc::new(example_bus(ReceivedLog::disabled())?)),
        produced: vec![LOGIN],
        ..CliContext::default()
    };
    let mut out = Vec::new();
    catalog::run(&args, &context, &mut out)?;
    Ok(String::from_utf8(out)?)
}

#[test]
fn the_example_apps_asyncapi_document_passes_the_asyncapi_parser() -> TestResult {
    let dir = tempfile::tempdir()?;
    let document = dir.path().join("asyncapi.json");
    let output = event_bus(&[
        "catalog",
        "--dir",
        path_arg(&committed_root())?,
        "--out",
        path_arg(&document)?,
    ])?;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let reading = assert_valid(&document)?;

    let mut addresses: Vec<&str> = reading["channels"]
        .as_array()
        .ok_or("no channels")?
        .iter()
        .filter_map(|channel| channel["address"].as_str())
        .collect();
    addresses.sort_unstable();
    assert_eq!(addresses, ["learning-course-enrollment", "user-login"]);
    for (event_type, top_field) in [(LOGIN, "user"), (ENROLLMENT, "enrollment")] {
        let message = reading["messages"]
            .as_array()
            .ok_or("no messages")?
            .iter()
            .find(|message| message["name"] == event_type)
            .ok_or_else(|| format!("no message {event_type} in {reading:#}"))?;
        assert_eq!(message["schemaFormat"], AVRO);
        // The parser read the Avro payload (it turns it into a JSON Schema object).
        assert_eq!(message["payloadType"], "object");
        assert_eq!(message["payloadProperties"], json!([top_field]));
        for header in ["ce_id", "ce_type", "ce_time", "ce_source", "ce_specversion"] {
            assert!(
                message["headers"]
                    .as_array()
                    .is_some_and(|h| h.contains(&json!(header))),
                "{header} in {message:#}"
            );
        }
        // The example binary declares both events as sent and has no receivers.
        let send = operation(&reading, &format!("send-{event_type}"))
            .ok_or_else(|| format!("no send operation for {event_type} in {reading:#}"))?;
        assert_eq!(send["action"], "send");
        assert_eq!(send["messages"], json!([event_type]));
        assert!(operation(&reading, &format!("receive-{event_type}")).is_none());
    }

    // Our own reading of the document: the payload is the code's Avro schema, and the
    // key is described with its registry subject.
    let raw: Value = serde_json::from_str(&fs::read_to_string(&document)?)?;
    let message = &raw["components"]["messages"][LOGIN];
    assert_eq!(
        message["payload"]["schema"],
        SessionLoginCompleted::schema_json()
    );
    let key = message["bindings"]["kafka"]["key"]["description"]
        .as_str()
        .ok_or("no key description")?;
    assert!(key.contains("`user.pii.username`"), "{key}");
    assert!(key.contains("`user-login-string`"), "{key}");
    assert_eq!(message["headers"]["properties"]["ce_type"]["const"], LOGIN);
    Ok(())
}

#[test]
fn receive_operations_name_the_receivers_and_the_prefix_reaches_every_topic() -> TestResult {
    let dir = tempfile::tempdir()?;
    let document = dir.path().join("asyncapi.json");
    let text = catalog_with_receivers()?;
    fs::write(&document, &text)?;
    let reading = assert_valid(&document)?;

    for event_type in [LOGIN, ENROLLMENT] {
        let receive = operation(&reading, &format!("receive-{event_type}"))
            .ok_or_else(|| format!("no receive operation for {event_type} in {reading:#}"))?;
        assert_eq!(receive["action"], "receive");
        assert_eq!(receive["receivers"], json!(["audit", "counter"]));
    }
    let send = operation(&reading, &format!("send-{LOGIN}")).ok_or("no send of login")?;
    assert_eq!(send["channels"], json!(["prod-user-login"]));
    assert!(
        operation(&reading, &format!("send-{ENROLLMENT}")).is_none(),
        "only the login event is declared as sent"
    );
    let raw: Value = serde_json::from_str(&text)?;
    assert_eq!(
        raw["components"]["messages"][LOGIN]["x-value-subject"],
        format!("prod-user-login-{LOGIN}.CloudEvent")
    );
    Ok(())
}

#[test]
fn the_validator_reports_a_broken_document() -> TestResult {
    // The same document with an unknown Avro type and an operation pointing at a
    // channel that does not exist: proof that `assert_valid` can fail.
    let dir = tempfile::tempdir()?;
    let document = dir.path().join("asyncapi.json");
    let output = event_bus(&["catalog", "--dir", path_arg(&committed_root())?])?;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let mut raw: Value = serde_json::from_slice(&output.stdout)?;
    raw["components"]["messages"][LOGIN]["payload"]["schema"]["fields"][0]["type"] =
        json!("NoSuchType");
    raw["operations"][format!("send-{ENROLLMENT}")]["channel"] =
        json!({"$ref": "#/channels/no-such-topic"});
    fs::write(&document, serde_json::to_vec(&raw)?)?;

    let (code, report) = validate(&document)?;
    assert_eq!(code, Some(1), "{report:#}");
    let codes: Vec<&str> = report["diagnostics"]
        .as_array()
        .ok_or("no diagnostics")?
        .iter()
        .filter(|d| d["severity"] == "error")
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert!(codes.contains(&"avro-schema"), "{report:#}");
    assert!(codes.contains(&"invalid-ref"), "{report:#}");
    Ok(())
}

/// Writes `schema` as `v<version>.avsc` of `event_type` under `root`.
fn write_version(root: &Path, event_type: &str, version: u32, schema: &Value) -> TestResult {
    let dir = root.join(event_type);
    fs::create_dir_all(&dir)?;
    let text = serde_json::to_string_pretty(schema)?;
    fs::write(dir.join(format!("v{version}.avsc")), format!("{text}\n"))?;
    Ok(())
}

#[test]
fn the_html_page_shows_what_changed_per_version_and_escapes_schema_text() -> TestResult {
    // The login event's history: v1 as committed; v2 adds two fields, one with a
    // hostile doc; v3 changes a default and removes a field. The code's schema is v1.
    let root = tempfile::tempdir()?;
    let v1: Value = serde_json::from_str(&fs::read_to_string(
        committed_root().join(LOGIN).join("v1.avsc"),
    )?)?;
    let mut v2 = v1.clone();
    let fields = v2["fields"].as_array_mut().ok_or("no fields")?;
    fields.push(json!({"name": "attempts", "type": "int", "default": 0}));
    fields.push(
        json!({"name": "channel", "type": ["null", "string"], "default": null,
        "doc": "<script>alert(\"x\")</script> & <b onmouseover=alert(1)>bold</b>"}),
    );
    let mut v3 = v1.clone();
    v3["fields"]
        .as_array_mut()
        .ok_or("no fields")?
        .push(json!({"name": "attempts", "type": "int", "default": 1}));
    for (version, schema) in [(1, &v1), (2, &v2), (3, &v3)] {
        write_version(root.path(), LOGIN, version, schema)?;
    }

    let page_file = root.path().join("catalog.html");
    let output = event_bus(&[
        "catalog",
        "--format",
        "html",
        "--dir",
        path_arg(root.path())?,
        "--title",
        "Catalog <of> \"examples\"",
        "--out",
        path_arg(&page_file)?,
    ])?;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let page = fs::read_to_string(&page_file)?;

    for expected in [
        "added attempts (int, default 0)",
        "added channel ([null, string], default null)",
        "default of attempts changed from 0 to 1",
        "removed channel ([null, string])",
        "first version",
        // The code's schema (v1) is not the latest stored version (v3).
        "not recorded",
        // The enrollment event has no history in this folder.
        "no history",
        "Catalog &lt;of&gt; &quot;examples&quot;",
        "learning-course-enrollment",
        "user.pii.username",
    ] {
        assert!(
            page.contains(expected),
            "`{expected}` missing from the page"
        );
    }
    // Schema docs and flags are text, never markup.
    assert!(
        page.contains("&lt;script&gt;alert"),
        "the doc is shown, escaped"
    );
    assert!(!page.contains("<script"), "no script element");
    assert!(!page.contains("<b "), "no element from the doc");
    // Self-contained: no external stylesheet, script, image or font.
    for external in ["<link", " src=", "url(", "@import"] {
        assert!(!page.contains(external), "`{external}` in the page");
    }
    Ok(())
}

#[test]
fn an_unreadable_history_fails_naming_the_file() -> TestResult {
    let root = tempfile::tempdir()?;
    let dir = root.path().join(LOGIN);
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("v1.avsc"), "{ not json")?;
    let output = event_bus(&["catalog", "--dir", path_arg(root.path())?])?;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(LOGIN), "{stderr}");
    assert!(stderr.contains("v1.avsc"), "{stderr}");
    assert!(output.stdout.is_empty(), "no half document on stdout");
    Ok(())
}
