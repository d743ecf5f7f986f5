//! Faults a test can switch on at run time: the registry then answers as an outage, a
//! rate limit, a credential problem or a misconfigured proxy would, instead of serving.
//!
//! The switch sits in front of every route, so any request (a schema lookup, a
//! registration, a compatibility check) gets the fault while it is on, and every request
//! is counted, faulty or not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::media::RegistryJson;

/// The page a [`Fault::HtmlPage`] answers with.
const HTML_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\
<body><h1>Sign in to continue</h1><form method=\"post\" action=\"/login\">\
<input name=\"user\"><input name=\"password\" type=\"password\"></form></body></html>\n";

/// The page a [`Fault::NotFoundPage`] answers with.
const NOT_FOUND_PAGE: &str = "<html><head><title>404 Not Found</title></head>\
<body><center><h1>404 Not Found</h1></center><hr><center>nginx</center></body></html>\n";

fn html(status: StatusCode, page: &'static str) -> Response {
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        page,
    )
        .into_response()
}

/// How the registry answers a request while a fault is on.
///
/// The 401, 429 and 503 answers carry the registry's own JSON body
/// (`{"error_code", "message"}`, the code being the HTTP status, as Confluent's REST
/// layer writes errors that are not its own); the other two are HTML pages. None of
/// them is a verdict on the request: a client should wait and ask again.
///
/// # Example
///
/// ```
/// use event_bus_testkit::registry::Fault;
///
/// assert_eq!(Fault::Unauthorized.http_status(), 401);
/// assert_eq!(Fault::TooManyRequests.http_status(), 429);
/// assert_eq!(Fault::Unavailable.http_status(), 503);
/// // A proxy's sign-in page: 200, but HTML instead of the registry's JSON.
/// assert_eq!(Fault::HtmlPage.http_status(), 200);
/// assert_eq!(Fault::NotFoundPage.http_status(), 404);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// 401 `{"error_code":401,"message":"Unauthorized"}`: credentials missing, wrong or
    /// expired.
    Unauthorized,
    /// 429 `{"error_code":429,"message":"Too Many Requests"}`: a rate limit.
    TooManyRequests,
    /// 503 `{"error_code":503,"message":"Service Unavailable"}`: the registry (or the
    /// load balancer in front of it) cannot serve now.
    Unavailable,
    /// 200 with a `text/html` page: what a misconfigured proxy answers (a sign-in or
    /// maintenance page) in place of the registry.
    HtmlPage,
    /// 404 with a `text/html` page: a proxy or load balancer that does not know the
    /// path (a registry URL with a wrong base path). Not the registry's "not found":
    /// there is no `error_code` in it.
    NotFoundPage,
}

impl Fault {
    /// The HTTP status of the answer.
    ///
    /// See the type's example.
    pub fn http_status(self) -> u16 {
        self.status().as_u16()
    }

    fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::HtmlPage => StatusCode::OK,
            Self::NotFoundPage => StatusCode::NOT_FOUND,
        }
    }

    fn response(self) -> Response {
        let status = self.status();
        match self {
            Self::HtmlPage => html(status, HTML_PAGE),
            Self::NotFoundPage => html(status, NOT_FOUND_PAGE),
            _ => RegistryJson(
                status,
                json!({
                    "error_code": status.as_u16(),
                    "message": status.canonical_reason().unwrap_or("Error"),
                }),
            )
            .into_response(),
        }
    }
}

/// How long a fault lasts.
#[derive(Debug, Clone, Copy)]
enum Remaining {
    /// For this many more requests.
    Requests(u64),
    /// Until [`RegistryFaults::clear`].
    UntilCleared,
}

#[derive(Debug, Default)]
struct Switch {
    fault: Mutex<Option<(Fault, Remaining)>>,
    requests: AtomicU64,
    faulted: AtomicU64,
}

/// The fault switch and request counters of an
/// [`EmbeddedRegistry`](super::EmbeddedRegistry) (from its
/// [`faults`](super::EmbeddedRegistry::faults)). Clones share the same switch.
///
/// # Example
///
/// ```
/// use event_bus_testkit::registry::{EmbeddedRegistry, Fault};
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let registry = EmbeddedRegistry::start().await?;
///     let faults = registry.faults();
///     // The next two requests get 503, the third is served.
///     faults.fail_next(Fault::Unavailable, 2);
///     let url = format!("{}/subjects", registry.url());
///     for expected in [503, 503, 200] {
///         let status = reqwest::get(&url).await?.status().as_u16();
///         assert_eq!(status, expected);
///     }
///     assert_eq!((faults.requests(), faults.faulted()), (3, 2));
///     // Until cleared: every request gets a proxy's HTML page.
///     faults.fail_until_cleared(Fault::HtmlPage);
///     assert!(reqwest::get(&url).await?.text().await?.contains("<html>"));
///     faults.clear();
///     assert_eq!(reqwest::get(&url).await?.text().await?, "[]");
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct RegistryFaults {
    switch: Arc<Switch>,
}

impl RegistryFaults {
    /// Answers the next `requests` requests with `fault`, then serves again. Replaces any
    /// fault on now; `0` clears it.
    ///
    /// See the type's example.
    pub fn fail_next(&self, fault: Fault, requests: u64) {
        let next = (requests > 0).then_some((fault, Remaining::Requests(requests)));
        *self.slot() = next;
    }

    /// Answers every request with `fault` until [`clear`](Self::clear) (or another
    /// fault replaces it).
    ///
    /// See the type's example.
    pub fn fail_until_cleared(&self, fault: Fault) {
        *self.slot() = Some((fault, Remaining::UntilCleared));
    }

    /// Serves requests normally again.
    ///
    /// See the type's example.
    pub fn clear(&self) {
        *self.slot() = None;
    }

    /// The fault on now, if any.
    ///
    /// ```
    /// use event_bus_testkit::registry::{Fault, RegistryFaults};
    ///
    /// let faults = RegistryFaults::default();
    /// assert_eq!(faults.active(), None);
    /// faults.fail_until_cleared(Fault::TooManyRequests);
    /// assert_eq!(faults.active(), Some(Fault::TooManyRequests));
    /// ```
    pub fn active(&self) -> Option<Fault> {
        self.slot().map(|(fault, _)| fault)
    }

    /// Requests received so far, served or faulty.
    ///
    /// See the type's example.
    pub fn requests(&self) -> u64 {
        self.switch.requests.load(Ordering::SeqCst)
    }

    /// Requests answered with a fault so far.
    ///
    /// See the type's example.
    pub fn faulted(&self) -> u64 {
        self.switch.faulted.load(Ordering::SeqCst)
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<(Fault, Remaining)>> {
        self.switch
            .fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request and takes the fault it gets, if any.
    fn take(&self) -> Option<Fault> {
        self.switch.requests.fetch_add(1, Ordering::SeqCst);
        let mut slot = self.slot();
        let (fault, remaining) = (*slot)?;
        *slot = match remaining {
            Remaining::UntilCleared => Some((fault, remaining)),
            Remaining::Requests(1) => None,
            Remaining::Requests(left) => Some((fault, Remaining::Requests(left - 1))),
        };
        drop(slot);
        self.switch.faulted.fetch_add(1, Ordering::SeqCst);
        Some(fault)
    }
}

/// The middleware in front of the routes: a faulty answer while a fault is on, else the
/// route's.
pub(crate) async fn answer(
    State(faults): State<RegistryFaults>,
    request: Request,
    next: Next,
) -> Response {
    match faults.take() {
        Some(fault) => {
            tracing::debug!(?fault, uri = %request.uri(), "embedded schema registry answers with a fault");
            fault.response()
        }
        None => next.run(request).await,
    }
}
