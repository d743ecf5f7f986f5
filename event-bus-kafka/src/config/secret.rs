//! A value that never shows in `Debug` or logs.

use std::fmt;

/// A secret string (a password or token): `Debug` and `Display` print `***`.
///
/// ```
/// use event_bus_kafka::config::Secret;
/// let s = Secret::new("hunter2");
/// assert_eq!(format!("{s:?}"), "Secret(***)");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    ///
    /// ```
    /// let _ = event_bus_kafka::config::Secret::new("token");
    /// ```
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    ///
    /// ```
    /// assert_eq!(event_bus_kafka::config::Secret::new("x").expose(), "x");
    /// ```
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Whether a librdkafka option holds a secret, so it is hidden in `Debug`.
///
/// ```
/// use event_bus_kafka::config::secret::is_secret_option;
/// assert!(is_secret_option("sasl.password"));
/// assert!(!is_secret_option("acks"));
/// ```
pub fn is_secret_option(name: &str) -> bool {
    [
        "password",
        "secret",
        "token",
        "sasl.oauthbearer.config",
        "ssl.key.pem",
        "ssl_key",
    ]
    .iter()
    .any(|marker| name.contains(marker))
}
