//! W3C trace context (`traceparent`, `tracestate`) carried from producer to consumer.
//!
//! A trace crosses services like this:
//!
//! - **Produce.** An event whose metadata already has a `traceparent` (set by the caller,
//!   as a service with its own tracing does) is sent with it unchanged: it names the
//!   producing span. Otherwise, when a trace is active here ([`current`]), the encoder
//!   writes a *child* of it: same trace id, a new span id, which is the id of the
//!   `event_bus.produce` span. No active trace, no header.
//! - **Consume.** Each record gets an `event_bus.consume` span. When the record carries a
//!   `traceparent`, the span's context is a child of it: same trace id, the producer's
//!   span id as `parent_id`, a new `span_id`. While the receivers run, that context is
//!   [`current`], so an event they publish continues the trace. Their
//!   `DeliveryContext.metadata.traceparent` stays the producer's (what was received).
//!
//! Spans carry the ids as fields (`trace_id`, `span_id`, `parent_id`, `traceparent`) so
//! any `tracing` subscriber can show or export them; [`TraceContextLayer`] lets a span
//! created by the application (e.g. `info_span!("request", traceparent = %incoming)`)
//! become the current trace context. Without a subscriber nothing is recorded, and the
//! only per-event work is reading a header and drawing a random span id when a record
//! carries a trace.
//!
//! ```
//! use event_bus_kafka::observability::trace::{self, TraceContext};
//!
//! let parent = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?;
//! let child = parent.child();
//! assert_eq!(child.trace_id(), parent.trace_id());
//! assert_ne!(child.span_id(), parent.span_id());
//!
//! // Inside `scope`, the context is the current one (what a produce call inherits).
//! let seen = child.clone().sync_scope(trace::current);
//! assert_eq!(seen, Some(child));
//! assert_eq!(trace::current(), None);
//! # Ok::<(), trace::TraceparentError>(())
//! ```

use std::fmt;
use std::future::Future;

use event_bus_core::EventMetadata;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The header and span field holding the W3C trace parent.
pub const TRACEPARENT: &str = "traceparent";
/// The header holding the W3C vendor trace state.
pub const TRACESTATE: &str = "tracestate";

tokio::task_local! {
    static CURRENT: Option<TraceContext>;
}

/// A 16-byte W3C trace id, shown as 32 lowercase hex digits.
///
/// ```
/// use event_bus_kafka::observability::trace::TraceContext;
/// let ctx = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?;
/// assert_eq!(ctx.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// # Ok::<(), event_bus_kafka::observability::trace::TraceparentError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(u128);

impl TraceId {
    /// The id as a number.
    ///
    /// ```
    /// use event_bus_kafka::observability::trace::TraceContext;
    /// let ctx = TraceContext::parse("00-000000000000000000000000000000ff-00f067aa0ba902b7-01")?;
    /// assert_eq!(ctx.trace_id().as_u128(), 255);
    /// # Ok::<(), event_bus_kafka::observability::trace::TraceparentError>(())
    /// ```
    pub fn as_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// An 8-byte W3C span (parent) id, shown as 16 lowercase hex digits.
///
/// ```
/// use event_bus_kafka::observability::trace::TraceContext;
/// let ctx = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?;
/// assert_eq!(ctx.span_id().to_string(), "00f067aa0ba902b7");
/// # Ok::<(), event_bus_kafka::observability::trace::TraceparentError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(u64);

impl SpanId {
    /// The id as a number.
    ///
    /// ```
    /// use event_bus_kafka::observability::trace::TraceContext;
    /// let ctx = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000010-01")?;
    /// assert_eq!(ctx.span_id().as_u64(), 16);
    /// # Ok::<(), event_bus_kafka::observability::trace::TraceparentError>(())
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Why a `traceparent` value was refused.
///
/// ```
/// use event_bus_kafka::observability::trace::{TraceContext, TraceparentError};
/// let err = TraceContext::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01").unwrap_err();
/// assert!(matches!(err, TraceparentError::ZeroId { .. }));
/// assert!(err.to_string().contains("trace id"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceparentError {
    /// Not `version-traceid-spanid-flags` with the W3C lengths and lowercase hex.
    #[error("`{value}` is not a W3C traceparent (expected 00-<32 hex>-<16 hex>-<2 hex>)")]
    Malformed {
        /// The refused value (a trace id is not secret).
        value: String,
    },
    /// Version `ff` is forbidden by the W3C spec.
    #[error("traceparent version ff is invalid")]
    InvalidVersion,
    /// An all-zero id is invalid.
    #[error("the {which} of traceparent `{value}` is all zeros")]
    ZeroId {
        /// `trace id` or `parent id`.
        which: &'static str,
        /// The refused value.
        value: String,
    },
}

/// One span's W3C trace context: trace id, span id, flags and vendor trace state.
///
/// ```
/// use event_bus_kafka::observability::trace::TraceContext;
/// let root = TraceContext::new_root();
/// assert!(root.is_sampled());
/// let text = root.traceparent();
/// assert_eq!(TraceContext::parse(&text)?, root);
/// # Ok::<(), event_bus_kafka::observability::trace::TraceparentError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: TraceId,
    span_id: SpanId,
    flags: u8,
    state: Option<String>,
}

const SAMPLED: u8 = 0x01;

impl TraceContext {
    /// Parses a `traceparent` header value. Versions above `00` are read as `00` (the
    /// spec's forward compatibility); unknown flag bits are kept.
    ///
    /// See the type's example.
    pub fn parse(traceparent: &str) -> Result<Self, TraceparentError> {
        let value = traceparent.trim();
        let malformed = || TraceparentError::Malformed {
            value: value.chars().take(128).collect(),
        };
        let bytes = value.as_bytes();
        if !value.is_ascii()
            || bytes.len() < 55
            || bytes[2] != b'-'
            || bytes[35] != b'-'
            || bytes[52] != b'-'
        {
            return Err(malformed());
        }
        let version = hex_field(&value[0..2]).ok_or_else(malformed)?;
        if version == 0xff {
            return Err(TraceparentError::InvalidVersion);
        }
        // Version 00 is exactly 55 characters; later versions may append `-…`.
        if (version == 0 && bytes.len() != 55) || (bytes.len() > 55 && bytes[55] != b'-') {
            return Err(malformed());
        }
        let trace_id = hex_field(&value[3..35]).ok_or_else(malformed)?;
        let span_id = hex_field(&value[36..52]).ok_or_else(malformed)?;
        let flags = hex_field(&value[53..55]).ok_or_else(malformed)?;
        if trace_id == 0 {
            return Err(TraceparentError::ZeroId {
                which: "trace id",
                value: value.to_owned(),
            });
        }
        if span_id == 0 {
            return Err(TraceparentError::ZeroId {
                which: "parent id",
                value: value.to_owned(),
            });
        }
        Ok(Self {
            trace_id: TraceId(trace_id),
            span_id: SpanId(span_id as u64),
            flags: flags as u8,
            state: None,
        })
    }

    /// The context of `metadata` (`traceparent` and `tracestate`), if it has a valid one.
    ///
    /// ```
    /// use event_bus_core::EventMetadata;
    /// use event_bus_kafka::observability::trace::TraceContext;
    /// let mut meta = EventMetadata::new("org.example.a.b.created.v1");
    /// assert!(TraceContext::from_metadata(&meta).is_none());
    /// meta.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
    /// meta.tracestate = Some("vendor=1".into());
    /// let ctx = TraceContext::from_metadata(&meta).unwrap();
    /// assert_eq!(ctx.state(), Some("vendor=1"));
    /// ```
    pub fn from_metadata(metadata: &EventMetadata) -> Option<Self> {
        let parent = metadata.traceparent.as_deref()?;
        Self::parse(parent)
            .ok()
            .map(|ctx| ctx.with_state(metadata.tracestate.clone()))
    }

    /// A new trace: random trace and span ids, sampled.
    ///
    /// ```
    /// use event_bus_kafka::observability::trace::TraceContext;
    /// assert_ne!(TraceContext::new_root().trace_id(), TraceContext::new_root().trace_id());
    /// ```
    pub fn new_root() -> Self {
        Self {
            trace_id: TraceId(fastrand::u128(1..)),
            span_id: SpanId(fastrand::u64(1..)),
            flags: SAMPLED,
            state: None,
        }
    }

    /// A child span's context: the same trace, flags and state, a new random span id.
    ///
    /// See the module example.
    pub fn child(&self) -> Self {
        let mut span_id = fastrand::u64(1..);
        while span_id == self.span_id.0 {
            span_id = fastrand::u64(1..);
        }
        Self {
            trace_id: self.trace_id,
            span_id: SpanId(span_id),
            flags: self.flags,
            state: self.state.clone(),
        }
    }

    /// The same context with vendor trace state `state` (`tracestate`).
    ///
    /// ```
    /// use event_bus_kafka::observability::trace::TraceContext;
    /// let ctx = TraceContext::new_root().with_state(Some("congo=t61rcWkgMzE".into()));
    /// assert_eq!(ctx.state(), Some("congo=t61rcWkgMzE"));
    /// ```
    pub fn with_state(mut self, state: Option<String>) -> Self {
        self.state = state.filter(|s| !s.trim().is_empty());
        self
    }

    /// The trace id.
    ///
    /// See [`TraceId`].
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// This span's id.
    ///
    /// See [`SpanId`].
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// The trace flags byte (bit 0: sampled).
    ///
    /// ```
    /// use event_bus_kafka::observability::trace::TraceContext;
    /// let ctx = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?;
    /// assert_eq!(ctx.flags(), 0);
    /// assert!(!ctx.is_sampled());
    /// # Ok::<(), event_bus_kafka::observability::trace::TraceparentError>(())
    /// ```
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the caller recorded this trace (flag bit 0).
    ///
    /// See [`TraceContext::flags`].
    pub fn is_sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// The vendor trace state, if any.
    ///
    /// See [`TraceContext::with_state`].
    pub fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }

    /// The `traceparent` header value, version `00`.
    ///
    /// ```
    /// use event_bus_kafka::observability::trace::TraceContext;
    /// let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// assert_eq!(TraceContext::parse(text)?.traceparent(), text);
    /// # Ok::<(), event_bus_kafka::observability::trace::TraceparentError>(())
    /// ```
    pub fn traceparent(&self) -> String {
        self.to_string()
    }

    /// Writes this context into `metadata` (`traceparent`, and `tracestate` when set).
    ///
    /// ```
    /// use event_bus_core::EventMetadata;
    /// use event_bus_kafka::observability::trace::TraceContext;
    /// let ctx = TraceContext::new_root();
    /// let mut meta = EventMetadata::new("org.example.a.b.created.v1");
    /// ctx.write_to(&mut meta);
    /// assert_eq!(meta.traceparent, Some(ctx.traceparent()));
    /// ```
    pub fn write_to(&self, metadata: &mut EventMetadata) {
        metadata.traceparent = Some(self.traceparent());
        if self.state.is_some() {
            metadata.tracestate = self.state.clone();
        }
    }

    /// Runs `future` with this context as the [`current`] one (for events it publishes).
    ///
    /// The returned future holds `future` once (an `async fn` would hold it twice: its
    /// argument and the awaited scope), which matters to the consumer: its per-record
    /// future is built around this one.
    ///
    /// ```
    /// use event_bus_kafka::observability::trace::{self, TraceContext};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ctx = TraceContext::new_root();
    /// let seen = ctx.clone().scope(async { trace::current() }).await;
    /// assert_eq!(seen, Some(ctx));
    /// # }
    /// ```
    pub fn scope<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(Some(self), future)
    }

    /// Runs `f` with this context as the [`current`] one.
    ///
    /// See the module example.
    pub fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(Some(self), f)
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

impl std::str::FromStr for TraceContext {
    type Err = TraceparentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Lowercase hex only (the spec forbids uppercase).
fn hex_field(text: &str) -> Option<u128> {
    if text
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        u128::from_str_radix(text, 16).ok()
    } else {
        None
    }
}

/// The trace context events published here continue: the innermost `tracing` span with
/// a context (see [`TraceContextLayer`]), else the one set by [`TraceContext::scope`]
/// (the consumer sets it around its receivers), else none.
///
/// See the module example.
pub fn current() -> Option<TraceContext> {
    from_current_span().or_else(|| CURRENT.try_with(Clone::clone).ok().flatten())
}

/// The `traceparent` of a new child of `parent` (same trace, new span id), or `None`
/// when `parent` is not a valid `traceparent`. A receiver that calls another service
/// over HTTP sends this.
///
/// ```
/// use event_bus_kafka::observability::child_traceparent;
/// let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let child = child_traceparent(parent).unwrap();
/// assert!(child.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
/// assert!(!child.contains("00f067aa0ba902b7"));
/// assert_eq!(child_traceparent("nonsense"), None);
/// ```
pub fn child_traceparent(parent: &str) -> Option<String> {
    TraceContext::parse(parent)
        .ok()
        .map(|ctx| ctx.child().traceparent())
}

/// Gives `metadata` a child of the [`current`] trace context unless it has a
/// `traceparent` already (the caller's own, sent unchanged). The producer's encoder
/// calls it for every event.
///
/// ```
/// use event_bus_core::EventMetadata;
/// use event_bus_kafka::observability::trace::{self, TraceContext};
/// let parent = TraceContext::new_root();
/// let mut meta = EventMetadata::new("org.example.a.b.created.v1");
/// parent.clone().sync_scope(|| trace::inject_current(&mut meta));
/// let sent = TraceContext::from_metadata(&meta).unwrap();
/// assert_eq!(sent.trace_id(), parent.trace_id());
/// assert_ne!(sent.span_id(), parent.span_id());
///
/// let mut untraced = EventMetadata::new("org.example.a.b.created.v1");
/// trace::inject_current(&mut untraced);
/// assert_eq!(untraced.traceparent, None);
/// ```
pub fn inject_current(metadata: &mut EventMetadata) {
    if metadata.traceparent.is_some() {
        return;
    }
    if let Some(parent) = current() {
        parent.child().write_to(metadata);
    }
}

fn from_current_span() -> Option<TraceContext> {
    tracing::Span::current()
        .with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
            let span = registry.span(id)?;
            span.scope()
                .find_map(|s| s.extensions().get::<TraceContext>().cloned())
        })
        .flatten()
}

/// A `tracing_subscriber` layer that remembers the trace context of every span with a
/// valid `traceparent` field (and `tracestate`, if recorded), so [`current`] finds it
/// from inside the span. The SDK's own `event_bus.consume` spans record one; so can an
/// application's span for an incoming request. Works with the `Registry` subscriber.
///
/// ```
/// use event_bus_kafka::observability::trace::{self, TraceContextLayer};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let subscriber = tracing_subscriber::registry().with(TraceContextLayer::default());
/// tracing::subscriber::with_default(subscriber, || {
///     let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
///     let span = tracing::info_span!("request", traceparent = incoming);
///     let _entered = span.enter();
///     let ctx = trace::current().expect("from the span");
///     assert_eq!(ctx.traceparent(), incoming);
/// });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextLayer {
    _private: (),
}

impl<S> Layer<S> for TraceContextLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().fields().field(TRACEPARENT).is_none() {
            return;
        }
        let mut visitor = TraceFields::default();
        attrs.record(&mut visitor);
        store(&visitor, id, &ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut visitor = TraceFields::default();
        values.record(&mut visitor);
        store(&visitor, id, &ctx);
    }
}

/// Merges recorded fields into the span's context: `traceparent` and `tracestate` may
/// be recorded together or one at a time, in either order.
fn store<S>(fields: &TraceFields, id: &Id, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if fields.traceparent.is_none() && fields.tracestate.is_none() {
        return;
    }
    let Some(span) = ctx.span(id) else {
        return;
    };
    let mut extensions = span.extensions_mut();
    let parsed = fields
        .traceparent
        .as_deref()
        .and_then(|t| TraceContext::parse(t).ok());
    match (parsed, fields.tracestate.clone()) {
        (Some(parsed), state) => {
            let state = state
                .or_else(|| extensions.remove::<PendingState>().map(|p| p.0))
                .or_else(|| {
                    extensions
                        .get_mut::<TraceContext>()
                        .and_then(|c| c.state.clone())
                });
            extensions.replace(parsed.with_state(state));
        }
        (None, Some(state)) => match extensions.get_mut::<TraceContext>() {
            Some(context) => context.state = Some(state).filter(|s| !s.trim().is_empty()),
            None => {
                extensions.replace(PendingState(state));
            }
        },
        (None, None) => {}
    }
}

/// A `tracestate` recorded before its span's `traceparent`.
struct PendingState(String);

#[derive(Default)]
struct TraceFields {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Visit for TraceFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            TRACEPARENT => self.traceparent = Some(value.to_owned()),
            TRACESTATE => self.tracestate = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if matches!(field.name(), TRACEPARENT | TRACESTATE) {
            // `%value` arrives here as a Display wrapper; its Debug is the text itself.
            self.record_str(field, &format!("{value:?}"));
        }
    }
}

/// The first value of header `name` as UTF-8.
pub(crate) fn header_text<'a, N: AsRef<str>>(
    headers: &[(N, Option<&'a [u8]>)],
    name: &str,
) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.as_ref() == name)
        .and_then(|(_, value)| std::str::from_utf8((*value)?).ok())
}

/// The span of one consumed record and the context its receivers run in: a child of the
/// record's `traceparent`, when it has a valid one.
pub(crate) fn consume_span(
    topic: &str,
    partition: i32,
    offset: i64,
    headers: &[(impl AsRef<str>, Option<&[u8]>)],
    key: impl FnOnce() -> String,
    group: &str,
) -> (tracing::Span, Option<TraceContext>) {
    let parent = header_text(headers, TRACEPARENT).and_then(|t| TraceContext::parse(t).ok());
    let context = parent.as_ref().map(|parent| {
        parent
            .child()
            .with_state(header_text(headers, TRACESTATE).map(str::to_owned))
    });
    let span = tracing::info_span!(
        "event_bus.consume",
        otel.kind = "consumer",
        messaging.system = "kafka",
        topic,
        partition,
        offset,
        group,
        ce_id = header_text(headers, "ce_id").unwrap_or(""),
        ce_type = header_text(headers, "ce_type").unwrap_or(""),
        key = %key(),
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        parent_id = tracing::field::Empty,
        traceparent = tracing::field::Empty,
        tracestate = tracing::field::Empty,
    );
    if let (Some(parent), Some(context)) = (&parent, &context) {
        if !span.is_disabled() {
            span.record("trace_id", tracing::field::display(context.trace_id()));
            span.record("span_id", tracing::field::display(context.span_id()));
            span.record("parent_id", tracing::field::display(parent.span_id()));
            if let Some(state) = context.state() {
                span.record(TRACESTATE, state);
            }
            span.record(TRACEPARENT, context.traceparent());
        }
    }
    (span, context)
}

/// The span of one produced record. The record's `traceparent` (if any) names the
/// producing span, so its span id is this span's; `parent_id` is the current context's
/// span when the encoder derived the record's context from it.
pub(crate) fn produce_span(record: crate::producer::RecordLabels<'_>) -> tracing::Span {
    let span = tracing::info_span!(
        "event_bus.produce",
        otel.kind = "producer",
        messaging.system = "kafka",
        topic = %record.topic,
        partition = tracing::field::Empty,
        offset = tracing::field::Empty,
        ce_id = %record.event_id,
        ce_type = %record.event_type,
        key = %record.key,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        parent_id = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let sent = record.traceparent.and_then(|t| TraceContext::parse(t).ok());
    if let Some(sent) = sent {
        span.record("trace_id", tracing::field::display(sent.trace_id()));
        span.record("span_id", tracing::field::display(sent.span_id()));
        let parent =
            current().filter(|p| p.trace_id() == sent.trace_id() && p.span_id() != sent.span_id());
        if let Some(parent) = parent {
            span.record("parent_id", tracing::field::display(parent.span_id()));
        }
    }
    span
}

/// Records where a produced event landed on its produce span.
pub(crate) fn record_delivery(span: &tracing::Span, partition: i32, offset: i64) {
    span.record("partition", partition);
    span.record("offset", offset);
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_formats_the_spec_example() {
        let ctx = TraceContext::parse(VALID).expect("valid");
        assert_eq!(
            ctx.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(ctx.span_id().to_string(), "00f067aa0ba902b7");
        assert!(ctx.is_sampled());
        assert_eq!(ctx.to_string(), VALID);
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        ] {
            assert!(TraceContext::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn accepts_a_future_version_with_more_fields() {
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-whatever";
        let ctx = TraceContext::parse(future).expect("forward compatible");
        assert_eq!(ctx.to_string(), VALID);
    }

    #[test]
    fn a_child_keeps_trace_flags_and_state() {
        let parent = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
            .expect("valid")
            .with_state(Some("a=1".into()));
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.span_id(), parent.span_id());
        assert_eq!(child.flags(), 0);
        assert_eq!(child.state(), Some("a=1"));
    }

    #[test]
    fn explicit_metadata_is_never_overwritten() {
        let mut meta = EventMetadata::new("org.example.a.b.created.v1");
        meta.traceparent = Some(VALID.into());
        TraceContext::new_root().sync_scope(|| inject_current(&mut meta));
        assert_eq!(meta.traceparent.as_deref(), Some(VALID));
    }

    #[test]
    fn consume_span_context_is_a_child_of_the_header() {
        let headers: Vec<(&str, Option<&[u8]>)> = vec![
            ("ce_id", Some(b"id".as_slice())),
            (TRACEPARENT, Some(VALID.as_bytes())),
            (TRACESTATE, Some(b"v=2".as_slice())),
        ];
        let (_span, ctx) = consume_span("t", 0, 1, &headers, String::new, "g");
        let ctx = ctx.expect("context");
        assert_eq!(
            ctx.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_ne!(ctx.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(ctx.state(), Some("v=2"));
        let (_span, none) = consume_span("t", 0, 1, &headers[..1], String::new, "g");
        assert!(none.is_none());
    }
}
