//! Writes schema JSON the way people read it: two-space indentation, `name` and `type`
//! first, a trailing newline, whatever order the JSON map keeps its keys in.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// Keys that come first, in this order; the others follow alphabetically.
const LEADING_KEYS: [&str; 14] = [
    "name",
    "type",
    "namespace",
    "doc",
    "aliases",
    "logicalType",
    "precision",
    "scale",
    "size",
    "symbols",
    "items",
    "values",
    "default",
    "fields",
];

/// `value` as pretty JSON with a trailing newline.
pub(super) fn to_pretty_json(value: &Value) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(&Ordered(value))?;
    text.push('\n');
    Ok(text)
}

struct Ordered<'a>(&'a Value);

fn rank(key: &str) -> usize {
    LEADING_KEYS
        .iter()
        .position(|leading| *leading == key)
        .unwrap_or(LEADING_KEYS.len())
}

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|(a, _), (b, _)| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
                let mut out = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    out.serialize_entry(key, &Ordered(value))?;
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&Ordered(item))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}
