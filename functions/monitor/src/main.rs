//! oidc-monitor: wiring only. Configuration and clients are built once, at init; a bad
//! configuration fails init with the variable's name.

// The handler future nests the SDK futures deeply enough to pass the default limit.
#![recursion_limit = "256"]
use std::time::Duration;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use oidc_monitor::{handle, Deps, Memo};
use oidc_watch_aws::config::{Config, MetricsSinkKind};
use oidc_watch_aws::dynamodb::DynamoStateStore;
use oidc_watch_aws::iam::IamAccountState;
use oidc_watch_aws::metrics::{CloudWatchSink, ConfiguredSink, EmfSink, NoMetrics};
use oidc_watch_aws::sns::SnsAlertSink;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env().map_err(|e| format!("oidc-monitor configuration: {e}"))?;
    let sdk = oidc_watch_aws::load_sdk_config(Duration::from_secs(3)).await;
    let metrics = match config.metrics_sink {
        MetricsSinkKind::Emf => ConfiguredSink::Emf(EmfSink {
            namespace: config.metrics_namespace.clone(),
        }),
        MetricsSinkKind::Api => ConfiguredSink::Api(CloudWatchSink {
            client: aws_sdk_cloudwatch::Client::new(&sdk),
            namespace: config.metrics_namespace.clone(),
        }),
        MetricsSinkKind::Off => ConfiguredSink::Off(NoMetrics),
    };
    let deps = Deps {
        accounts: IamAccountState::new(
            &sdk,
            config.read_role_name.clone(),
            Duration::from_secs(config.iam_cache_ttl_seconds),
        ),
        metrics,
        alerts: SnsAlertSink {
            client: aws_sdk_sns::Client::new(&sdk),
            topic_arn: config.alert_topic_arn.clone(),
        },
        state: DynamoStateStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            config.state_table_name.clone(),
        ),
        clock: Box::new(oidc_watch_aws::wall_clock_seconds),
        memo: Memo::default(),
        config,
    };
    let deps = &deps;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move { handle(event, deps).await },
    ))
    .await
}
