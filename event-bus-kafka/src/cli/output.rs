//! How commands print their results: text for people, JSON for scripts.

use std::io::{self, Write};

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

/// Writes `rows` (the first one the header) as left-aligned columns two spaces apart.
pub(crate) fn write_table(out: &mut (dyn Write + Send), rows: &[Vec<String>]) -> io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
