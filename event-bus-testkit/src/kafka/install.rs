//! Where the broker's jars and the Java runtime are: the pinned Kafka release that
//! `scripts/install-test-deps` copies from Maven Central, and `java`.

use std::path::{Path, PathBuf};

use super::error::ClusterError;

/// The Apache Kafka release the testkit runs (`org.apache.kafka:kafka_2.13`), the
/// same as `kafka.version` in `event-bus-testkit/kafka/pom.xml`.
///
/// # Example
///
/// ```
/// assert!(event_bus_testkit::kafka::KAFKA_VERSION.starts_with("4."));
/// ```
pub const KAFKA_VERSION: &str = "4.1.1";

/// Environment variable naming the folder of the broker's jars; without it the
/// testkit uses [`default_libs_dir`].
///
/// # Example
///
/// ```
/// assert_eq!(event_bus_testkit::kafka::KAFKA_LIBS_ENV, "EVENT_BUS_TEST_KAFKA_LIBS");
/// ```
pub const KAFKA_LIBS_ENV: &str = "EVENT_BUS_TEST_KAFKA_LIBS";

/// The jar every node's class path must hold; its presence says the folder is a
/// complete install.
fn broker_jar() -> String {
    format!("kafka_2.13-{KAFKA_VERSION}.jar")
}

/// Where `scripts/install-test-deps` puts the jars:
/// `$HOME/.cache/signal-bridge/kafka-{KAFKA_VERSION}/libs` (`None` without `HOME`).
///
/// # Example
///
/// ```
/// if let Some(dir) = event_bus_testkit::kafka::default_libs_dir() {
///     assert!(dir.ends_with("libs"));
/// }
/// ```
pub fn default_libs_dir() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|home| !home.is_empty())?;
    Some(
        PathBuf::from(home)
            .join(".cache/signal-bridge")
            .join(format!("kafka-{KAFKA_VERSION}"))
            .join("libs"),
    )
}

/// Finds the folder of the broker's jars: `$EVENT_BUS_TEST_KAFKA_LIBS` if set,
/// else [`default_libs_dir`].
///
/// # Errors
///
/// [`ClusterError::JarsNotFound`] (run `scripts/install-test-deps`) when the folder
/// does not hold `kafka_2.13-{KAFKA_VERSION}.jar`; [`ClusterError::NoHome`] when
/// neither the variable nor `HOME` is set.
///
/// # Example
///
/// ```no_run
/// let libs = event_bus_testkit::kafka::locate_libs()?;
/// println!("Kafka jars in {}", libs.display());
/// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
/// ```
pub fn locate_libs() -> Result<PathBuf, ClusterError> {
    let dir = match std::env::var_os(KAFKA_LIBS_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => default_libs_dir().ok_or(ClusterError::NoHome)?,
    };
    check_libs(dir)
}

/// `dir` when it holds the broker's jar.
fn check_libs(dir: PathBuf) -> Result<PathBuf, ClusterError> {
    if dir.join(broker_jar()).is_file() {
        Ok(dir)
    } else {
        Err(ClusterError::JarsNotFound {
            dir,
            jar: broker_jar(),
        })
    }
}

/// The `java` to run: `$JAVA_HOME/bin/java` when `JAVA_HOME` is set, else `java`
/// from `PATH`.
pub(crate) fn java() -> PathBuf {
    match std::env::var_os("JAVA_HOME") {
        Some(home) if !home.is_empty() && Path::new(&home).join("bin/java").is_file() => {
            Path::new(&home).join("bin/java")
        }
        _ => PathBuf::from("java"),
    }
}

/// The class path of every node: all the jars of `libs`.
pub(crate) fn class_path(libs: &Path) -> String {
    format!("{}/*", libs.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_matches_the_pom() {
        let pom = include_str!("../../kafka/pom.xml");
        let wanted = format!("<kafka.version>{KAFKA_VERSION}</kafka.version>");
        assert!(pom.contains(&wanted), "pom.xml must pin {wanted}");
    }

    #[test]
    fn a_folder_without_the_broker_jar_is_refused_with_a_hint() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("other.jar"), b"").expect("write");
        let error = match check_libs(dir.path().to_owned()) {
            Err(error) => error,
            Ok(path) => panic!("accepted {}", path.display()),
        };
        assert!(
            error.to_string().contains("scripts/install-test-deps"),
            "{error}"
        );
        std::fs::write(dir.path().join(broker_jar()), b"").expect("write");
        assert_eq!(
            check_libs(dir.path().to_owned()).expect("found"),
            dir.path()
        );
    }
}
