//! Checks a datum's length fields and block counts against the bytes it has, before
//! apache-avro reads it.
//!
//! apache-avro 0.22 allocates what a record claims before it reads the bytes: a string
//! or bytes value gets a zeroed buffer of its length field's size, an array reserves
//! room for its block count's items, each up to 512 MiB (its `max_allocation_bytes`).
//! A 30-byte record claiming a 400 MiB string made the consumer allocate 400 MiB; one
//! claiming ten million `null`s in an array decoded, holding 512 MiB. Its generic reader
//! also reads a string, boolean or union cut off by the end of the bytes as a null.
//!
//! [`DatumBounds`] walks the datum along the writer schema first, allocating nothing,
//! and refuses:
//! - a string, bytes or fixed value longer than the bytes left;
//! - an array or map block whose count, times the fewest bytes one item takes, is more
//!   than the bytes left;
//! - more than [`MAX_EMPTY_ITEMS`] array items that take no bytes at all (`null`, an
//!   empty record), which no byte count bounds;
//! - nesting deeper than [`MAX_DEPTH`] (a recursive schema would otherwise let each byte
//!   of a record add a level to apache-avro's recursive reader, and overflow its stack);
//! - a union or enum index out of range, a truncated value, a varint over 10 bytes.
//!
//! What it accepts takes at most a constant factor of the record's size to decode.
//! Every decode function of [`crate::codec`] runs it.

use std::collections::HashMap;

use apache_avro::schema::{InnerDecimalSchema, Name, NamespaceRef, Schema, UuidSchema};

use super::{avro_error, schema_name, CodecError};

/// How deep a datum may nest records, arrays, maps and unions.
///
/// ```
/// assert_eq!(event_bus_core::codec::MAX_DEPTH, 64);
/// ```
pub const MAX_DEPTH: usize = 64;

/// How many array items that take no bytes on the wire (`null`, a record without
/// fields) one datum may hold in all.
///
/// Such items carry no data, and no byte count bounds them; apache-avro's generic
/// reader holds each in 56 bytes, so the limit keeps what they cost under 224 KiB a
/// record. (With 65 536 the fuzz target `avro_resolve` spent most of its time paging
/// in the 3.5 MiB such a record cost.)
///
/// ```
/// assert_eq!(event_bus_core::codec::MAX_EMPTY_ITEMS, 4096);
/// ```
pub const MAX_EMPTY_ITEMS: u64 = 4096;

/// What is wrong with a datum's bytes, found before decoding them.
///
/// ```
/// use event_bus_core::codec::{check_datum, CodecError, MalformedDatum};
/// let schema = apache_avro::Schema::parse_str(r#""string""#).unwrap();
/// // A string claiming 100 bytes, with 2 left.
/// let err = check_datum(&[200, 1, b'h', b'i'], &schema).unwrap_err();
/// assert!(matches!(
///     err,
///     CodecError::Malformed { offset: 2, problem: MalformedDatum::LengthBeyondEnd { claimed: 100, left: 2, .. }, .. }
/// ));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedDatum {
    /// A string, bytes or fixed value claims more bytes than the record has left.
    #[error("a {what} value claims {claimed} bytes but only {left} are left")]
    LengthBeyondEnd {
        /// "string", "bytes" or "fixed".
        what: &'static str,
        /// The length it claims.
        claimed: u64,
        /// The bytes left after the length field.
        left: usize,
    },
    /// A length field is negative.
    #[error("a {what} value claims a negative length ({claimed})")]
    NegativeLength {
        /// "string" or "bytes".
        what: &'static str,
        /// The length it claims.
        claimed: i64,
    },
    /// An array or map block claims more items than the bytes left can hold.
    #[error("an array or map block claims {count} items of at least {min_item_bytes} bytes each but only {left} bytes are left")]
    BlockBeyondEnd {
        /// The items it claims.
        count: u64,
        /// The fewest bytes one item takes.
        min_item_bytes: usize,
        /// The bytes left after the block header.
        left: usize,
    },
    /// More array items that take no bytes than [`MAX_EMPTY_ITEMS`].
    #[error("arrays claim {count} items that take no bytes (null or empty records), more than the {limit} allowed")]
    TooManyEmptyItems {
        /// How many such items the datum claims so far.
        count: u64,
        /// [`MAX_EMPTY_ITEMS`].
        limit: u64,
    },
    /// Records, arrays, maps and unions nest deeper than [`MAX_DEPTH`].
    #[error("values nest deeper than {limit} levels")]
    TooDeep {
        /// [`MAX_DEPTH`].
        limit: usize,
    },
    /// A union's branch index is not one of its branches.
    #[error("union branch {index} does not exist (the union has {branches})")]
    UnionIndex {
        /// The index read.
        index: i64,
        /// How many branches the union has.
        branches: usize,
    },
    /// An enum's symbol index is not one of its symbols.
    #[error("enum symbol {index} does not exist (the enum has {symbols})")]
    EnumIndex {
        /// The index read.
        index: i64,
        /// How many symbols the enum has.
        symbols: usize,
    },
    /// The bytes end inside a value.
    #[error("the bytes end inside a {what} value")]
    Truncated {
        /// The kind of value.
        what: &'static str,
    },
    /// A variable-length integer runs over 10 bytes.
    #[error("a variable-length integer runs over 10 bytes")]
    VarintTooLong,
}

/// One schema node, flattened so named types referenced twice (or recursively) are one
/// entry.
#[derive(Debug, Clone)]
enum Node {
    /// `null`: no bytes.
    Null,
    /// `boolean`: one byte.
    Boolean,
    /// `int`, `long` and their logical types: one varint.
    Varint,
    /// `float`, `double`, `fixed`, `duration`: a fixed number of bytes.
    Fixed(usize),
    /// `string`, `bytes` and logical types on them: a length, then the bytes.
    Sized(&'static str),
    /// An enum with this many symbols: a varint index.
    Enum(usize),
    /// An array of the node at this index.
    Array(usize),
    /// A map of the node at this index (keys are strings).
    Map(usize),
    /// A union of the nodes at these indexes.
    Union(Vec<usize>),
    /// A record of the nodes at these indexes, in order.
    Record(Vec<usize>),
}

/// A writer schema compiled for [`DatumBounds::check`]: its nodes, and the fewest bytes
/// a value of each takes.
///
/// Build one per schema and keep it ([`super::PreparedSchema`] does); building walks
/// the schema once.
///
/// ```
/// use event_bus_core::codec::DatumBounds;
/// let schema = apache_avro::Schema::parse_str(r#"{"type": "array", "items": "long"}"#).unwrap();
/// let bounds = DatumBounds::new(&schema)?;
/// assert!(bounds.check(&[4, 2, 4, 0]).is_ok()); // [1, 2]
/// // A million longs claimed in 3 bytes.
/// assert!(bounds.check(&[0x80, 0x89, 0x7a, 2, 0]).is_err());
/// # Ok::<(), event_bus_core::codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DatumBounds {
    nodes: Vec<Node>,
    root: usize,
    min_bytes: Vec<usize>,
    schema: String,
}

impl DatumBounds {
    /// Compiles `schema`; fails when it references a name it does not define.
    ///
    /// See the type's example.
    pub fn new(schema: &Schema) -> Result<Self, CodecError> {
        let mut compiler = Compiler {
            named: HashMap::new(),
            nodes: Vec::new(),
        };
        let root = compiler
            .compile(schema, None)
            .map_err(|name| avro_error("preparing", schema, unresolved(name)))?;
        let min_bytes = min_bytes(&compiler.nodes);
        Ok(Self {
            nodes: compiler.nodes,
            root,
            min_bytes,
            schema: schema_name(schema),
        })
    }

    /// Walks `bytes` as a datum of the schema and refuses what the module lists; reads
    /// nothing past the datum (trailing bytes are the decoder's to report).
    ///
    /// See the type's example.
    pub fn check(&self, bytes: &[u8]) -> Result<(), CodecError> {
        let mut walk = Walk {
            bounds: self,
            bytes,
            pos: 0,
            empty_items: 0,
        };
        walk.value(self.root, 0)
            .map_err(|problem| CodecError::Malformed {
                schema: self.schema.clone(),
                offset: walk.pos,
                problem,
            })
    }
}

/// Checks `bytes` against `schema` once (compiling it first); see [`DatumBounds`].
///
/// ```
/// let schema = apache_avro::Schema::parse_str(r#""string""#).unwrap();
/// assert!(event_bus_core::codec::check_datum(&[4, b'h', b'i'], &schema).is_ok());
/// ```
pub fn check_datum(bytes: &[u8], schema: &Schema) -> Result<(), CodecError> {
    DatumBounds::new(schema)?.check(bytes)
}

fn unresolved(name: Name) -> apache_avro::Error {
    apache_avro::Error::new(apache_avro::error::Details::SchemaResolutionError(name))
}

/// Compiles a schema into nodes. A schema defines each named type before it references
/// it (apache-avro parses them so), and the compiler walks the schema in that order, so
/// every reference finds its type already compiled, or compiling (recursion).
struct Compiler {
    named: HashMap<Name, usize>,
    nodes: Vec<Node>,
}

impl Compiler {
    /// Appends the node of `schema` (and its children); returns its index, or the name
    /// that does not resolve.
    fn compile(&mut self, schema: &Schema, namespace: NamespaceRef) -> Result<usize, Name> {
        let node = match schema {
            Schema::Null => Node::Null,
            Schema::Boolean => Node::Boolean,
            Schema::Int
            | Schema::Long
            | Schema::Date
            | Schema::TimeMillis
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => Node::Varint,
            Schema::Float => Node::Fixed(4),
            Schema::Double => Node::Fixed(8),
            Schema::Bytes
            | Schema::BigDecimal
            | Schema::Uuid(UuidSchema::Bytes)
            | Schema::Decimal(apache_avro::schema::DecimalSchema {
                inner: InnerDecimalSchema::Bytes,
                ..
            }) => Node::Sized("bytes"),
            Schema::String | Schema::Uuid(UuidSchema::String) => Node::Sized("string"),
            Schema::Fixed(fixed)
            | Schema::Duration(fixed)
            | Schema::Uuid(UuidSchema::Fixed(fixed))
            | Schema::Decimal(apache_avro::schema::DecimalSchema {
                inner: InnerDecimalSchema::Fixed(fixed),
                ..
            }) => return self.named(&fixed.name, namespace, |_, _| Ok(Node::Fixed(fixed.size))),
            Schema::Enum(e) => {
                return self.named(&e.name, namespace, |_, _| Ok(Node::Enum(e.symbols.len())))
            }
            Schema::Array(array) => Node::Array(self.compile(&array.items, namespace)?),
            Schema::Map(map) => Node::Map(self.compile(&map.types, namespace)?),
            Schema::Union(union) => Node::Union(
                union
                    .variants()
                    .iter()
                    .map(|variant| self.compile(variant, namespace))
                    .collect::<Result<_, _>>()?,
            ),
            Schema::Record(record) => {
                return self.named(&record.name, namespace, |compiler, inner| {
                    record
                        .fields
                        .iter()
                        .map(|field| compiler.compile(&field.schema, inner))
                        .collect::<Result<_, _>>()
                        .map(Node::Record)
                })
            }
            Schema::Ref { name } => {
                let full = name.fully_qualified_name(namespace);
                return self
                    .named
                    .get(full.as_ref())
                    .copied()
                    .ok_or_else(|| full.into_owned());
            }
        };
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    /// Compiles a named type once: its index is taken before its children are compiled,
    /// so a reference to it from inside (recursion) finds it.
    fn named(
        &mut self,
        name: &Name,
        namespace: NamespaceRef,
        build: impl FnOnce(&mut Self, NamespaceRef) -> Result<Node, Name>,
    ) -> Result<usize, Name> {
        let full = name.fully_qualified_name(namespace).into_owned();
        if let Some(&index) = self.named.get(&full) {
            return Ok(index);
        }
        let index = self.nodes.len();
        self.nodes.push(Node::Null);
        self.named.insert(full.clone(), index);
        self.nodes[index] = build(self, full.namespace())?;
        Ok(index)
    }
}

/// The fewest bytes a value of each node takes: the least fixed point, reached from
/// zero upwards, so a recursive type counts what its shortest finite value takes.
fn min_bytes(nodes: &[Node]) -> Vec<usize> {
    let mut min = vec![0usize; nodes.len()];
    // Each pass raises at least one entry until nothing changes; a node's minimum only
    // depends on others', so passes are bounded by the nodes' count (plus one to see no
    // change). Types that cannot end (a record holding itself) stay at their lower bound.
    for _ in 0..=nodes.len() {
        let mut changed = false;
        for (index, node) in nodes.iter().enumerate() {
            let value = match node {
                Node::Null => 0,
                Node::Boolean | Node::Varint | Node::Sized(_) | Node::Enum(_) => 1,
                Node::Array(_) | Node::Map(_) => 1,
                Node::Fixed(size) => *size,
                Node::Union(branches) => branches
                    .iter()
                    .map(|&b| min[b])
                    .min()
                    .map_or(1, |m| m.saturating_add(1)),
                Node::Record(fields) => fields
                    .iter()
                    .fold(0usize, |sum, &f| sum.saturating_add(min[f])),
            };
            if value != min[index] {
                min[index] = value;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    min
}

/// One pass over a datum.
struct Walk<'a> {
    bounds: &'a DatumBounds,
    bytes: &'a [u8],
    pos: usize,
    empty_items: u64,
}

impl Walk<'_> {
    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn skip(&mut self, len: usize, what: &'static str) -> Result<(), MalformedDatum> {
        if len > self.left() {
            return Err(MalformedDatum::Truncated { what });
        }
        self.pos += len;
        Ok(())
    }

    fn varint(&mut self, what: &'static str) -> Result<i64, MalformedDatum> {
        varint(self.bytes, &mut self.pos, what)
    }

    fn value(&mut self, index: usize, depth: usize) -> Result<(), MalformedDatum> {
        match &self.bounds.nodes[index] {
            Node::Null => Ok(()),
            Node::Boolean => self.skip(1, "boolean"),
            Node::Varint => self.varint("int or long").map(drop),
            Node::Fixed(size) => {
                let size = *size;
                if size > self.left() {
                    return Err(MalformedDatum::LengthBeyondEnd {
                        what: "fixed",
                        claimed: size as u64,
                        left: self.left(),
                    });
                }
                self.pos += size;
                Ok(())
            }
            Node::Sized(what) => self.sized(what),
            Node::Enum(symbols) => {
                let symbols = *symbols;
                let at = self.pos;
                let index = self.varint("enum")?;
                if usize::try_from(index).map_or(true, |i| i >= symbols) {
                    self.pos = at;
                    return Err(MalformedDatum::EnumIndex { index, symbols });
                }
                Ok(())
            }
            Node::Union(branches) => {
                let depth = deeper(depth)?;
                let at = self.pos;
                let index = self.varint("union")?;
                let Some(&branch) = usize::try_from(index).ok().and_then(|i| branches.get(i))
                else {
                    self.pos = at;
                    return Err(MalformedDatum::UnionIndex {
                        index,
                        branches: branches.len(),
                    });
                };
                self.value(branch, depth)
            }
            Node::Record(fields) => {
                let depth = deeper(depth)?;
                fields.iter().try_for_each(|&f| self.value(f, depth))
            }
            Node::Array(items) => self.blocks(*items, 0, deeper(depth)?),
            // A map item is a string key, then the value.
            Node::Map(values) => self.blocks(*values, 1, deeper(depth)?),
        }
    }

    fn sized(&mut self, what: &'static str) -> Result<(), MalformedDatum> {
        let at = self.pos;
        let claimed = self.varint(what)?;
        let Ok(claimed) = u64::try_from(claimed) else {
            self.pos = at;
            return Err(MalformedDatum::NegativeLength { what, claimed });
        };
        let left = self.left();
        match usize::try_from(claimed) {
            Ok(len) if len <= left => {
                self.pos += len;
                Ok(())
            }
            _ => Err(MalformedDatum::LengthBeyondEnd {
                what,
                claimed,
                left,
            }),
        }
    }

    /// The blocks of an array (`key_bytes` 0) or a map (1: each item starts with a
    /// string key, one byte at least).
    fn blocks(
        &mut self,
        item: usize,
        key_bytes: usize,
        depth: usize,
    ) -> Result<(), MalformedDatum> {
        loop {
            let count = self.varint("block count")?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                // A negative count is followed by the block's size in bytes, which
                // apache-avro reads and ignores.
                self.varint("block size")?;
            }
            let min_item_bytes = self.bounds.min_bytes[item].saturating_add(key_bytes);
            let count = block_fits(
                count.unsigned_abs(),
                min_item_bytes,
                self.left(),
                &mut self.empty_items,
            )?;
            for _ in 0..count {
                if key_bytes > 0 {
                    self.sized("string")?;
                }
                self.value(item, depth)?;
            }
        }
    }
}

/// A zigzag varint at `bytes[*pos..]`, read as apache-avro reads it (up to 10 bytes,
/// bits past 64 dropped); `pos` moves past it.
pub(crate) fn varint(
    bytes: &[u8],
    pos: &mut usize,
    what: &'static str,
) -> Result<i64, MalformedDatum> {
    let mut raw = 0u64;
    for shift in (0..70).step_by(7) {
        let Some(&byte) = bytes.get(*pos) else {
            return Err(MalformedDatum::Truncated { what });
        };
        *pos += 1;
        raw |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
        if byte & 0x80 == 0 {
            let magnitude = (raw >> 1) as i64;
            return Ok(if raw & 1 == 0 { magnitude } else { !magnitude });
        }
    }
    Err(MalformedDatum::VarintTooLong)
}

/// Checks an array or map block of `count` items, each at least `min_item_bytes`,
/// against the `left` bytes; items that take no bytes add to `empty_items`, bounded by
/// [`MAX_EMPTY_ITEMS`]. The count, which then fits in memory, is returned.
pub(crate) fn block_fits(
    count: u64,
    min_item_bytes: usize,
    left: usize,
    empty_items: &mut u64,
) -> Result<usize, MalformedDatum> {
    if min_item_bytes == 0 {
        *empty_items = empty_items.saturating_add(count);
        if *empty_items > MAX_EMPTY_ITEMS {
            return Err(MalformedDatum::TooManyEmptyItems {
                count: *empty_items,
                limit: MAX_EMPTY_ITEMS,
            });
        }
        // At most MAX_EMPTY_ITEMS.
        return Ok(count as usize);
    }
    match usize::try_from(count) {
        Ok(n)
            if n.checked_mul(min_item_bytes)
                .is_some_and(|needed| needed <= left) =>
        {
            Ok(n)
        }
        _ => Err(MalformedDatum::BlockBeyondEnd {
            count,
            min_item_bytes,
            left,
        }),
    }
}

fn deeper(depth: usize) -> Result<usize, MalformedDatum> {
    if depth >= MAX_DEPTH {
        return Err(MalformedDatum::TooDeep { limit: MAX_DEPTH });
    }
    Ok(depth + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_by_short_and_full_name_across_namespaces() {
        let schema = Schema::parse_str(
            r#"{"type": "record", "name": "Outer", "namespace": "a.b", "fields": [
                {"name": "first", "type": {"type": "record", "name": "Inner", "fields": [
                    {"name": "s", "type": "string"}]}},
                {"name": "second", "type": "Inner"},
                {"name": "third", "type": ["null", "a.b.Inner"]},
                {"name": "fourth", "type": {"type": "record", "name": "Other", "namespace": "c",
                    "fields": [{"name": "back", "type": "a.b.Inner"}]}}
            ]}"#,
        )
        .expect("schema");
        let bounds = DatumBounds::new(&schema).expect("compiles");
        // first "x", second "y", third Inner "z", fourth.back "w".
        let datum = [2, b'x', 2, b'y', 2, 2, b'z', 2, b'w'];
        bounds.check(&datum).expect("valid");
        // The last string claims 2 bytes with 1 left.
        let err = bounds
            .check(&[2, b'x', 2, b'y', 0, 4, b'w'])
            .expect_err("beyond the end");
        assert!(
            matches!(
                err,
                CodecError::Malformed {
                    offset: 6,
                    problem: MalformedDatum::LengthBeyondEnd {
                        claimed: 2,
                        left: 1,
                        ..
                    },
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn the_fewest_bytes_of_a_recursive_type_is_its_shortest_value() {
        let schema = Schema::parse_str(
            r#"{"type": "record", "name": "Node", "fields": [
                {"name": "n", "type": "int"},
                {"name": "kids", "type": {"type": "array", "items": "Node"}},
                {"name": "nothing", "type": "null"}]}"#,
        )
        .expect("schema");
        let bounds = DatumBounds::new(&schema).expect("compiles");
        // Node: n (1) + kids (1, the empty array's end) + null (0).
        assert_eq!(bounds.min_bytes[bounds.root], 2);
    }
}
