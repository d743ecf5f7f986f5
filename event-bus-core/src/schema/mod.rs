//! Avro schema rules of event types: compatibility checks between versions
//! ([`compat`]) and the committed schema history under `schemas/` ([`history`]).

pub mod compat;
pub mod history;
