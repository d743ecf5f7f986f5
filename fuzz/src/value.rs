//! Comparing generic Avro values the way the typed events see them.

use chrono::{DateTime, Utc};
use event_bus_core::apache_avro::types::Value;

/// Whether two strings are the same text, or the same instant written two ways (the
/// typed events read `DateTime<Utc>` fields from strings and write them back in one
/// form: `+00:00` becomes `Z`, fractions are written with 3, 6 or 9 digits).
fn same_text(a: &str, b: &str) -> bool {
    a == b
        || matches!(
            (a.parse::<DateTime<Utc>>(), b.parse::<DateTime<Utc>>()),
            (Ok(x), Ok(y)) if x == y
        )
}

/// `a` and `b` are equal but for strings that are the same instant (see `same_text`).
///
/// ```
/// use event_bus_core::apache_avro::types::Value;
/// use event_bus_fuzz::value::equivalent;
/// let a = Value::String("2024-01-01T01:00:00+01:00".into());
/// let b = Value::String("2024-01-01T00:00:00Z".into());
/// assert!(equivalent(&a, &b));
/// ```
pub fn equivalent(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => same_text(x, y),
        (Value::Union(i, x), Value::Union(j, y)) => i == j && equivalent(x, y),
        (Value::Record(x), Value::Record(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((n, v), (m, w))| n == m && equivalent(v, w))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| equivalent(v, w))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| equivalent(v, w)))
        }
        _ => a == b,
    }
}

/// `read` (a datum decoded with the reader schema) holds what `written` (the same
/// datum decoded with the writer schema) holds for every field both schemas have, and
/// `null` for the reader's fields the writer lacks (all optional in the examples).
///
/// ```
/// use event_bus_core::apache_avro::types::Value;
/// use event_bus_fuzz::value::projects;
/// let written = Value::Record(vec![("a".into(), Value::Long(1)), ("extra".into(), Value::Long(2))]);
/// let read = Value::Record(vec![("a".into(), Value::Long(1)), ("opt".into(), Value::Union(0, Box::new(Value::Null)))]);
/// assert!(projects(&read, &written));
/// ```
pub fn projects(read: &Value, written: &Value) -> bool {
    match (read, written) {
        (Value::Record(r), Value::Record(w)) => {
            r.iter()
                .all(|(name, rv)| match w.iter().find(|(n, _)| n == name) {
                    Some((_, wv)) => projects(rv, wv),
                    None => matches!(rv, Value::Union(0, inner) if **inner == Value::Null),
                })
        }
        (Value::Union(i, r), Value::Union(j, w)) => i == j && projects(r, w),
        _ => equivalent(read, written),
    }
}
