//! The reader/writer walk: can a reader schema read everything a writer schema writes?
//!
//! It follows Apache Avro's Java `SchemaCompatibility` (what Confluent Schema Registry
//! runs), because apache-avro's own [`SchemaCompatibility`] is not enough on its own:
//! it answers `Ok(Partial)` where the registry says incompatible (an enum losing
//! symbols, a union losing branches), and it rejects valid evolutions when a named
//! type is defined in one schema and referenced by name in the other. Its rules for
//! leaf types (promotions, logical types, decimal precision) are used as they are.

use std::collections::HashSet;
use std::iter::once;

use apache_avro::error::CompatibilityError;
use apache_avro::schema::{
    Alias, DecimalSchema, EnumSchema, FixedSchema, InnerDecimalSchema, Name, NamesRef,
    RecordSchema, ResolvedSchema, UnionSchema, UuidSchema,
};
use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

use super::describe::describe;
use super::finding::{Finding, Located};

/// Every reason `reader` cannot read data written with `writer`; empty when it can.
pub(crate) fn find_issues(writer: &Schema, reader: &Schema) -> Vec<Located> {
    let mut walk = Walk {
        writer_names: names_of(writer),
        reader_names: names_of(reader),
        in_progress: HashSet::new(),
    };
    walk.check(writer, reader, "")
}

fn names_of(schema: &Schema) -> NamesRef<'_> {
    ResolvedSchema::try_from(schema)
        .map(|resolved| resolved.get_names().clone())
        .unwrap_or_default()
}

/// The Avro type a schema is encoded as, logical types reduced to their base type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Array,
    Map,
    Union,
    Record,
    Enum,
    Fixed,
    Ref,
}

fn base(schema: &Schema) -> Base {
    match schema {
        Schema::Null => Base::Null,
        Schema::Boolean => Base::Boolean,
        Schema::Int | Schema::Date | Schema::TimeMillis => Base::Int,
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => Base::Long,
        Schema::Float => Base::Float,
        Schema::Double => Base::Double,
        Schema::Bytes
        | Schema::BigDecimal
        | Schema::Uuid(UuidSchema::Bytes)
        | Schema::Decimal(DecimalSchema {
            inner: InnerDecimalSchema::Bytes,
            ..
        }) => Base::Bytes,
        Schema::String | Schema::Uuid(UuidSchema::String) => Base::String,
        Schema::Array(_) => Base::Array,
        Schema::Map(_) => Base::Map,
        Schema::Union(_) => Base::Union,
        Schema::Record(_) => Base::Record,
        Schema::Enum(_) => Base::Enum,
        Schema::Fixed(_)
        | Schema::Uuid(UuidSchema::Fixed(_))
        | Schema::Decimal(DecimalSchema {
            inner: InnerDecimalSchema::Fixed(_),
            ..
        })
        | Schema::Duration(_) => Base::Fixed,
        Schema::Ref { .. } => Base::Ref,
    }
}

/// Avro's promotions: the writer's base type the reader's base type accepts.
fn promotes(writer: Base, reader: Base) -> bool {
    matches!(
        (writer, reader),
        (Base::Int, Base::Long | Base::Float | Base::Double)
            | (Base::Long, Base::Float | Base::Double)
            | (Base::Float, Base::Double)
            | (Base::String, Base::Bytes)
            | (Base::Bytes, Base::String)
    )
}

fn fixed_of(schema: &Schema) -> Option<&FixedSchema> {
    match schema {
        Schema::Fixed(fixed)
        | Schema::Uuid(UuidSchema::Fixed(fixed))
        | Schema::Decimal(DecimalSchema {
            inner: InnerDecimalSchema::Fixed(fixed),
            ..
        })
        | Schema::Duration(fixed) => Some(fixed),
        _ => None,
    }
}

/// Java's `schemaNameEquals`: same unqualified name, or the reader lists the writer's
/// full name among its aliases.
fn names_match(writer: &Name, reader: &Name, reader_aliases: Option<&Vec<Alias>>) -> bool {
    if writer.name() == reader.name() {
        return true;
    }
    let writer_full = writer.fullname(None);
    reader_aliases.is_some_and(|aliases| {
        aliases.iter().any(|alias| {
            alias
                .fully_qualified_name(reader.namespace())
                .fullname(None)
                == writer_full
        })
    })
}

/// The name and aliases of a named schema.
fn name_of(schema: &Schema) -> Option<(&Name, Option<&Vec<Alias>>)> {
    match schema {
        Schema::Record(record) => Some((&record.name, record.aliases.as_ref())),
        Schema::Enum(enumeration) => Some((&enumeration.name, enumeration.aliases.as_ref())),
        other => fixed_of(other).map(|fixed| (&fixed.name, fixed.aliases.as_ref())),
    }
}

fn child_path(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn at(path: &str, finding: Finding) -> Vec<Located> {
    vec![Located {
        path: path.to_string(),
        finding,
    }]
}

struct Walk<'s> {
    writer_names: NamesRef<'s>,
    reader_names: NamesRef<'s>,
    /// Named pairs being checked, so recursive types end (assumed compatible, as Java does).
    in_progress: HashSet<(String, String)>,
}

impl<'s> Walk<'s> {
    fn check(&mut self, writer: &'s Schema, reader: &'s Schema, path: &str) -> Vec<Located> {
        let Some(w) = deref(writer, &self.writer_names) else {
            return unresolved(path, writer, "writer");
        };
        let Some(r) = deref(reader, &self.reader_names) else {
            return unresolved(path, reader, "reader");
        };
        match (w, r) {
            (Schema::Union(branches), Schema::Union(_)) => branches
                .variants()
                .iter()
                .flat_map(|branch| self.check(branch, r, path))
                .collect(),
            (Schema::Union(branches), _) => self.writer_union(branches, w, r, path),
            (_, Schema::Union(branches)) => self.reader_union(w, branches, r, path),
            _ => self.same_shape(w, r, path),
        }
    }

    /// A writer union read by a non-union: every branch must be readable.
    fn writer_union(
        &mut self,
        branches: &'s UnionSchema,
        w: &'s Schema,
        r: &'s Schema,
        path: &str,
    ) -> Vec<Located> {
        let mut found = Vec::new();
        for branch in branches.variants() {
            for issue in self.check(branch, r, path) {
                let finding = match issue.finding {
                    Finding::TypeMismatch { writer, reader } if issue.path == path => {
                        Finding::UnreadableUnionBranch {
                            writer_union: describe(w),
                            branch: writer,
                            reader,
                        }
                    }
                    other => other,
                };
                found.push(Located {
                    path: issue.path,
                    finding,
                });
            }
        }
        found
    }

    /// A non-union writer read by a union: some branch must read it. When none does,
    /// the branch of the same type and name explains why (nested field paths), or the
    /// union lacks a branch.
    fn reader_union(
        &mut self,
        w: &'s Schema,
        branches: &'s UnionSchema,
        r: &'s Schema,
        path: &str,
    ) -> Vec<Located> {
        let mut closest = None;
        for branch in branches.variants() {
            let issues = self.check(w, branch, path);
            if issues.is_empty() {
                return issues;
            }
            if closest.is_none() && self.same_named_type(w, branch) {
                closest = Some(issues);
            }
        }
        closest.unwrap_or_else(|| {
            at(
                path,
                Finding::MissingUnionBranch {
                    writer: describe(w),
                    reader: describe(r),
                },
            )
        })
    }

    fn same_named_type(&self, w: &Schema, reader_branch: &'s Schema) -> bool {
        let Some(r) = deref(reader_branch, &self.reader_names) else {
            return false;
        };
        if base(w) != base(r) {
            return false;
        }
        match (name_of(w), name_of(r)) {
            (Some((w_name, _)), Some((r_name, r_aliases))) => {
                names_match(w_name, r_name, r_aliases)
            }
            _ => true,
        }
    }

    /// Neither side is a union (and no reference is left).
    fn same_shape(&mut self, w: &'s Schema, r: &'s Schema, path: &str) -> Vec<Located> {
        let (w_base, r_base) = (base(w), base(r));
        if w_base != r_base {
            if promotes(w_base, r_base) {
                return leaf(w, r, path);
            }
            return at(
                path,
                Finding::TypeMismatch {
                    writer: describe(w),
                    reader: describe(r),
                },
            );
        }
        match (w, r) {
            (Schema::Record(w_record), Schema::Record(r_record)) => {
                self.records(w_record, r_record, path)
            }
            (Schema::Enum(w_enum), Schema::Enum(r_enum)) => enums(w_enum, r_enum, path),
            (Schema::Array(w_array), Schema::Array(r_array)) => {
                self.check(&w_array.items, &r_array.items, &format!("{path}[]"))
            }
            (Schema::Map(w_map), Schema::Map(r_map)) => {
                self.check(&w_map.types, &r_map.types, &format!("{path}{{}}"))
            }
            _ => match (fixed_of(w), fixed_of(r)) {
                (Some(w_fixed), Some(r_fixed)) => fixed(w_fixed, r_fixed, w, r, path),
                _ => leaf(w, r, path),
            },
        }
    }

    fn records(
        &mut self,
        w_record: &'s RecordSchema,
        r_record: &'s RecordSchema,
        path: &str,
    ) -> Vec<Located> {
        if !names_match(&w_record.name, &r_record.name, r_record.aliases.as_ref()) {
            return at(
                path,
                Finding::NameMismatch {
                    writer: format!("record {}", w_record.name.fullname(None)),
                    reader: format!("record {}", r_record.name.fullname(None)),
                },
            );
        }
        let key = (w_record.name.fullname(None), r_record.name.fullname(None));
        if !self.in_progress.insert(key.clone()) {
            return Vec::new();
        }
        let mut found = Vec::new();
        for r_field in &r_record.fields {
            let field_path = child_path(path, &r_field.name);
            let w_field = once(&r_field.name)
                .chain(r_field.aliases.iter())
                .find_map(|name| w_record.fields.iter().find(|w| &w.name == name));
            match w_field {
                Some(w_field) => {
                    found.extend(self.check(&w_field.schema, &r_field.schema, &field_path))
                }
                None if r_field.default.is_none() => found.push(Located {
                    path: field_path,
                    finding: Finding::MissingField {
                        field_type: describe(&r_field.schema),
                    },
                }),
                None => {}
            }
        }
        self.in_progress.remove(&key);
        found
    }
}

fn deref<'s>(schema: &'s Schema, names: &NamesRef<'s>) -> Option<&'s Schema> {
    match schema {
        Schema::Ref { name } => names.get(name).copied(),
        other => Some(other),
    }
}

fn unresolved(path: &str, schema: &Schema, side: &str) -> Vec<Located> {
    at(
        path,
        Finding::Other {
            reason: format!(
                "the {side} schema refers to `{}`, which it does not define",
                describe(schema)
            ),
        },
    )
}

fn enums(w_enum: &EnumSchema, r_enum: &EnumSchema, path: &str) -> Vec<Located> {
    if !names_match(&w_enum.name, &r_enum.name, r_enum.aliases.as_ref()) {
        return at(
            path,
            Finding::NameMismatch {
                writer: format!("enum {}", w_enum.name.fullname(None)),
                reader: format!("enum {}", r_enum.name.fullname(None)),
            },
        );
    }
    let missing: Vec<String> = w_enum
        .symbols
        .iter()
        .filter(|symbol| !r_enum.symbols.contains(symbol))
        .cloned()
        .collect();
    let has_default = r_enum
        .default
        .as_ref()
        .is_some_and(|default| r_enum.symbols.contains(default));
    if missing.is_empty() || has_default {
        return Vec::new();
    }
    at(
        path,
        Finding::MissingSymbols {
            name: r_enum.name.name().to_string(),
            symbols: missing,
        },
    )
}

fn fixed(
    w_fixed: &FixedSchema,
    r_fixed: &FixedSchema,
    w: &Schema,
    r: &Schema,
    path: &str,
) -> Vec<Located> {
    if !names_match(&w_fixed.name, &r_fixed.name, r_fixed.aliases.as_ref()) {
        return at(
            path,
            Finding::NameMismatch {
                writer: format!("fixed {}", w_fixed.name.fullname(None)),
                reader: format!("fixed {}", r_fixed.name.fullname(None)),
            },
        );
    }
    if w_fixed.size != r_fixed.size {
        return at(
            path,
            Finding::FixedSize {
                name: r_fixed.name.name().to_string(),
                writer: w_fixed.size,
                reader: r_fixed.size,
            },
        );
    }
    leaf(w, r, path)
}

/// Non-named leaves whose base types already match or promote: apache-avro's check
/// adds the logical-type rules (decimal precision and scale).
fn leaf(w: &Schema, r: &Schema, path: &str) -> Vec<Located> {
    match SchemaCompatibility::can_read(w, r) {
        Ok(_) | Err(CompatibilityError::NameMismatch { .. }) => Vec::new(),
        Err(CompatibilityError::DecimalMismatch {
            r_precision,
            r_scale,
            w_precision,
            w_scale,
        }) => at(
            path,
            Finding::DecimalMismatch {
                writer: (w_precision, w_scale),
                reader: (r_precision, r_scale),
            },
        ),
        Err(CompatibilityError::WrongType { .. }) => at(
            path,
            Finding::TypeMismatch {
                writer: describe(w),
                reader: describe(r),
            },
        ),
        Err(other) => at(
            path,
            Finding::Other {
                reason: other.to_string(),
            },
        ),
    }
}
