//! AWS adapters behind the `diagnosis` ports, shared by the functions: IAM lookup with a
//! cache, metric sinks, SNS alerts, DynamoDB state (the monitor's and the notifier's), the
//! alarm breakdown, the Slack credential, configuration.

pub mod account_snapshot;
pub mod audit_store;
pub mod backfill;
pub mod breakdown;
pub mod config;
pub mod dynamodb;
pub mod env;
pub mod iam;
pub mod metrics;
pub mod notifier_store;
pub mod secrets;
pub mod sns;

use std::time::Duration;

/// Seconds since the epoch: the functions' clock (tests inject their own).
pub fn wall_clock_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The SDK configuration, loaded once at init. Calls that take longer than this fail, so a
/// slow dependency (IAM for the monitor, DynamoDB or CloudWatch for the notifier) fails fast
/// instead of eating the invocation.
pub async fn load_sdk_config(operation_timeout: Duration) -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(operation_timeout)
        .build();
    aws_config::from_env().timeout_config(timeouts).load().await
}

/// The service's own message, or the whole error chain (a connection failure has no
/// message, and "unhandled error" alone tells an operator nothing).
pub fn describe(
    error: &(impl aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error),
) -> String {
    match error.message() {
        Some(message) => format!("{}: {message}", error.code().unwrap_or("error")),
        None => aws_smithy_types::error::display::DisplayErrorContext(error).to_string(),
    }
}
