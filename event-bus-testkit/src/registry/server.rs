//! Running the registry: binding a socket, serving the routes on a background task, and
//! stopping on `shutdown()` or drop.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::errors::{RegistryError, ServerError};
use super::faults::{self, RegistryFaults};
use super::routes::router;
use super::store::{SchemaStore, SubjectVersion};

/// How long [`EmbeddedRegistry::shutdown`] waits for open requests before it stops the
/// server task outright.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// An embedded, in-memory, Confluent-compatible schema registry serving HTTP on a local
/// port. A development and test tool; production uses Confluent Schema Registry,
/// Karapace, Redpanda or Apicurio.
///
/// The server runs on a task of the current Tokio runtime and stops when this value is
/// dropped or [`shutdown`](Self::shutdown) is awaited. State lives only in memory.
///
/// # Example
///
/// ```
/// use event_bus_testkit::registry::EmbeddedRegistry;
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let registry = EmbeddedRegistry::start().await?;
///     assert!(registry.url().starts_with("http://127.0.0.1:"));
///     // Point SrSettings / the SDK's registry config at `registry.url()`.
///     registry.shutdown().await?;
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct EmbeddedRegistry {
    addr: SocketAddr,
    store: SchemaStore,
    faults: RegistryFaults,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl EmbeddedRegistry {
    /// Starts an empty registry on `127.0.0.1` with a free port chosen by the OS.
    ///
    /// # Errors
    ///
    /// [`ServerError::Bind`] when no local port can be bound.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), event_bus_testkit::registry::ServerError> {
    /// use event_bus_testkit::registry::EmbeddedRegistry;
    ///
    /// let registry = EmbeddedRegistry::start().await?;
    /// assert_ne!(registry.local_addr().port(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start() -> Result<Self, ServerError> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts an empty registry on `addr` (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// [`ServerError::Bind`] when the address cannot be bound (e.g. the port is taken).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), event_bus_testkit::registry::ServerError> {
    /// use event_bus_testkit::registry::EmbeddedRegistry;
    ///
    /// // The port Confluent's registry uses by default.
    /// let registry = EmbeddedRegistry::start_on(([127, 0, 0, 1], 8081).into()).await?;
    /// assert_eq!(registry.url(), "http://127.0.0.1:8081");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start_on(addr: SocketAddr) -> Result<Self, ServerError> {
        Self::start_with_store(addr, SchemaStore::new()).await
    }

    /// Starts a registry on `addr` serving an existing `store` (e.g. one seeded before the
    /// server starts, or shared with another router).
    ///
    /// # Errors
    ///
    /// [`ServerError::Bind`] when the address cannot be bound.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use event_bus_testkit::registry::{EmbeddedRegistry, SchemaStore};
    ///
    /// let store = SchemaStore::new();
    /// store.register("pings-value", r#""string""#)?;
    /// let registry = EmbeddedRegistry::start_with_store(([127, 0, 0, 1], 0).into(), store).await?;
    /// # let _ = registry;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start_with_store(
        addr: SocketAddr,
        store: SchemaStore,
    ) -> Result<Self, ServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let local = listener.local_addr().map_err(ServerError::LocalAddr)?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let faults = RegistryFaults::default();
        let app = router(store.clone()).layer(axum::middleware::from_fn_with_state(
            faults.clone(),
            faults::answer,
        ));
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            // A send or a dropped sender both mean "stop".
            let _ = stopped.await;
        });
        let task = tokio::spawn(async move { serve.await });
        tracing::debug!(addr = %local, "embedded schema registry listening");
        Ok(Self {
            addr: local,
            store,
            faults,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`, without a trailing slash.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), event_bus_testkit::registry::ServerError> {
    /// # let registry = event_bus_testkit::registry::EmbeddedRegistry::start().await?;
    /// let url = registry.url();
    /// assert_eq!(url, format!("http://{}", registry.local_addr()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), event_bus_testkit::registry::ServerError> {
    /// # let registry = event_bus_testkit::registry::EmbeddedRegistry::start().await?;
    /// assert!(registry.local_addr().ip().is_loopback());
    /// # Ok(())
    /// # }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The state the server serves; changes through it are visible over HTTP at once.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let registry = event_bus_testkit::registry::EmbeddedRegistry::start().await?;
    /// let id = registry.store().register("pings-value", r#""string""#)?;
    /// assert_eq!(id, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn store(&self) -> &SchemaStore {
        &self.store
    }

    /// The fault switch and request counters of this registry: make it answer 401, 429,
    /// 503 or a proxy's HTML page for the next N requests or until cleared, and count
    /// the requests it received. See [`RegistryFaults`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), event_bus_testkit::registry::ServerError> {
    /// use event_bus_testkit::registry::{EmbeddedRegistry, Fault};
    ///
    /// let registry = EmbeddedRegistry::start().await?;
    /// registry.faults().fail_until_cleared(Fault::Unauthorized);
    /// // … the code under test meets 401s …
    /// registry.faults().clear();
    /// assert_eq!(registry.faults().requests(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn faults(&self) -> &RegistryFaults {
        &self.faults
    }

    /// The registry's routes over this registry's state, to nest into another axum app
    /// (without the fault switch of [`faults`](Self::faults)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), event_bus_testkit::registry::ServerError> {
    /// # let registry = event_bus_testkit::registry::EmbeddedRegistry::start().await?;
    /// let app: axum::Router = axum::Router::new().nest("/registry", registry.router());
    /// # let _ = app;
    /// # Ok(())
    /// # }
    /// ```
    pub fn router(&self) -> Router {
        router(self.store.clone())
    }

    /// Registers `schema` under `subject` with a fixed global `id`, without a
    /// compatibility check (Confluent's IMPORT mode, in process). See
    /// [`SchemaStore::register_with_id`].
    ///
    /// # Errors
    ///
    /// [`RegistryError::InvalidSchema`] or [`RegistryError::IdConflict`].
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let registry = event_bus_testkit::registry::EmbeddedRegistry::start().await?;
    /// let schema = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;
    /// let registered = registry.register_with_id("r-value", schema, 100019)?;
    /// assert_eq!(registered.id, 100019);
    /// # Ok(())
    /// # }
    /// ```
    pub fn register_with_id(
        &self,
        subject: &str,
        schema: &str,
        id: u32,
    ) -> Result<SubjectVersion, RegistryError> {
        self.store.register_with_id(subject, schema, id)
    }

    /// Stops accepting connections, lets open requests finish (up to 5 s, then stops the
    /// server task) and waits for the server to end.
    ///
    /// # Errors
    ///
    /// [`ServerError::Serve`] if the server had failed, [`ServerError::Task`] if its task
    /// panicked.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), event_bus_testkit::registry::ServerError> {
    /// use event_bus_testkit::registry::EmbeddedRegistry;
    ///
    /// let registry = EmbeddedRegistry::start().await?;
    /// let addr = registry.local_addr();
    /// registry.shutdown().await?;
    /// assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(signal) = self.shutdown.take() {
            let _ = signal.send(());
        }
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => Err(ServerError::Serve(error)),
            Ok(Err(join)) => Err(ServerError::Task(join.to_string())),
            Err(_elapsed) => {
                tracing::warn!(addr = %self.addr, "embedded schema registry did not stop in time; aborting it");
                task.abort();
                Ok(())
            }
        }
    }
}

impl Drop for EmbeddedRegistry {
    fn drop(&mut self) {
        if let Some(signal) = self.shutdown.take() {
            let _ = signal.send(());
        }
    }
}
