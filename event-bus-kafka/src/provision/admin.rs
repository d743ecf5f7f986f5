//! The requests `topics ensure` makes: read the topics, create them, add partitions,
//! change configs (each also as a validation only).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::error::ProvisionError;
use super::observed::{configs_of, partitions_of, ObservedCluster, ObservedTopic};
use super::plan::TopicPlan;
use crate::config::KafkaConfig;

/// Per topic, what the broker answered to one request.
pub(crate) type Answers = BTreeMap<String, Result<(), RDKafkaErrorCode>>;

/// A Kafka admin client for the topics of an application.
///
/// ```no_run
/// use event_bus_kafka::config::KafkaConfig;
/// use event_bus_kafka::provision::TopicAdmin;
/// # async fn demo() -> Result<(), event_bus_kafka::provision::ProvisionError> {
/// let admin = TopicAdmin::new(&KafkaConfig::new("localhost:9092"))?;
/// let cluster = admin.observe(&["orders"]).await?;
/// println!("{} brokers, orders: {:?}", cluster.brokers, cluster.topics.get("orders"));
/// # Ok(()) }
/// ```
pub struct TopicAdmin {
    pub(crate) admin: Arc<AdminClient<DefaultClientContext>>,
    pub(crate) bootstrap_servers: String,
    pub(crate) timeout: Duration,
}

impl std::fmt::Debug for TopicAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicAdmin")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .finish_non_exhaustive()
    }
}

impl TopicAdmin {
    /// A client for the cluster of `kafka`; requests wait up to 30 s.
    ///
    /// # Errors
    ///
    /// [`ProvisionError::Client`] when librdkafka refuses the options.
    ///
    /// See the type's example.
    pub fn new(kafka: &KafkaConfig) -> Result<Self, ProvisionError> {
        // Asking about a missing topic must never create it (brokers often have
        // auto.create.topics.enable=true).
        let admin = kafka
            .client_config(&[("allow.auto.create.topics", "false")])
            .create()
            .map_err(|e| {
                ProvisionError::Client(Box::new(crate::config::secret::redact_kafka_error(e)))
            })?;
        Ok(Self {
            admin: Arc::new(admin),
            bootstrap_servers: kafka.bootstrap_servers.clone(),
            timeout: Duration::from_secs(30),
        })
    }

    /// The brokers this client asks.
    ///
    /// See the type's example.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The broker count, and those of `names` that exist with their partitions,
    /// replication and configs. Missing topics are left out (and not created).
    ///
    /// # Errors
    ///
    /// [`ProvisionError::Kafka`] when the metadata or configs cannot be read.
    ///
    /// See the type's example.
    pub async fn observe(&self, names: &[&str]) -> Result<ObservedCluster, ProvisionError> {
        let admin = Arc::clone(&self.admin);
        let timeout = self.timeout;
        // Metadata of every topic: asking for named ones could create them.
        let metadata =
            tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(None, timeout))
                .await
                .map_err(|_| {
                    self.error(
                        "reading the cluster metadata",
                        rdkafka::error::KafkaError::Canceled,
                    )
                })?
                .map_err(|e| self.error("reading the cluster metadata", e))?;
        let mut cluster = ObservedCluster {
            brokers: metadata.brokers().len(),
            topics: BTreeMap::new(),
        };
        let existing: Vec<_> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && names.contains(&t.name()))
            .collect();
        if existing.is_empty() {
            return Ok(cluster);
        }
        let specifiers: Vec<_> = existing
            .iter()
            .map(|t| ResourceSpecifier::Topic(t.name()))
            .collect();
        let resources = self
            .admin
            .describe_configs(&specifiers, &self.options(false))
            .await
            .map_err(|e| self.error("reading the topic configs", e))?;
        let mut configs: BTreeMap<String, _> = BTreeMap::new();
        for resource in resources {
            let resource = resource.map_err(|code| {
                self.error(
                    "reading the topic configs",
                    rdkafka::error::KafkaError::AdminOp(code),
                )
            })?;
            configs.insert(resource_name(&resource.specifier), configs_of(&resource));
        }
        for topic in existing {
            // rust-rdkafka drops a resource's own error; a topic the broker would not
            // describe comes back without entries.
            let configs = configs
                .remove(topic.name())
                .filter(|c| !c.is_empty())
                .ok_or_else(|| ProvisionError::ConfigsUnreadable {
                    topic: topic.name().to_owned(),
                })?;
            let (partitions, replication_factor) = partitions_of(topic);
            cluster.topics.insert(
                topic.name().to_owned(),
                ObservedTopic {
                    partitions,
                    replication_factor,
                    configs,
                },
            );
        }
        Ok(cluster)
    }

    /// Creates the missing topics of `plans` with every wanted setting (the broker's
    /// default for what is not wanted), or only validates that.
    pub(crate) async fn create(
        &self,
        plans: &[&TopicPlan],
        validate_only: bool,
    ) -> Result<Answers, ProvisionError> {
        let configs: Vec<Vec<(&str, &str)>> = plans
            .iter()
            .map(|p| {
                p.desired
                    .configs
                    .iter()
                    .map(|(name, wanted)| (name.as_str(), wanted.value.as_str()))
                    .collect()
            })
            .collect();
        let new_topics: Vec<NewTopic<'_>> = plans
            .iter()
            .zip(&configs)
            .map(|(plan, configs)| {
                let desired = &plan.desired;
                // -1: the broker's num.partitions / default.replication.factor.
                let partitions = desired
                    .partitions
                    .as_ref()
                    .map_or(-1, |p| i32::try_from(p.value).unwrap_or(i32::MAX));
                let replication = desired
                    .replication_factor
                    .as_ref()
                    .map_or(-1, |r| i32::from(r.value));
                let mut topic = NewTopic::new(
                    &desired.name,
                    partitions,
                    TopicReplication::Fixed(replication),
                );
                topic.config.clone_from(configs);
                topic
            })
            .collect();
        let answers = self
            .admin
            .create_topics(&new_topics, &self.options(validate_only))
            .await
            .map_err(|e| self.error("creating topics", e))?;
        Ok(collect(answers))
    }

    /// Adds partitions to the topics of `plans` that want more, or only validates it.
    pub(crate) async fn add_partitions(
        &self,
        plans: &[&TopicPlan],
        validate_only: bool,
    ) -> Result<Answers, ProvisionError> {
        let requests: Vec<NewPartitions<'_>> = plans
            .iter()
            .filter_map(|p| {
                let to = p.partitions_to_add()?;
                Some(NewPartitions::new(
                    &p.desired.name,
                    usize::try_from(to).ok()?,
                ))
            })
            .collect();
        if requests.is_empty() {
            return Ok(Answers::new());
        }
        let answers = self
            .admin
            .create_partitions(&requests, &self.options(validate_only))
            .await
            .map_err(|e| self.error("adding partitions", e))?;
        Ok(collect(answers))
    }

    /// Sets the configs `plans` change, or only validates it. Kafka's AlterConfigs
    /// (the only form rust-rdkafka offers) replaces a topic's whole set of configs, so
    /// each request carries every config set on the topic now, with the changes over
    /// them; a config changed by someone else between the reading and this request is
    /// put back to what was read.
    pub(crate) async fn alter_configs(
        &self,
        plans: &[&TopicPlan],
        validate_only: bool,
    ) -> Result<Answers, ProvisionError> {
        let full_sets: Vec<(&str, BTreeMap<&str, &str>)> = plans
            .iter()
            .filter_map(|plan| {
                let observed = plan.observed.as_ref()?;
                let mut configs: BTreeMap<&str, &str> = observed
                    .configs
                    .iter()
                    .filter(|(_, c)| c.explicit)
                    .filter_map(|(name, c)| Some((name.as_str(), c.value.as_deref()?)))
                    .collect();
                let before = configs.clone();
                configs.extend(plan.configs_to_set());
                (configs != before).then_some((plan.desired.name.as_str(), configs))
            })
            .collect();
        if full_sets.is_empty() {
            return Ok(Answers::new());
        }
        let requests: Vec<AlterConfig<'_>> = full_sets
            .iter()
            .map(|(topic, configs)| AlterConfig {
                specifier: ResourceSpecifier::Topic(topic),
                entries: configs.iter().map(|(k, v)| (*k, *v)).collect(),
            })
            .collect();
        let answers = self
            .admin
            .alter_configs(&requests, &self.options(validate_only))
            .await
            .map_err(|e| self.error("changing topic configs", e))?;
        Ok(answers
            .into_iter()
            .map(|answer| match answer {
                Ok(specifier) => (resource_name(&specifier), Ok(())),
                Err((specifier, code)) => (resource_name(&specifier), Err(code)),
            })
            .collect())
    }

    fn options(&self, validate_only: bool) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout))
            .validate_only(validate_only)
    }

    pub(crate) fn error(
        &self,
        operation: &str,
        source: rdkafka::error::KafkaError,
    ) -> ProvisionError {
        ProvisionError::kafka(operation, &self.bootstrap_servers, source)
    }
}

fn collect(answers: Vec<rdkafka::admin::TopicResult>) -> Answers {
    answers
        .into_iter()
        .map(|answer| match answer {
            Ok(topic) => (topic, Ok(())),
            Err((topic, code)) => (topic, Err(code)),
        })
        .collect()
}

fn resource_name(specifier: &rdkafka::admin::OwnedResourceSpecifier) -> String {
    match specifier {
        rdkafka::admin::OwnedResourceSpecifier::Topic(name)
        | rdkafka::admin::OwnedResourceSpecifier::Group(name) => name.clone(),
        rdkafka::admin::OwnedResourceSpecifier::Broker(id) => id.to_string(),
    }
}
