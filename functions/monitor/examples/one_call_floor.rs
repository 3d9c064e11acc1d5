//! The floor under oidc-monitor's warm path, for the whole-process benchmark: the same
//! runtime, tracing and SDK configuration, and one DynamoDB `UpdateItem` per invocation
//! (what a retry of a known incident costs the monitor), with no diagnosis at all.
//!
//! `cargo build --release -p oidc-monitor --example one_call_floor`, then run it under
//! the benchmark harness like the monitor (README, "Performance").

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let table = std::env::var("STATE_TABLE_NAME").map_err(|_| "STATE_TABLE_NAME is required")?;
    let sdk = oidc_watch_aws::load_sdk_config(Duration::from_secs(3)).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let (client, table) = (&client, table.as_str());
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let id = event.payload["id"].as_str().unwrap_or("-").to_owned();
        let output = client
            .update_item()
            .table_name(table)
            .key("pk", AttributeValue::S("floor#one-call".to_owned()))
            .key("sk", AttributeValue::S("-".to_owned()))
            .update_expression("ADD attempts :one")
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await?;
        let attempts = output
            .attributes
            .and_then(|a| a.get("attempts").and_then(|v| v.as_n().ok()).cloned());
        Ok::<Value, Error>(json!({"event_id": id, "attempts": attempts}))
    }))
    .await
}
