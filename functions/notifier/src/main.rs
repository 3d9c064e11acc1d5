//! oidc-notifier: wiring only. Configuration, the Slack credential (Secrets Manager or SSM
//! SecureString) and the clients are read and built once, at init; a bad configuration
//! or an unreadable credential fails init with a message naming what is wrong.

use std::time::Duration;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use oidc_notifier::cloudwatch::CloudWatchBreakdown;
use oidc_notifier::config::{Config, Mode, SecretLocation};
use oidc_notifier::dynamo::DynamoNotifierStore;
use oidc_notifier::slack::{SlackClient, Target};
use oidc_notifier::{handle, secrets, Deps};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env().map_err(|e| format!("oidc-notifier configuration: {e}"))?;
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(Duration::from_secs(5))
        .build();
    let sdk = aws_config::from_env().timeout_config(timeouts).load().await;
    let stored = match &config.secret {
        SecretLocation::SecretsManager(id) => {
            secrets::from_secrets_manager(&aws_sdk_secretsmanager::Client::new(&sdk), id).await
        }
        SecretLocation::Parameter(name) => {
            secrets::from_parameter(&aws_sdk_ssm::Client::new(&sdk), name).await
        }
    }
    .map_err(|e| format!("oidc-notifier Slack credential: {e}"))?;
    let credential =
        secrets::extract(&stored, config.mode).map_err(|e| format!("oidc-notifier Slack credential: {e}"))?;
    let target = match config.mode {
        Mode::Webhook => Target::Webhook { url: credential },
        Mode::Bot => Target::Bot {
            api_url: config.api_url.clone(),
            token: credential,
        },
    };
    let deps = Deps {
        slack: SlackClient::new(target, config.retry)?,
        store: DynamoNotifierStore {
            client: aws_sdk_dynamodb::Client::new(&sdk),
            table: config.state_table_name.clone(),
        },
        breakdown: CloudWatchBreakdown {
            client: aws_sdk_cloudwatch::Client::new(&sdk),
            namespace: config.metrics_namespace.clone(),
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
