//! oidc-auditor: wiring only. Configuration and clients are built once, at init; a bad
//! configuration fails init with the variable's name.

// The handler future nests the SDK futures deeply enough to pass the default limit.
#![recursion_limit = "256"]

use std::time::Duration;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use oidc_auditor::ports::IamAccountReader;
use oidc_auditor::{handle, Config, Deps};
use oidc_watch_aws::audit_store::DynamoFindingStore;
use oidc_watch_aws::dynamodb::DynamoStateStore;
use oidc_watch_aws::sns::SnsAlertSink;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env().map_err(|e| format!("oidc-auditor configuration: {e}"))?;
    let sdk = oidc_watch_aws::load_sdk_config(Duration::from_secs(10)).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let deps = Deps {
        accounts: IamAccountReader {
            sdk: sdk.clone(),
            read_role_name: config.read_role_name.clone(),
        },
        findings: DynamoFindingStore::new(dynamodb.clone(), config.state_table_name.clone()),
        successes: DynamoStateStore::new(dynamodb, config.state_table_name.clone()),
        alerts: SnsAlertSink {
            client: aws_sdk_sns::Client::new(&sdk),
            topic_arn: config.alert_topic_arn.clone(),
        },
        clock: Box::new(oidc_watch_aws::wall_clock_seconds),
        config,
    };
    let deps = &deps;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move { handle(event, deps).await },
    ))
    .await
}
