//! oidc-notifier: wiring only. Configuration, the channel's credential (Secrets Manager or
//! SSM SecureString) and the clients are read and built once, at init; a bad configuration
//! or an unreadable credential fails init with a message naming what is wrong.

use std::time::Duration;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use oidc_notifier::config::{ChannelKind, Config, Mode};
use oidc_notifier::ports::Channel;
use oidc_notifier::slack::{SlackClient, Target};
use oidc_notifier::teams::TeamsClient;
use oidc_notifier::{handle, secrets, Deps};
use oidc_watch_aws::breakdown::CloudWatchBreakdown;
use oidc_watch_aws::notifier_store::DynamoNotifierStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env().map_err(|e| format!("oidc-notifier configuration: {e}"))?;
    let sdk = oidc_watch_aws::load_sdk_config(Duration::from_secs(5)).await;
    let stored = oidc_watch_aws::secrets::read(&sdk, &config.secret)
        .await
        .map_err(|e| format!("oidc-notifier credential: {e}"))?;
    let credential =
        secrets::extract(&stored, config.mode).map_err(|e| format!("oidc-notifier credential: {e}"))?;
    let store = DynamoNotifierStore::new(&sdk, config.state_table_name.clone());
    let breakdown = CloudWatchBreakdown::new(&sdk, config.metrics_namespace.clone());
    match config.kind {
        ChannelKind::Teams => {
            let channel = TeamsClient::new(credential, config.retry)?;
            serve(Deps::new(config, channel, store, breakdown)).await
        }
        ChannelKind::Slack => {
            let target = match config.mode {
                Mode::Webhook => Target::Webhook { url: credential },
                Mode::Bot => Target::Bot {
                    api_url: config.api_url.clone(),
                    token: credential,
                },
            };
            let channel = SlackClient::new(target, config.retry)?;
            serve(Deps::new(config, channel, store, breakdown)).await
        }
    }
}

async fn serve<C: Channel + Sync>(
    deps: Deps<C, DynamoNotifierStore, CloudWatchBreakdown>,
) -> Result<(), Error> {
    let deps = &deps;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move { handle(event, deps).await },
    ))
    .await
}
