//! [`CompatibilityLevel`]: the names a Confluent-compatible registry uses, parsing and
//! printing them.

use std::fmt;
use std::str::FromStr;

/// A compatibility level as a Confluent-compatible schema registry names it.
///
/// ```
/// use event_bus_core::schema::compat::CompatibilityLevel;
///
/// let level: CompatibilityLevel = "full_transitive".parse()?;
/// assert_eq!(level, CompatibilityLevel::FullTransitive);
/// assert_eq!(level.as_str(), "FULL_TRANSITIVE");
/// assert_eq!(level.to_string(), "FULL_TRANSITIVE");
/// # Ok::<(), event_bus_core::schema::compat::UnknownCompatibilityLevel>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompatibilityLevel {
    /// No check.
    None,
    /// New readers read data written with the latest version.
    Backward,
    /// New readers read data written with every earlier version.
    BackwardTransitive,
    /// Readers of the latest version read new data.
    Forward,
    /// Readers of every earlier version read new data.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every earlier version.
    FullTransitive,
}

impl CompatibilityLevel {
    /// Every level, in the order the registry documentation lists them.
    ///
    /// ```
    /// use event_bus_core::schema::compat::CompatibilityLevel;
    /// assert_eq!(CompatibilityLevel::ALL.len(), 7);
    /// assert!(CompatibilityLevel::ALL.contains(&CompatibilityLevel::FullTransitive));
    /// ```
    pub const ALL: [CompatibilityLevel; 7] = [
        CompatibilityLevel::None,
        CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive,
    ];

    /// The registry's name for the level (`"FULL_TRANSITIVE"` …).
    ///
    /// ```
    /// use event_bus_core::schema::compat::CompatibilityLevel;
    /// assert_eq!(CompatibilityLevel::BackwardTransitive.as_str(), "BACKWARD_TRANSITIVE");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Whether the level checks every earlier version rather than only the latest.
    ///
    /// ```
    /// use event_bus_core::schema::compat::CompatibilityLevel;
    /// assert!(CompatibilityLevel::FullTransitive.is_transitive());
    /// assert!(!CompatibilityLevel::Full.is_transitive());
    /// ```
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }

    /// Whether the new schema must read data written with earlier versions.
    ///
    /// ```
    /// use event_bus_core::schema::compat::CompatibilityLevel;
    /// assert!(CompatibilityLevel::Full.checks_backward());
    /// assert!(!CompatibilityLevel::Forward.checks_backward());
    /// ```
    pub fn checks_backward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Backward
                | CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    /// Whether earlier versions must read data written with the new schema.
    ///
    /// ```
    /// use event_bus_core::schema::compat::CompatibilityLevel;
    /// assert!(CompatibilityLevel::ForwardTransitive.checks_forward());
    /// assert!(!CompatibilityLevel::Backward.checks_forward());
    /// ```
    pub fn checks_forward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Forward
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compatibility level name that is none of `NONE`, `BACKWARD`, `BACKWARD_TRANSITIVE`,
/// `FORWARD`, `FORWARD_TRANSITIVE`, `FULL`, `FULL_TRANSITIVE`.
///
/// ```
/// use event_bus_core::schema::compat::CompatibilityLevel;
///
/// let err = "FULLY".parse::<CompatibilityLevel>().unwrap_err();
/// assert_eq!(err.given, "FULLY");
/// assert!(err.to_string().contains("FULL_TRANSITIVE"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown compatibility level `{given}`: expected one of NONE, BACKWARD, \
     BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE"
)]
pub struct UnknownCompatibilityLevel {
    /// The name that was given.
    pub given: String,
}

impl FromStr for CompatibilityLevel {
    type Err = UnknownCompatibilityLevel;

    /// Parses a level name, ignoring ASCII case and surrounding whitespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        CompatibilityLevel::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownCompatibilityLevel {
                given: s.to_string(),
            })
    }
}

impl serde::Serialize for CompatibilityLevel {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for CompatibilityLevel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}
