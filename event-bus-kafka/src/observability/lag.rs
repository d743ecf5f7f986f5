//! Consumer lag per partition, sampled off the loop: high watermark − position.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::Offset;
use tokio::task::JoinHandle;

use super::metrics;

/// How long one watermark request may take.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(5);

/// A running lag sampler; stops when dropped.
#[derive(Debug)]
pub(crate) struct LagSampler {
    task: JoinHandle<()>,
}

impl Drop for LagSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LagSampler {
    /// Samples `consumer`'s lag every [`metrics::lag_sampling`] interval, or returns
    /// `None` when sampling is off (no cost at all then).
    pub(crate) fn spawn<C>(consumer: Arc<StreamConsumer<C>>, group: String) -> Option<Self>
    where
        C: ConsumerContext + 'static,
    {
        let interval = metrics::lag_sampling()?;
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let consumer = Arc::clone(&consumer);
                let sampled = tokio::task::spawn_blocking(move || sample(&*consumer)).await;
                match sampled {
                    Ok(lags) => {
                        for (topic, partition, lag) in lags {
                            metrics::record_consumer_lag(&group, &topic, partition, lag);
                        }
                    }
                    Err(error) => {
                        tracing::debug!(error = %error, "consumer lag sampling stopped");
                        return;
                    }
                }
            }
        });
        Some(Self { task })
    }
}

/// Per assigned partition with a known position: high watermark − position.
fn sample<C: ConsumerContext>(consumer: &StreamConsumer<C>) -> Vec<(String, i32, i64)> {
    let Ok(positions) = consumer.position() else {
        return Vec::new();
    };
    let mut lags = Vec::new();
    for element in positions.elements() {
        let Offset::Offset(position) = element.offset() else {
            continue;
        };
        match consumer.fetch_watermarks(element.topic(), element.partition(), WATERMARK_TIMEOUT) {
            Ok((_, high)) => lags.push((
                element.topic().to_owned(),
                element.partition(),
                high - position,
            )),
            Err(error) => tracing::debug!(
                topic = element.topic(),
                partition = element.partition(),
                error = %error,
                "cannot read the high watermark for the lag metric"
            ),
        }
    }
    lags
}
