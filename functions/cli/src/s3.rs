//! `diagnose s3://bucket/prefix/`: CloudTrail log files where the trail delivers them,
//! `AWSLogs/[o-org/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/`, listed level by level so that
//! `--since/--until`, `--accounts` and `--regions` prune whole folders before anything is
//! listed below them; then downloaded a few at a time, in key order, with bounded memory.
//!
//! The SDK configuration is the standard one (credential chain, profile, `AWS_REGION`,
//! `AWS_ENDPOINT_URL[_S3]`); the bucket's own region is asked for first, so a bucket in
//! another region than the profile's works.

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::Client;
use diagnosis::evaluate::epoch_seconds;

use crate::input::{Input, InputFileError};

/// Objects downloading at once, and decoded objects waiting for the diagnosis.
const DOWNLOADS_IN_FLIGHT: usize = 8;
const DECODED_WAITING: usize = 2;
/// An object larger than this is refused: CloudTrail writes files of a few MB.
const MAX_OBJECT_BYTES: i64 = 256 << 20;
const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_REGION: &str = "us-east-1";
const LOG_SUFFIXES: &[&str] = &[".json.gz", ".json", ".jsonl", ".jsonl.gz", ".csv", ".csv.gz"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub prefix: String,
}

impl S3Url {
    pub fn parse(text: &str) -> Option<S3Url> {
        let rest = text.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
        valid.then(|| S3Url {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

/// What to keep, by the layout's folder names.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Epoch seconds: days that end before `since` or start at or after `until` are pruned.
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
}

/// Where a folder is in the CloudTrail layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Above `CloudTrail/`: the user's prefix, `AWSLogs/`, an organisation, an account.
    Above,
    /// Below `CloudTrail/`: regions.
    Regions,
    Years,
    Months(i64),
    Days(i64, i64),
    /// In a day folder: log files.
    Files,
}

enum Step {
    Descend(Level),
    Prune,
}

impl Filters {
    fn step(&self, level: Level, segment: &str) -> Step {
        let digits = |n: usize| segment.len() == n && segment.bytes().all(|b| b.is_ascii_digit());
        match level {
            Level::Above => match segment {
                "CloudTrail" => Step::Descend(Level::Regions),
                "CloudTrail-Digest" | "CloudTrail-Insight" => Step::Prune,
                _ if digits(12)
                    && !self.accounts.is_empty()
                    && !self.accounts.iter().any(|a| a == segment) =>
                {
                    Step::Prune
                }
                _ => Step::Descend(Level::Above),
            },
            Level::Regions => {
                if self.regions.is_empty() || self.regions.iter().any(|r| r == segment) {
                    Step::Descend(Level::Years)
                } else {
                    Step::Prune
                }
            }
            Level::Years => match segment.parse::<i64>() {
                Ok(year) if digits(4) && self.overlaps(day_start(year, 1, 1), day_start(year + 1, 1, 1)) => {
                    Step::Descend(Level::Months(year))
                }
                _ => Step::Prune,
            },
            Level::Months(year) => match segment.parse::<i64>() {
                Ok(month) if digits(2) && (1..=12).contains(&month) => {
                    let (ny, nm) = if month == 12 {
                        (year + 1, 1)
                    } else {
                        (year, month + 1)
                    };
                    if self.overlaps(day_start(year, month, 1), day_start(ny, nm, 1)) {
                        Step::Descend(Level::Days(year, month))
                    } else {
                        Step::Prune
                    }
                }
                _ => Step::Prune,
            },
            Level::Days(year, month) => match segment.parse::<i64>() {
                Ok(day) if digits(2) && (1..=31).contains(&day) => {
                    let start = day_start(year, month, day);
                    if start.is_some() && self.overlaps(start, start.map(|s| s + 86_400)) {
                        Step::Descend(Level::Files)
                    } else {
                        Step::Prune
                    }
                }
                _ => Step::Prune,
            },
            Level::Files => Step::Descend(Level::Files),
        }
    }

    fn overlaps(&self, start: Option<i64>, end: Option<i64>) -> bool {
        let (Some(start), Some(end)) = (start, end) else {
            return false;
        };
        self.since.is_none_or(|since| end > since) && self.until.is_none_or(|until| start < until)
    }
}

fn day_start(year: i64, month: i64, day: i64) -> Option<i64> {
    epoch_seconds(&format!("{year:04}-{month:02}-{day:02}T00:00:00Z"))
}

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("{url}: {call}: {message}")]
    Call {
        url: String,
        call: &'static str,
        message: String,
    },
}

/// The log files below `url` that the filters keep, in key order.
pub async fn list(client: &Client, url: &S3Url, filters: &Filters) -> Result<Vec<String>, S3Error> {
    let mut level = Level::Above;
    // The user's prefix walks the same levels: s3://b/AWSLogs/1111/CloudTrail/us-east-1/ starts at Years.
    let segments: Vec<&str> = url.prefix.split('/').collect();
    // The last segment is a folder's beginning (or empty): it is judged when listed.
    let folders = &segments[..segments.len().saturating_sub(1)];
    for segment in folders {
        match filters.step(level, segment) {
            Step::Descend(next) => level = next,
            Step::Prune => return Ok(Vec::new()),
        }
    }
    let mut keys = Vec::new();
    let mut pending = VecDeque::from([(url.prefix.clone(), level)]);
    while let Some((prefix, level)) = pending.pop_front() {
        let mut pages = client
            .list_objects_v2()
            .bucket(&url.bucket)
            .prefix(&prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| S3Error::Call {
                url: format!("s3://{}/{prefix}", url.bucket),
                call: "ListObjectsV2",
                message: describe(&e),
            })?;
            for common in page.common_prefixes() {
                let Some(folder) = common.prefix() else { continue };
                let segment = folder
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or_default();
                if let Step::Descend(next) = filters.step(level, segment) {
                    pending.push_back((folder.to_owned(), next));
                }
            }
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                if LOG_SUFFIXES.iter().any(|s| key.ends_with(s)) {
                    keys.push(key.to_owned());
                }
            }
        }
    }
    keys.sort();
    Ok(keys)
}

/// The inputs of every `url`, downloaded on a thread of their own and handed over in key
/// order; at most [`DOWNLOADS_IN_FLIGHT`] + [`DECODED_WAITING`] objects are held at once.
pub fn inputs(urls: Vec<S3Url>, filters: Filters) -> Receiver<Result<Input, InputFileError>> {
    let (sender, receiver) = sync_channel(DECODED_WAITING);
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                let _ = sender.send(Err(InputFileError::Remote {
                    url: "s3".into(),
                    message: error.to_string(),
                }));
                return;
            }
        };
        runtime.block_on(async move {
            let config = oidc_watch_aws::load_sdk_config(OPERATION_TIMEOUT).await;
            for url in urls {
                let shown = format!("s3://{}/{}", url.bucket, url.prefix);
                let client = match client_for_bucket(&config, &url.bucket).await {
                    Ok(client) => client,
                    Err(message) => {
                        let _ = sender.send(Err(InputFileError::Remote { url: shown, message }));
                        continue;
                    }
                };
                let keys = match list(&client, &url, &filters).await {
                    Ok(keys) => keys,
                    Err(error) => {
                        let _ = sender.send(Err(InputFileError::Remote {
                            url: shown,
                            message: error.to_string(),
                        }));
                        continue;
                    }
                };
                if keys.is_empty() {
                    let _ = sender.send(Err(InputFileError::Remote {
                        url: shown,
                        message:
                            "no CloudTrail log files there (within --since/--until, --accounts and --regions)"
                                .into(),
                    }));
                    continue;
                }
                let mut in_flight = VecDeque::new();
                let mut keys = keys.into_iter();
                loop {
                    while in_flight.len() < DOWNLOADS_IN_FLIGHT {
                        let Some(key) = keys.next() else { break };
                        let client = client.clone();
                        let bucket = url.bucket.clone();
                        in_flight.push_back(tokio::spawn(
                            async move { download(&client, &bucket, &key).await },
                        ));
                    }
                    let Some(next) = in_flight.pop_front() else { break };
                    let item = match next.await {
                        Ok(item) => item,
                        Err(error) => Err(InputFileError::Remote {
                            url: shown.clone(),
                            message: error.to_string(),
                        }),
                    };
                    if sender.send(item).is_err() {
                        return;
                    }
                }
            }
        });
    });
    receiver
}

async fn download(client: &Client, bucket: &str, key: &str) -> Result<Input, InputFileError> {
    let url = format!("s3://{bucket}/{key}");
    let remote = |message: String| InputFileError::Remote {
        url: url.clone(),
        message,
    };
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| remote(format!("GetObject: {}", describe(&e))))?;
    if object.content_length().is_some_and(|n| n > MAX_OBJECT_BYTES) {
        return Err(remote(format!(
            "larger than {MAX_OBJECT_BYTES} bytes; not a CloudTrail log file"
        )));
    }
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| remote(format!("GetObject body: {e}")))?
        .into_bytes();
    crate::input::from_bytes(url.clone(), bytes.to_vec())
}

/// A client in the bucket's region (HeadBucket answers with it, even from another region).
async fn client_for_bucket(config: &aws_config::SdkConfig, bucket: &str) -> Result<Client, String> {
    let path_style =
        std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let build = |region: Option<String>| {
        let mut builder = aws_sdk_s3::config::Builder::from(config).force_path_style(path_style);
        if let Some(region) = region {
            builder = builder.region(aws_sdk_s3::config::Region::new(region));
        } else if config.region().is_none() {
            builder = builder.region(aws_sdk_s3::config::Region::new(DEFAULT_REGION));
        }
        Client::from_conf(builder.build())
    };
    let client = build(None);
    match client.head_bucket().bucket(bucket).send().await {
        Ok(head) => Ok(match head.bucket_region() {
            Some(region) if Some(region) != config.region().map(|r| r.as_ref()) => {
                build(Some(region.to_owned()))
            }
            _ => client,
        }),
        Err(error) => {
            let region = error
                .raw_response()
                .and_then(|r| r.headers().get("x-amz-bucket-region"))
                .map(str::to_owned);
            match region {
                Some(region) => Ok(build(Some(region))),
                None => Err(format!(
                    "HeadBucket: {} (needs s3:ListBucket on the bucket and s3:GetObject on its log files)",
                    describe(&error)
                )),
            }
        }
    }
}

fn describe<E: ProvideErrorMetadata + std::error::Error>(error: &E) -> String {
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => {
            let mut text = error.to_string();
            let mut source = error.source();
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(filters: &Filters, path: &str) -> bool {
        let mut level = Level::Above;
        for segment in path.split('/') {
            match filters.step(level, segment) {
                Step::Descend(next) => level = next,
                Step::Prune => return false,
            }
        }
        level == Level::Files
    }

    #[test]
    fn urls() {
        assert_eq!(
            S3Url::parse("s3://my-trail/AWSLogs/"),
            Some(S3Url {
                bucket: "my-trail".into(),
                prefix: "AWSLogs/".into()
            })
        );
        assert_eq!(
            S3Url::parse("s3://b").map(|u| u.prefix),
            None,
            "too short a bucket name"
        );
        assert_eq!(S3Url::parse("s3://Bad_Bucket/x"), None);
        assert_eq!(S3Url::parse("/tmp/x"), None);
    }

    #[test]
    fn the_layout_is_pruned_by_day_account_and_region() {
        let filters = Filters {
            since: epoch_seconds("2026-11-30T12:00:00Z"),
            until: epoch_seconds("2026-12-02T00:00:00Z"),
            accounts: vec!["111122223333".into()],
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
        };
        assert!(walk(
            &filters,
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/30"
        ));
        assert!(walk(
            &filters,
            "logs/AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2026/12/01"
        ));
        assert!(!walk(
            &filters,
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/29"
        ));
        assert!(!walk(
            &filters,
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/02"
        ));
        assert!(!walk(
            &filters,
            "AWSLogs/444455556666/CloudTrail/us-east-1/2026/11/30"
        ));
        assert!(!walk(
            &filters,
            "AWSLogs/111122223333/CloudTrail/us-west-2/2026/11/30"
        ));
        assert!(!walk(
            &filters,
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/30"
        ));
        assert!(!walk(
            &filters,
            "AWSLogs/111122223333/CloudTrail/us-east-1/2025/11/30"
        ));
        assert!(!walk(
            &filters,
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/13/01"
        ));
        assert!(!walk(
            &filters,
            "AWSLogs/111122223333/CloudTrail/us-east-1/26/11/30"
        ));
        let open = Filters::default();
        assert!(walk(
            &open,
            "AWSLogs/444455556666/CloudTrail/ap-south-1/2019/01/01"
        ));
    }
}
