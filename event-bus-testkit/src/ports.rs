//! Free TCP ports on the loopback interface.

use std::io;
use std::net::{Ipv4Addr, TcpListener};

/// Asks the OS for a TCP port on 127.0.0.1 that is free right now.
///
/// The port is released before this returns, so another process could take it
/// before the caller binds it; callers that start a server on it should retry
/// with a new port when the bind fails (as [`KafkaCluster`](crate::kafka::KafkaCluster)
/// does).
///
/// # Errors
///
/// Returns the I/O error when no loopback socket can be bound.
///
/// # Example
///
/// ```
/// let port = event_bus_testkit::ports::free_loopback_port()?;
/// assert_ne!(port, 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn free_loopback_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}
