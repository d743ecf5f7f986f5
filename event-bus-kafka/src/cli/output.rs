//! How commands print their results: text for people, JSON for scripts.

/// The `--output` format.
///
/// ```
/// use clap::ValueEnum;
/// use event_bus_kafka::cli::OutputFormat;
///
/// assert_eq!(OutputFormat::default(), OutputFormat::Text);
/// assert_eq!(OutputFormat::from_str("json", false), Ok(OutputFormat::Json));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One line per item, for people.
    #[default]
    Text,
    /// One JSON document on stdout, for scripts; errors still go to stderr.
    Json,
}
