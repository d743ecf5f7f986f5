//! Offset reset plans: where each partition of a group would move, computed from the
//! group's committed offsets, the watermarks and (for times) `offsets_for_times`
//! refined to the exact record.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::admin::{OffsetAdmin, PartitionOffsets};
use super::error::ReplayError;
use super::token::ResumeToken;

/// Where to move a group's offsets.
///
/// ```
/// use event_bus_kafka::replay::ResetTarget;
/// assert_eq!(ResetTarget::ShiftBy(-10).to_string(), "shift by -10");
/// assert_eq!(ResetTarget::Earliest.to_string(), "earliest");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetTarget {
    /// The first record at or after this time (the end when there is none).
    Datetime(DateTime<Utc>),
    /// These offsets, per partition; partitions not listed stay where they are.
    Offsets(BTreeMap<i32, i64>),
    /// The first record still stored.
    Earliest,
    /// The end: only records produced from now on.
    Latest,
    /// The committed offset plus N (negative: back, replays N records).
    ShiftBy(i64),
    /// The times of a resume token; partitions it does not cover stay where they are.
    Token(ResumeToken),
}

impl fmt::Display for ResetTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Datetime(time) => write!(
                f,
                "datetime {}",
                time.to_rfc3339_opts(SecondsFormat::Millis, true)
            ),
            Self::Offsets(offsets) => {
                let pairs: Vec<String> = offsets.iter().map(|(p, o)| format!("{p}:{o}")).collect();
                write!(f, "offsets {}", pairs.join(" "))
            }
            Self::Earliest => f.write_str("earliest"),
            Self::Latest => f.write_str("latest"),
            Self::ShiftBy(n) => write!(f, "shift by {n}"),
            Self::Token(token) => write!(f, "resume token ({} partition(s))", token.len()),
        }
    }
}

/// Why a partition's new offset is not exactly what was asked for, or why it stays.
///
/// ```
/// use event_bus_kafka::replay::ResetNote;
/// let note = ResetNote::ClampedToLatest { requested: 500 };
/// assert_eq!(note.to_string(), "offset 500 is past the end; moved to the end instead");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResetNote {
    /// The offset asked for was deleted (or is negative): the earliest is used.
    ClampedToEarliest {
        /// The offset asked for.
        requested: i64,
    },
    /// The offset asked for is past the end: the end is used.
    ClampedToLatest {
        /// The offset asked for.
        requested: i64,
    },
    /// No record at or after the time yet: the end is used.
    NoRecordSince,
    /// `--to-offset` did not name this partition: it stays.
    NotRequested,
    /// The token does not cover this partition: it stays.
    NotInToken,
}

impl fmt::Display for ResetNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClampedToEarliest { requested } => write!(
                f,
                "offset {requested} is before the earliest stored record; moved to the earliest instead"
            ),
            Self::ClampedToLatest { requested } => {
                write!(f, "offset {requested} is past the end; moved to the end instead")
            }
            Self::NoRecordSince => f.write_str("no record at or after that time yet; moved to the end"),
            Self::NotRequested => f.write_str("not named by --to-offset; unchanged"),
            Self::NotInToken => f.write_str(
                "not in the token; unchanged (the group's committed offset, or auto.offset.reset, applies)",
            ),
        }
    }
}

/// One partition of a plan.
///
/// ```
/// use event_bus_kafka::replay::PartitionReset;
/// let p = PartitionReset {
///     topic: "t".into(), partition: 0, current: Some(10), new: Some(4),
///     earliest: 0, latest: 12, note: None,
/// };
/// assert_eq!(p.change(), Some(-6));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionReset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The committed offset now, if any.
    pub current: Option<i64>,
    /// The offset to commit; `None`: the partition stays as it is.
    pub new: Option<i64>,
    /// The low watermark.
    pub earliest: i64,
    /// The high watermark (end offset).
    pub latest: i64,
    /// Why `new` is not exactly what was asked for, if it is not.
    pub note: Option<ResetNote>,
}

impl PartitionReset {
    /// `new − current`: negative means records will be read again.
    ///
    /// See the type's example.
    pub fn change(&self) -> Option<i64> {
        Some(self.new? - self.current?)
    }
}

/// Where every partition of a group would move; [`OffsetAdmin::apply`] commits it.
///
/// ```
/// use event_bus_kafka::replay::{PartitionReset, ResetPlan, ResetTarget};
/// let plan = ResetPlan {
///     group: "g".into(),
///     target: ResetTarget::Earliest,
///     partitions: vec![PartitionReset {
///         topic: "t".into(), partition: 0, current: Some(3), new: Some(0),
///         earliest: 0, latest: 3, note: None,
///     }],
/// };
/// assert_eq!(plan.changes().collect::<Vec<_>>(), vec![("t", 0, 0)]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetPlan {
    /// The consumer group.
    pub group: String,
    /// What was asked for.
    pub target: ResetTarget,
    /// Every partition of the topics, sorted by topic then partition.
    pub partitions: Vec<PartitionReset>,
}

impl ResetPlan {
    /// `(topic, partition, new offset)` of each partition that gets a new offset.
    ///
    /// See the type's example.
    pub fn changes(&self) -> impl Iterator<Item = (&str, i32, i64)> + '_ {
        self.partitions
            .iter()
            .filter_map(|p| p.new.map(|new| (p.topic.as_str(), p.partition, new)))
    }
}

/// The new offset of one partition, and why it differs from what was asked.
fn clamp(requested: i64, offsets: &PartitionOffsets) -> (i64, Option<ResetNote>) {
    if requested < offsets.earliest {
        (
            offsets.earliest,
            Some(ResetNote::ClampedToEarliest { requested }),
        )
    } else if requested > offsets.latest {
        (
            offsets.latest,
            Some(ResetNote::ClampedToLatest { requested }),
        )
    } else {
        (requested, None)
    }
}

/// Computes a plan from what the cluster said: `offsets` for every partition, and
/// for time targets, `by_time` (per partition the first offset at or after the time,
/// `None` when there is none; partitions missing are not covered by the target).
pub(crate) fn compute(
    group: &str,
    target: &ResetTarget,
    offsets: &[PartitionOffsets],
    by_time: &BTreeMap<(String, i32), Option<i64>>,
) -> Result<ResetPlan, ReplayError> {
    if let ResetTarget::Offsets(wanted) = target {
        for partition in wanted.keys() {
            for topic in offsets.iter().map(|p| &p.topic) {
                let count = offsets.iter().filter(|p| &p.topic == topic).count();
                if !offsets
                    .iter()
                    .any(|p| &p.topic == topic && p.partition == *partition)
                {
                    return Err(ReplayError::UnknownPartition {
                        topic: topic.clone(),
                        partition: *partition,
                        count,
                    });
                }
            }
        }
    }
    if let ResetTarget::ShiftBy(_) = target {
        let missing: Vec<String> = offsets
            .iter()
            .filter(|p| p.committed.is_none())
            .map(|p| format!("{}[{}]", p.topic, p.partition))
            .collect();
        if !missing.is_empty() {
            return Err(ReplayError::NothingToShift {
                group: group.to_owned(),
                partitions: missing,
            });
        }
    }
    let partitions = offsets
        .iter()
        .map(|p| {
            let (new, note) = match target {
                ResetTarget::Earliest => (Some(p.earliest), None),
                ResetTarget::Latest => (Some(p.latest), None),
                ResetTarget::Offsets(wanted) => match wanted.get(&p.partition) {
                    Some(requested) => {
                        let (new, note) = clamp(*requested, p);
                        (Some(new), note)
                    }
                    None => (None, Some(ResetNote::NotRequested)),
                },
                ResetTarget::ShiftBy(n) => {
                    let current = p.committed.unwrap_or(p.earliest);
                    let (new, note) = clamp(current.saturating_add(*n), p);
                    (Some(new), note)
                }
                ResetTarget::Datetime(_) | ResetTarget::Token(_) => {
                    match by_time.get(&(p.topic.clone(), p.partition)) {
                        Some(Some(found)) => {
                            // The broker's answer is a stored offset; keep it inside the
                            // watermarks anyway.
                            let (new, _) = clamp(*found, p);
                            (Some(new), None)
                        }
                        Some(None) => (Some(p.latest), Some(ResetNote::NoRecordSince)),
                        None => (None, Some(ResetNote::NotInToken)),
                    }
                }
            };
            PartitionReset {
                topic: p.topic.clone(),
                partition: p.partition,
                current: p.committed,
                new,
                earliest: p.earliest,
                latest: p.latest,
                note,
            }
        })
        .collect();
    Ok(ResetPlan {
        group: group.to_owned(),
        target: target.clone(),
        partitions,
    })
}

impl OffsetAdmin {
    /// Computes where `target` would move the group on every partition of `topics`;
    /// changes nothing. For a token, only its entries for `topics` are used (and
    /// each topic must have some).
    ///
    /// ```no_run
    /// use event_bus_kafka::replay::{OffsetAdmin, ResetTarget};
    /// # async fn demo(admin: &OffsetAdmin) -> Result<(), event_bus_kafka::replay::ReplayError> {
    /// let plan = admin.plan(&["orders".to_string()], &ResetTarget::ShiftBy(-100)).await?;
    /// for p in &plan.partitions {
    ///     println!("{}[{}] {:?} → {:?}", p.topic, p.partition, p.current, p.new);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn plan(
        &self,
        topics: &[String],
        target: &ResetTarget,
    ) -> Result<ResetPlan, ReplayError> {
        if let ResetTarget::Token(token) = target {
            for topic in topics {
                if token.partitions(topic).is_empty() {
                    return Err(ReplayError::TokenLacksTopic {
                        topic: topic.clone(),
                        token_topics: token.topics().map(str::to_owned).collect(),
                    });
                }
            }
        }
        let topics = topics.to_vec();
        let target = target.clone();
        let group = self.group().to_owned();
        self.blocking(move |b| {
            let offsets = b.offsets(&topics)?;
            let wanted: Vec<(String, i32, i64)> = match &target {
                ResetTarget::Datetime(time) => offsets
                    .iter()
                    .map(|p| (p.topic.clone(), p.partition, time.timestamp_millis()))
                    .collect(),
                ResetTarget::Token(token) => offsets
                    .iter()
                    .filter_map(|p| {
                        token
                            .timestamp(&p.topic, p.partition)
                            .map(|millis| (p.topic.clone(), p.partition, millis))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let by_time = b.first_offsets_at(&wanted)?;
            let plan = compute(&group, &target, &offsets, &by_time)?;
            tracing::info!(
                group = %group,
                target = %target,
                partitions = plan.partitions.len(),
                changes = plan.changes().count(),
                "offset reset planned"
            );
            Ok(plan)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets() -> Vec<PartitionOffsets> {
        vec![
            PartitionOffsets {
                topic: "t".into(),
                partition: 0,
                committed: Some(5),
                earliest: 2,
                latest: 10,
            },
            PartitionOffsets {
                topic: "t".into(),
                partition: 1,
                committed: None,
                earliest: 0,
                latest: 4,
            },
        ]
    }

    fn news(plan: &ResetPlan) -> Vec<Option<i64>> {
        plan.partitions.iter().map(|p| p.new).collect()
    }

    #[test]
    fn earliest_latest_and_offsets() {
        let none = BTreeMap::new();
        let plan = compute("g", &ResetTarget::Earliest, &offsets(), &none).expect("plan");
        assert_eq!(news(&plan), vec![Some(2), Some(0)]);
        let plan = compute("g", &ResetTarget::Latest, &offsets(), &none).expect("plan");
        assert_eq!(news(&plan), vec![Some(10), Some(4)]);
        let target = ResetTarget::Offsets([(0, 1)].into_iter().collect());
        let plan = compute("g", &target, &offsets(), &none).expect("plan");
        assert_eq!(news(&plan), vec![Some(2), None]);
        assert_eq!(
            plan.partitions[0].note,
            Some(ResetNote::ClampedToEarliest { requested: 1 })
        );
        assert_eq!(plan.partitions[1].note, Some(ResetNote::NotRequested));
        let target = ResetTarget::Offsets([(7, 1)].into_iter().collect());
        assert!(matches!(
            compute("g", &target, &offsets(), &none),
            Err(ReplayError::UnknownPartition {
                partition: 7,
                count: 2,
                ..
            })
        ));
    }

    #[test]
    fn shift_needs_committed_offsets_and_clamps() {
        let none = BTreeMap::new();
        assert!(matches!(
            compute("g", &ResetTarget::ShiftBy(-1), &offsets(), &none),
            Err(ReplayError::NothingToShift { .. })
        ));
        let only_first = &offsets()[..1];
        let plan = compute("g", &ResetTarget::ShiftBy(-2), only_first, &none).expect("plan");
        assert_eq!(news(&plan), vec![Some(3)]);
        assert_eq!(plan.partitions[0].change(), Some(-2));
        let plan = compute("g", &ResetTarget::ShiftBy(100), only_first, &none).expect("plan");
        assert_eq!(news(&plan), vec![Some(10)]);
    }

    #[test]
    fn times_map_through_the_lookup() {
        let by_time: BTreeMap<(String, i32), Option<i64>> = [
            (("t".to_string(), 0), Some(7)),
            (("t".to_string(), 1), None),
        ]
        .into_iter()
        .collect();
        let plan = compute(
            "g",
            &ResetTarget::Datetime(Utc::now()),
            &offsets(),
            &by_time,
        )
        .expect("plan");
        assert_eq!(news(&plan), vec![Some(7), Some(4)]);
        assert_eq!(plan.partitions[1].note, Some(ResetNote::NoRecordSince));
        let only_first: BTreeMap<_, _> = by_time.into_iter().take(1).collect();
        let token = ResumeToken::from_timestamps([("t".to_string(), 0, 1)]);
        let plan = compute("g", &ResetTarget::Token(token), &offsets(), &only_first).expect("plan");
        assert_eq!(news(&plan), vec![Some(7), None]);
        assert_eq!(plan.partitions[1].note, Some(ResetNote::NotInToken));
    }
}
