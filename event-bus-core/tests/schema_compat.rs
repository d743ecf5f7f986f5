//! Compatibility rules: each rule fails when it should, with a message naming the
//! field and the version, and passes when it should.

use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use apache_avro::Schema;
use event_bus_core::schema::compat::{
    can_read, check_compatibility, check_compatibility_with_versions, CompatibilityIssue,
    CompatibilityLevel, Direction, IssueKind,
};
use serde_json::{json, Value};

/// The top-level record of an event with these fields.
fn event(fields: Value) -> Schema {
    let json = json!({
        "type": "record",
        "name": "CloudEvent",
        "namespace": "org.example.learning.thing.created.v1",
        "fields": fields,
    });
    match Schema::parse(&json) {
        Ok(schema) => schema,
        Err(err) => panic!("test schema does not parse: {err}\n{json:#}"),
    }
}

fn issues(level: CompatibilityLevel, new: &Schema, existing: &[Schema]) -> Vec<CompatibilityIssue> {
    match check_compatibility(level, new, existing) {
        Ok(()) => panic!("expected {level} to fail"),
        Err(issues) => issues,
    }
}

fn assert_compatible(level: CompatibilityLevel, new: &Schema, existing: &[Schema]) {
    if let Err(issues) = check_compatibility(level, new, existing) {
        panic!("expected {level} to pass, got {issues:#?}");
    }
}

fn messages(issues: &[CompatibilityIssue]) -> Vec<&str> {
    issues.iter().map(|issue| issue.message.as_str()).collect()
}

#[test]
fn adding_an_optional_field_with_a_default_passes_every_level() {
    let v1 = event(json!([{"name": "id", "type": "long"}]));
    let v2 = event(json!([
        {"name": "id", "type": "long"},
        {"name": "mode", "type": ["null", "string"], "default": null},
        {"name": "count", "type": "int", "default": 0}
    ]));
    for level in CompatibilityLevel::ALL {
        assert_compatible(level, &v2, std::slice::from_ref(&v1));
    }
}

#[test]
fn adding_a_required_field_fails_backward() {
    let v1 = event(json!([{"name": "id", "type": "long"}]));
    let v2 = event(json!([{"name": "id", "type": "long"}, {"name": "email", "type": "string"}]));

    let found = issues(CompatibilityLevel::Full, &v2, std::slice::from_ref(&v1));
    assert_eq!(
        messages(&found),
        [
            "the new schema cannot read data written with version 1: field `email` (string) is \
          required by the new schema: it has no default and version 1 does not have it"
        ]
    );
    assert_eq!(found[0].version, 1);
    assert_eq!(found[0].direction, Direction::NewReadsOld);
    assert_eq!(found[0].kind, IssueKind::ReaderFieldMissingDefaultValue);
    assert_eq!(found[0].path, "email");
    // Old readers simply skip the new field.
    assert_compatible(CompatibilityLevel::Forward, &v2, &[v1]);
}

#[test]
fn removing_a_field_without_default_fails_forward() {
    let v1 = event(json!([{"name": "id", "type": "long"}, {"name": "email", "type": "string"}]));
    let v2 = event(json!([{"name": "id", "type": "long"}]));

    let found = issues(CompatibilityLevel::Full, &v2, std::slice::from_ref(&v1));
    assert_eq!(
        messages(&found),
        [
            "version 1 cannot read data written with the new schema: field `email` (string) is \
          required by version 1: it has no default and the new schema does not have it"
        ]
    );
    assert_eq!(found[0].direction, Direction::OldReadsNew);
    assert_compatible(CompatibilityLevel::Backward, &v2, &[v1]);
}

#[test]
fn removing_a_field_that_has_a_default_passes_full() {
    let v1 = event(json!([
        {"name": "id", "type": "long"},
        {"name": "email", "type": ["null", "string"], "default": null}
    ]));
    let v2 = event(json!([{"name": "id", "type": "long"}]));
    assert_compatible(CompatibilityLevel::FullTransitive, &v2, &[v1]);
}

#[test]
fn renaming_a_field_fails_both_ways() {
    let v1 = event(json!([{"name": "user_id", "type": "long"}]));
    let v2 = event(json!([{"name": "learner_id", "type": "long"}]));

    let found = issues(CompatibilityLevel::Full, &v2, &[v1]);
    assert_eq!(
        messages(&found),
        [
            "the new schema cannot read data written with version 1: field `learner_id` (long) \
             is required by the new schema: it has no default and version 1 does not have it",
            "version 1 cannot read data written with the new schema: field `user_id` (long) is \
             required by version 1: it has no default and the new schema does not have it",
        ]
    );
}

#[test]
fn an_alias_makes_a_rename_backward_compatible_only() {
    // Confluent's rule: the new reader finds the old field through its alias, but
    // readers of version 1 still look for `user_id`.
    let v1 = event(json!([{"name": "user_id", "type": "long"}]));
    let v2 = event(json!([{"name": "learner_id", "type": "long", "aliases": ["user_id"]}]));

    assert_compatible(CompatibilityLevel::Backward, &v2, std::slice::from_ref(&v1));
    let found = issues(CompatibilityLevel::Forward, &v2, &[v1]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].path, "user_id");
    assert!(found[0]
        .message
        .contains("field `user_id` (long) is required by version 1"));
}

#[test]
fn changing_a_type_fails() {
    let v1 = event(json!([{"name": "user_id", "type": "string"}]));
    let v2 = event(json!([{"name": "user_id", "type": "long"}]));

    let found = issues(CompatibilityLevel::Full, &v2, &[v1]);
    assert_eq!(
        messages(&found),
        [
            "the new schema cannot read data written with version 1: field `user_id` is string \
             in version 1 but long in the new schema, which cannot read it",
            "version 1 cannot read data written with the new schema: field `user_id` is long \
             in the new schema but string in version 1, which cannot read it",
        ]
    );
    assert!(found
        .iter()
        .all(|issue| issue.kind == IssueKind::TypeMismatch));
}

#[test]
fn int_to_long_is_a_promotion_one_way_only() {
    let v1 = event(json!([{"name": "count", "type": "int"}]));
    let v2 = event(json!([{"name": "count", "type": "long"}]));

    assert_compatible(CompatibilityLevel::Backward, &v2, std::slice::from_ref(&v1));
    let found = issues(CompatibilityLevel::Forward, &v2, &[v1]);
    assert_eq!(
        messages(&found),
        [
            "version 1 cannot read data written with the new schema: field `count` is long in \
          the new schema but int in version 1, which cannot read it"
        ]
    );
}

fn status_field(symbols: &[&str], default: Option<&str>) -> Value {
    let mut enumeration = json!({"type": "enum", "name": "Status", "symbols": symbols});
    if let Some(default) = default {
        enumeration["default"] = json!(default);
    }
    json!([{"name": "status", "type": enumeration}])
}

#[test]
fn removing_an_enum_symbol_fails_when_the_reader_has_no_default() {
    let v1 = event(status_field(&["ACTIVE", "INACTIVE", "BANNED"], None));
    let v2 = event(status_field(&["ACTIVE", "INACTIVE"], None));

    let found = issues(CompatibilityLevel::Full, &v2, &[v1]);
    assert_eq!(
        messages(&found),
        [
            "the new schema cannot read data written with version 1: field `status`: enum Status \
          in the new schema lacks symbol(s) BANNED that version 1 can write, and has no \
          default symbol"
        ]
    );
    assert_eq!(found[0].kind, IssueKind::MissingEnumSymbols);
}

#[test]
fn an_enum_default_lets_readers_accept_unknown_symbols() {
    let v1 = event(status_field(&["UNKNOWN", "ACTIVE"], Some("UNKNOWN")));
    let v2 = event(status_field(
        &["UNKNOWN", "ACTIVE", "BANNED"],
        Some("UNKNOWN"),
    ));
    assert_compatible(CompatibilityLevel::FullTransitive, &v2, &[v1]);

    // Without the default, version 1 cannot read BANNED.
    let v1 = event(status_field(&["UNKNOWN", "ACTIVE"], None));
    let v2 = event(status_field(
        &["UNKNOWN", "ACTIVE", "BANNED"],
        Some("UNKNOWN"),
    ));
    let found = issues(CompatibilityLevel::Full, &v2, &[v1]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].direction, Direction::OldReadsNew);
    assert!(found[0]
        .message
        .contains("enum Status in version 1 lacks symbol(s) BANNED"));
}

/// The gap this module closes: apache-avro's check answers `Ok(Partial)`, which a
/// caller testing `is_ok()` takes for compatible, where the registry refuses.
#[test]
fn apache_avro_alone_is_too_lax_on_enum_symbols_and_union_branches() {
    let v1 = event(status_field(&["ACTIVE", "INACTIVE", "BANNED"], None));
    let v2 = event(status_field(&["ACTIVE", "INACTIVE"], None));
    assert_eq!(
        SchemaCompatibility::can_read(&v1, &v2),
        Ok(Compatibility::Partial)
    );
    assert!(SchemaCompatibility::can_read(&v1, &v2).is_ok());
    let err = can_read(&v1, &v2).unwrap_err();
    assert!(err.contains("lacks symbol(s) BANNED"), "{err}");

    let v1 = event(json!([{"name": "value", "type": ["null", "string", "long"], "default": null}]));
    let v2 = event(json!([{"name": "value", "type": ["null", "string"], "default": null}]));
    assert_eq!(
        SchemaCompatibility::can_read(&v1, &v2),
        Ok(Compatibility::Partial)
    );
    let found = issues(CompatibilityLevel::Backward, &v2, &[v1]);
    assert_eq!(
        messages(&found),
        [
            "the new schema cannot read data written with version 1: field `value` is long in \
          version 1, but no branch of [null, string] in the new schema can read it"
        ]
    );
    assert_eq!(found[0].kind, IssueKind::MissingUnionBranch);
}

/// The other way round: apache-avro refuses a valid change when a record type defined in
/// one schema is only referenced by name at the same place in the other (Open edX
/// schemas define `UserData` once and refer to it by name afterwards).
#[test]
fn a_named_type_moved_before_its_reference_stays_compatible() {
    let user =
        json!({"type": "record", "name": "UserData", "fields": [{"name": "id", "type": "long"}]});
    let v1 = event(json!([
        {"name": "user", "type": user},
        {"name": "created_by", "type": ["null", "UserData"], "default": null}
    ]));
    let v2 = event(json!([
        {"name": "actor", "type": ["null", user], "default": null},
        {"name": "user", "type": "UserData"},
        {"name": "created_by", "type": ["null", "UserData"], "default": null}
    ]));
    assert!(SchemaCompatibility::can_read(&v1, &v2).is_err());
    assert_compatible(CompatibilityLevel::FullTransitive, &v2, &[v1]);
}

fn enrollment(user_fields: Value) -> Schema {
    event(json!([{
        "name": "enrollment",
        "type": {"type": "record", "name": "CourseEnrollmentData", "fields": [
            {"name": "user", "type": {"type": "record", "name": "UserData", "fields": user_fields}},
            {"name": "mode", "type": "string"}
        ]}
    }]))
}

#[test]
fn nested_record_issues_name_the_dotted_path() {
    let v1 =
        enrollment(json!([{"name": "id", "type": "long"}, {"name": "email", "type": "string"}]));
    let v2 = enrollment(json!([{"name": "id", "type": "long"}]));

    let found = issues(CompatibilityLevel::FullTransitive, &v2, &[v1]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].path, "enrollment.user.email");
    assert_eq!(
        found[0].message,
        "version 1 cannot read data written with the new schema: field \
         `enrollment.user.email` (string) is required by version 1: it has no default and \
         the new schema does not have it"
    );
}

#[test]
fn an_optional_nested_record_reports_the_inner_field() {
    let user = |id_type: &str| json!({"type": "record", "name": "UserData", "fields": [{"name": "id", "type": id_type}]});
    let v1 =
        event(json!([{"name": "created_by", "type": ["null", user("long")], "default": null}]));
    let v2 =
        event(json!([{"name": "created_by", "type": ["null", user("string")], "default": null}]));

    let found = issues(CompatibilityLevel::Full, &v2, &[v1]);
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|issue| issue.path == "created_by.id"));
    assert_eq!(
        found[0].message,
        "the new schema cannot read data written with version 1: field `created_by.id` is \
         long in version 1 but string in the new schema, which cannot read it"
    );
}

#[test]
fn making_a_field_optional_or_required_breaks_one_direction() {
    let required = event(json!([{"name": "email", "type": "string"}]));
    let optional = event(json!([{"name": "email", "type": ["null", "string"], "default": null}]));

    // Required -> optional: readers of the required version cannot read a null.
    assert_compatible(
        CompatibilityLevel::Backward,
        &optional,
        std::slice::from_ref(&required),
    );
    let found = issues(
        CompatibilityLevel::Forward,
        &optional,
        std::slice::from_ref(&required),
    );
    assert_eq!(
        messages(&found),
        [
            "version 1 cannot read data written with the new schema: field `email` is \
          [null, string] in the new schema but string in version 1, which cannot read its \
          null branch"
        ]
    );

    // Optional -> required: the new reader cannot read the nulls already written.
    assert_compatible(
        CompatibilityLevel::Forward,
        &required,
        std::slice::from_ref(&optional),
    );
    let found = issues(CompatibilityLevel::Backward, &required, &[optional]);
    assert_eq!(found[0].direction, Direction::NewReadsOld);
    assert!(found[0]
        .message
        .contains("which cannot read its null branch"));
}

#[test]
fn dropping_a_field_an_older_version_needs_fails_only_transitively() {
    // v1 requires `email`; v2 gives it a default; v3 drops it.
    let v1 = event(json!([{"name": "id", "type": "long"}, {"name": "email", "type": "string"}]));
    let v2 = event(json!([
        {"name": "id", "type": "long"},
        {"name": "email", "type": "string", "default": ""}
    ]));
    let v3 = event(json!([{"name": "id", "type": "long"}]));
    let history = [v1, v2];

    assert_compatible(CompatibilityLevel::Full, &v3, &history);
    let found = issues(CompatibilityLevel::FullTransitive, &v3, &history);
    assert_eq!(
        messages(&found),
        [
            "version 1 cannot read data written with the new schema: field `email` (string) is \
          required by version 1: it has no default and the new schema does not have it"
        ]
    );
    assert_eq!(
        (found[0].version, found[0].direction),
        (1, Direction::OldReadsNew)
    );
    assert_compatible(CompatibilityLevel::BackwardTransitive, &v3, &history);
    assert!(check_compatibility(CompatibilityLevel::ForwardTransitive, &v3, &history).is_err());
}

#[test]
fn non_transitive_levels_only_look_at_the_latest_version() {
    let v1 = event(json!([{"name": "id", "type": "string"}]));
    let v2 = event(json!([{"name": "id", "type": "long"}]));
    let v3 =
        event(json!([{"name": "id", "type": "long"}, {"name": "n", "type": "int", "default": 0}]));
    let history = [v1, v2];
    for level in [
        CompatibilityLevel::Backward,
        CompatibilityLevel::Forward,
        CompatibilityLevel::Full,
    ] {
        assert_compatible(level, &v3, &history);
    }
    let found = issues(CompatibilityLevel::BackwardTransitive, &v3, &history);
    assert!(found.iter().all(|issue| issue.version == 1));
}

#[test]
fn none_and_an_empty_history_accept_anything() {
    let v1 = event(json!([{"name": "id", "type": "string"}]));
    let v2 = event(json!([{"name": "other", "type": "long"}]));
    assert_compatible(CompatibilityLevel::None, &v2, &[v1]);
    for level in CompatibilityLevel::ALL {
        assert_compatible(level, &v2, &[]);
    }
}

#[test]
fn registry_version_numbers_are_used_in_messages() {
    let v7 = event(json!([{"name": "id", "type": "long"}, {"name": "email", "type": "string"}]));
    let new = event(json!([{"name": "id", "type": "long"}]));
    let found =
        check_compatibility_with_versions(CompatibilityLevel::Full, &new, &[(7, &v7)]).unwrap_err();
    assert_eq!(found[0].version, 7);
    assert!(found[0]
        .message
        .starts_with("version 7 cannot read data written with the new schema"));
}

#[test]
fn renaming_a_record_type_needs_an_alias() {
    let named = |name: &str, aliases: Value| {
        event(json!([{"name": "user", "type": {
            "type": "record", "name": name, "aliases": aliases,
            "fields": [{"name": "id", "type": "long"}]
        }}]))
    };
    let v1 = named("UserData", json!([]));
    let v2 = named("Learner", json!([]));
    let found = issues(CompatibilityLevel::Backward, &v2, std::slice::from_ref(&v1));
    assert_eq!(
        messages(&found),
        [
            "the new schema cannot read data written with version 1: field `user` is record \
          org.example.learning.thing.created.v1.UserData in version 1 but record \
          org.example.learning.thing.created.v1.Learner in the new schema: a named type keeps \
          its name unless the reader lists the old full name in \"aliases\""
        ]
    );
    assert_eq!(found[0].kind, IssueKind::NameMismatch);

    let v2 = named("Learner", json!(["UserData"]));
    assert_compatible(CompatibilityLevel::Backward, &v2, &[v1]);
}

#[test]
fn fixed_size_and_decimal_scale_changes_fail() {
    let fixed = |size: usize| {
        event(json!([{"name": "digest", "type": {"type": "fixed", "name": "Md5", "size": size}}]))
    };
    let found = issues(CompatibilityLevel::Backward, &fixed(32), &[fixed(16)]);
    assert_eq!(found[0].kind, IssueKind::FixedSizeMismatch);
    assert!(found[0]
        .message
        .contains("field `digest`: fixed Md5 has size 16 in version 1 but 32 in the new schema"));

    // Java's checker ignores logical types; a changed scale would misread every value.
    let decimal = |scale: usize| {
        event(
            json!([{"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": scale}}]),
        )
    };
    let found = issues(CompatibilityLevel::Backward, &decimal(3), &[decimal(2)]);
    assert_eq!(
        messages(&found),
        [
            "the new schema cannot read data written with version 1: field `price` is \
          decimal(10,2) in version 1 but decimal(10,3) in the new schema: precision and scale \
          must not change"
        ]
    );
    assert_eq!(found[0].kind, IssueKind::DecimalMismatch);
}

#[test]
fn array_items_and_map_values_are_checked_with_their_path() {
    let v1 = event(json!([
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "long"}}
    ]));
    let v2 = event(json!([
        {"name": "tags", "type": {"type": "array", "items": "long"}},
        {"name": "attrs", "type": {"type": "map", "values": "boolean"}}
    ]));
    let found = issues(CompatibilityLevel::Backward, &v2, &[v1]);
    let paths: Vec<&str> = found.iter().map(|issue| issue.path.as_str()).collect();
    assert_eq!(paths, ["tags[]", "attrs{}"]);
}

#[test]
fn recursive_types_terminate() {
    let list = |extra: Value| {
        let mut fields = vec![
            json!({"name": "value", "type": "long"}),
            json!({"name": "next", "type": ["null", "Node"], "default": null}),
        ];
        if !extra.is_null() {
            fields.push(extra);
        }
        event(
            json!([{"name": "head", "type": {"type": "record", "name": "Node", "fields": fields}}]),
        )
    };
    let v1 = list(Value::Null);
    let v2 = list(json!({"name": "label", "type": "string"}));
    assert_compatible(CompatibilityLevel::Forward, &v2, std::slice::from_ref(&v1));
    let found = issues(CompatibilityLevel::Backward, &v2, &[v1]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].path, "head.label");
}

#[test]
fn can_read_explains_with_reader_and_writer() {
    let writer = event(json!([{"name": "id", "type": "long"}]));
    let reader =
        event(json!([{"name": "id", "type": "long"}, {"name": "email", "type": "string"}]));
    assert_eq!(can_read(&reader, &writer), Ok(()));
    assert_eq!(
        can_read(&writer, &reader),
        Err(
            "field `email` (string) is required by the reader schema: it has no default and \
             the writer schema does not have it"
                .to_string()
        )
    );
}

#[test]
fn level_names_parse_case_insensitively_and_round_trip() {
    for level in CompatibilityLevel::ALL {
        assert_eq!(level.as_str().parse::<CompatibilityLevel>(), Ok(level));
        assert_eq!(
            level.as_str().to_lowercase().parse::<CompatibilityLevel>(),
            Ok(level)
        );
        assert_eq!(level.to_string(), level.as_str());
    }
    assert_eq!(
        "Full_Transitive".parse(),
        Ok(CompatibilityLevel::FullTransitive)
    );
    let err = "FULL-TRANSITIVE".parse::<CompatibilityLevel>().unwrap_err();
    assert_eq!(err.given, "FULL-TRANSITIVE");
    assert_eq!(
        err.to_string(),
        "unknown compatibility level `FULL-TRANSITIVE`: expected one of NONE, BACKWARD, \
         BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE"
    );
    assert_eq!(
        serde_json::to_value(CompatibilityLevel::Full).ok(),
        Some(json!("FULL"))
    );
    let parsed: CompatibilityLevel =
        serde_json::from_value(json!("backward")).unwrap_or(CompatibilityLevel::None);
    assert_eq!(parsed, CompatibilityLevel::Backward);
}
