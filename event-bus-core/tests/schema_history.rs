//! The committed schema history: generate, load and check against a temporary folder.

use std::fs;
use std::path::{Path, PathBuf};

use event_bus_core::schema::compat::{Direction, IssueKind};
use event_bus_core::schema::history::{
    assert_schema_history, check, generate, GenerateOutcome, HistoryError, SchemaHistory,
};
use serde_json::{json, Value};
use tempfile::TempDir;

const EVENT_TYPE: &str = "org.example.learning.course.enrollment.created.v1";

fn event(fields: Value) -> Value {
    json!({
        "name": "CloudEvent",
        "type": "record",
        "namespace": EVENT_TYPE,
        "doc": "An enrollment was created.",
        "fields": fields,
    })
}

fn v1() -> Value {
    event(json!([
        {"name": "user_id", "type": "long"},
        {"name": "email", "type": "string"}
    ]))
}

fn root() -> TempDir {
    match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("cannot create a temporary folder: {err}"),
    }
}

fn dir(root: &TempDir) -> PathBuf {
    root.path().join(EVENT_TYPE)
}

fn written(outcome: Result<GenerateOutcome, HistoryError>) -> PathBuf {
    match outcome {
        Ok(GenerateOutcome::Written(path)) => path,
        other => panic!("expected a written file, got {other:?}"),
    }
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create the folder");
    }
    fs::write(path, text).expect("write the file");
}

#[test]
fn generate_writes_v1_as_pretty_json_with_a_trailing_newline() {
    let root = root();
    let path = written(generate(root.path(), EVENT_TYPE, &v1()));
    assert_eq!(path, dir(&root).join("v1.avsc"));

    let text = fs::read_to_string(&path).expect("read v1");
    assert!(
        text.starts_with("{\n  \"name\": \"CloudEvent\",\n  \"type\": \"record\",\n"),
        "{text}"
    );
    assert!(text.ends_with("}\n"), "{text}");
    assert!(!text.ends_with("}\n\n"));
    let stored: Value = serde_json::from_str(&text).expect("v1 is JSON");
    assert_eq!(stored, v1());
}

#[test]
fn generate_is_idempotent_and_ignores_key_order_docs_and_spelling() {
    let root = root();
    written(generate(root.path(), EVENT_TYPE, &v1()));
    assert_eq!(
        generate(root.path(), EVENT_TYPE, &v1()).ok(),
        Some(GenerateOutcome::Unchanged)
    );

    // Same schema: keys reordered, no doc, the namespace folded into the name and
    // `{"type": "long"}` instead of `"long"`.
    let same = json!({
        "fields": [
            {"type": {"type": "long"}, "name": "user_id", "doc": "Who enrolled."},
            {"name": "email", "type": "string"}
        ],
        "type": "record",
        "name": format!("{EVENT_TYPE}.CloudEvent"),
    });
    assert_eq!(
        generate(root.path(), EVENT_TYPE, &same).ok(),
        Some(GenerateOutcome::Unchanged)
    );
    assert!(!dir(&root).join("v2.avsc").exists());
}

#[test]
fn generate_writes_v2_when_the_schema_changes() {
    let root = root();
    written(generate(root.path(), EVENT_TYPE, &v1()));
    let v2 = event(json!([
        {"name": "user_id", "type": "long"},
        {"name": "email", "type": "string"},
        {"name": "mode", "type": ["null", "string"], "default": null}
    ]));
    let path = written(generate(root.path(), EVENT_TYPE, &v2));
    assert_eq!(path, dir(&root).join("v2.avsc"));
    assert_eq!(
        generate(root.path(), EVENT_TYPE, &v2).ok(),
        Some(GenerateOutcome::Unchanged)
    );

    let history = SchemaHistory::load(root.path(), EVENT_TYPE).expect("load");
    let versions: Vec<u32> = history
        .versions()
        .iter()
        .map(|stored| stored.version)
        .collect();
    assert_eq!(versions, [1, 2]);
    assert_eq!(history.versions()[1].json, v2);
    // v1 was left alone.
    let v1_text = fs::read_to_string(dir(&root).join("v1.avsc")).expect("read v1");
    assert_eq!(serde_json::from_str::<Value>(&v1_text).ok(), Some(v1()));
}

#[test]
fn generate_counts_a_new_default_as_a_change() {
    // The Parsing Canonical Form drops defaults, but schema resolution uses them.
    let root = root();
    written(generate(root.path(), EVENT_TYPE, &v1()));
    let with_default = event(json!([
        {"name": "user_id", "type": "long"},
        {"name": "email", "type": "string", "default": ""}
    ]));
    let path = written(generate(root.path(), EVENT_TYPE, &with_default));
    assert!(path.ends_with("v2.avsc"));
}

#[test]
fn generate_never_overwrites_a_file() {
    let root = root();
    written(generate(root.path(), EVENT_TYPE, &v1()));
    // Something already sits where v2.avsc would go.
    fs::create_dir_all(dir(&root).join("v2.avsc")).expect("create the obstacle");
    let changed = event(json!([{"name": "user_id", "type": "long"}]));
    let err = generate(root.path(), EVENT_TYPE, &changed).unwrap_err();
    assert!(
        matches!(&err, HistoryError::AlreadyExists { path } if path.ends_with("v2.avsc")),
        "{err:?}"
    );
    assert!(err.to_string().contains("never overwritten"));
}

#[test]
fn generate_refuses_an_invalid_current_schema() {
    let root = root();
    let err = generate(
        root.path(),
        EVENT_TYPE,
        &json!({"type": "record", "name": "E"}),
    )
    .unwrap_err();
    assert!(
        matches!(err, HistoryError::InvalidCurrentSchema { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(EVENT_TYPE));
    assert!(!dir(&root).exists());
}

#[test]
fn check_passes_for_an_optional_field_with_a_default() {
    let root = root();
    written(generate(root.path(), EVENT_TYPE, &v1()));
    let current = event(json!([
        {"name": "user_id", "type": "long"},
        {"name": "email", "type": "string"},
        {"name": "mode", "type": ["null", "string"], "default": null}
    ]));
    check(root.path(), EVENT_TYPE, &current).expect("compatible");
    assert_schema_history(root.path(), EVENT_TYPE, &current);
}

#[test]
fn check_fails_for_a_new_required_field_naming_type_version_direction_and_field() {
    let root = root();
    written(generate(root.path(), EVENT_TYPE, &v1()));
    let current = event(json!([
        {"name": "user_id", "type": "long"},
        {"name": "email", "type": "string"},
        {"name": "mode", "type": "string"}
    ]));
    let err = check(root.path(), EVENT_TYPE, &current).unwrap_err();
    let HistoryError::Incompatible {
        event_type, issues, ..
    } = &err
    else {
        panic!("expected Incompatible, got {err:?}");
    };
    assert_eq!(event_type, EVENT_TYPE);
    assert_eq!(issues.len(), 1);
    assert_eq!(
        (issues[0].version, issues[0].direction),
        (1, Direction::NewReadsOld)
    );
    assert_eq!(issues[0].path, "mode");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "the schema of `{EVENT_TYPE}` is not FULL_TRANSITIVE compatible"
        )),
        "{text}"
    );
    assert!(
        text.contains(
            "v1.avsc, backward: the new schema cannot read data \
             written with version 1: field `mode` (string) is required by the new schema"
        ),
        "{text}"
    );
}

#[test]
fn check_fails_for_removed_renamed_and_retyped_fields() {
    let cases = [
        (
            "removed",
            json!([{"name": "user_id", "type": "long"}]),
            "field `email` (string) is required by version 1",
        ),
        (
            "renamed",
            json!([{"name": "user_id", "type": "long"}, {"name": "mail", "type": "string"}]),
            "field `mail` (string) is required by the new schema",
        ),
        (
            "retyped",
            json!([{"name": "user_id", "type": "string"}, {"name": "email", "type": "string"}]),
            "field `user_id` is long in version 1 but string in the new schema",
        ),
    ];
    for (what, fields, reason) in cases {
        let root = root();
        written(generate(root.path(), EVENT_TYPE, &v1()));
        let err = check(root.path(), EVENT_TYPE, &event(fields)).unwrap_err();
        assert!(err.to_string().contains(reason), "{what}: {err}");
    }
}

#[test]
fn check_is_transitive_over_every_stored_version() {
    let root = root();
    written(generate(root.path(), EVENT_TYPE, &v1()));
    let v2 = event(json!([
        {"name": "user_id", "type": "long"},
        {"name": "email", "type": "string", "default": ""}
    ]));
    written(generate(root.path(), EVENT_TYPE, &v2));
    // Compatible with v2 (email has a default there), not with v1.
    let current = event(json!([{"name": "user_id", "type": "long"}]));
    let err = check(root.path(), EVENT_TYPE, &current).unwrap_err();
    let HistoryError::Incompatible { issues, .. } = &err else {
        panic!("expected Incompatible, got {err:?}");
    };
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].version, 1);
    assert_eq!(issues[0].direction, Direction::OldReadsNew);
    assert_eq!(issues[0].kind, IssueKind::ReaderFieldMissingDefaultValue);
    assert!(
        err.to_string()
            .contains("v1.avsc, forward: version 1 cannot read data written with the new schema"),
        "{err}"
    );
}

#[test]
fn check_without_history_tells_to_generate() {
    let root = root();
    let err = check(root.path(), EVENT_TYPE, &v1()).unwrap_err();
    assert!(
        matches!(&err, HistoryError::NoHistory { event_type, dir: d } if event_type == EVENT_TYPE && *d == dir(&root)),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("run `event-bus schemas generate`"),
        "{err}"
    );

    // A folder without any version is no history either.
    fs::create_dir_all(dir(&root)).expect("create the folder");
    let err = check(root.path(), EVENT_TYPE, &v1()).unwrap_err();
    assert!(matches!(err, HistoryError::NoHistory { .. }), "{err:?}");
}

#[test]
#[should_panic(expected = "field `email` (string) is required by version 1")]
fn assert_schema_history_panics_with_the_reason() {
    let root = root();
    written(generate(root.path(), EVENT_TYPE, &v1()));
    assert_schema_history(
        root.path(),
        EVENT_TYPE,
        &event(json!([{"name": "user_id", "type": "long"}])),
    );
}

#[test]
fn a_gap_in_the_numbering_is_a_typed_error() {
    let root = root();
    let text = format!("{}\n", v1());
    write(&dir(&root).join("v1.avsc"), &text);
    write(&dir(&root).join("v3.avsc"), &text);
    let err = SchemaHistory::load(root.path(), EVENT_TYPE).unwrap_err();
    match &err {
        HistoryError::Gap {
            event_type,
            missing,
            found,
        } => {
            assert_eq!(event_type, EVENT_TYPE);
            assert_eq!(*missing, dir(&root).join("v2.avsc"));
            assert_eq!(*found, dir(&root).join("v3.avsc"));
        }
        other => panic!("expected Gap, got {other:?}"),
    }
    assert!(err.to_string().contains("v2.avsc is missing"), "{err}");
    // generate and check refuse a broken history too.
    assert!(matches!(
        generate(root.path(), EVENT_TYPE, &v1()),
        Err(HistoryError::Gap { .. })
    ));
    assert!(matches!(
        check(root.path(), EVENT_TYPE, &v1()),
        Err(HistoryError::Gap { .. })
    ));
}

#[test]
fn a_history_not_starting_at_v1_is_a_gap() {
    let root = root();
    write(&dir(&root).join("v2.avsc"), &v1().to_string());
    let err = SchemaHistory::load(root.path(), EVENT_TYPE).unwrap_err();
    assert!(
        matches!(&err, HistoryError::Gap { missing, .. } if missing.ends_with("v1.avsc")),
        "{err:?}"
    );
}

#[test]
fn an_unparsable_file_is_a_typed_error_naming_it() {
    let root = root();
    let v1_path = dir(&root).join("v1.avsc");
    write(&v1_path, "{\"type\": \"record\", ");
    let err = SchemaHistory::load(root.path(), EVENT_TYPE).unwrap_err();
    assert!(
        matches!(&err, HistoryError::InvalidJson { path, .. } if *path == v1_path),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&v1_path.display().to_string()),
        "{err}"
    );

    write(&v1_path, "{\"type\": \"record\", \"name\": \"E\"}\n");
    let err = SchemaHistory::load(root.path(), EVENT_TYPE).unwrap_err();
    assert!(
        matches!(&err, HistoryError::InvalidSchema { path, .. } if *path == v1_path),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("is not a valid Avro schema"),
        "{err}"
    );
}

#[test]
fn avsc_files_with_other_names_are_refused_and_other_files_ignored() {
    let root = root();
    write(&dir(&root).join("v1.avsc"), &v1().to_string());
    write(&dir(&root).join("README.md"), "notes\n");
    write(&dir(&root).join(".gitkeep"), "");
    assert_eq!(
        SchemaHistory::load(root.path(), EVENT_TYPE)
            .map(|h| h.len())
            .ok(),
        Some(1)
    );

    for name in ["v01.avsc", "latest.avsc", "v2-draft.avsc", "v0.avsc"] {
        let path = dir(&root).join(name);
        write(&path, &v1().to_string());
        let err = SchemaHistory::load(root.path(), EVENT_TYPE).unwrap_err();
        assert!(
            matches!(&err, HistoryError::UnexpectedFile { path: p } if *p == path),
            "{name}: {err:?}"
        );
        fs::remove_file(&path).expect("remove");
    }
}

#[test]
fn event_types_that_are_not_folder_names_are_refused() {
    let root = root();
    for bad in ["", "..", "../escape", "a/b"] {
        let err = generate(root.path(), bad, &v1()).unwrap_err();
        assert!(
            matches!(err, HistoryError::InvalidEventType { .. }),
            "{bad:?}: {err:?}"
        );
    }
}

#[test]
fn open_edx_style_references_evolve_compatibly() {
    // Open edX schemas define a record once and refer to it by name afterwards.
    let user =
        json!({"name": "UserData", "type": "record", "fields": [{"name": "id", "type": "long"}]});
    let root = root();
    let v1 = event(json!([
        {"name": "user", "type": user},
        {"name": "created_by", "type": ["null", "UserData"], "default": null}
    ]));
    written(generate(root.path(), EVENT_TYPE, &v1));
    let current = event(json!([
        {"name": "actor", "type": ["null", user], "default": null},
        {"name": "user", "type": "UserData"},
        {"name": "created_by", "type": ["null", "UserData"], "default": null}
    ]));
    check(root.path(), EVENT_TYPE, &current).expect("compatible");
}
