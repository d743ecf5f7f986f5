//! `event-bus dev`: hands over to the application's dev-stack hook.
//!
//! The embedded development stack (librdkafka's mock cluster and an in-memory schema
//! registry) lives in `event-bus-testkit`, which this crate does not depend on, so an
//! application opts in by giving its binary the hook:
//!
//! ```no_run
//! // src/bin/event-bus.rs of an application (event-bus-testkit as a dependency)
//! # mod event_bus_testkit { pub mod dev {
//! #     pub fn run(_: Vec<std::ffi::OsString>) -> event_bus_kafka::cli::BoxFuture<'static, u8> {
//! #         Box::pin(async { 0 })
//! #     }
//! # } }
//! fn main() -> std::process::ExitCode {
//!     event_bus_kafka::cli::App::new()
//!         .with_dev(event_bus_testkit::dev::run)
//!         .main()
//! }
//! ```
//!
//! Everything after `dev` goes to the hook untouched, so the hook owns its options and
//! its `--help` (`event-bus dev --help`). The stack is a development tool: production
//! points at a real Kafka cluster and a real schema registry.

use std::ffi::OsString;
use std::io::Write;

use clap::Args;

use super::exit_code;
use super::{CliContext, OutputFormat};

/// What to tell a user whose binary has no dev stack.
const NO_HOOK_HELP: &str = "this `event-bus` binary has no embedded dev stack; build it with \
`event_bus_kafka::cli::App::new().with_dev(event_bus_testkit::dev::run).main()` \
(event-bus-testkit as a dependency), or point EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS and \
EVENT_BUS_SCHEMA_REGISTRY_URL at a running Kafka cluster and schema registry";

/// Arguments of `event-bus dev`: everything after `dev`, passed to the application's
/// dev-stack hook (see [`CliContext::dev`]), which parses them and prints its own
/// `--help`.
///
/// ```
/// use clap::Parser;
/// use event_bus_kafka::cli::{Cli, Command};
///
/// let cli = Cli::try_parse_from(["event-bus", "dev", "--brokers", "3", "--registry-port", "8081"])?;
/// let Command::Dev(dev) = cli.command else { panic!("dev") };
/// assert_eq!(dev.args, ["--brokers", "3", "--registry-port", "8081"]);
/// # Ok::<(), clap::Error>(())
/// ```
#[derive(Debug, Clone, Args)]
#[command(disable_help_flag = true)]
pub struct DevArgs {
    /// Options of the dev stack, read by the application's dev hook; with
    /// `event_bus_testkit::dev::run`: `--brokers N`, `--kafka-port P`,
    /// `--registry-port P`, `--topic NAME[:PARTITIONS]` (see `event-bus dev --help`).
    /// A development tool: production uses a real Kafka cluster and a real schema
    /// registry.
    #[arg(
        value_name = "DEV_OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..
    )]
    pub args: Vec<OsString>,
}

impl DevArgs {
    /// The arguments the hook receives: `--output json` first when the global
    /// `--output json` was given, then the arguments after `dev`, unchanged.
    ///
    /// ```
    /// use event_bus_kafka::cli::{dev::DevArgs, OutputFormat};
    ///
    /// let args = DevArgs { args: vec!["--brokers".into(), "2".into()] };
    /// assert_eq!(args.hook_args(OutputFormat::Text), ["--brokers", "2"]);
    /// assert_eq!(args.hook_args(OutputFormat::Json), ["--output", "json", "--brokers", "2"]);
    /// ```
    pub fn hook_args(&self, output: OutputFormat) -> Vec<OsString> {
        let mut args = Vec::with_capacity(self.args.len() + 2);
        if output == OutputFormat::Json {
            args.push(OsString::from("--output"));
            args.push(OsString::from("json"));
        }
        args.extend(self.args.iter().cloned());
        args
    }
}

/// Why `event-bus dev` failed.
///
/// ```
/// use event_bus_kafka::cli::{dev::DevError, exit_code};
///
/// let err = DevError::NoDevStack;
/// assert_eq!(err.exit_code(), exit_code::ERROR);
/// assert!(err.to_string().contains("with_dev(event_bus_testkit::dev::run)"));
///
/// let err = DevError::Stack { code: exit_code::USAGE };
/// assert_eq!(err.exit_code(), exit_code::USAGE);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevError {
    /// The binary was built without a dev-stack hook.
    #[error("{NO_HOOK_HELP}")]
    NoDevStack,
    /// The hook ran and returned a non-zero exit code (it has printed why).
    #[error("the dev stack stopped with exit code {code} (see the message above)")]
    Stack {
        /// The hook's exit code, which becomes the process's.
        code: u8,
    },
}

impl DevError {
    /// The process exit code for this error: [`exit_code::ERROR`] without a hook,
    /// otherwise the hook's own code.
    ///
    /// See the type's example.
    pub fn exit_code(&self) -> u8 {
        match self {
            DevError::NoDevStack => exit_code::ERROR,
            DevError::Stack { code } => *code,
        }
    }
}

/// Runs `event-bus dev`: calls the application's hook with the arguments after `dev`
/// and waits until it returns (it runs until Ctrl-C or SIGTERM). The hook prints its
/// own output; nothing is written to `out`.
///
/// # Errors
///
/// [`DevError::NoDevStack`] without a hook, [`DevError::Stack`] when the hook returns a
/// non-zero exit code.
///
/// ```
/// use event_bus_kafka::cli::{dev, CliContext};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let args = dev::DevArgs { args: vec![] };
/// let mut out = Vec::new();
/// let err = dev::run(&args, &CliContext::default(), &mut out).await.unwrap_err();
/// assert!(matches!(err, dev::DevError::NoDevStack));
///
/// fn hook(args: Vec<std::ffi::OsString>) -> event_bus_kafka::cli::BoxFuture<'static, u8> {
///     Box::pin(async move { if args.is_empty() { 0 } else { 2 } })
/// }
/// let context = CliContext { dev: Some(hook), ..CliContext::default() };
/// assert!(dev::run(&args, &context, &mut out).await.is_ok());
/// # }
/// ```
pub async fn run(
    args: &DevArgs,
    context: &CliContext,
    out: &mut (dyn Write + Send),
) -> Result<(), DevError> {
    let _ = out;
    let hook = context.dev.ok_or(DevError::NoDevStack)?;
    match hook(args.hook_args(context.output)).await {
        exit_code::SUCCESS => Ok(()),
        code => Err(DevError::Stack { code }),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn dev_args(argv: &[&str]) -> DevArgs {
        let cli = Cli::try_parse_from(argv).expect("parses");
        match cli.command {
            Command::Dev(args) => args,
            other => panic!("expected dev, got {other:?}"),
        }
    }

    #[test]
    fn passes_every_argument_after_dev_through() {
        assert!(dev_args(&["event-bus", "dev"]).args.is_empty());
        assert_eq!(
            dev_args(&[
                "event-bus",
                "dev",
                "--brokers",
                "3",
                "--kafka-port=9092",
                "-x"
            ])
            .args,
            ["--brokers", "3", "--kafka-port=9092", "-x"]
        );
    }

    #[test]
    fn help_after_dev_goes_to_the_hook() {
        assert_eq!(dev_args(&["event-bus", "dev", "--help"]).args, ["--help"]);
        assert_eq!(dev_args(&["event-bus", "dev", "-h"]).args, ["-h"]);
    }

    #[test]
    fn output_after_dev_is_the_global_flag() {
        let cli = Cli::try_parse_from(["event-bus", "dev", "--output", "json"]).expect("parses");
        assert_eq!(cli.output, OutputFormat::Json);
        let Command::Dev(args) = cli.command else {
            panic!("dev")
        };
        assert_eq!(args.hook_args(cli.output), ["--output", "json"]);
    }

    #[test]
    fn global_json_output_is_forwarded() {
        let cli = Cli::try_parse_from(["event-bus", "--output", "json", "dev", "--brokers", "2"])
            .expect("parses");
        let Command::Dev(args) = cli.command else {
            panic!("dev")
        };
        assert_eq!(
            args.hook_args(cli.output),
            ["--output", "json", "--brokers", "2"]
        );
    }

    #[tokio::test]
    async fn without_a_hook_it_says_how_to_get_one() {
        let mut out = Vec::new();
        let err = run(
            &dev_args(&["event-bus", "dev"]),
            &CliContext::default(),
            &mut out,
        )
        .await
        .expect_err("no hook");
        assert_eq!(err.exit_code(), exit_code::ERROR);
        assert!(err
            .to_string()
            .contains("App::new().with_dev(event_bus_testkit::dev::run)"));
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn the_hook_gets_the_arguments_and_its_code_becomes_the_exit_code() {
        fn hook(args: Vec<OsString>) -> crate::cli::BoxFuture<'static, u8> {
            Box::pin(async move {
                if args == [OsString::from("--brokers"), OsString::from("2")] {
                    exit_code::SUCCESS
                } else {
                    exit_code::USAGE
                }
            })
        }
        let context = CliContext {
            dev: Some(hook),
            ..CliContext::default()
        };
        let mut out = Vec::new();
        run(
            &dev_args(&["event-bus", "dev", "--brokers", "2"]),
            &context,
            &mut out,
        )
        .await
        .expect("hook succeeds");
        let err = run(
            &dev_args(&["event-bus", "dev", "--bogus"]),
            &context,
            &mut out,
        )
        .await
        .expect_err("hook refuses");
        assert_eq!(err.exit_code(), exit_code::USAGE);
    }
}
