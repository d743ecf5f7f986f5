//! Without the `sqlite` feature no store needs a relay lease (PostgreSQL claims skip
//! locked lanes), so [`RelayLease`] has no values and every relay runs without one.

use super::error::OutboxError;
use super::relay::Wait;
use super::store::OutboxStore;

/// Stands in for the SQLite file lease (`lease.rs`); it cannot be made.
#[derive(Debug)]
pub(crate) enum RelayLease {}

impl RelayLease {
    /// `None`: no store of this build needs a lease.
    pub(crate) async fn acquire<S: OutboxStore>(
        _store: &S,
        _wait: Wait,
    ) -> Result<Option<Self>, OutboxError> {
        Ok(None)
    }

    /// Never called: there is no lease to check.
    pub(crate) fn check(&self) -> Result<(), OutboxError> {
        match *self {}
    }

    /// Never called: there is no lease to release.
    pub(crate) async fn release(self) {
        match self {}
    }
}
