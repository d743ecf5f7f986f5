//! Pages of a dead-letter topic: where each partition's next page starts.
//!
//! A page is read partition by partition, in order. When `--limit` cuts it short, the
//! next page starts exactly where this one stopped, per partition: the partitions
//! read to the end start at that end, the one cut short at the record after the last
//! one read, the ones not reached yet at the range's start. The output prints those
//! starts as `--start PARTITION:OFFSET` arguments to add to the same command, so that
//! following the hints reads every record of the range exactly once.

use std::fmt;
use std::str::FromStr;

use serde_json::{json, Value};

/// `--start PARTITION:OFFSET`: read partition `partition` from `offset` on (or from the
/// range's start, when that is later).
///
/// ```
/// use event_bus_kafka::cli::dlq::StartAt;
/// let start: StartAt = "2:1200".parse().unwrap();
/// assert_eq!(start, StartAt { partition: 2, offset: 1200 });
/// assert_eq!(start.to_string(), "2:1200");
/// assert!("2".parse::<StartAt>().unwrap_err().contains("PARTITION:OFFSET"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartAt {
    /// The partition of the dead-letter topic.
    pub partition: i32,
    /// The first offset to read there.
    pub offset: i64,
}

impl FromStr for StartAt {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parsed = text.split_once(':').and_then(|(partition, offset)| {
            let partition = partition.trim().parse::<i32>().ok()?;
            let offset = offset.trim().parse::<i64>().ok()?;
            (partition >= 0 && offset >= 0).then_some(StartAt { partition, offset })
        });
        parsed.ok_or_else(|| {
            format!(
                "`{text}` is not PARTITION:OFFSET (two whole numbers ≥ 0, e.g. 0:1200); \
                 copy it from the next-page hint of the previous page"
            )
        })
    }
}

impl fmt::Display for StartAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.partition, self.offset)
    }
}

/// The parser clap uses for `--start`.
pub(super) fn parse_start(text: &str) -> Result<StartAt, String> {
    text.parse()
}

/// Where the next page starts: one entry per partition already read (its end) or cut
/// short (the next record); partitions not named start at the range's start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NextPage {
    pub starts: Vec<StartAt>,
}

impl NextPage {
    /// The next page of a read that started at `given` (the `--start` arguments),
    /// read the partitions `done` to their ends and was cut at `cut`. Partitions of
    /// `given` this read did not reach keep their start (they may have had nothing
    /// left, like a partition already read to its end).
    pub fn after(given: &[StartAt], done: &[StartAt], cut: StartAt) -> Self {
        let mut starts = std::collections::BTreeMap::new();
        for start in given {
            let offset = starts.entry(start.partition).or_insert(start.offset);
            *offset = start.offset.max(*offset);
        }
        for start in done.iter().chain([&cut]) {
            starts.insert(start.partition, start.offset);
        }
        Self {
            starts: starts
                .into_iter()
                .map(|(partition, offset)| StartAt { partition, offset })
                .collect(),
        }
    }

    /// The arguments to add to the command: `--start P:O --start …`.
    pub fn args(&self) -> String {
        self.starts
            .iter()
            .map(|s| format!("--start {s}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// As JSON: the starts, and the arguments as text.
    pub fn json(&self) -> Value {
        json!({
            "start": self
                .starts
                .iter()
                .map(|s| json!({"partition": s.partition, "offset": s.offset}))
                .collect::<Vec<_>>(),
            "args": self.args(),
        })
    }
}

/// A partition that stopped delivering records before its end offset: the page ends
/// there, and the range is not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdleStop {
    pub partition: i32,
    /// The first offset not read.
    pub offset: i64,
    /// The end offset the read was heading for.
    pub end: i64,
}

impl IdleStop {
    /// What the output says about it.
    pub fn message(&self, idle_secs: u64) -> String {
        format!(
            "Partition {} sent no record for {idle_secs} s before its end offset {}: reading \
             stopped at offset {}, so the range is NOT complete. Run the next page to go on \
             from there (a slow or unavailable broker, or a long transaction still open).",
            self.partition, self.end, self.offset
        )
    }

    /// As JSON.
    pub fn json(&self) -> Value {
        json!({"partition": self.partition, "stopped_at": self.offset, "end_offset": self.end})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_starts_say_what_is_expected() {
        for bad in ["", "1", "a:1", "1:b", "-1:0", "0:-5", "1:2:3"] {
            assert!(bad.parse::<StartAt>().is_err(), "{bad}");
        }
        let next = NextPage {
            starts: vec![
                StartAt {
                    partition: 0,
                    offset: 6,
                },
                StartAt {
                    partition: 1,
                    offset: 2,
                },
            ],
        };
        assert_eq!(next.args(), "--start 0:6 --start 1:2");
        let at = |partition, offset| StartAt { partition, offset };
        // Partition 0 was done before this read (it has no range now), 1 is done now.
        let next = NextPage::after(&[at(0, 3), at(1, 0)], &[at(1, 5)], at(2, 1));
        assert_eq!(next.args(), "--start 0:3 --start 1:5 --start 2:1");
        assert_eq!(next.json()["start"][1]["offset"], 5);
    }
}
