//! `diagnose --lookup`: `AssumeRoleWithWebIdentity` events from CloudTrail's LookupEvents,
//! the 90 days of management events every account has without a trail.
//!
//! LookupEvents answers 2 requests per second per account and region, 50 events a page,
//! newest first. Pages are asked for no faster than that, region after region; the SDK
//! retries a throttled page with backoff, and a region whose page still fails is reported
//! with what was read before it, and the next region goes on. Each page becomes one input
//! of JSON lines (one record per line), so a record that is not JSON fails alone.

use std::io::IsTerminal;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Duration;

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_sdk_cloudtrail::Client;
use aws_smithy_types::DateTime;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::input::{Input, InputFileError};

/// LookupEvents' own limits: 2 requests/s per account and region, 50 events per page,
/// and history kept for 90 days.
pub const REQUEST_INTERVAL: Duration = Duration::from_millis(500);
pub const PAGE_SIZE: i32 = 50;
pub const HISTORY_SECONDS: i64 = 90 * 86_400;
/// Without --since, the last week.
pub const DEFAULT_SECONDS: i64 = 7 * 86_400;
const MAX_ATTEMPTS: u32 = 5;
const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_REGION: &str = "us-east-1";
const EVENT_NAME: &str = "AssumeRoleWithWebIdentity";

/// The time range asked for, epoch seconds, `since` < `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub since: i64,
    pub until: i64,
}

impl Range {
    /// From --since/--until: the last week by default, and never older than LookupEvents
    /// keeps (a note says so when --since asked for more).
    pub fn new(since: Option<i64>, until: Option<i64>, now: i64) -> (Range, Option<String>) {
        let until = until.unwrap_or(now).min(now);
        let oldest = now - HISTORY_SECONDS;
        let wanted = since.unwrap_or(until - DEFAULT_SECONDS);
        let note = (wanted < oldest)
            .then(|| "--lookup: LookupEvents keeps 90 days of events; reading from 90 days ago".to_owned());
        (
            Range {
                since: wanted.max(oldest).min(until),
                until,
            },
            note,
        )
    }
}

/// Holds requests to at most one per `interval`.
pub struct Pacer {
    interval: Duration,
    next: Option<tokio::time::Instant>,
}

impl Pacer {
    pub fn new(interval: Duration) -> Pacer {
        Pacer { interval, next: None }
    }

    pub async fn wait(&mut self) {
        if let Some(next) = self.next {
            tokio::time::sleep_until(next).await;
        }
        self.next = Some(tokio::time::Instant::now() + self.interval);
    }
}

/// One region's pages could not all be read.
#[derive(Debug, thiserror::Error)]
#[error("LookupEvents: {message} (after {events} events in {pages} pages; the other regions go on)")]
pub struct LookupError {
    pub region: String,
    pub pages: usize,
    pub events: usize,
    pub message: String,
}

/// What a region's reading has come to: pages, events, and the oldest event time seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub pages: usize,
    pub events: usize,
    pub oldest: Option<i64>,
}

/// Reads `region`'s `AssumeRoleWithWebIdentity` events in `range`, handing each page to
/// `page` as an input, and `progress` after each.
pub async fn lookup_region(
    client: &Client,
    region: &str,
    range: Range,
    pacer: &mut Pacer,
    mut page: impl FnMut(Input) -> bool,
    mut progress: impl FnMut(Progress),
) -> Result<Progress, LookupError> {
    let attribute = LookupAttribute::builder()
        .attribute_key(LookupAttributeKey::EventName)
        .attribute_value(EVENT_NAME)
        .build()
        .map_err(|e| LookupError {
            region: region.to_owned(),
            pages: 0,
            events: 0,
            message: e.to_string(),
        })?;
    let mut seen = Progress::default();
    let mut token: Option<String> = None;
    loop {
        pacer.wait().await;
        let answer = client
            .lookup_events()
            .lookup_attributes(attribute.clone())
            .start_time(DateTime::from_secs(range.since))
            .end_time(DateTime::from_secs(range.until))
            .max_results(PAGE_SIZE)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| LookupError {
                region: region.to_owned(),
                pages: seen.pages,
                events: seen.events,
                message: oidc_watch_aws::describe(&e),
            })?;
        seen.pages += 1;
        let mut lines = Vec::new();
        for event in answer.events() {
            let Some(text) = event.cloud_trail_event() else {
                continue;
            };
            // Newlines outside JSON strings are whitespace, and inside them not JSON at
            // all: one record per line either way.
            lines.extend(
                text.bytes()
                    .map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
            );
            lines.push(b'\n');
            seen.events += 1;
            if let Some(time) = event.event_time() {
                seen.oldest = Some(seen.oldest.map_or(time.secs(), |t| t.min(time.secs())));
            }
        }
        if !lines.is_empty() {
            let input = Input {
                name: format!("lookup:{region} page {}", seen.pages),
                bytes: lines,
                unreadable: Vec::new(),
            };
            if !page(input) {
                return Ok(seen);
            }
        }
        progress(seen);
        match answer.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => return Ok(seen),
        }
    }
}

/// The LookupEvents client for one region: the standard configuration, with more
/// attempts than the default for a throttled page.
pub fn client(config: &aws_config::SdkConfig, region: &str) -> Client {
    let retry = aws_config::retry::RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS);
    Client::from_conf(
        aws_sdk_cloudtrail::config::Builder::from(config)
            .region(aws_sdk_cloudtrail::config::Region::new(region.to_owned()))
            .retry_config(retry)
            .build(),
    )
}

/// The inputs of every region's lookup, read on a thread of their own, with a progress
/// bar on stderr when it is a terminal. No region given: the configured one.
pub fn inputs(regions: Vec<String>, range: Range) -> Receiver<Result<Input, InputFileError>> {
    let (sender, receiver) = sync_channel(2);
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                let _ = sender.send(Err(remote("lookup", error.to_string())));
                return;
            }
        };
        runtime.block_on(read_regions(regions, range, sender));
    });
    receiver
}

async fn read_regions(regions: Vec<String>, range: Range, sender: SyncSender<Result<Input, InputFileError>>) {
    let config = oidc_watch_aws::load_sdk_config(OPERATION_TIMEOUT).await;
    let regions = if regions.is_empty() {
        vec![config
            .region()
            .map_or(DEFAULT_REGION.to_owned(), |r| r.as_ref().to_owned())]
    } else {
        regions
    };
    let bar = progress_bar(range, regions.len());
    let mut pacer = Pacer::new(REQUEST_INTERVAL);
    for (n, region) in regions.iter().enumerate() {
        bar.set_position(0);
        bar.set_prefix(format!("{region} ({}/{})", n + 1, regions.len()));
        let client = client(&config, region);
        let result = lookup_region(
            &client,
            region,
            range,
            &mut pacer,
            |input| sender.send(Ok(input)).is_ok(),
            |seen| {
                let covered = seen
                    .oldest
                    .map_or(0, |oldest| range.until - oldest.max(range.since));
                bar.set_position(covered.max(0) as u64);
                bar.set_message(format!("{} events, {} pages", seen.events, seen.pages));
            },
        )
        .await;
        if let Err(error) = result {
            let url = format!("lookup:{region}");
            if sender.send(Err(remote(&url, error.to_string()))).is_err() {
                break;
            }
        }
    }
    bar.finish_and_clear();
}

fn remote(url: &str, message: String) -> InputFileError {
    InputFileError::Remote {
        url: url.to_owned(),
        message,
    }
}

/// The share of the time range read so far (events come newest first).
fn progress_bar(range: Range, regions: usize) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some((range.until - range.since).max(1) as u64), target);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {percent:>3}% of the range, {msg} ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("0 events, 0 pages, {regions} region(s)"));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::{Arc, Mutex};

    use aws_sdk_cloudtrail::operation::lookup_events::{LookupEventsError, LookupEventsOutput};
    use aws_sdk_cloudtrail::types::Event;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;
    use diagnosis::{read_input, InputItem};

    const SINCE: i64 = 1_764_000_000;
    const UNTIL: i64 = 1_764_600_000;

    fn range() -> Range {
        Range {
            since: SINCE,
            until: UNTIL,
        }
    }

    /// A CloudTrailEvent as LookupEvents returns it: the whole record as a JSON string.
    fn record(id: &str, time: i64, subject: &str) -> Event {
        let text = serde_json::json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "WebIdentityUser", "principalId": format!("arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com:sts.amazonaws.com:{subject}"), "userName": subject, "identityProvider": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},
            "eventTime": DateTime::from_secs(time).fmt(aws_smithy_types::date_time::Format::DateTime).unwrap(),
            "eventSource": "sts.amazonaws.com",
            "eventName": "AssumeRoleWithWebIdentity",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "192.0.2.1",
            "userAgent": "aws-sdk-js",
            "errorCode": "AccessDenied",
            "errorMessage": "An unknown error occurred",
            "requestParameters": {"roleArn": "arn:aws:iam::111122223333:role/deploy", "roleSessionName": "GitHubActions"},
            "responseElements": null,
            "eventID": id,
            "eventType": "AwsApiCall",
            "recipientAccountId": "111122223333",
        });
        Event::builder()
            .event_id(id)
            .event_name(EVENT_NAME)
            .event_time(DateTime::from_secs(time))
            .cloud_trail_event(serde_json::to_string_pretty(&text).unwrap())
            .build()
    }

    fn page(events: Vec<Event>, next: Option<&str>) -> LookupEventsOutput {
        LookupEventsOutput::builder()
            .set_events(Some(events))
            .set_next_token(next.map(str::to_owned))
            .build()
    }

    fn error(code: &str, message: &str) -> LookupEventsError {
        LookupEventsError::generic(ErrorMetadata::builder().code(code).message(message).build())
    }

    fn events_of(inputs: &[Input]) -> Vec<String> {
        inputs
            .iter()
            .flat_map(|input| read_input(&input.bytes))
            .filter_map(|item| match item {
                Ok(InputItem::Event(event)) => event.record.event_id.clone(),
                _ => None,
            })
            .collect()
    }

    /// What one LookupEvents request asked for: attribute, start, end, page token.
    type Asked = (Option<String>, Option<i64>, Option<i64>, Option<String>);

    #[tokio::test]
    async fn pages_follow_the_token_ask_for_the_event_name_and_keep_to_two_requests_a_second() {
        let asked: Arc<Mutex<Vec<Asked>>> = Arc::default();
        let seen = asked.clone();
        let record_request = move |r: &aws_sdk_cloudtrail::operation::lookup_events::LookupEventsInput| {
            let attribute = r
                .lookup_attributes()
                .first()
                .map(|a| format!("{}={}", a.attribute_key().as_str(), a.attribute_value()));
            seen.lock().unwrap().push((
                attribute,
                r.start_time().map(|t| t.secs()),
                r.end_time().map(|t| t.secs()),
                r.next_token().map(str::to_owned),
            ));
            r.max_results() == Some(PAGE_SIZE)
        };
        let first = mock!(Client::lookup_events)
            .match_requests(record_request.clone())
            .then_output(|| {
                page(
                    vec![
                        record("e1", UNTIL - 10, "repo:acme/web:ref:refs/heads/main"),
                        record("e2", UNTIL - 3600, "repo:acme/web:pull_request"),
                    ],
                    Some("t1"),
                )
            });
        let second = mock!(Client::lookup_events)
            .match_requests(record_request.clone())
            .then_output(|| {
                page(
                    vec![record("e3", UNTIL - 7200, "repo:acme/api:environment:prod")],
                    Some("t2"),
                )
            });
        let third = mock!(Client::lookup_events)
            .match_requests(record_request)
            .then_output(|| page(vec![], None));
        let client = mock_client!(
            aws_sdk_cloudtrail,
            RuleMode::Sequential,
            &[&first, &second, &third]
        );

        let started = tokio::time::Instant::now();
        let mut inputs = Vec::new();
        let mut reported = Vec::new();
        let done = lookup_region(
            &client,
            "us-east-1",
            range(),
            &mut Pacer::new(REQUEST_INTERVAL),
            |input| {
                inputs.push(input);
                true
            },
            |p| reported.push(p),
        )
        .await
        .unwrap();

        assert_eq!(events_of(&inputs), ["e1", "e2", "e3"]);
        assert_eq!(inputs[0].name, "lookup:us-east-1 page 1");
        assert_eq!(
            done,
            Progress {
                pages: 3,
                events: 3,
                oldest: Some(UNTIL - 7200)
            }
        );
        assert_eq!(reported.len(), 3);
        let asked = asked.lock().unwrap();
        let attribute = Some("EventName=AssumeRoleWithWebIdentity".to_owned());
        assert_eq!(
            *asked,
            [
                (attribute.clone(), Some(SINCE), Some(UNTIL), None),
                (attribute.clone(), Some(SINCE), Some(UNTIL), Some("t1".into())),
                (attribute, Some(SINCE), Some(UNTIL), Some("t2".into())),
            ]
        );
        assert!(
            started.elapsed() >= 2 * REQUEST_INTERVAL,
            "three requests take at least two intervals, took {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_throttled_page_is_retried_and_a_region_that_stays_throttled_says_what_it_read() {
        let ok = mock!(Client::lookup_events).then_output(|| {
            page(
                vec![record("e1", UNTIL - 10, "repo:acme/web:ref:refs/heads/main")],
                Some("t1"),
            )
        });
        let throttled = mock!(Client::lookup_events)
            .sequence()
            .error(|| error("ThrottlingException", "Rate exceeded"))
            .times(2)
            .output(|| {
                page(
                    vec![record("e2", UNTIL - 20, "repo:acme/web:ref:refs/heads/main")],
                    Some("t2"),
                )
            })
            .build();
        let stays = mock!(Client::lookup_events).then_error(|| error("ThrottlingException", "Rate exceeded"));
        let client = mock_client!(
            aws_sdk_cloudtrail,
            RuleMode::Sequential,
            &[&ok, &throttled, &stays],
            |builder| builder.retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(5))
            )
        );
        let mut inputs = Vec::new();
        let error = lookup_region(
            &client,
            "eu-west-1",
            range(),
            &mut Pacer::new(REQUEST_INTERVAL),
            |input| {
                inputs.push(input);
                true
            },
            |_| {},
        )
        .await
        .unwrap_err();
        assert_eq!(events_of(&inputs), ["e1", "e2"], "the retried page is read");
        assert_eq!(
            (error.region.as_str(), error.pages, error.events),
            ("eu-west-1", 2, 2)
        );
        assert_eq!(
            error.to_string(),
            "LookupEvents: ThrottlingException: Rate exceeded (after 2 events in 2 pages; the other regions go on)"
        );
    }

    #[tokio::test]
    async fn an_expired_credential_is_named_and_a_record_that_is_not_json_fails_alone() {
        let expired = mock!(Client::lookup_events).then_error(|| {
            error(
                "ExpiredTokenException",
                "The security token included in the request is expired",
            )
        });
        let client = mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, &[&expired]);
        let error = lookup_region(
            &client,
            "us-east-1",
            range(),
            &mut Pacer::new(Duration::ZERO),
            |_| true,
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("ExpiredTokenException: The security token included in the request is expired"),
            "{error}"
        );

        let mixed = mock!(Client::lookup_events).then_output(|| {
            let broken = Event::builder()
                .event_id("bad")
                .cloud_trail_event("{\"eventName\": \"Assume")
                .build();
            page(
                vec![
                    record("e1", UNTIL - 10, "repo:acme/web:ref:refs/heads/main"),
                    broken,
                    record("e3", UNTIL - 30, "repo:acme/web:ref:refs/heads/main"),
                ],
                None,
            )
        });
        let client = mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, &[&mixed]);
        let mut inputs = Vec::new();
        lookup_region(
            &client,
            "us-east-1",
            range(),
            &mut Pacer::new(Duration::ZERO),
            |input| {
                inputs.push(input);
                true
            },
            |_| {},
        )
        .await
        .unwrap();
        let items = read_input(&inputs[0].bytes);
        assert_eq!(items.len(), 3);
        assert!(items[1].is_err(), "the broken record is an error of its own");
        assert_eq!(events_of(&inputs), ["e1", "e3"]);
    }

    #[test]
    fn the_range_is_a_week_by_default_and_never_older_than_lookup_events_keeps() {
        let now = UNTIL;
        assert_eq!(
            Range::new(None, None, now),
            (
                Range {
                    since: now - DEFAULT_SECONDS,
                    until: now
                },
                None
            )
        );
        let (range, note) = Range::new(Some(now - 200 * 86_400), Some(now + 3600), now);
        assert_eq!(
            range,
            Range {
                since: now - HISTORY_SECONDS,
                until: now
            }
        );
        assert!(note.is_some_and(|n| n.contains("90 days")));
    }
}
