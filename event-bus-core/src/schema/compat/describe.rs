//! Short, human-readable names of Avro types for compatibility messages.

use apache_avro::schema::{DecimalSchema, InnerDecimalSchema, UuidSchema};
use apache_avro::Schema;

/// Describes `schema` the way a person writes it: `string`, `array<long>`,
/// `[null, string]`, `record UserData`, `enum Status`, `fixed Md5(16)`, `decimal(10,2)`.
///
/// ```
/// use event_bus_core::apache_avro::Schema;
/// use event_bus_core::schema::compat::describe;
///
/// let schema = Schema::parse_str(r#"{"type": "array", "items": ["null", "string"]}"#)?;
/// assert_eq!(describe(&schema), "array<[null, string]>");
/// # Ok::<(), event_bus_core::apache_avro::Error>(())
/// ```
pub fn describe(schema: &Schema) -> String {
    match schema {
        Schema::Null => "null".into(),
        Schema::Boolean => "boolean".into(),
        Schema::Int => "int".into(),
        Schema::Long => "long".into(),
        Schema::Float => "float".into(),
        Schema::Double => "double".into(),
        Schema::Bytes => "bytes".into(),
        Schema::String => "string".into(),
        Schema::Array(array) => format!("array<{}>", describe(&array.items)),
        Schema::Map(map) => format!("map<{}>", describe(&map.types)),
        Schema::Union(union) => {
            let branches: Vec<String> = union.variants().iter().map(describe).collect();
            format!("[{}]", branches.join(", "))
        }
        Schema::Record(record) => format!("record {}", record.name.name()),
        Schema::Enum(enumeration) => format!("enum {}", enumeration.name.name()),
        Schema::Fixed(fixed) => format!("fixed {}({})", fixed.name.name(), fixed.size),
        Schema::Decimal(DecimalSchema {
            precision,
            scale,
            inner,
        }) => match inner {
            InnerDecimalSchema::Bytes => format!("decimal({precision},{scale})"),
            InnerDecimalSchema::Fixed(fixed) => format!(
                "decimal({precision},{scale}) on fixed {}({})",
                fixed.name.name(),
                fixed.size
            ),
        },
        Schema::BigDecimal => "big-decimal".into(),
        Schema::Uuid(UuidSchema::String) => "uuid (string)".into(),
        Schema::Uuid(UuidSchema::Bytes) => "uuid (bytes)".into(),
        Schema::Uuid(UuidSchema::Fixed(fixed)) => format!("uuid (fixed {})", fixed.name.name()),
        Schema::Date => "date (int)".into(),
        Schema::TimeMillis => "time-millis (int)".into(),
        Schema::TimeMicros => "time-micros (long)".into(),
        Schema::TimestampMillis => "timestamp-millis (long)".into(),
        Schema::TimestampMicros => "timestamp-micros (long)".into(),
        Schema::TimestampNanos => "timestamp-nanos (long)".into(),
        Schema::LocalTimestampMillis => "local-timestamp-millis (long)".into(),
        Schema::LocalTimestampMicros => "local-timestamp-micros (long)".into(),
        Schema::LocalTimestampNanos => "local-timestamp-nanos (long)".into(),
        Schema::Duration(_) => "duration (fixed 12)".into(),
        Schema::Ref { name } => name.name().into(),
    }
}
