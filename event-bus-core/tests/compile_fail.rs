//! Compile-fail tests for `#[derive(Event)]` and `#[derive(EventData)]`: each file in
//! `tests/ui/` must fail to compile with the message in its `.stderr` file, one that
//! tells the user what to change.
//!
//! The `.stderr` files are pinned to the toolchain in use (rustc 1.95); after a
//! toolchain upgrade or a change to a message, regenerate them with
//! `TRYBUILD=overwrite cargo test -p event-bus-core --test compile_fail` and read the
//! diff.

#[test]
fn derive_rejects_invalid_events_with_actionable_messages() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
