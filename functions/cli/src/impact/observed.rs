//! `--observed TABLE`: the subjects the monitor recorded as having assumed the role
//! successfully (its state table, `success#<account>#<role>`), read with the caller's
//! credentials (the standard chain; `AWS_ENDPOINT_URL` is honoured).

use std::time::Duration;

use diagnosis::ports::{ObservedSubject, StateStore};
use oidc_watch_aws::dynamodb::DynamoStateStore;

use super::ImpactError;

const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_REGION: &str = "us-east-1";

/// The recorded successful subjects of `role` in `account`, from the state table `table`.
pub fn read(table: &str, account: &str, role: &str) -> Result<Vec<ObservedSubject>, ImpactError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ImpactError::Observed(format!("starting the AWS client: {e}")))?;
    runtime.block_on(async {
        let mut config = oidc_watch_aws::load_sdk_config(OPERATION_TIMEOUT).await;
        if config.region().is_none() {
            config = config
                .into_builder()
                .region(aws_config::Region::new(DEFAULT_REGION))
                .build();
        }
        let store = DynamoStateStore::new(aws_sdk_dynamodb::Client::new(&config), table);
        store
            .successful_subjects(account, role)
            .await
            .map_err(|e| ImpactError::Observed(format!("--observed {table}: {e}")))
    })
}
