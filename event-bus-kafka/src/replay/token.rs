//! Resume tokens: per partition, the timestamp a consumer can resume from on any
//! cluster that holds the same records with the same timestamps.
//!
//! Offsets differ between clusters (a mirror renumbers records), timestamps do not:
//! a mirror copies each record's timestamp. A token therefore records, for every
//! partition a consumer worked on, the timestamp of the earliest record it had not
//! finished, or of the last one it finished when nothing was in progress (see
//! [`OffsetTracker::resume_timestamps`](crate::consumer::OffsetTracker::resume_timestamps)).
//! Mapping it back with `offsets_for_times` gives the first offset at or after that
//! time, so resuming from a token never skips a record the consumer had not finished;
//! it may deliver some again (at-least-once: deduplicate on `ce_id`). On a cluster
//! without a time index (librdkafka's mock cluster) the offsets are found by reading
//! records instead, with the same result.
//!
//! # Format
//!
//! URL-safe base64 (no padding) of a JSON document
//! `{"v":1,"topics":{"<topic>":{"<partition>":<millis>}}}`: copyable in a shell, a URL
//! or an environment variable, and readable after `base64 -d`.
//!
//! ```
//! use event_bus_kafka::replay::ResumeToken;
//!
//! let token = ResumeToken::from_timestamps([("orders".to_string(), 0, 1_700_000_000_000)]);
//! let text = token.to_string();
//! let parsed: ResumeToken = text.parse()?;
//! assert_eq!(parsed, token);
//! assert_eq!(parsed.timestamp("orders", 0), Some(1_700_000_000_000));
//! # Ok::<(), event_bus_kafka::replay::TokenError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::consumer::Progress;

/// The token format version this crate writes and reads.
///
/// ```
/// assert_eq!(event_bus_kafka::replay::TOKEN_VERSION, 1);
/// ```
pub const TOKEN_VERSION: u32 = 1;

/// Why a text is not a valid resume token.
///
/// ```
/// use event_bus_kafka::replay::{ResumeToken, TokenError};
///
/// assert!(matches!("".parse::<ResumeToken>(), Err(TokenError::Empty)));
/// assert!(matches!("not a token!".parse::<ResumeToken>(), Err(TokenError::NotBase64 { .. })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The text is empty.
    #[error(
        "the resume token is empty: pass the text a consumer exported (ResumeToken::to_string)"
    )]
    Empty,
    /// The text is not URL-safe base64.
    #[error(
        "the resume token is not URL-safe base64 ({reason}); copy the whole token exactly as \
         it was exported, without quotes or line breaks"
    )]
    NotBase64 {
        /// What the decoder reported.
        reason: String,
    },
    /// The decoded bytes are not the token's JSON document.
    #[error(
        "the resume token does not hold a valid token document ({reason}); it may be cut \
         short or come from another tool"
    )]
    InvalidDocument {
        /// What the JSON parser reported.
        reason: String,
    },
    /// The token was written by a newer (or unknown) format version.
    #[error(
        "the resume token has format version {found}, this program reads version {supported}; \
         use a program built with a matching signal-bridge version"
    )]
    UnsupportedVersion {
        /// The version in the token.
        found: u32,
        /// The version this crate reads.
        supported: u32,
    },
    /// A topic name is empty.
    #[error("the resume token names an empty topic; the token is corrupt, export it again")]
    EmptyTopic,
    /// A partition number is negative.
    #[error("the resume token has partition {partition} for topic `{topic}`; partitions are never negative, the token is corrupt")]
    InvalidPartition {
        /// The topic.
        topic: String,
        /// The partition found.
        partition: i32,
    },
    /// A timestamp is negative.
    #[error("the resume token has timestamp {millis} for `{topic}` partition {partition}; timestamps are milliseconds since 1970 and never negative, the token is corrupt")]
    InvalidTimestamp {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The timestamp found.
        millis: i64,
    },
}

/// The JSON document inside a token.
#[derive(Serialize, Deserialize)]
struct Document {
    v: u32,
    #[serde(default)]
    topics: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// Just the version, read first so a newer token gets a version error rather than a
/// confusing shape error.
#[derive(Deserialize)]
struct VersionOnly {
    v: u32,
}

/// Per topic and partition, the timestamp (milliseconds since the epoch) to resume
/// from without missing anything.
///
/// Build one from a running consumer with [`ResumeToken::from_progress`], send it
/// anywhere as text ([`Display`](fmt::Display) / [`FromStr`]), and apply it to a
/// consumer group on any cluster with
/// [`reset_group_to_token`](super::reset_group_to_token) or `event-bus offsets reset
/// --to-token`.
///
/// ```
/// use event_bus_kafka::replay::ResumeToken;
///
/// let mut token = ResumeToken::from_timestamps([
///     ("orders".to_string(), 0, 2_000),
///     ("orders".to_string(), 1, 3_000),
/// ]);
/// // Another instance of the same group worked on partition 2.
/// token.merge(&ResumeToken::from_timestamps([("orders".to_string(), 2, 1_500)]));
/// assert_eq!(token.len(), 3);
/// assert_eq!(token.topics().collect::<Vec<_>>(), vec!["orders"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResumeToken {
    topics: BTreeMap<String, BTreeMap<i32, i64>>,
}

impl ResumeToken {
    /// A token from `(topic, partition, millis)` entries; for a partition listed more
    /// than once the earliest time wins (resuming earlier is always safe).
    ///
    /// ```
    /// use event_bus_kafka::replay::ResumeToken;
    /// let token = ResumeToken::from_timestamps([("t".to_string(), 0, 9), ("t".to_string(), 0, 5)]);
    /// assert_eq!(token.timestamp("t", 0), Some(5));
    /// ```
    pub fn from_timestamps(entries: impl IntoIterator<Item = (String, i32, i64)>) -> Self {
        let mut token = Self::default();
        for (topic, partition, millis) in entries {
            token.insert(topic, partition, millis);
        }
        token
    }

    /// The token of a consumer's progress: the partitions it has worked on so far.
    ///
    /// ```no_run
    /// # fn demo(consumer: &event_bus_kafka::consumer::EventConsumer) {
    /// use event_bus_kafka::replay::ResumeToken;
    /// let progress = consumer.progress();
    /// // … run the consumer, then at shutdown or periodically:
    /// let token = ResumeToken::from_progress(&progress);
    /// println!("resume token: {token}");
    /// # }
    /// ```
    pub fn from_progress(progress: &Progress) -> Self {
        Self::from_timestamps(progress.resume_timestamps())
    }

    /// Adds an entry; if the partition has one already, the earlier time is kept.
    ///
    /// ```
    /// let mut token = event_bus_kafka::replay::ResumeToken::default();
    /// token.insert("t", 0, 10);
    /// token.insert("t", 0, 20);
    /// assert_eq!(token.timestamp("t", 0), Some(10));
    /// ```
    pub fn insert(&mut self, topic: impl Into<String>, partition: i32, millis: i64) {
        let slot = self
            .topics
            .entry(topic.into())
            .or_default()
            .entry(partition)
            .or_insert(millis);
        *slot = (*slot).min(millis);
    }

    /// Combines the tokens of several instances of one consumer group (each knows
    /// only its own partitions); where both have a partition the earlier time wins.
    ///
    /// See the type's example.
    pub fn merge(&mut self, other: &ResumeToken) {
        for (topic, partition, millis) in other.entries() {
            self.insert(topic, partition, millis);
        }
    }

    /// The resume time of a partition, if the token has one.
    ///
    /// See [`ResumeToken::from_timestamps`].
    pub fn timestamp(&self, topic: &str, partition: i32) -> Option<i64> {
        self.topics.get(topic)?.get(&partition).copied()
    }

    /// The topics in the token, sorted.
    ///
    /// See the type's example.
    pub fn topics(&self) -> impl Iterator<Item = &str> + '_ {
        self.topics.keys().map(String::as_str)
    }

    /// The partitions of `topic` in the token with their times, sorted by partition.
    ///
    /// ```
    /// use event_bus_kafka::replay::ResumeToken;
    /// let token = ResumeToken::from_timestamps([("t".to_string(), 1, 7), ("t".to_string(), 0, 5)]);
    /// assert_eq!(token.partitions("t"), vec![(0, 5), (1, 7)]);
    /// assert!(token.partitions("other").is_empty());
    /// ```
    pub fn partitions(&self, topic: &str) -> Vec<(i32, i64)> {
        self.topics
            .get(topic)
            .map(|partitions| partitions.iter().map(|(p, t)| (*p, *t)).collect())
            .unwrap_or_default()
    }

    /// Every `(topic, partition, millis)` entry, sorted by topic then partition.
    ///
    /// ```
    /// use event_bus_kafka::replay::ResumeToken;
    /// let token = ResumeToken::from_timestamps([("b".to_string(), 0, 1), ("a".to_string(), 3, 2)]);
    /// assert_eq!(token.entries().next(), Some(("a", 3, 2)));
    /// ```
    pub fn entries(&self) -> impl Iterator<Item = (&str, i32, i64)> + '_ {
        self.topics.iter().flat_map(|(topic, partitions)| {
            partitions
                .iter()
                .map(move |(partition, millis)| (topic.as_str(), *partition, *millis))
        })
    }

    /// How many partitions the token covers.
    ///
    /// See the type's example.
    pub fn len(&self) -> usize {
        self.topics.values().map(BTreeMap::len).sum()
    }

    /// Whether the token covers no partition (the consumer had not finished anything).
    ///
    /// ```
    /// assert!(event_bus_kafka::replay::ResumeToken::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parses a token's text; the same as `text.parse::<ResumeToken>()`.
    ///
    /// ```
    /// use event_bus_kafka::replay::{ResumeToken, TokenError};
    /// let err = ResumeToken::parse("eyJ2Ijo5OX0").unwrap_err(); // {"v":99}
    /// assert!(matches!(err, TokenError::UnsupportedVersion { found: 99, .. }));
    /// ```
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(TokenError::Empty);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|e| TokenError::NotBase64 {
                reason: e.to_string(),
            })?;
        let invalid = |e: serde_json::Error| TokenError::InvalidDocument {
            reason: e.to_string(),
        };
        let version: VersionOnly = serde_json::from_slice(&bytes).map_err(invalid)?;
        if version.v != TOKEN_VERSION {
            return Err(TokenError::UnsupportedVersion {
                found: version.v,
                supported: TOKEN_VERSION,
            });
        }
        let document: Document = serde_json::from_slice(&bytes).map_err(invalid)?;
        for (topic, partitions) in &document.topics {
            if topic.trim().is_empty() {
                return Err(TokenError::EmptyTopic);
            }
            for (partition, millis) in partitions {
                if *partition < 0 {
                    return Err(TokenError::InvalidPartition {
                        topic: topic.clone(),
                        partition: *partition,
                    });
                }
                if *millis < 0 {
                    return Err(TokenError::InvalidTimestamp {
                        topic: topic.clone(),
                        partition: *partition,
                        millis: *millis,
                    });
                }
            }
        }
        Ok(Self {
            topics: document.topics,
        })
    }
}

impl fmt::Display for ResumeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let document = Document {
            v: TOKEN_VERSION,
            topics: self.topics.clone(),
        };
        // Serializing maps of strings and integers cannot fail.
        let json = serde_json::to_vec(&document).map_err(|_| fmt::Error)?;
        f.write_str(&URL_SAFE_NO_PAD.encode(json))
    }
}

impl FromStr for ResumeToken {
    type Err = TokenError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn round_trips_and_reads_padded_text() {
        let token = ResumeToken::from_timestamps([
            ("a.b-c_d".to_string(), 0, 0),
            ("a.b-c_d".to_string(), 11, i64::MAX),
            ("other".to_string(), 2, 1_700_000_000_123),
        ]);
        let text = token.to_string();
        assert!(text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(ResumeToken::parse(&text), Ok(token.clone()));
        assert_eq!(ResumeToken::parse(&format!("  {text}==\n")), Ok(token));
    }

    #[test]
    fn typed_errors() {
        assert_eq!(ResumeToken::parse("  "), Err(TokenError::Empty));
        assert!(matches!(
            ResumeToken::parse(&encode("[1,2]")),
            Err(TokenError::InvalidDocument { .. })
        ));
        assert!(matches!(
            ResumeToken::parse(&encode(r#"{"v":1,"topics":{"t":{"x":1}}}"#)),
            Err(TokenError::InvalidDocument { .. })
        ));
        assert_eq!(
            ResumeToken::parse(&encode(r#"{"v":2,"whatever":true}"#)),
            Err(TokenError::UnsupportedVersion {
                found: 2,
                supported: 1
            })
        );
        assert_eq!(
            ResumeToken::parse(&encode(r#"{"v":1,"topics":{"":{"0":1}}}"#)),
            Err(TokenError::EmptyTopic)
        );
        assert!(matches!(
            ResumeToken::parse(&encode(r#"{"v":1,"topics":{"t":{"-1":1}}}"#)),
            Err(TokenError::InvalidPartition { partition: -1, .. })
        ));
        assert!(matches!(
            ResumeToken::parse(&encode(r#"{"v":1,"topics":{"t":{"0":-5}}}"#)),
            Err(TokenError::InvalidTimestamp { millis: -5, .. })
        ));
        assert_eq!(
            ResumeToken::parse(&encode(r#"{"v":1}"#)),
            Ok(ResumeToken::default())
        );
    }
}
