//! The committed schema history (`schemas/` at the repository root) matches the
//! example events, and the example app's `event-bus schemas generate|check` binary
//! behaves as documented on good and bad histories.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use event_bus_core::schema::history::{assert_schema_history, SchemaHistory};
use event_bus_core::{apache_avro::Schema, Event, EventRegistration};
use event_bus_examples::openedx::{CourseEnrollmentCreated, SessionLoginCompleted};
use serde_json::{json, Value};

type TestResult = Result<(), Box<dyn Error>>;

const LOGIN: &str = SessionLoginCompleted::EVENT_TYPE;
const ENROLLMENT: &str = CourseEnrollmentCreated::EVENT_TYPE;
/// The event type of the `exactly_once_effect` binary, recorded in `schemas/` too.
const OTHER_SERVICE_TYPE: &str = "org.example.learning.login.counted.v1";

/// `schemas/` at the repository root, where the history is committed.
fn committed_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("schemas")
}

/// A fresh folder under the target's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Result<Self, Box<dyn Error>> {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("schema_history-{}-{name}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path)?;
        }
        fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs the example app's `event-bus` binary.
fn event_bus(args: &[&str]) -> Result<Output, Box<dyn Error>> {
    Ok(Command::new(env!("CARGO_BIN_EXE_event-bus"))
        .args(args)
        .env_remove("EVENT_BUS_SCHEMAS_DIR")
        .env_remove("EVENT_BUS_OUTPUT")
        .output()?)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn dir_arg(dir: &Path) -> Result<&str, Box<dyn Error>> {
    dir.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", dir.display()).into())
}

fn read_json(path: &Path) -> Result<Value, Box<dyn Error>> {
    Ok(serde_json::from_str(&fs::read_to_string(path)?)?)
}

fn write_json(path: &Path, value: &Value) -> TestResult {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, format!("{}\n", serde_json::to_string_pretty(value)?))?;
    Ok(())
}

/// The committed v1 of `event_type` with one more top-level field.
fn committed_v1_with_field(event_type: &str, field: Value) -> Result<Value, Box<dyn Error>> {
    let mut schema = read_json(&committed_root().join(event_type).join("v1.avsc"))?;
    schema["fields"]
        .as_array_mut()
        .ok_or("the committed schema has no `fields` array")?
        .push(field);
    Ok(schema)
}

/// Copies the committed history of `event_type` into `root`.
fn copy_committed(event_type: &str, root: &Path) -> TestResult {
    let from = committed_root().join(event_type);
    let to = root.join(event_type);
    fs::create_dir_all(&to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

/// A history where `LOGIN`'s v1 had a required field `legacy_id` that the code has
/// since dropped (v2 is the current schema), and `ENROLLMENT` is as committed.
fn incompatible_history(root: &Path) -> TestResult {
    let old = committed_v1_with_field(LOGIN, json!({"name": "legacy_id", "type": "long"}))?;
    write_json(&root.join(LOGIN).join("v1.avsc"), &old)?;
    fs::copy(
        committed_root().join(LOGIN).join("v1.avsc"),
        root.join(LOGIN).join("v2.avsc"),
    )?;
    copy_committed(ENROLLMENT, root)
}

#[test]
fn every_example_event_is_registered_recorded_and_compatible() -> TestResult {
    let root = committed_root();
    let registered: Vec<&str> = EventRegistration::all()
        .iter()
        .map(|r| r.event_type)
        .collect();
    assert!(registered.contains(&LOGIN), "{registered:?}");
    assert!(registered.contains(&ENROLLMENT), "{registered:?}");
    for registration in EventRegistration::all() {
        let current = (registration.schema_json)();
        assert_schema_history(&root, registration.event_type, &current);
        let history = SchemaHistory::load(&root, registration.event_type)?;
        assert!(
            history.is_recorded(&Schema::parse(&current)?),
            "the schema of {} is not the latest in {}: run `cargo run -p event-bus-examples \
             --bin event-bus -- schemas generate` and commit the new file",
            registration.event_type,
            history.dir().display()
        );
    }
    Ok(())
}

#[test]
fn schemas_check_passes_on_the_committed_history() -> TestResult {
    let root = committed_root();
    let output = event_bus(&["schemas", "check", "--dir", dir_arg(&root)?])?;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for event_type in [LOGIN, ENROLLMENT] {
        assert!(
            stdout.contains(&format!("ok         {event_type}")),
            "{stdout}"
        );
    }
    // `schemas/` also records the event type of the `exactly_once_effect` service,
    // which this binary does not link: a note, the only one.
    let notes: Vec<&str> = stdout.lines().filter(|l| l.starts_with("note:")).collect();
    assert_eq!(notes.len(), 1, "{stdout}");
    assert!(notes[0].contains(OTHER_SERVICE_TYPE), "{stdout}");
    Ok(())
}

#[test]
fn schemas_check_fails_on_an_incompatible_older_version() -> TestResult {
    let dir = TempDir::new("incompatible")?;
    incompatible_history(dir.path())?;
    let output = event_bus(&["schemas", "check", "--dir", dir_arg(dir.path())?])?;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("FAILED     {LOGIN}  (incompatible)")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("ok         {ENROLLMENT}")),
        "{stdout}"
    );
    assert!(
        stderr.contains("`event-bus schemas check` failed for 1 of 2 event type(s)"),
        "{stderr}"
    );
    assert!(stderr.contains(LOGIN), "{stderr}");
    assert!(stderr.contains("v1.avsc, forward"), "{stderr}");
    assert!(stderr.contains("field `legacy_id`"), "{stderr}");
    assert!(!stderr.contains(ENROLLMENT), "{stderr}");
    Ok(())
}

#[test]
fn schemas_check_json_output_lists_the_issues() -> TestResult {
    let dir = TempDir::new("json")?;
    incompatible_history(dir.path())?;
    let output = event_bus(&[
        "--output",
        "json",
        "schemas",
        "check",
        "--dir",
        dir_arg(dir.path())?,
    ])?;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(report["command"], "schemas check");
    assert_eq!(report["ok"], false);
    let login = report["event_types"]
        .as_array()
        .and_then(|types| types.iter().find(|t| t["event_type"] == LOGIN))
        .ok_or("no entry for the login event")?;
    assert_eq!(login["status"], "failed");
    assert_eq!(login["error"], "incompatible");
    assert_eq!(
        login["issues"][0],
        json!({
            "version": 1,
            "direction": "forward",
            "kind": "READER_FIELD_MISSING_DEFAULT_VALUE",
            "field": "legacy_id",
            "message": "version 1 cannot read data written with the new schema: field \
                        `legacy_id` (long) is required by version 1: it has no default \
                        and the new schema does not have it",
        })
    );
    Ok(())
}

#[test]
fn schemas_check_fails_when_the_current_schema_is_not_recorded() -> TestResult {
    let dir = TempDir::new("not-recorded")?;
    // v1 had an optional field the code dropped since: compatible, but not recorded.
    let old = committed_v1_with_field(
        LOGIN,
        json!({"name": "note", "type": ["null", "string"], "default": null}),
    )?;
    write_json(&dir.path().join(LOGIN).join("v1.avsc"), &old)?;
    copy_committed(ENROLLMENT, dir.path())?;
    let output = event_bus(&["schemas", "check", "--dir", dir_arg(dir.path())?])?;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("the schema of `{LOGIN}` is not recorded")),
        "{stderr}"
    );
    assert!(
        stderr.contains("run `event-bus schemas generate` and commit the new file"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn schemas_check_fails_without_a_history() -> TestResult {
    let dir = TempDir::new("empty")?;
    let output = event_bus(&["schemas", "check", "--dir", dir_arg(dir.path())?])?;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for event_type in [LOGIN, ENROLLMENT] {
        assert!(
            stderr.contains(&format!("no schema history for `{event_type}`")),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains("run `event-bus schemas generate`"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn schemas_generate_writes_the_committed_files_then_nothing() -> TestResult {
    let dir = TempDir::new("generate")?;
    let args = ["schemas", "generate", "--dir", dir_arg(dir.path())?];
    let first = event_bus(&args)?;
    let stdout = text(&first.stdout);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    for event_type in [LOGIN, ENROLLMENT] {
        assert!(
            stdout.contains(&format!("written    {event_type}")),
            "{stdout}"
        );
        let written = fs::read(dir.path().join(event_type).join("v1.avsc"))?;
        let committed = fs::read(committed_root().join(event_type).join("v1.avsc"))?;
        assert_eq!(written, committed, "{event_type}: generated file differs");
    }
    let second = event_bus(&args)?;
    let stdout = text(&second.stdout);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    assert!(stdout.contains(&format!("unchanged  {LOGIN}")), "{stdout}");
    assert!(!stdout.contains("written"), "{stdout}");
    Ok(())
}

#[test]
fn schemas_generate_refuses_an_incompatible_change() -> TestResult {
    let dir = TempDir::new("refuse")?;
    let old = committed_v1_with_field(LOGIN, json!({"name": "legacy_id", "type": "long"}))?;
    write_json(&dir.path().join(LOGIN).join("v1.avsc"), &old)?;
    let output = event_bus(&[
        "schemas",
        "generate",
        "--dir",
        dir_arg(dir.path())?,
        "--event-type",
        LOGIN,
    ])?;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("failed for 1 of 1 event type(s), and wrote nothing for them"),
        "{stderr}"
    );
    assert!(stderr.contains("field `legacy_id`"), "{stderr}");
    assert!(!dir.path().join(LOGIN).join("v2.avsc").exists());
    assert!(
        !dir.path().join(ENROLLMENT).exists(),
        "--event-type limits it"
    );
    Ok(())
}

#[test]
fn an_unknown_event_type_is_a_usage_error() -> TestResult {
    let root = committed_root();
    let output = event_bus(&[
        "schemas",
        "check",
        "--dir",
        dir_arg(&root)?,
        "--event-type",
        "org.openedx.learning.no.such.thing.v1",
    ])?;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown event type"), "{stderr}");
    assert!(stderr.contains(LOGIN), "lists the known types: {stderr}");
    Ok(())
}

#[test]
fn help_documents_the_exit_codes() -> TestResult {
    let output = event_bus(&["schemas", "check", "--help"])?;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout.contains("Exit codes:"), "{stdout}");
    assert!(stdout.contains("--dir <DIR>"), "{stdout}");
    Ok(())
}
