//! The progress bar of long `dlq` runs: on stderr, for text output on a terminal only.

use std::io::{self, IsTerminal};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::OutputFormat;

/// A bar of `len` steps labelled `what`; hidden for JSON output or when stderr is not
/// a terminal.
pub(super) fn bar(format: OutputFormat, what: &str, len: u64) -> ProgressBar {
    if format != OutputFormat::Text || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let template = format!("{what} {{bar:40}} {{pos}}/{{len}} records ({{per_sec}}, eta {{eta}})");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}
