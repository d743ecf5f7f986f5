//! PostgreSQL URL parameters sqlx does not know, taken out before sqlx parses the URL.
//!
//! sqlx ignores a parameter it does not know but logs it at WARN with its value, so a
//! libpq option it lacks (`sslpassword=…`) or a misspelled `pasword=…` would put a
//! secret in the logs. [`without_unknown_parameters`] drops such parameters and logs
//! their names only.

/// The query parameters sqlx's PostgreSQL URL parser knows (besides `options[…]`).
const KNOWN: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

fn known(name: &str) -> bool {
    KNOWN.contains(&name) || (name.starts_with("options[") && name.ends_with(']'))
}

/// `url` without the query parameters sqlx does not know; each one dropped is logged at
/// WARN by name, its value never shown (sqlx would have ignored it too).
pub(crate) fn without_unknown_parameters(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query, None),
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        if known(name) {
            kept.push(pair);
        } else {
            tracing::warn!(
                parameter = name,
                "ignoring a PostgreSQL URL parameter sqlx does not know (its value is not shown)"
            );
        }
    }
    let mut out = base.to_owned();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::without_unknown_parameters as strip;

    #[test]
    fn unknown_parameters_go_and_known_ones_stay() {
        assert_eq!(
            strip("postgres://db/app?sslmode=require&sslpassword=x&options[search_path]=a"),
            "postgres://db/app?sslmode=require&options[search_path]=a"
        );
        assert_eq!(strip("postgres://db/app?pasword=x"), "postgres://db/app");
        assert_eq!(strip("postgres://u:p@db/app"), "postgres://u:p@db/app");
        assert_eq!(
            strip("postgres://db/app?port=5432#f"),
            "postgres://db/app?port=5432#f"
        );
    }
}
