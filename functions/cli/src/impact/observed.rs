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

/// Epoch seconds as `YYYY-MM-DDTHH:MM:SSZ`, as CloudTrail writes times.
pub fn iso_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::iso_time;

    #[test]
    fn times_are_cloudtrails_form() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(1_759_760_528), "2025-10-06T14:22:08Z");
        assert_eq!(iso_time(951_782_400), "2000-02-29T00:00:00Z");
    }
}
