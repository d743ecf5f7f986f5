//! A Kafka record's headers as (name, value) pairs, read straight from librdkafka so a
//! header name that is not UTF-8 cannot stop the process.
//!
//! Kafka header names are meant to be UTF-8 strings, but the protocol carries bytes
//! and some clients (Go's, C's) let any bytes through. rdkafka 0.39's `Headers::iter`
//! and `try_get` turn a name into `&str` with an `unwrap`, so one such record panics
//! the consumer, and again after every restart. Here a name that is not UTF-8 is read
//! lossily (each bad sequence becomes U+FFFD); values stay the bytes they were.
//!
//! ```
//! use rdkafka::message::{Header, OwnedHeaders};
//! use event_bus_kafka::record_headers::header_pairs;
//! let headers = OwnedHeaders::new().insert(Header { key: "ce_type", value: Some("t") });
//! let pairs = header_pairs(headers.as_borrowed());
//! assert_eq!(pairs[0].0, "ce_type");
//! assert_eq!(pairs[0].1, Some(&b"t"[..]));
//! ```

use std::borrow::Cow;
use std::ffi::CStr;

use rdkafka::bindings as rdsys;
use rdkafka::message::{BorrowedHeaders, Headers, Message, OwnedHeaders};

/// One header: its name (lossy when not UTF-8) and its value (`None` for a null value).
///
/// See the module's example.
pub type HeaderPair<'a> = (Cow<'a, str>, Option<&'a [u8]>);

/// Header lists this module reads: a consumer's borrowed ones and the owned ones of a
/// detached message. Sealed: only rdkafka's two header types implement it.
///
/// ```
/// use event_bus_kafka::record_headers::NativeHeaders;
/// use rdkafka::message::OwnedHeaders;
/// assert_eq!(OwnedHeaders::new().borrowed().count(), 0);
/// # use rdkafka::message::Headers;
/// ```
pub trait NativeHeaders: sealed::Sealed {
    /// The list as rdkafka's borrowed view.
    ///
    /// See the trait's example.
    fn borrowed(&self) -> &BorrowedHeaders;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for rdkafka::message::BorrowedHeaders {}
    impl Sealed for rdkafka::message::OwnedHeaders {}
}

impl NativeHeaders for BorrowedHeaders {
    fn borrowed(&self) -> &BorrowedHeaders {
        self
    }
}

impl NativeHeaders for OwnedHeaders {
    fn borrowed(&self) -> &BorrowedHeaders {
        self.as_borrowed()
    }
}

/// The headers of `message` as owned pairs, in record order (none: empty).
///
/// ```
/// use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};
/// use event_bus_kafka::record_headers::owned_header_pairs;
/// let headers = OwnedHeaders::new().insert(Header { key: "k", value: None::<&[u8]> });
/// let message = OwnedMessage::new(None, None, "t".into(), Timestamp::NotAvailable, 0, 0, Some(headers));
/// assert_eq!(owned_header_pairs(&message), vec![("k".to_string(), None)]);
/// ```
pub fn owned_header_pairs<M>(message: &M) -> Vec<(String, Option<Vec<u8>>)>
where
    M: Message,
    M::Headers: NativeHeaders,
{
    message
        .headers()
        .map(|headers| {
            header_pairs(headers.borrowed())
                .into_iter()
                .map(|(name, value)| (name.into_owned(), value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default()
}

/// The headers in record order, names that are not UTF-8 included (lossily).
///
/// See the module's example.
pub fn header_pairs(headers: &BorrowedHeaders) -> Vec<HeaderPair<'_>> {
    // rdkafka hands out `&BorrowedHeaders` as the address of librdkafka's
    // `rd_kafka_headers_t` itself (it casts the pointer both ways), so the address is
    // the native handle; the test below checks that this still holds.
    let native = std::ptr::from_ref(headers).cast::<rdsys::rd_kafka_headers_t>();
    let count = headers.count();
    // Sized up front: a consumer reads every record's headers (ten of the SDK's own).
    let mut pairs = Vec::with_capacity(count);
    for index in 0..count {
        let mut name = std::ptr::null();
        let mut value = std::ptr::null();
        let mut size = 0;
        // SAFETY: `native` is a live header list for as long as `headers` is borrowed,
        // `index` is below its count, and the out pointers are valid.
        let status = unsafe {
            rdsys::rd_kafka_header_get_all(native, index, &mut name, &mut value, &mut size)
        };
        if status != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            continue;
        }
        // SAFETY: librdkafka keeps each name NUL-terminated and each value `size` bytes
        // long, owned by the list, so both live as long as `headers`.
        let name = unsafe { CStr::from_ptr(name) }.to_bytes();
        let value = (!value.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) });
        // Borrowed when the name is UTF-8, as it nearly always is (checked first:
        // `from_utf8_lossy` walks the bytes more slowly).
        let name = match event_bus_core::headers::utf8_text(name) {
            Some(text) => Cow::Borrowed(text),
            None => String::from_utf8_lossy(name),
        };
        pairs.push((name, value));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Header;

    /// Adds a header whose name is arbitrary bytes, as a non-Rust client can.
    fn with_raw_name(headers: &OwnedHeaders, name: &[u8], value: &[u8]) {
        let native = std::ptr::from_ref(headers.as_borrowed())
            .cast::<rdsys::rd_kafka_headers_t>()
            .cast_mut();
        // SAFETY: the list is alive and not read meanwhile; librdkafka copies the
        // name (of the given length) and the value.
        let status = unsafe {
            rdsys::rd_kafka_header_add(
                native,
                name.as_ptr().cast(),
                name.len() as isize,
                value.as_ptr().cast(),
                value.len() as isize,
            )
        };
        assert_eq!(
            status,
            rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        );
    }

    #[test]
    fn reads_what_rdkafka_reads() {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "ce_id",
                value: Some("8c6d3f0e-2a63-4f64-9f53-4b4a9f6a0c11"),
            })
            .insert(Header {
                key: "empty",
                value: None::<&[u8]>,
            })
            .insert(Header {
                key: "bin",
                value: Some(&[0xff_u8, 0x00, 0xfe][..]),
            });
        let ours = header_pairs(headers.as_borrowed());
        let theirs: Vec<_> = headers
            .iter()
            .map(|h| (Cow::Borrowed(h.key), h.value))
            .collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn a_name_that_is_not_utf8_is_read_lossily_and_the_rest_stays() {
        let headers = OwnedHeaders::new().insert(Header {
            key: "ce_type",
            value: Some("t"),
        });
        with_raw_name(&headers, b"x-\xff\xfe", b"v");
        let pairs = header_pairs(headers.as_borrowed());
        assert_eq!(
            pairs,
            vec![
                (Cow::Borrowed("ce_type"), Some(&b"t"[..])),
                (Cow::Owned("x-\u{fffd}\u{fffd}".to_owned()), Some(&b"v"[..])),
            ]
        );
        // What rdkafka itself does with it.
        let panicked = std::panic::catch_unwind(|| headers.iter().count()).is_err();
        assert!(panicked, "rdkafka's own iterator panics on such a name");
    }
}
