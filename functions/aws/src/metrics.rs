//! Metric sinks: Embedded Metric Format on stdout (the default), or `PutMetricData`.

use std::io::Write;

use aws_sdk_cloudwatch::types::{Dimension as CwDimension, MetricDatum, StandardUnit};
use aws_smithy_types::DateTime;
use diagnosis::metrics::{Datum, Dimension, MetricRecord};
use diagnosis::ports::{MetricSink, PortError};

/// One EMF JSON line per record on stdout, where Lambda's log agent finds it.
pub struct EmfSink {
    pub namespace: String,
}

impl MetricSink for EmfSink {
    async fn publish(&self, record: &MetricRecord) -> Result<(), PortError> {
        let emf = record
            .to_emf(&self.namespace)
            .map_err(|e| PortError::new("emf", e.to_string(), false))?;
        let mut line = serde_json::to_vec(&emf).map_err(|e| PortError::new("emf", e.to_string(), false))?;
        line.push(b'\n');
        std::io::stdout()
            .lock()
            .write_all(&line)
            .map_err(|e| PortError::new("emf", e.to_string(), true))
    }
}

/// `PutMetricData` accepts at most this many data per call.
pub const MAX_DATA_PER_CALL: usize = 1000;

/// The CloudWatch operations this sink calls (`METRICS_SINK=api` only).
pub const SDK_OPERATIONS: &[&str] = &["PutMetricData"];

pub struct CloudWatchSink {
    pub client: aws_sdk_cloudwatch::Client,
    pub namespace: String,
}

/// A domain datum as the SDK's `MetricDatum`.
pub fn to_metric_datum(datum: &Datum) -> MetricDatum {
    MetricDatum::builder()
        .metric_name(datum.name.as_str())
        .value(datum.value)
        .unit(StandardUnit::Count)
        .timestamp(DateTime::from_millis(datum.timestamp_ms))
        .set_dimensions(Some(cloudwatch_dimensions(&datum.dimensions)))
        .build()
}

/// Domain dimensions as the SDK's.
pub fn cloudwatch_dimensions(dimensions: &[(Dimension, String)]) -> Vec<CwDimension> {
    dimensions
        .iter()
        .map(|(name, value)| CwDimension::builder().name(name.as_str()).value(value).build())
        .collect()
}

impl MetricSink for CloudWatchSink {
    async fn publish(&self, record: &MetricRecord) -> Result<(), PortError> {
        let data: Vec<MetricDatum> = record.to_data().iter().map(to_metric_datum).collect();
        for batch in data.chunks(MAX_DATA_PER_CALL) {
            self.client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| {
                    PortError::new(
                        "cloudwatch",
                        format!("PutMetricData: {}", crate::describe(&e)),
                        true,
                    )
                })?;
        }
        Ok(())
    }
}

pub struct NoMetrics;

impl MetricSink for NoMetrics {
    async fn publish(&self, _record: &MetricRecord) -> Result<(), PortError> {
        Ok(())
    }
}

/// The sink `METRICS_SINK` chose.
pub enum ConfiguredSink {
    Emf(EmfSink),
    Api(CloudWatchSink),
    Off(NoMetrics),
}

impl MetricSink for ConfiguredSink {
    async fn publish(&self, record: &MetricRecord) -> Result<(), PortError> {
        match self {
            ConfiguredSink::Emf(sink) => sink.publish(record).await,
            ConfiguredSink::Api(sink) => sink.publish(record).await,
            ConfiguredSink::Off(sink) => sink.publish(record).await,
        }
    }
}
