//! The marks a scoped redrive puts on a record: which receivers run again, in which
//! consumer group.
//!
//! `event-bus dlq redrive --receivers-only` republishes a dead letter with
//! `redrive_receivers` (the receivers that failed) and `dlq_redrive_group` (the group
//! they failed in). A consumer of that group runs only the named receivers it has; a
//! consumer of any other group runs all of its receivers, as for a new record. Names
//! this consumer does not know are warned about once each (the first 100 names; later
//! ones each time); when it knows none of them,
//! it runs all its receivers rather than none.

use std::collections::HashSet;
use std::sync::Mutex;

use super::dlq::headers;
use crate::observability::trace::header_text;

/// The most unknown receiver names remembered (each warned about once); past it, names
/// are warned about each time rather than remembered without end.
const MAX_WARNED: usize = 100;

/// Reads redrive marks for one consumer, remembering the unknown names it warned about.
#[derive(Debug, Default)]
pub(crate) struct RedriveMarks {
    warned: Mutex<HashSet<String>>,
}

impl RedriveMarks {
    /// The receivers to run for a record with `headers`, for a consumer of `group`
    /// whose receivers of the record's type `known` lists: `None` means all of them.
    /// `known` is called only for a record with a mark of `group`, which few have.
    pub fn receivers<'k>(
        &self,
        headers: &[(impl AsRef<str>, Option<&[u8]>)],
        group: &str,
        known: impl FnOnce() -> Vec<&'k str>,
    ) -> Option<Vec<String>> {
        let names = header_text(headers, headers::REDRIVE_RECEIVERS)?;
        let marked_group = header_text(headers, headers::REDRIVE_GROUP).map(str::trim);
        if marked_group != Some(group) {
            tracing::debug!(
                redrive_group = marked_group.unwrap_or("none"),
                group,
                "redrive mark of another group; every receiver here runs"
            );
            return None;
        }
        let known = known();
        let (named, unknown): (Vec<&str>, Vec<&str>) = names
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .partition(|n| known.contains(n));
        for name in unknown {
            let first = self
                .warned
                .lock()
                .map(|mut w| {
                    if w.contains(name) {
                        false
                    } else if w.len() >= MAX_WARNED {
                        true
                    } else {
                        w.insert(name.to_owned())
                    }
                })
                .unwrap_or(false);
            if first {
                tracing::warn!(
                    receiver = name,
                    group,
                    known = %known.join(","),
                    "a redrive names a receiver this consumer does not have (renamed or removed?); it is ignored"
                );
            }
        }
        if named.is_empty() {
            return None;
        }
        Some(named.into_iter().map(str::to_owned).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks<'a>(receivers: &'a str, group: Option<&'a str>) -> Vec<(&'a str, Option<&'a [u8]>)> {
        let mut headers = vec![
            ("ce_id", Some("x".as_bytes())),
            (headers::REDRIVE_RECEIVERS, Some(receivers.as_bytes())),
        ];
        if let Some(group) = group {
            headers.push((headers::REDRIVE_GROUP, Some(group.as_bytes())));
        }
        headers
    }

    #[test]
    fn only_the_marked_group_runs_only_the_named_receivers() {
        let m = RedriveMarks::default();
        let known = ["a", "b"];
        assert_eq!(
            m.receivers(&marks("b", Some("g1")), "g1", || known.to_vec()),
            Some(vec!["b".to_owned()])
        );
        assert_eq!(
            m.receivers(&marks("b", Some("g1")), "g2", || known.to_vec()),
            None
        );
        assert_eq!(
            m.receivers(&marks("b", None), "g1", || known.to_vec()),
            None
        );
        assert_eq!(
            m.receivers(&[("ce_id", None)], "g1", || known.to_vec()),
            None
        );
    }

    #[test]
    fn unknown_names_are_dropped_and_none_known_means_all() {
        let m = RedriveMarks::default();
        let known = ["a", "b"];
        assert_eq!(
            m.receivers(&marks("b, gone", Some("g")), "g", || known.to_vec()),
            Some(vec!["b".to_owned()])
        );
        assert_eq!(
            m.receivers(&marks("gone", Some("g")), "g", || known.to_vec()),
            None
        );
        assert!(m.warned.lock().expect("lock").contains("gone"));
    }

    #[test]
    fn the_names_remembered_are_capped() {
        let m = RedriveMarks::default();
        for n in 0..MAX_WARNED + 50 {
            let name = format!("gone-{n}");
            m.receivers(&marks(&name, Some("g")), "g", || vec!["a"]);
        }
        assert_eq!(m.warned.lock().expect("lock").len(), MAX_WARNED);
    }
}
