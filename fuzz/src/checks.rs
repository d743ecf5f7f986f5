//! What must hold for every input: the assertions of the decoding targets.

use std::fmt::Debug;

use event_bus_core::apache_avro::reader::datum::GenericDatumReader;
use event_bus_core::apache_avro::types::Value;
use event_bus_core::apache_avro::writer::datum::GenericDatumWriter;
use event_bus_core::apache_avro::Schema;
use event_bus_core::codec::{self, CodecError, MalformedDatum};
use event_bus_core::Event;

use crate::value::{equivalent, projects};

/// Unframes `data`; what unframing accepts frames back to the same bytes, and what it
/// refuses it refuses for the reason the bytes show.
pub fn unframe(data: &[u8]) -> Option<(u32, &[u8])> {
    match codec::unframe(data) {
        Ok((id, datum)) => {
            assert_eq!(codec::frame(id, datum), data, "unframe then frame");
            Some((id, datum))
        }
        Err(CodecError::TooShort { len }) => {
            assert!(len < 5 && len == data.len());
            None
        }
        Err(CodecError::BadMagicByte { found }) => {
            assert!(data.len() >= 5 && found == data[0] && found != codec::MAGIC_BYTE);
            None
        }
        Err(other) => panic!("unframe failed with {other:?}"),
    }
}

/// apache-avro alone (no bounds check) reads `datum` as a complete, valid value of
/// `schema`. Only called where what it allocates is known to be small.
fn apache_avro_alone_accepts(datum: &[u8], schema: &Schema) -> bool {
    let mut cursor = datum;
    let Ok(value) = GenericDatumReader::builder(schema)
        .build()
        .and_then(|reader| reader.read_value(&mut cursor))
    else {
        return false;
    };
    // Its generic reader reads a string or boolean cut off by the end as a null, which
    // then does not write back; a union cut off reads as its first branch (see below).
    cursor.is_empty()
        && GenericDatumWriter::builder(schema)
            .build()
            .and_then(|writer| writer.write_value_to_vec(value))
            .is_ok()
}

/// A refusal by the bounds check is one apache-avro would make too (it refuses more
/// only on purpose: too many empty items, too deep, a union cut off by the end), where
/// asking apache-avro allocates little: it stops where the check stopped, except after
/// a block that cannot fit, whose items it goes on reading (with whatever lengths they
/// claim) until the bytes run out, so that refusal is not asked about.
fn refusal_is_not_stricter(err: &CodecError, datum: &[u8], writer: &Schema) {
    let CodecError::Malformed { problem, .. } = err else {
        return;
    };
    let cheap_to_ask = match problem {
        MalformedDatum::TooManyEmptyItems { .. }
        | MalformedDatum::TooDeep { .. }
        | MalformedDatum::BlockBeyondEnd { .. } => false,
        MalformedDatum::Truncated { what } => *what != "union",
        MalformedDatum::LengthBeyondEnd { claimed, .. } => *claimed <= 1 << 20,
        _ => true,
    };
    if cheap_to_ask {
        assert!(
            !apache_avro_alone_accepts(datum, writer),
            "the bounds check refused ({err}) a datum apache-avro reads"
        );
    }
}

/// Decodes a value of `schema`, which must succeed for a datum the typed decode took.
fn generic(datum: &[u8], schema: &Schema) -> Result<Value, CodecError> {
    codec::decode_value(datum, schema, None)
}

fn encode_value(value: Value, schema: &Schema) -> Vec<u8> {
    GenericDatumWriter::builder(schema)
        .build()
        .and_then(|writer| writer.write_value_to_vec(value))
        .expect("a value apache-avro decoded with a schema encodes with it")
}

/// Re-encodes an event the SDK decoded: the bytes decode to the same event, and
/// encoding that again gives the same bytes (the SDK's encoding is a fixed point).
fn reencode<E: Event + PartialEq + Debug>(event: &E) -> Vec<u8> {
    let again = event.to_avro_datum().expect("a decoded event encodes");
    let back = E::from_avro_datum(&again, E::schema()).expect("the SDK's own bytes decode");
    assert_eq!(&back, event, "decode(encode(event)) == event");
    assert_eq!(
        back.to_avro_datum().expect("encodes"),
        again,
        "encoding is stable"
    );
    again
}

/// Writer schema equal to the reader's: decode as `E`; errors are typed; the generic
/// and typed reads agree; re-encoding gives the same bytes whenever apache-avro's own
/// writer does (the datum is canonical) and the event holds no instant written in
/// another form.
pub fn same_schema<E: Event + PartialEq + Debug>(datum: &[u8]) {
    let schema = E::schema();
    let typed = E::from_avro_datum(datum, schema);
    agrees_with_serde(&typed, datum);
    let value = generic(datum, schema);
    let event = match typed {
        Ok(event) => event,
        Err(err) => {
            refused_as_typed(&err, datum, schema);
            return;
        }
    };
    let value = value.expect("a datum the typed decode takes decodes generically");
    let again = reencode(&event);
    let value_again = generic(&again, schema).expect("the SDK's own bytes decode");
    assert!(
        equivalent(&value, &value_again),
        "re-encoding keeps every field: {value:?} became {value_again:?}"
    );
    let canonical = encode_value(value.clone(), schema) == datum;
    if canonical && value == value_again {
        assert_eq!(
            again, datum,
            "a canonical datum re-encodes to the same bytes"
        );
    }
}

/// The derived decoder (which `from_avro_datum` uses for the type's own schema) takes
/// exactly what the serde + apache-avro path takes, and reads the same event.
fn agrees_with_serde<E: Event + PartialEq + Debug>(typed: &Result<E, CodecError>, datum: &[u8]) {
    let through_serde = E::prepared_schema().and_then(|p| p.decode::<E>(datum));
    match (typed, &through_serde) {
        (Ok(derived), Ok(serde)) => assert_eq!(derived, serde, "both paths read the same event"),
        (Err(_), Err(_)) => {}
        _ => panic!("the derived decoder gave {typed:?}, serde + apache-avro {through_serde:?}"),
    }
}

/// A decode of `datum` with `writer` was refused: with one of the codec's typed
/// errors, and only where apache-avro alone would refuse too (bar the SDK's limits).
fn refused_as_typed(err: &CodecError, datum: &[u8], writer: &Schema) {
    assert!(
        matches!(
            err,
            CodecError::Malformed { .. }
                | CodecError::Avro { .. }
                | CodecError::TrailingBytes { .. }
        ),
        "{err:?}"
    );
    refusal_is_not_stricter(err, datum, writer);
}

/// Writer schema different from the reader's: decode as `E` through schema resolution;
/// errors are typed; what resolves holds the writer's values for every field both
/// schemas have and the defaults for the others, and re-encodes stably.
pub fn resolved<E: Event + PartialEq + Debug>(datum: &[u8], writer: &Schema) {
    let typed = E::from_avro_datum(datum, writer);
    let written = generic(datum, writer);
    let event = match typed {
        Ok(event) => event,
        Err(err) => {
            refused_as_typed(&err, datum, writer);
            return;
        }
    };
    let written = written.expect("a datum that resolves decodes with its writer schema");
    let again = reencode(&event);
    let read = generic(&again, E::schema()).expect("the SDK's own bytes decode");
    assert!(
        projects(&read, &written),
        "resolution keeps the writer's values: wrote {written:?}, read {read:?}"
    );
}
