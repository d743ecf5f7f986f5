//! An Avro record schema as a flat list of fields, one per dotted path
//! (`enrollment.course.start`), for the catalog's field tables and for telling what
//! changed between two versions.

use std::collections::BTreeMap;

use event_bus_core::apache_avro::schema::{Name, NamesRef, ResolvedSchema};
use event_bus_core::apache_avro::Schema;
use event_bus_core::schema::compat::describe;
use serde_json::Value;

/// One field, wherever it sits in the record tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    /// Dotted path from the top-level record: `enrollment.user.id`.
    pub path: String,
    /// The field's type as a person writes it: `string`, `[null, record UserData]`.
    pub type_text: String,
    /// The default value, when the field has one.
    pub default: Option<Value>,
    /// The field's documentation, when it has some.
    pub doc: Option<String>,
}

/// Every field of `schema`, depth first in declaration order. A named type used in
/// several places is listed under each of its paths; a type that contains itself is
/// listed once, where it is defined.
pub(crate) fn flatten(schema: &Schema) -> Vec<Field> {
    let names = ResolvedSchema::try_from(schema)
        .map(|resolved| resolved.get_names().clone())
        .unwrap_or_default();
    let mut walk = Walk {
        names,
        expanding: Vec::new(),
        fields: Vec::new(),
    };
    walk.visit(schema, "");
    walk.fields
}

/// The fields of `schema` by path.
pub(crate) fn by_path(schema: &Schema) -> BTreeMap<String, Field> {
    flatten(schema)
        .into_iter()
        .map(|field| (field.path.clone(), field))
        .collect()
}

struct Walk<'s> {
    names: NamesRef<'s>,
    /// Named types being expanded on the current path (stops recursive types).
    expanding: Vec<Name>,
    fields: Vec<Field>,
}

impl<'s> Walk<'s> {
    /// Lists the fields below `schema`, whose own path is `prefix`.
    fn visit(&mut self, schema: &'s Schema, prefix: &str) {
        match schema {
            Schema::Record(record) => {
                if self.expanding.contains(&record.name) {
                    return;
                }
                self.expanding.push(record.name.clone());
                for field in &record.fields {
                    let path = if prefix.is_empty() {
                        field.name.clone()
                    } else {
                        format!("{prefix}.{}", field.name)
                    };
                    self.fields.push(Field {
                        path: path.clone(),
                        type_text: self.type_text(&field.schema),
                        default: field.default.clone(),
                        doc: field.doc.clone(),
                    });
                    self.visit(&field.schema, &path);
                }
                self.expanding.pop();
            }
            Schema::Union(union) => {
                for variant in union.variants() {
                    self.visit(variant, prefix);
                }
            }
            Schema::Array(array) => self.visit(&array.items, prefix),
            Schema::Map(map) => self.visit(&map.types, prefix),
            Schema::Ref { name } => {
                if let Some(target) = self.names.get(name).copied() {
                    self.visit(target, prefix);
                }
            }
            _ => {}
        }
    }

    /// Like [`describe`], but a reference to a named type reads like its definition,
    /// so moving a definition between two fields changes no type.
    fn type_text(&self, schema: &Schema) -> String {
        match schema {
            Schema::Ref { name } => match self.names.get(name) {
                Some(target) => describe(target),
                None => describe(schema),
            },
            Schema::Union(union) => {
                let variants: Vec<String> =
                    union.variants().iter().map(|v| self.type_text(v)).collect();
                format!("[{}]", variants.join(", "))
            }
            Schema::Array(array) => format!("array<{}>", self.type_text(&array.items)),
            Schema::Map(map) => format!("map<{}>", self.type_text(&map.types)),
            _ => describe(schema),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(json: Value) -> Schema {
        Schema::parse(&json).expect("valid schema")
    }

    #[test]
    fn nested_records_and_references_are_listed_under_each_path() {
        let schema = parse(json!({"type": "record", "name": "E", "fields": [
            {"name": "user", "doc": "who", "type": {"type": "record", "name": "User", "fields": [
                {"name": "id", "type": "long"}]}},
            {"name": "by", "type": ["null", "User"], "default": null}]}));
        let fields = flatten(&schema);
        let paths: Vec<&str> = fields.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["user", "user.id", "by", "by.id"]);
        assert_eq!(fields[0].type_text, "record User");
        assert_eq!(fields[0].doc.as_deref(), Some("who"));
        assert_eq!(fields[2].type_text, "[null, record User]");
        assert_eq!(fields[2].default, Some(Value::Null));
    }

    #[test]
    fn a_recursive_type_is_expanded_once() {
        let schema = parse(json!({"type": "record", "name": "Node", "fields": [
            {"name": "value", "type": "int"},
            {"name": "next", "type": ["null", "Node"], "default": null}]}));
        let paths: Vec<String> = flatten(&schema).into_iter().map(|f| f.path).collect();
        assert_eq!(paths, ["value", "next"]);
    }
}
