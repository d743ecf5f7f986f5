//! Keeping secrets out of `Debug`, logs, errors and CLI output: [`Secret`] for values,
//! [`redact_url`] for URLs that may carry a password, [`is_secret_option`] and
//! [`is_secret_variable`] for settings known by name, [`redact_kafka_error`] for
//! librdkafka's refusals of a client option (which quote its value).

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

/// Whether an environment variable holds a secret by its name (for example
/// `EVENT_BUS_SCHEMA_REGISTRY_PASSWORD`, `EVENT_BUS_KAFKA_SASL_PASSWORD` or
/// `EVENT_BUS_KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET`), so its value is never shown.
///
/// ```
/// use event_bus_kafka::config::secret::is_secret_variable;
/// assert!(is_secret_variable("EVENT_BUS_KAFKA_SASL_PASSWORD"));
/// assert!(is_secret_variable("EVENT_BUS_KAFKA_SASL_OAUTHBEARER_CONFIG"));
/// assert!(!is_secret_variable("EVENT_BUS_TOPIC_PREFIX"));
/// ```
pub fn is_secret_variable(name: &str) -> bool {
    is_secret_option(&name.to_ascii_lowercase().replace('_', "."))
}

/// `url` with its password replaced by `***`: the `user:password@` part and any query
/// parameter named like a secret (`password=`, `sslpassword=`, `token=`…). Text that is
/// not a valid URL is handled too (it may be the very value an error reports). Use it
/// wherever a registry or database URL is shown.
///
/// ```
/// use event_bus_kafka::config::secret::redact_url;
/// assert_eq!(redact_url("https://svc:hunter2@registry:8081/api"), "https://svc:***@registry:8081/api");
/// assert_eq!(redact_url("postgres://app@db/app?password=hunter2&sslmode=require"), "postgres://app@db/app?password=***&sslmode=require");
/// assert_eq!(redact_url("http://registry:8081"), "http://registry:8081");
/// assert_eq!(redact_url("sqlite:outbox.db"), "sqlite:outbox.db");
/// ```
pub fn redact_url(url: &str) -> String {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((head, fragment)) => (head, Some(fragment)),
        None => (url, None),
    };
    let (base, query) = match before_fragment.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (before_fragment, None),
    };
    let mut out = String::with_capacity(url.len());
    let (scheme, rest) = match base.find("://") {
        Some(i) => base.split_at(i + 3),
        None => ("", base),
    };
    out.push_str(scheme);
    // The last `@` ends the user info, even if the password holds `@` or `/`.
    match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&rest[at..]);
        }
        None => out.push_str(rest),
    }
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret_option(&name.to_ascii_lowercase()) => {
                    format!("{name}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// `error` with the value of a refused client option replaced by `***`.
///
/// librdkafka reports a refused option as `KafkaError::ClientConfig(code, description,
/// option, value)` and rdkafka's `Display` prints the value: for
/// `ssl.key.password` on a build without OpenSSL, or for a misspelled secret option, that
/// is the secret itself. The value is hidden whatever the option's name (a misspelled
/// name says nothing); the description and the option name stay, and so does every
/// other error. Every place that creates a Kafka client maps its error through this.
///
/// ```
/// use event_bus_kafka::config::secret::redact_kafka_error;
/// use rdkafka::error::KafkaError;
/// use rdkafka::types::RDKafkaConfRes;
/// let refused = KafkaError::ClientConfig(
///     RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
///     "OpenSSL not available at build time".into(),
///     "ssl.key.password".into(),
///     "TopSecret123".into(),
/// );
/// let shown = redact_kafka_error(refused).to_string();
/// assert!(shown.contains("ssl.key.password ***"), "{shown}");
/// assert!(!shown.contains("TopSecret123"));
/// ```
pub fn redact_kafka_error(error: rdkafka::error::KafkaError) -> rdkafka::error::KafkaError {
    match error {
        rdkafka::error::KafkaError::ClientConfig(code, description, option, value) => {
            // librdkafka's own text may quote the value too ("Invalid value \"…\"").
            let description = if value.is_empty() {
                description
            } else {
                description.replace(&value, "***")
            };
            rdkafka::error::KafkaError::ClientConfig(code, description, option, "***".into())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_with_reserved_characters_are_hidden() {
        let shown = redact_url("postgres://app:p@ss/w:rd@db:5432/app");
        assert_eq!(shown, "postgres://app:***@db:5432/app");
        assert_eq!(redact_url("http://:only-password@h"), "http://:***@h");
        assert_eq!(
            redact_url("user:pw@registry:8081"),
            "user:***@registry:8081",
            "no scheme: still hidden"
        );
        assert_eq!(
            redact_url("postgres://db/app?PASSWORD=x#frag"),
            "postgres://db/app?PASSWORD=***#frag"
        );
    }
}
