//! The README's first command works: the quickstart runs every step on the embedded
//! default, skipping none, and says what it saw.

use std::process::Command;

#[test]
fn quickstart_walks_through_the_whole_mission() {
    let output = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .env_remove("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("EVENT_BUS_SCHEMA_REGISTRY_URL")
        .output()
        .expect("quickstart runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    for expected in [
        "[7/8] Replay from a timestamp",
        "[8/8] The inbox",
        "compatibility FULL_TRANSITIVE",
        "deferred to outbox row",
        "relay published 6 events",
        "every key in send order: true",
        "dlq_failed_receivers=crm",
        "dlq_attempts=3",
        "1 dead-lettered",
        "lag Some(0)",
        "Done.",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    // Every step runs on the embedded default: the replay step finds the offsets of a
    // time by reading records on the mock cluster, and nothing is skipped.
    assert!(
        stdout.contains("after the reset the group saw again [6, 7, 8, 9, 10]"),
        "replay step:\n{stdout}"
    );
    let skipped: Vec<&str> = stdout
        .lines()
        .filter(|line| line.trim_start().to_lowercase().starts_with("skipped"))
        .collect();
    assert!(
        skipped.is_empty(),
        "skipped steps {skipped:?} in:\n{stdout}"
    );
    // The inbox step: one login sent twice with one ce_id, then the whole topic read
    // again. The plain receiver sees every delivery (3, then 6); the transactional one
    // writes one row per event (2) and skips the rest (1, then 1 + 3).
    for expected in [
        "first read: audit (plain) saw 3 deliveries; welcome-mail (inbox) handled 2, duplicates skipped 1; welcome_mails has 2 rows",
        "after a replay of the whole topic: audit (plain) saw 6 deliveries; welcome-mail (inbox) handled 2, duplicates skipped 4; welcome_mails has 2 rows",
        "inbox table: 2 rows",
    ] {
        assert!(
            stdout.contains(expected),
            "inbox step: missing `{expected}` in:\n{stdout}"
        );
    }
}
