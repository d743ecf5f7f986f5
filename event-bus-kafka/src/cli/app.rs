//! `App`: what an application gives the command line — its receivers, and optional
//! tools that live outside this crate (the embedded dev stack).

use std::ffi::OsString;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use event_bus_core::{Event, EventBus};

use super::OutputFormat;

/// A boxed future, as the dev-stack hook returns it.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs the embedded development stack (`event-bus dev`): given the command's
/// arguments after `dev`, it runs until Ctrl-C and returns a process exit code.
/// `event_bus_testkit::dev::run` is one.
pub type DevHook = fn(Vec<OsString>) -> BoxFuture<'static, u8>;

/// What the commands can use from the application.
///
/// ```
/// use std::sync::Arc;
/// let context = event_bus_kafka::cli::CliContext::default();
/// assert!(context.bus.is_none());
/// ```
#[derive(Clone, Default)]
pub struct CliContext {
    /// Output format (`--output`).
    pub output: OutputFormat,
    /// The application's receivers (needed by `consume-events`).
    pub bus: Option<Arc<EventBus>>,
    /// The embedded dev stack (needed by `dev`).
    pub dev: Option<DevHook>,
    /// The event types this binary declares it sends ([`App::with_produced`]); `catalog`
    /// lists a send operation for each.
    pub produced: Vec<&'static str>,
}

impl std::fmt::Debug for CliContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CliContext")
            .field("output", &self.output)
            .field("bus", &self.bus)
            .field("dev", &self.dev.is_some())
            .field("produced", &self.produced)
            .finish()
    }
}

/// An application's `event-bus` command, built in one line in its own binary.
///
/// ```no_run
/// use std::sync::Arc;
/// use event_bus_kafka::prelude::*;
/// fn main() -> std::process::ExitCode {
///     let mut bus = EventBus::new();
///     // bus.connect_fn("audit", |e: &MyEvent, _| Ok(()))?;
///     event_bus_kafka::cli::App::new().with_bus(bus).main()
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct App {
    bus: Option<Arc<EventBus>>,
    dev: Option<DevHook>,
    produced: Vec<&'static str>,
}

impl App {
    /// An app with no receivers and no dev stack.
    ///
    /// See the type's example.
    pub fn new() -> Self {
        Self::default()
    }

    /// The receivers `consume-events` dispatches to.
    ///
    /// See the type's example.
    pub fn with_bus(mut self, bus: EventBus) -> Self {
        self.bus = Some(Arc::new(bus));
        self
    }

    /// The embedded dev stack for `event-bus dev`.
    ///
    /// ```no_run
    /// # fn hook(_: Vec<std::ffi::OsString>) -> event_bus_kafka::cli::BoxFuture<'static, u8> { Box::pin(async { 0 }) }
    /// let app = event_bus_kafka::cli::App::new().with_dev(hook);
    /// ```
    pub fn with_dev(mut self, hook: DevHook) -> Self {
        self.dev = Some(hook);
        self
    }

    /// Declares that this binary sends events of type `E`, so `event-bus catalog` lists a
    /// send operation for it. Nothing else depends on it: `produce-event` can send any
    /// registered type, and a type this binary only receives needs no declaration.
    ///
    /// ```
    /// use event_bus_kafka::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// #[derive(Serialize, Deserialize, Event)]
    /// #[event(type = "org.example.docs.order.placed.v1", topic = "orders")]
    /// struct OrderPlaced { id: String }
    ///
    /// let app = event_bus_kafka::cli::App::new().with_produced::<OrderPlaced>();
    /// ```
    pub fn with_produced<E: Event>(mut self) -> Self {
        if !self.produced.contains(&E::EVENT_TYPE) {
            self.produced.push(E::EVENT_TYPE);
        }
        self
    }

    /// Parses the process arguments and runs the command on a new tokio runtime.
    ///
    /// See the type's example.
    pub fn main(self) -> ExitCode {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(err) => {
                eprintln!("error: cannot start the tokio runtime: {err}");
                return ExitCode::from(super::exit_code::ERROR);
            }
        };
        runtime.block_on(self.run_from_args(std::env::args_os()))
    }

    /// Parses `args` (the program name first) and runs the command.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let code = event_bus_kafka::cli::App::new().run_from_args(["event-bus", "--version"]).await;
    /// assert_eq!(code, std::process::ExitCode::SUCCESS);
    /// # });
    /// ```
    pub async fn run_from_args<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let context = CliContext {
            bus: self.bus,
            dev: self.dev,
            produced: self.produced,
            ..CliContext::default()
        };
        super::run_parsed(args, context).await
    }
}
