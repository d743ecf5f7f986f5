//! `--observability-address`: where the long-running commands (`consume-events` and
//! `outbox relay`) serve `/metrics` (Prometheus text) and `/healthz`, on by default.
//!
//! ```
//! use clap::Parser;
//! use event_bus_kafka::cli::{Cli, Command};
//! use event_bus_kafka::cli::observability::ObservabilityAddress;
//! let cli = Cli::try_parse_from([
//!     "event-bus", "consume-events", "--topic", "t", "--group", "g",
//!     "--observability-address", "off",
//! ])?;
//! let Command::Consume(args) = cli.command else { panic!("consume-events") };
//! assert_eq!(args.observability.observability_address, Some(ObservabilityAddress::Off));
//! # Ok::<(), clap::Error>(())
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use clap::Args;

use crate::config::{ConfigError, EnvSource};
use crate::observability::{
    ObservabilityConfig, ObservabilityError, ObservabilityServer, ObservabilityServerBuilder,
    PrometheusMetrics,
};

/// The variable `--observability-address` overrides.
const ADDRESS_VARIABLE: &str = "EVENT_BUS_OBSERVABILITY_ADDRESS";

/// Where to serve `/metrics` and `/healthz`, or nowhere.
///
/// ```
/// use event_bus_kafka::cli::observability::ObservabilityAddress;
/// assert_eq!("off".parse::<ObservabilityAddress>()?, ObservabilityAddress::Off);
/// let at: ObservabilityAddress = "127.0.0.1:9100".parse()?;
/// assert_eq!(at.to_string(), "127.0.0.1:9100");
/// assert!("localhost".parse::<ObservabilityAddress>().is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservabilityAddress {
    /// Serve nothing.
    Off,
    /// Listen here (port 0 picks a free port, shown in the log).
    At(SocketAddr),
}

impl FromStr for ObservabilityAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        text.parse().map(Self::At).map_err(|_| {
            format!(
                "`{text}` is not HOST:PORT with an IP address (e.g. 0.0.0.0:9464, \
                 127.0.0.1:9100, [::]:9464) nor `off`"
            )
        })
    }
}

impl fmt::Display for ObservabilityAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::At(address) => address.fmt(f),
        }
    }
}

/// The `--observability-address` flag of `consume-events` and `outbox relay`.
///
/// See the [module example](self).
#[derive(Debug, Clone, Default, Args)]
pub struct ObservabilityArgs {
    /// Where to serve /metrics (Prometheus text) and /healthz: HOST:PORT, or `off`
    /// [default: $EVENT_BUS_OBSERVABILITY_ADDRESS, else 0.0.0.0:9464].
    ///
    /// /healthz answers 200 while the loop runs and keeps polling, else 503, with a
    /// JSON body saying why. Port 0 picks a free port (the log shows it). An address
    /// that cannot be listened on (already in use, not this host's) stops the command
    /// at start with exit code 3.
    #[arg(long, value_name = "HOST:PORT|off")]
    pub observability_address: Option<ObservabilityAddress>,
}

impl ObservabilityArgs {
    /// The server's settings from `EVENT_BUS_OBSERVABILITY_ADDRESS`,
    /// `EVENT_BUS_HEALTH_MAX_POLL_GAP_MS` and the flag (which wins); `None` when turned
    /// off. When neither the flag nor the variable names an address, the server runs on
    /// the default address if `on_by_default`, else not at all (`outbox relay --drain`,
    /// a one-off job, serves only when asked to).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when a variable does not parse.
    ///
    /// ```
    /// use event_bus_kafka::cli::observability::{ObservabilityAddress, ObservabilityArgs};
    /// let args = ObservabilityArgs { observability_address: Some("127.0.0.1:0".parse()?) };
    /// let config = args.config(false)?.expect("asked for");
    /// assert_eq!(config.address.ip().to_string(), "127.0.0.1");
    /// let off = ObservabilityArgs { observability_address: Some(ObservabilityAddress::Off) };
    /// assert!(off.config(true)?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn config(&self, on_by_default: bool) -> Result<Option<ObservabilityConfig>, ConfigError> {
        self.config_from(EnvSource::from_process(), on_by_default)
    }

    fn config_from(
        &self,
        env: EnvSource,
        on_by_default: bool,
    ) -> Result<Option<ObservabilityConfig>, ConfigError> {
        let named = self
            .observability_address
            .map(|address| address.to_string());
        if named.is_none() && env.get(ADDRESS_VARIABLE).is_none() && !on_by_default {
            return Ok(None);
        }
        let env = match named {
            Some(address) => EnvSource::from_pairs(
                env.with_prefix("")
                    .filter(|(name, _)| *name != ADDRESS_VARIABLE)
                    .map(|(name, value)| (name.to_owned(), value.to_owned()))
                    .chain([(ADDRESS_VARIABLE.to_owned(), address)]),
            ),
            None => env,
        };
        ObservabilityConfig::optional_from_env_source(&env)
    }
}

/// Starts the server of a long-running command when `config` is some: installs the
/// Prometheus recorder (if the program installed another `metrics` recorder, `/metrics`
/// says so and `/healthz` still runs), lets `watch` add the command's health checks,
/// and binds, so an address in use fails the command before it does anything else.
pub(crate) async fn start_server(
    config: Option<ObservabilityConfig>,
    watch: impl FnOnce(ObservabilityServerBuilder) -> ObservabilityServerBuilder,
) -> Result<Option<ObservabilityServer>, ObservabilityError> {
    let Some(config) = config else {
        tracing::info!("not serving /metrics and /healthz (observability address is off)");
        return Ok(None);
    };
    let mut builder = ObservabilityServer::builder(config);
    match PrometheusMetrics::install() {
        Ok(metrics) => builder = builder.metrics(metrics),
        Err(error) => tracing::warn!(%error, "serving /healthz without /metrics"),
    }
    watch(builder).start().await.map(Some)
}

/// Stops the server, if one runs, once the command's loop has ended.
pub(crate) async fn stop_server(server: Option<ObservabilityServer>) {
    if let Some(server) = server {
        server.stop().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvSource {
        EnvSource::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn the_flag_wins_over_the_variable_and_off_turns_it_off() {
        let at = |text: &str| ObservabilityArgs {
            observability_address: Some(text.parse().expect("valid")),
        };
        let unset = ObservabilityArgs::default();
        let from_var = env(&[
            (ADDRESS_VARIABLE, "off"),
            ("EVENT_BUS_HEALTH_MAX_POLL_GAP_MS", "5000"),
        ]);
        let config = at("127.0.0.1:9100")
            .config_from(from_var.clone(), true)
            .expect("valid")
            .expect("on");
        assert_eq!(config.address.port(), 9100);
        assert_eq!(config.max_poll_gap.as_millis(), 5000);
        assert_eq!(unset.config_from(from_var, true).ok(), Some(None));
        let on = env(&[(ADDRESS_VARIABLE, "127.0.0.1:9200")]);
        assert_eq!(
            at("off").config_from(on.clone(), true).ok(),
            Some(None),
            "`off` as a flag"
        );
        let by_default = unset.config_from(env(&[]), true).expect("valid");
        assert_eq!(by_default.map(|c| c.address.port()), Some(9464));
        assert_eq!(unset.config_from(env(&[]), false).ok(), Some(None));
        let asked = unset.config_from(on, false).expect("valid");
        assert_eq!(asked.map(|c| c.address.port()), Some(9200));
        let bad = env(&[(ADDRESS_VARIABLE, "nine")]);
        assert!(unset.config_from(bad, true).is_err());
    }
}
