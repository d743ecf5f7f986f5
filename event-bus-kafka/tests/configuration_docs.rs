//! docs/configuration.md lists exactly the `EVENT_BUS_*` variables the code reads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `EVENT_BUS_…` names in `text`; `quoted` keeps only those inside string literals.
fn names(text: &str, quoted: bool) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("EVENT_BUS_") {
        let before = rest[..at].chars().last();
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        let after = rest[at + name.len()..].chars().next();
        if !quoted || (before == Some('"') && after == Some('"')) {
            found.insert(name.clone());
        }
        rest = &rest[at + name.len()..];
    }
    found
}

#[test]
fn every_variable_the_code_reads_is_documented_and_nothing_else() {
    let mut files = Vec::new();
    for crate_dir in [
        "event-bus-core/src",
        "event-bus-kafka/src",
        "event-bus-testkit/src",
        "examples/src",
    ] {
        rust_files(&workspace().join(crate_dir), &mut files);
    }
    let mut in_code = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("source file readable");
        // Only real code: doc comments and examples may mention example variables.
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        in_code.extend(names(&code, true));
    }
    // The prefix itself is how any librdkafka option is passed, and a name after it
    // (`EVENT_BUS_KAFKA_LINGER_MS` in a unit test) is such an option, not a variable of
    // ours; the brokers are the one the code reads by name.
    in_code
        .retain(|n| n == "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS" || !n.starts_with("EVENT_BUS_KAFKA_"));
    let docs = std::fs::read_to_string(workspace().join("docs/configuration.md"))
        .expect("docs/configuration.md");
    // `EVENT_BUS_KAFKA_<OPTION>` examples name librdkafka options, not variables of ours.
    let in_docs: BTreeSet<String> = names(&docs, false)
        .into_iter()
        .filter(|n| n == "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS" || !n.starts_with("EVENT_BUS_KAFKA_"))
        .collect();
    let undocumented: Vec<_> = in_code.difference(&in_docs).collect();
    let stale: Vec<_> = in_docs.difference(&in_code).collect();
    assert!(
        undocumented.is_empty(),
        "read by the code but missing from docs/configuration.md: {undocumented:?}"
    );
    assert!(
        stale.is_empty(),
        "in docs/configuration.md but read nowhere: {stale:?}"
    );
    assert!(in_code.len() > 20, "the scan found too little: {in_code:?}");
}
