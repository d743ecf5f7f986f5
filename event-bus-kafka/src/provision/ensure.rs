//! Planning (read, compare, let the broker validate) and applying the changes.

use std::time::{Duration, Instant};

use super::admin::{Answers, TopicAdmin};
use super::desired::DesiredTopic;
use super::error::ProvisionError;
use super::plan::{plan_topic, Setting, SettingPlan, TopicAction, TopicPlan};
use super::refusal::Refusal;
use crate::failure;

/// What applying the plans did.
///
/// ```
/// let report = event_bus_kafka::provision::ApplyReport::default();
/// assert!(report.is_complete());
/// ```
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Topics created.
    pub created: Vec<String>,
    /// Topics given more partitions, with their new count.
    pub partitions_added: Vec<(String, u32)>,
    /// Topics whose configs were set, with the configs' names.
    pub configs_set: Vec<(String, Vec<String>)>,
    /// Changes that failed although the broker had accepted them in validation.
    pub failures: Vec<ProvisionError>,
    /// Topics changed whose change the cluster did not show within the wait.
    pub unconfirmed: Vec<String>,
}

impl ApplyReport {
    /// Every change was made and the cluster shows it.
    ///
    /// See the type's example.
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty() && self.unconfirmed.is_empty()
    }
}

impl TopicAdmin {
    /// Compares `desired` with the cluster and lets the broker validate every change
    /// (nothing is changed): a change it refuses becomes a [`Refusal::Broker`].
    ///
    /// # Errors
    ///
    /// [`ProvisionError`] when the cluster cannot be read, or a validation fails for a
    /// passing reason (unreachable, busy).
    ///
    /// ```no_run
    /// use event_bus_kafka::config::KafkaConfig;
    /// use event_bus_kafka::provision::{desired_topics, DesiredOptions, TopicAdmin};
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let registrations = event_bus_core::EventRegistration::all();
    /// let desired = desired_topics(&registrations, &DesiredOptions::default())?;
    /// let admin = TopicAdmin::new(&KafkaConfig::new("localhost:9092"))?;
    /// for plan in admin.plan(&desired).await? {
    ///     println!("{}: {}", plan.desired.name, plan.action().as_str());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn plan(&self, desired: &[DesiredTopic]) -> Result<Vec<TopicPlan>, ProvisionError> {
        let names: Vec<&str> = desired.iter().map(|d| d.name.as_str()).collect();
        let cluster = self.observe(&names).await?;
        let mut plans: Vec<TopicPlan> = desired.iter().map(|d| plan_topic(d, &cluster)).collect();
        let to_create = with_action(&plans, TopicAction::Create);
        let created = if to_create.is_empty() {
            Answers::new()
        } else {
            self.create(&to_create, true).await?
        };
        let to_update = with_action(&plans, TopicAction::Update);
        let partitions = self.add_partitions(&to_update, true).await?;
        let configs = self.alter_configs(&to_update, true).await?;
        for plan in &mut plans {
            let name = plan.desired.name.clone();
            if let Some(refusal) = refusal("validating the creation of topic", &name, &created)? {
                plan.blocked = Some(refusal);
            }
            if let Some(refusal) =
                refusal("validating new partitions of topic", &name, &partitions)?
            {
                plan.refuse_changes(|s| s.setting == Setting::Partitions, &refusal);
            }
            if let Some(refusal) = refusal("validating config changes of topic", &name, &configs)? {
                plan.refuse_changes(is_config, &refusal);
            }
        }
        Ok(plans)
    }

    /// Makes the changes of `plans` (refused ones excepted), then waits up to 30 s for
    /// the cluster to show them.
    ///
    /// # Errors
    ///
    /// [`ProvisionError`] when a request fails as a whole; a single topic's failure is
    /// in [`ApplyReport::failures`].
    ///
    /// ```no_run
    /// # use event_bus_kafka::provision::{TopicAdmin, TopicPlan};
    /// # async fn demo(admin: TopicAdmin, plans: Vec<TopicPlan>) -> Result<(), event_bus_kafka::provision::ProvisionError> {
    /// let report = admin.apply(&plans).await?;
    /// assert!(report.is_complete(), "{:?}", report.failures);
    /// # Ok(()) }
    /// ```
    pub async fn apply(&self, plans: &[TopicPlan]) -> Result<ApplyReport, ProvisionError> {
        let mut report = ApplyReport::default();
        let to_create = with_action(plans, TopicAction::Create);
        if !to_create.is_empty() {
            let answers = self.create(&to_create, false).await?;
            report.created = succeeded("creating topic", answers, &mut report.failures);
        }
        let to_update = with_action(plans, TopicAction::Update);
        let answers = self.add_partitions(&to_update, false).await?;
        for topic in succeeded("adding partitions to topic", answers, &mut report.failures) {
            let plan = to_update.iter().find(|p| p.desired.name == topic);
            if let Some(count) = plan.and_then(|p| p.partitions_to_add()) {
                report.partitions_added.push((topic, count));
            }
        }
        let answers = self.alter_configs(&to_update, false).await?;
        for topic in succeeded(
            "changing the configs of topic",
            answers,
            &mut report.failures,
        ) {
            let plan = to_update.iter().find(|p| p.desired.name == topic);
            let names = plan.map(|p| p.configs_to_set().map(|(n, _)| n.to_owned()).collect());
            report.configs_set.push((topic, names.unwrap_or_default()));
        }
        let changed: Vec<&TopicPlan> = plans
            .iter()
            .filter(|p| {
                let name = &p.desired.name;
                report.created.contains(name)
                    || report.partitions_added.iter().any(|(t, _)| t == name)
                    || report.configs_set.iter().any(|(t, _)| t == name)
            })
            .collect();
        report.unconfirmed = self.confirm(&changed).await?;
        Ok(report)
    }

    /// Waits until the cluster shows no change left to make for `plans`; returns the
    /// topics that still differ after the wait.
    async fn confirm(&self, plans: &[&TopicPlan]) -> Result<Vec<String>, ProvisionError> {
        let started = Instant::now();
        loop {
            let names: Vec<&str> = plans.iter().map(|p| p.desired.name.as_str()).collect();
            let cluster = self.observe(&names).await?;
            let pending: Vec<String> = plans
                .iter()
                .filter(|p| {
                    let now = plan_topic(&p.desired, &cluster);
                    now.observed.is_none() || now.settings.iter().any(|s| s.verdict.is_change())
                })
                .map(|p| p.desired.name.clone())
                .collect();
            if pending.is_empty() || started.elapsed() >= self.timeout {
                if !pending.is_empty() {
                    tracing::warn!(topics = ?pending, waited_ms = started.elapsed().as_millis() as u64,
                        "the cluster does not show the topic changes yet");
                }
                return Ok(pending);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn with_action(plans: &[TopicPlan], action: TopicAction) -> Vec<&TopicPlan> {
    plans.iter().filter(|p| p.action() == action).collect()
}

fn is_config(setting: &SettingPlan) -> bool {
    matches!(setting.setting, Setting::Config(_))
}

/// The broker's refusal of `topic` in a validation, if any; a passing failure (the
/// cluster busy or unreachable) is an error, not a refusal.
fn refusal(
    operation: &'static str,
    topic: &str,
    answers: &Answers,
) -> Result<Option<Refusal>, ProvisionError> {
    match answers.get(topic) {
        Some(Err(code)) => {
            let failure = failure::of_kafka_code(*code);
            if failure.is_retryable() {
                Err(ProvisionError::Change {
                    operation,
                    topic: topic.to_owned(),
                    code: *code,
                    failure,
                })
            } else {
                Ok(Some(Refusal::Broker { code: *code }))
            }
        }
        _ => Ok(None),
    }
}

/// The topics whose change succeeded; the others go to `failures`, logged.
fn succeeded(
    operation: &'static str,
    answers: Answers,
    failures: &mut Vec<ProvisionError>,
) -> Vec<String> {
    let mut done = Vec::new();
    for (topic, answer) in answers {
        match answer {
            Ok(()) => {
                tracing::info!(topic = %topic, operation, "topic changed");
                done.push(topic);
            }
            Err(code) => {
                let error = ProvisionError::Change {
                    operation,
                    failure: failure::of_kafka_code(code),
                    topic,
                    code,
                };
                tracing::warn!(error = %error, "topic change failed");
                failures.push(error);
            }
        }
    }
    done
}
