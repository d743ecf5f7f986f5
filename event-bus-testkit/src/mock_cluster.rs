//! librdkafka's in-process mock cluster, for fault injection: brokers going
//! down and up, request errors, latency.
//!
//! [`MockKafkaCluster`] owns an [`rdkafka::mocking::MockCluster`] on a thread of
//! its own and forwards calls to it, so unlike `MockCluster` it is `Send` and
//! `Sync` and can be held across `.await` and shared between tasks.
//!
//! What the mock cluster cannot do (so tests needing it use
//! [`KafkaCluster`](crate::kafka::KafkaCluster)): CreateTopics (use
//! [`MockKafkaCluster::create_topic`], which goes through the mock API), ListGroups
//! and DescribeGroups. It has no time index either: `offsets_for_times` answers the
//! end for every time, and the SDK's replay finds offsets by reading records instead.
//!
//! # Example
//!
//! ```no_run
//! use event_bus_testkit::mock_cluster::MockKafkaCluster;
//!
//! let cluster = MockKafkaCluster::start(3)?;
//! cluster.create_topic("orders", 2)?;
//! cluster.broker_down(1)?;
//! // ... produce, observe the retry ...
//! cluster.broker_up(1)?;
//! # Ok::<(), event_bus_testkit::mock_cluster::MockClusterError>(())
//! ```

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaErrorCode, RDKafkaRespErr};

/// Broker id meaning "every broker" in [`MockKafkaCluster::broker_down`],
/// [`broker_up`](MockKafkaCluster::broker_up) and
/// [`latency`](MockKafkaCluster::latency).
///
/// # Example
///
/// ```no_run
/// use event_bus_testkit::mock_cluster::{MockKafkaCluster, ALL_BROKERS};
///
/// let cluster = MockKafkaCluster::start(3)?;
/// cluster.broker_down(ALL_BROKERS)?;
/// # Ok::<(), event_bus_testkit::mock_cluster::MockClusterError>(())
/// ```
pub const ALL_BROKERS: i32 = -1;

/// Errors from the mock cluster.
///
/// # Example
///
/// ```no_run
/// use event_bus_testkit::mock_cluster::{MockClusterError, MockKafkaCluster};
///
/// let cluster = MockKafkaCluster::start(1)?;
/// assert!(matches!(cluster.broker_down(7), Err(MockClusterError::Operation { .. })));
/// # Ok::<(), MockClusterError>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum MockClusterError {
    /// librdkafka could not create the cluster.
    #[error("cannot create a librdkafka mock cluster with {brokers} broker(s): {source}")]
    Create {
        /// Requested broker count.
        brokers: i32,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The thread that owns the cluster could not be started.
    #[error("cannot start the mock cluster thread: {0}")]
    Thread(#[source] std::io::Error),
    /// A mock operation failed (for example an unknown broker id).
    #[error("mock cluster operation {operation} failed: {source}")]
    Operation {
        /// What was attempted.
        operation: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The error code has no librdkafka wire equivalent.
    #[error("error code {0:?} cannot be injected")]
    UnknownErrorCode(RDKafkaErrorCode),
    /// The thread owning the cluster is gone (it panicked).
    #[error("the mock cluster thread has stopped")]
    Stopped,
}

type Cluster = MockCluster<'static, DefaultProducerContext>;
type Job = Box<dyn FnOnce(&Cluster) + Send>;

/// An in-process librdkafka mock cluster with `N` brokers (ids `1..=N`),
/// destroyed on drop.
///
/// Every method waits for the cluster to apply the change (a round trip to
/// librdkafka's mock thread, well under a millisecond), so it may be called
/// from async code.
///
/// # Example
///
/// ```no_run
/// use event_bus_testkit::mock_cluster::MockKafkaCluster;
///
/// let cluster = MockKafkaCluster::start(1)?;
/// let producer: rdkafka::producer::FutureProducer =
///     cluster.producer_config().create().expect("producer");
/// # Ok::<(), event_bus_testkit::mock_cluster::MockClusterError>(())
/// ```
pub struct MockKafkaCluster {
    bootstrap_servers: String,
    broker_count: i32,
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MockKafkaCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockKafkaCluster")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("broker_count", &self.broker_count)
            .finish_non_exhaustive()
    }
}

impl MockKafkaCluster {
    /// Starts a mock cluster with `brokers` brokers, numbered `1..=brokers`.
    ///
    /// # Errors
    ///
    /// [`MockClusterError::Create`] when librdkafka refuses (for example
    /// `brokers < 1`), [`MockClusterError::Thread`] when no thread can be started.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::mock_cluster::MockKafkaCluster::start(3)?;
    /// assert_eq!(cluster.broker_count(), 3);
    /// # Ok::<(), event_bus_testkit::mock_cluster::MockClusterError>(())
    /// ```
    pub fn start(brokers: i32) -> Result<Self, MockClusterError> {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String, KafkaError>>();
        let thread = std::thread::Builder::new()
            .name("mock-kafka-cluster".to_owned())
            .spawn(move || {
                let cluster = match MockCluster::new(brokers) {
                    Ok(cluster) => cluster,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                if ready_tx.send(Ok(cluster.bootstrap_servers())).is_err() {
                    return;
                }
                // Runs until every sender is dropped, then destroys the cluster.
                for job in jobs_rx {
                    job(&cluster);
                }
            })
            .map_err(MockClusterError::Thread)?;
        match ready_rx.recv() {
            Ok(Ok(bootstrap_servers)) => Ok(MockKafkaCluster {
                bootstrap_servers,
                broker_count: brokers,
                jobs: Some(jobs_tx),
                thread: Some(thread),
            }),
            Ok(Err(source)) => {
                let _ = thread.join();
                Err(MockClusterError::Create { brokers, source })
            }
            Err(_) => {
                let _ = thread.join();
                Err(MockClusterError::Stopped)
            }
        }
    }

    /// The mock brokers' addresses, for `bootstrap.servers`.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::mock_cluster::MockKafkaCluster::start(1)?;
    /// assert!(!cluster.bootstrap_servers().is_empty());
    /// # Ok::<(), event_bus_testkit::mock_cluster::MockClusterError>(())
    /// ```
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// How many brokers the cluster has (ids `1..=broker_count`).
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::mock_cluster::MockKafkaCluster::start(2)?;
    /// assert_eq!(cluster.broker_count(), 2);
    /// # Ok::<(), event_bus_testkit::mock_cluster::MockClusterError>(())
    /// ```
    pub fn broker_count(&self) -> i32 {
        self.broker_count
    }

    /// Runs `f` on the thread that owns the underlying
    /// [`rdkafka::mocking::MockCluster`], for operations this wrapper does not
    /// name (partition leaders, followers, API versions…), and returns its result.
    ///
    /// # Errors
    ///
    /// [`MockClusterError::Stopped`] when the owning thread is gone.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::mock_cluster::MockKafkaCluster::start(3)?;
    /// let result = cluster.with_cluster(|c| c.partition_leader("orders", 0, Some(2)))?;
    /// result.expect("leader set");
    /// # Ok::<(), event_bus_testkit::mock_cluster::MockClusterError>(())
    /// ```
    pub fn with_cluster<R, F>(&self, f: F) -> Result<R, MockClusterError>
    where
        F: FnOnce(&MockCluster<'static, DefaultProducerContext>) -> R + Send + 'static,
        R: Send + 'static,
    {
        let (reply_tx, reply_rx) = mpsc::channel();
        let job: Job = Box::new(move |cluster| {
            let _ = reply_tx.send(f(cluster));
        });
        self.jobs
            .as_ref()
            .ok_or(MockClusterError::Stopped)?
            .send(job)
            .map_err(|_| MockClusterError::Stopped)?;
        reply_rx.recv().map_err(|_| MockClusterError::Stopped)
    }

    fn operation<F>(&self, operation: String, f: F) -> Result<(), MockClusterError>
    where
        F: FnOnce(&Cluster) -> Result<(), KafkaError> + Send + 'static,
    {
        self.with_cluster(f)?
            .map_err(|source| MockClusterError::Operation { operation, source })
    }

    /// Creates `topic` with `partitions` partitions, replication factor
    /// `min(3, broker_count)` (the mock cluster has no CreateTopics API).
    ///
    /// # Errors
    ///
    /// [`MockClusterError::Operation`] when the cluster refuses.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::mock_cluster::MockKafkaCluster::start(3)?;
    /// cluster.create_topic("orders", 4)?;
    /// # Ok::<(), event_bus_testkit::mock_cluster::MockClusterError>(())
    /// ```
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), MockClusterError> {
        let replication = self.broker_count.clamp(1, 3);
        let name = topic.to_owned();
        self.operation(format!("create_topic({topic}, {partitions})"), move |c| {
            c.create_topic(&name, partitions, replication)
        })
    }

    /// Disconnects broker `broker_id` (or every broker, with [`ALL_BROKERS`]) and
    /// refuses new connections until [`broker_up`](Self::broker_up). Partition
    /// leadership does not move.
    ///
    /// # Errors
    ///
    /// [`MockClusterError::Operation`] for an unknown broker id.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::mock_cluster::MockKafkaCluster::start(1)?;
    /// cluster.broker_down(1)?;
    /// # Ok::<(), event_bus_testkit::mock_cluster::MockClusterError>(())
    /// ```
    pub fn broker_down(&self, broker_id: i32) -> Result<(), MockClusterError> {
        self.operation(format!("broker_down({broker_id})"), move |c| {
            c.broker_down(broker_id)
        })
    }

    /// Lets broker `broker_id` (or every broker, with [`ALL_BROKERS`]) accept
    /// connections again.
    ///
    /// # Errors
    ///
    /// [`MockClusterError::Operation`] for an unknown broker id.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::mock_cluster::MockKafkaCluster::start(1)?;
    /// cluster.broker_down(1)?;
    /// cluster.broker_up(1)?;
    /// # Ok::<(), event_bus_testkit::mock_cluster::MockClusterError>(())
    /// ```
    pub fn broker_up(&self, broker_id: i32) -> Result<(), MockClusterError> {
        self.operation(format!("broker_up({broker_id})"), move |c| {
            c.broker_up(broker_id)
        })
    }

    /// Makes the next requests of kind `api_key` fail with `errors`, one error
    /// per request, in order (cluster-wide). `RDKafkaErrorCode::BrokerTransportFailure`
    /// makes the broker drop the connection instead.
    ///
    /// # Errors
    ///
    /// [`MockClusterError::UnknownErrorCode`] for a code librdkafka cannot send.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use rdkafka::types::{RDKafkaApiKey, RDKafkaErrorCode};
    ///
    /// let cluster = event_bus_testkit::mock_cluster::MockKafkaCluster::start(1)?;
    /// cluster.request_errors(
    ///     RDKafkaApiKey::Produce,
    ///     &[RDKafkaErrorCode::NotLeaderForPartition, RDKafkaErrorCode::RequestTimedOut],
    /// )?;
    /// # Ok::<(), event_bus_testkit::mock_cluster::MockClusterError>(())
    /// ```
    pub fn request_errors(
        &self,
        api_key: RDKafkaApiKey,
        errors: &[RDKafkaErrorCode],
    ) -> Result<(), MockClusterError> {
        let errors = errors
            .iter()
            .map(|&code| {
                RDKafkaRespErr::try_from(code as i32)
                    .map_err(|_| MockClusterError::UnknownErrorCode(code))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.with_cluster(move |c| c.request_errors(api_key, &errors))
    }

    /// Forgets errors queued by [`request_errors`](Self::request_errors) for `api_key`.
    ///
    /// # Errors
    ///
    /// [`MockClusterError::Stopped`] when the owning thread is gone.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use rdkafka::types::RDKafkaApiKey;
    ///
    /// let cluster = event_bus_testkit::mock_cluster::MockKafkaCluster::start(1)?;
    /// cluster.clear_request_errors(RDKafkaApiKey::Produce)?;
    /// # Ok::<(), event_bus_testkit::mock_cluster::MockClusterError>(())
    /// ```
    pub fn clear_request_errors(&self, api_key: RDKafkaApiKey) -> Result<(), MockClusterError> {
        self.with_cluster(move |c| c.clear_request_errors(api_key))
    }

    /// Delays every response of broker `broker_id` (or of every broker, with
    /// [`ALL_BROKERS`]) by `delay`; `Duration::ZERO` removes the delay.
    ///
    /// # Errors
    ///
    /// [`MockClusterError::Operation`] for an unknown broker id.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// let cluster = event_bus_testkit::mock_cluster::MockKafkaCluster::start(1)?;
    /// cluster.latency(1, Duration::from_millis(500))?;
    /// # Ok::<(), event_bus_testkit::mock_cluster::MockClusterError>(())
    /// ```
    pub fn latency(&self, broker_id: i32, delay: Duration) -> Result<(), MockClusterError> {
        self.operation(format!("latency({broker_id}, {delay:?})"), move |c| {
            c.broker_round_trip_time(broker_id, delay)
        })
    }

    /// Makes broker `broker_id` the coordinator of consumer group `group_id`.
    ///
    /// # Errors
    ///
    /// [`MockClusterError::Operation`] when the cluster refuses.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::mock_cluster::MockKafkaCluster::start(3)?;
    /// cluster.group_coordinator("my-group", 2)?;
    /// # Ok::<(), event_bus_testkit::mock_cluster::MockClusterError>(())
    /// ```
    pub fn group_coordinator(
        &self,
        group_id: &str,
        broker_id: i32,
    ) -> Result<(), MockClusterError> {
        let group = group_id.to_owned();
        self.operation(
            format!("group_coordinator({group_id}, {broker_id})"),
            move |c| c.coordinator(MockCoordinator::Group(group), broker_id),
        )
    }

    /// [`consumer_config`](crate::kafka::consumer_config) for this cluster.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use rdkafka::consumer::StreamConsumer;
    ///
    /// let cluster = event_bus_testkit::mock_cluster::MockKafkaCluster::start(1)?;
    /// let consumer: StreamConsumer = cluster.consumer_config("g").create().expect("consumer");
    /// # Ok::<(), event_bus_testkit::mock_cluster::MockClusterError>(())
    /// ```
    pub fn consumer_config(&self, group_id: &str) -> ClientConfig {
        crate::kafka::consumer_config(&self.bootstrap_servers, group_id)
    }

    /// [`producer_config`](crate::kafka::producer_config) for this cluster.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use rdkafka::producer::FutureProducer;
    ///
    /// let cluster = event_bus_testkit::mock_cluster::MockKafkaCluster::start(1)?;
    /// let producer: FutureProducer = cluster.producer_config().create().expect("producer");
    /// # Ok::<(), event_bus_testkit::mock_cluster::MockClusterError>(())
    /// ```
    pub fn producer_config(&self) -> ClientConfig {
        crate::kafka::producer_config(&self.bootstrap_servers)
    }
}

impl Drop for MockKafkaCluster {
    fn drop(&mut self) {
        // Closing the channel ends the owning thread, which destroys the cluster.
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<MockKafkaCluster>();
    }
}
