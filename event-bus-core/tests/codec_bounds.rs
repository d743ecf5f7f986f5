//! Length fields and block counts from outside the process are checked against the bytes
//! a record has before anything is allocated for them (issue 19).
//!
//! apache-avro sizes a string's or bytes' buffer by its length field, and reserves an
//! array's items by its block count, up to 512 MiB, before it reads a byte of them. A
//! 30-byte record could make the consumer allocate hundreds of MiB. Each test measures
//! the largest single allocation the decode made on its own thread, with a counting
//! global allocator (this test binary's only), and asserts the typed error.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use apache_avro::Schema;
use event_bus_core::codec::{self, CodecError, MalformedDatum};
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

/// Passes every call to the system allocator and remembers, per thread, the largest
/// allocation asked for.
struct LargestAllocation;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the thread-local may already be gone while a thread exits.
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

// SAFETY: every call goes to `System` unchanged; only a thread-local counter is added,
// which never allocates.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

/// Runs `f` and returns its result with the largest allocation it made (bytes).
fn largest_allocation_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|largest| largest.set(0));
    let result = f();
    (result, LARGEST.with(Cell::get))
}

/// Nothing a decode of a record of a few dozen bytes needs comes near this.
const SMALL: usize = 64 * 1024;

/// A user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, EventData)]
pub struct Learner {
    /// Numeric id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// E-mail address.
    pub email: String,
}

/// A learner logged in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(type = "org.example.tests.bounds.login.v1", topic = "bounds")]
pub struct LoggedIn {
    /// Who.
    pub learner: Learner,
}

fn zigzag(n: i64) -> Vec<u8> {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        if z < 0x80 {
            out.push(z as u8);
            return out;
        }
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
}

/// A `LoggedIn` datum whose e-mail claims `claimed` bytes, padded to 30 bytes.
fn login_claiming(claimed: i64) -> Vec<u8> {
    let mut datum = zigzag(7);
    datum.extend(zigzag(3));
    datum.extend(b"ada");
    datum.extend(zigzag(claimed));
    datum.resize(30, b'x');
    datum
}

fn assert_beyond_end(err: &CodecError, claimed: u64) {
    match err {
        CodecError::Malformed {
            problem: MalformedDatum::LengthBeyondEnd { claimed: c, .. },
            ..
        } => assert_eq!(*c, claimed, "{err}"),
        other => panic!("expected a length beyond the end, got {other:?}"),
    }
}

#[test]
fn a_string_claiming_2_pow_40_bytes_in_a_30_byte_record_is_refused_before_allocating() {
    let datum = login_claiming(1 << 40);
    assert_eq!(datum.len(), 30);
    let (result, largest) =
        largest_allocation_of(|| LoggedIn::from_avro_datum(&datum, LoggedIn::schema()));
    assert_beyond_end(&result.expect_err("refused"), 1 << 40);
    assert!(largest < SMALL, "allocated {largest} bytes");
}

#[test]
fn a_string_claiming_400_mib_is_refused_before_allocating_on_every_decode_path() {
    let claimed = 400 << 20;
    let datum = login_claiming(claimed);
    let schema = LoggedIn::schema();
    let (typed, largest) = largest_allocation_of(|| LoggedIn::from_avro_datum(&datum, schema));
    assert_beyond_end(&typed.expect_err("refused"), claimed as u64);
    assert!(largest < SMALL, "typed decode allocated {largest} bytes");

    let (generic, largest) = largest_allocation_of(|| codec::decode_value(&datum, schema, None));
    assert_beyond_end(&generic.expect_err("refused"), claimed as u64);
    assert!(largest < SMALL, "generic decode allocated {largest} bytes");
}

/// The reader's schema plus a field the reader does not know: an array of nulls, each
/// item zero bytes on the wire (FULL_TRANSITIVE allows it: it has a default).
fn writer_with_null_array() -> Schema {
    let mut json = LoggedIn::schema_json();
    json["fields"]
        .as_array_mut()
        .expect("a record's fields")
        .push(serde_json::json!({"name": "noise", "type": {"type": "array", "items": "null"}, "default": []}));
    Schema::parse(&json).expect("valid schema")
}

fn login_with_nulls(count: i64) -> Vec<u8> {
    let mut datum = LoggedIn {
        learner: Learner {
            id: 7,
            username: "ada".into(),
            email: "ada@example.org".into(),
        },
    }
    .to_avro_datum()
    .expect("encodes");
    datum.extend(zigzag(count));
    datum.push(0);
    datum
}

#[test]
fn a_huge_count_of_zero_byte_items_is_refused_before_allocating() {
    let writer = writer_with_null_array();
    // What apache-avro allows: 512 MiB of its `Value`s.
    let count = (512 << 20) / std::mem::size_of::<apache_avro::types::Value>() as i64 - 1;
    let datum = login_with_nulls(count);
    assert!(datum.len() < 40);
    let (resolved, largest) = largest_allocation_of(|| LoggedIn::from_avro_datum(&datum, &writer));
    match resolved.expect_err("refused") {
        CodecError::Malformed {
            problem: MalformedDatum::TooManyEmptyItems { count: c, .. },
            ..
        } => assert_eq!(c, count as u64),
        other => panic!("expected too many empty items, got {other:?}"),
    }
    assert!(largest < SMALL, "allocated {largest} bytes");
}

#[test]
fn zero_byte_items_up_to_the_limit_decode_and_one_more_is_refused() {
    let writer = writer_with_null_array();
    let datum = login_with_nulls(codec::MAX_EMPTY_ITEMS as i64);
    let event = LoggedIn::from_avro_datum(&datum, &writer).expect("decodes");
    assert_eq!(event.learner.email, "ada@example.org");
    let datum = login_with_nulls(codec::MAX_EMPTY_ITEMS as i64 + 1);
    assert!(matches!(
        LoggedIn::from_avro_datum(&datum, &writer),
        Err(CodecError::Malformed {
            problem: MalformedDatum::TooManyEmptyItems { .. },
            ..
        })
    ));
}

#[test]
fn a_block_count_beyond_the_bytes_left_is_refused() {
    // An array of longs (one byte each at least) claiming a million items in 3 bytes.
    let schema = Schema::parse_str(r#"{"type": "array", "items": "long"}"#).expect("schema");
    let mut datum = zigzag(1_000_000);
    datum.push(2);
    let (result, largest) = largest_allocation_of(|| codec::decode_value(&datum, &schema, None));
    match result.expect_err("refused") {
        CodecError::Malformed {
            problem:
                MalformedDatum::BlockBeyondEnd {
                    count,
                    min_item_bytes,
                    left,
                },
            ..
        } => assert_eq!((count, min_item_bytes, left), (1_000_000, 1, 1)),
        other => panic!("expected a block beyond the end, got {other:?}"),
    }
    assert!(largest < SMALL, "allocated {largest} bytes");
}

#[test]
fn a_truncated_record_is_refused_not_read_as_nulls() {
    // apache-avro's generic reader turns a string, boolean or union cut off by the end
    // of the bytes into a null; the record must be refused instead.
    let datum = LoggedIn {
        learner: Learner {
            id: 7,
            username: "ada".into(),
            email: "ada@example.org".into(),
        },
    }
    .to_avro_datum()
    .expect("encodes");
    let cut = &datum[..datum.len() - 3];
    let err = codec::decode_value(cut, LoggedIn::schema(), None).expect_err("refused");
    assert_beyond_end(&err, 15);
}

#[test]
fn nesting_deeper_than_the_limit_is_refused_before_the_stack_runs_out() {
    // A linked list: each level is one byte (the union's index), so a 100 kB record
    // nests 100 000 levels, which apache-avro's recursive reader would follow.
    let schema = Schema::parse_str(
        r#"{"type": "record", "name": "Node", "fields": [
            {"name": "next", "type": ["null", "Node"]}]}"#,
    )
    .expect("schema");
    let mut datum = vec![2u8; 100_000];
    datum.push(0);
    match codec::decode_value(&datum, &schema, None).expect_err("refused") {
        CodecError::Malformed {
            problem: MalformedDatum::TooDeep { limit },
            ..
        } => assert_eq!(limit, codec::MAX_DEPTH),
        other => panic!("expected too deep, got {other:?}"),
    }
    // Within the limit it decodes.
    let mut shallow = vec![2u8; 10];
    shallow.push(0);
    codec::decode_value(&shallow, &schema, None).expect("decodes");
}
