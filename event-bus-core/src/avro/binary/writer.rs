//! Avro binary primitives written straight into a byte buffer.

/// Appends an Avro `long` (zigzag, then 7 bits a byte, low bits first).
///
/// ```
/// let mut out = Vec::new();
/// event_bus_core::avro::binary::write_long(&mut out, 123);
/// event_bus_core::avro::binary::write_long(&mut out, -1);
/// assert_eq!(out, vec![0xf6, 0x01, 0x01]);
/// ```
#[inline]
pub fn write_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    if z < 0x80 {
        out.push(z as u8);
        return;
    }
    let mut buf = [0u8; 10];
    let mut len = 0;
    while z >= 0x80 {
        buf[len] = (z as u8) | 0x80;
        z >>= 7;
        len += 1;
    }
    buf[len] = z as u8;
    out.extend_from_slice(&buf[..=len]);
}

/// Appends an Avro `bytes` or `string` value: its length as a `long`, then the bytes.
///
/// ```
/// let mut out = Vec::new();
/// event_bus_core::avro::binary::write_bytes(&mut out, b"hi");
/// assert_eq!(out, vec![4, b'h', b'i']);
/// ```
#[inline]
pub fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_long(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}
