//! The AWS adapters against mocked SDK clients (aws-smithy-mocks): the requests they send,
//! how they read the answers, and what they make of errors.
//!
//! Mocked clients use `RuleMode::MatchAny`: rules with `match_requests` pin a request's
//! shape (a request no rule matches panics the test), rules with `then_compute_output`
//! record the request for the assertions below. Cross-account IAM clients are built by the
//! adapter from an `SdkConfig`, which cannot carry a mock interceptor; they talk to a small
//! local HTTP server that answers IAM's query protocol and records who signed each call.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudwatch::operation::put_metric_data::{PutMetricDataInput, PutMetricDataOutput};
use aws_sdk_cloudwatch::types::StandardUnit;
use aws_sdk_dynamodb::operation::get_item::{GetItemError, GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryError, QueryOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_iam::operation::get_open_id_connect_provider::{
    GetOpenIDConnectProviderError, GetOpenIdConnectProviderOutput,
};
use aws_sdk_iam::operation::get_role::{GetRoleError, GetRoleOutput};
use aws_sdk_iam::operation::list_open_id_connect_providers::ListOpenIdConnectProvidersOutput;
use aws_sdk_iam::types::error::NoSuchEntityException;
use aws_sdk_iam::types::{OpenIdConnectProviderListEntry, Role as IamRole};
use aws_sdk_sts::operation::assume_role::AssumeRoleOutput;
use aws_sdk_sts::operation::get_caller_identity::{GetCallerIdentityError, GetCallerIdentityOutput};
use aws_smithy_mocks::{mock, mock_client, MockResponse, Rule, RuleBuilder, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::DateTime;
use diagnosis::alert::{Alert, AlertKind, Severity, SpikeSummary};
use diagnosis::metrics::{Dimension, MetricName, MetricRecord};
use diagnosis::ports::{
    AccountState, AlertClaim, AlertSink, FailureCount, Incident, MetricSink, ObservedSubject, PortError,
    Sighting, StateStore, Success, MAX_OBSERVED_SUBJECT, MAX_OBSERVED_SUBJECTS,
};
use diagnosis::record::InputItem;
use diagnosis::spike::{MinuteCount, PendingSpikeAlert, SpikeState};
use diagnosis::{Cause, Diagnosis};
use oidc_watch_aws::dynamodb::{
    key_part, success_partition, success_sort_key, DynamoStateStore, MAX_COUNTER_INCIDENTS,
    MAX_INCIDENT_EVENTS, MAX_WINDOW_ALERTS,
};
use oidc_watch_aws::iam::IamAccountState;
use oidc_watch_aws::metrics::{CloudWatchSink, MAX_DATA_PER_CALL};
use oidc_watch_aws::sns::SnsAlertSink;
use serde_json::Value;

const ACCOUNT: &str = "111122223333";
const OWN_ACCOUNT: &str = "999999999999";
const ROLE: &str = "gha-deploy-main-only";
const GITHUB_PROVIDER: &str = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com";
const GHES_PROVIDER: &str = "arn:aws:iam::111122223333:oidc-provider/github.acme.internal/_services/token";
const TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com","token.actions.githubusercontent.com:sub":"repo:acme/web-app:ref:refs/heads/main"}}}]}"#;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Requests a rule saw, for assertions after the call.
struct Seen<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Seen<T> {
    fn clone(&self) -> Self {
        Seen(self.0.clone())
    }
}

impl<T: Clone> Seen<T> {
    fn new() -> Self {
        Seen(Arc::new(Mutex::new(Vec::new())))
    }

    fn push(&self, value: &T) {
        self.0.lock().unwrap().push(value.clone());
    }

    fn all(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }

    fn only(&self) -> T {
        let all = self.all();
        assert_eq!(all.len(), 1, "expected exactly one request");
        all[0].clone()
    }
}

/// IAM returns trust policies URL-encoded (RFC 3986 unreserved characters kept).
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn sample_diagnosis() -> Result<Diagnosis, Box<dyn std::error::Error>> {
    Ok(diagnosis::diagnose(&*sample_event()?, None))
}

fn sample_event() -> Result<Box<diagnosis::WebIdentityEvent>, Box<dyn std::error::Error>> {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json"
    ))?;
    match diagnosis::read_input(&bytes).into_iter().next() {
        Some(Ok(InputItem::Event(event))) => Ok(event),
        other => Err(format!("the sample is not one event: {other:?}").into()),
    }
}

// ---------------------------------------------------------------------------------------
// IAM
// ---------------------------------------------------------------------------------------

fn iam_role(account: &str) -> IamRole {
    IamRole::builder()
        .path("/")
        .role_name(ROLE)
        .role_id("AROABTX3GSDS56JEVSHUM")
        .arn(format!("arn:aws:iam::{account}:role/{ROLE}"))
        .create_date(DateTime::from_secs(1_745_308_090))
        .assume_role_policy_document(url_encode(TRUST_POLICY))
        .max_session_duration(7200)
        .build()
        .expect("a role with every required field")
}

/// The IAM rules of an account with `ROLE` and two OIDC providers.
struct IamRules {
    get_role: Rule,
    list: Rule,
    get_github: Rule,
    get_ghes: Rule,
}

impl IamRules {
    fn found() -> Self {
        IamRules {
            get_role: mock!(aws_sdk_iam::Client::get_role)
                .match_requests(|r| r.role_name().is_some_and(|n| n.eq_ignore_ascii_case(ROLE)))
                .then_output(|| GetRoleOutput::builder().role(iam_role(ACCOUNT)).build()),
            ..Self::providers()
        }
    }

    fn providers() -> Self {
        IamRules {
            get_role: mock!(aws_sdk_iam::Client::get_role)
                .then_error(|| GetRoleError::NoSuchEntityException(NoSuchEntityException::builder().build())),
            list: mock!(aws_sdk_iam::Client::list_open_id_connect_providers).then_output(|| {
                ListOpenIdConnectProvidersOutput::builder()
                    .open_id_connect_provider_list(
                        OpenIdConnectProviderListEntry::builder()
                            .arn(GITHUB_PROVIDER)
                            .build(),
                    )
                    .open_id_connect_provider_list(
                        OpenIdConnectProviderListEntry::builder()
                            .arn(GHES_PROVIDER)
                            .build(),
                    )
                    .build()
            }),
            get_github: mock!(aws_sdk_iam::Client::get_open_id_connect_provider)
                .match_requests(|r| r.open_id_connect_provider_arn() == Some(GITHUB_PROVIDER))
                .then_output(|| {
                    GetOpenIdConnectProviderOutput::builder()
                        .url("token.actions.githubusercontent.com")
                        .client_id_list("sts.amazonaws.com")
                        .client_id_list("https://github.com/acme")
                        .thumbprint_list("6938fd4d98bab03faadb97b34396831e3780aea1")
                        .build()
                }),
            get_ghes: mock!(aws_sdk_iam::Client::get_open_id_connect_provider)
                .match_requests(|r| r.open_id_connect_provider_arn() == Some(GHES_PROVIDER))
                .then_output(|| {
                    GetOpenIdConnectProviderOutput::builder()
                        // Pinned: a scheme, should IAM ever return one, is dropped.
                        .url("https://github.acme.internal/_services/token")
                        .client_id_list("sts.amazonaws.com")
                        .build()
                }),
        }
    }

    fn client(&self) -> aws_sdk_iam::Client {
        mock_client!(
            aws_sdk_iam,
            RuleMode::MatchAny,
            [&self.get_role, &self.list, &self.get_github, &self.get_ghes]
        )
    }

    /// (GetRole, List, Get) calls so far.
    fn calls(&self) -> (usize, usize, usize) {
        (
            self.get_role.num_calls(),
            self.list.num_calls(),
            self.get_github.num_calls() + self.get_ghes.num_calls(),
        )
    }
}

/// STS rules: GetCallerIdentity says we are `OWN_ACCOUNT`; AssumeRole only for the read
/// role in `ACCOUNT`, answering with recognisable credentials.
struct StsRules {
    identity: Rule,
    assume: Rule,
}

const READ_ROLE_KEY: &str = "ASIAREADROLEEXAMPLE1";
const READ_ROLE_TOKEN: &str = "session-token-of-the-read-role";

impl StsRules {
    fn new() -> Self {
        StsRules {
            identity: mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
                GetCallerIdentityOutput::builder()
                    .account(OWN_ACCOUNT)
                    .arn("arn:aws:sts::999999999999:assumed-role/oidc-monitor/fn")
                    .user_id("AROAEXAMPLE:fn")
                    .build()
            }),
            assume: mock!(aws_sdk_sts::Client::assume_role)
                .match_requests(|r| {
                    r.role_arn() == Some("arn:aws:iam::111122223333:role/oidc-watch-read")
                        && r.role_session_name() == Some("oidc-monitor")
                })
                .then_output(|| {
                    AssumeRoleOutput::builder()
                        .credentials(
                            aws_sdk_sts::types::Credentials::builder()
                                .access_key_id(READ_ROLE_KEY)
                                .secret_access_key("secret-of-the-read-role")
                                .session_token(READ_ROLE_TOKEN)
                                .expiration(DateTime::from_secs(4_102_444_800))
                                .build()
                                .expect("credentials with every required field"),
                        )
                        .build()
                }),
        }
    }

    fn client(&self) -> aws_sdk_sts::Client {
        mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&self.identity, &self.assume])
    }
}

/// An `SdkConfig` for IAM clients the adapter builds itself (after AssumeRole).
fn sdk_config(endpoint: Option<String>) -> aws_config::SdkConfig {
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .retry_config(aws_config::retry::RetryConfig::disabled());
    builder.set_endpoint_url(endpoint);
    builder.build()
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn iam_snapshot_reads_the_role_and_providers_and_caches_them() -> TestResult {
    let iam = IamRules::found();
    let sts = StsRules::new();
    let state = IamAccountState::from_clients(&sdk_config(None), iam.client(), sts.client(), None, HOUR);

    let snapshot = state.snapshot(ACCOUNT, ROLE).await?;
    assert_eq!(snapshot.account_id, ACCOUNT);
    let role = snapshot.role(ROLE).expect("the role GetRole returned");
    assert_eq!(role.arn, format!("arn:aws:iam::{ACCOUNT}:role/{ROLE}"));
    assert_eq!(role.max_session_duration, 7200);
    let policy = role
        .trust_policy
        .as_ref()
        .expect("the URL-encoded trust policy parses");
    assert_eq!(policy.statements.len(), 1);

    let github = snapshot
        .provider("token.actions.githubusercontent.com")
        .expect("provider listed and fetched");
    assert_eq!(github.arn.as_deref(), Some(GITHUB_PROVIDER));
    assert_eq!(
        github.client_ids,
        ["sts.amazonaws.com", "https://github.com/acme"]
    );
    assert_eq!(
        github.thumbprint_list,
        ["6938fd4d98bab03faadb97b34396831e3780aea1"]
    );
    let ghes = snapshot
        .provider("github.acme.internal/_services/token")
        .expect("URL stored without https://");
    assert_eq!(ghes.url, "github.acme.internal/_services/token");
    assert_eq!(iam.calls(), (1, 1, 2));

    // The snapshot is what the diagnosis needs: the event's branch is not main.
    let diagnosis = diagnosis::diagnose(&*sample_event()?, Some(&snapshot));
    assert_eq!(diagnosis.cause, Cause::SubjectMismatch);
    assert_eq!(diagnosis.evidence, "account-snapshot");

    // Within the TTL nothing is asked again, whatever the case of the role name.
    let again = state.snapshot(ACCOUNT, "GHA-Deploy-Main-Only").await?;
    assert!(again.role(ROLE).is_some());
    assert_eq!(again.providers.len(), 2);
    assert_eq!(
        iam.calls(),
        (1, 1, 2),
        "a second snapshot within the TTL calls IAM"
    );
    // No read role configured: STS is never asked.
    assert_eq!((sts.identity.num_calls(), sts.assume.num_calls()), (0, 0));
    Ok(())
}

#[tokio::test]
async fn iam_snapshot_expecting_the_event_provider_asks_for_each_provider_once() -> TestResult {
    let providers = |snapshot: &diagnosis::snapshot::AccountSnapshot| {
        let mut urls: Vec<String> = snapshot.providers.iter().map(|p| format!("{p:?}")).collect();
        urls.sort();
        (urls, snapshot.role(ROLE).map(|r| r.arn.clone()))
    };
    let iam = IamRules::found();
    let state = IamAccountState::from_clients(
        &sdk_config(None),
        iam.client(),
        StsRules::new().client(),
        None,
        HOUR,
    );
    let plain = providers(&state.snapshot(ACCOUNT, ROLE).await?);
    assert_eq!(plain.0.len(), 2);

    // The event's provider is fetched alongside the list; the list still decides.
    let iam = IamRules::found();
    let state = IamAccountState::from_clients(
        &sdk_config(None),
        iam.client(),
        StsRules::new().client(),
        None,
        HOUR,
    );
    let expecting = state
        .snapshot_expecting(ACCOUNT, ROLE, Some(GITHUB_PROVIDER))
        .await?;
    assert_eq!(providers(&expecting), plain);
    assert_eq!(
        iam.calls(),
        (1, 1, 2),
        "the expected provider was asked for twice"
    );

    // A provider the account does not have costs one call and changes nothing.
    let iam = IamRules::found();
    let unknown = mock!(aws_sdk_iam::Client::get_open_id_connect_provider)
        .match_requests(|r| {
            r.open_id_connect_provider_arn()
                .is_some_and(|a| a.ends_with("/gitlab.example.com"))
        })
        .then_error(|| {
            GetOpenIDConnectProviderError::NoSuchEntityException(NoSuchEntityException::builder().build())
        });
    let client = mock_client!(
        aws_sdk_iam,
        RuleMode::MatchAny,
        [&iam.get_role, &iam.list, &iam.get_github, &iam.get_ghes, &unknown]
    );
    let state =
        IamAccountState::from_clients(&sdk_config(None), client, StsRules::new().client(), None, HOUR);
    let snapshot = state
        .snapshot_expecting(
            ACCOUNT,
            ROLE,
            Some("arn:aws:iam::111122223333:oidc-provider/gitlab.example.com"),
        )
        .await?;
    assert_eq!(providers(&snapshot), plain);
    assert_eq!((iam.calls(), unknown.num_calls()), ((1, 1, 2), 1));

    // An ARN in another account, or not of IAM's alphabet, is not asked for at all.
    for odd in [
        "arn:aws:iam::444455556666:oidc-provider/token.actions.githubusercontent.com",
        "arn:aws:iam::111122223333:oidc-provider/token.actions\ngithubusercontent.com\u{202e}",
        "arn:aws:iam::111122223333:oidc-provider/",
    ] {
        let iam = IamRules::found();
        let state = IamAccountState::from_clients(
            &sdk_config(None),
            iam.client(),
            StsRules::new().client(),
            None,
            HOUR,
        );
        let snapshot = state.snapshot_expecting(ACCOUNT, ROLE, Some(odd)).await?;
        assert_eq!(providers(&snapshot), plain, "{odd}");
        assert_eq!(iam.calls(), (1, 1, 2), "{odd}");
    }
    Ok(())
}

#[tokio::test]
async fn iam_snapshot_past_the_ttl_asks_again() -> TestResult {
    let iam = IamRules::found();
    let sts = StsRules::new();
    let state = IamAccountState::from_clients(
        &sdk_config(None),
        iam.client(),
        sts.client(),
        None,
        Duration::ZERO,
    );
    state.snapshot(ACCOUNT, ROLE).await?;
    state.snapshot(ACCOUNT, ROLE).await?;
    assert_eq!(iam.calls(), (2, 2, 4));
    Ok(())
}

#[tokio::test]
async fn iam_no_such_entity_is_a_snapshot_without_the_role_and_is_cached() -> TestResult {
    let iam = IamRules::providers();
    let sts = StsRules::new();
    let state = IamAccountState::from_clients(&sdk_config(None), iam.client(), sts.client(), None, HOUR);

    // The event's role, deleted.
    let snapshot = state.snapshot(ACCOUNT, ROLE).await?;
    assert!(snapshot.roles.is_empty());
    assert!(snapshot.role(ROLE).is_none());
    assert!(snapshot.is_role_absent(ROLE), "GetRole said NoSuchEntity");
    assert_eq!(snapshot.providers.len(), 2, "providers are still read");

    let again = state.snapshot(ACCOUNT, ROLE).await?;
    assert!(again.roles.is_empty());
    assert_eq!(iam.calls(), (1, 1, 2), "NoSuchEntity is cached like a role");

    // The role not existing is what the diagnosis reports.
    let diagnosis = diagnosis::diagnose(&*sample_event()?, Some(&snapshot));
    assert_eq!(diagnosis.cause, Cause::RoleNotFound);
    Ok(())
}

#[tokio::test]
async fn iam_access_denied_is_a_port_error() {
    let get_role = mock!(aws_sdk_iam::Client::get_role).then_error(|| {
        GetRoleError::generic(
            ErrorMetadata::builder()
                .code("AccessDenied")
                .message("User: arn:aws:sts::999999999999:assumed-role/oidc-monitor/fn is not authorized to perform: iam:GetRole")
                .build(),
        )
    });
    let list = mock!(aws_sdk_iam::Client::list_open_id_connect_providers)
        .then_output(|| ListOpenIdConnectProvidersOutput::builder().build());
    let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&get_role, &list]);
    let sts = StsRules::new();
    let state = IamAccountState::from_clients(&sdk_config(None), iam, sts.client(), None, HOUR);

    let error = state
        .snapshot(ACCOUNT, ROLE)
        .await
        .expect_err("AccessDenied fails the lookup");
    assert_eq!(error.service, "iam");
    assert!(
        !error.retryable,
        "AccessDenied will not go away by retrying: {error}"
    );
    assert!(error.message.contains("GetRole"), "{error}");
    assert!(error.message.contains("not authorized"), "{error}");

    // The providers were read alongside (and cached); the error is cached for a short
    // while, so the next event within it asks nothing.
    assert_eq!((get_role.num_calls(), list.num_calls()), (1, 1));
    let again = state.snapshot(ACCOUNT, ROLE).await.expect_err("the cached error");
    assert_eq!(again, error);
    assert_eq!((get_role.num_calls(), list.num_calls()), (1, 1));
}

#[tokio::test]
async fn iam_throttling_is_retryable() {
    let get_role = mock!(aws_sdk_iam::Client::get_role).then_error(|| {
        GetRoleError::generic(
            ErrorMetadata::builder()
                .code("Throttling")
                .message("Rate exceeded")
                .build(),
        )
    });
    let list = mock!(aws_sdk_iam::Client::list_open_id_connect_providers)
        .then_output(|| ListOpenIdConnectProvidersOutput::builder().build());
    let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&get_role, &list], |c| c
        .retry_config(aws_sdk_iam::config::retry::RetryConfig::disabled()));
    let state = IamAccountState::from_clients(&sdk_config(None), iam, StsRules::new().client(), None, HOUR);
    let error = state.snapshot(ACCOUNT, ROLE).await.expect_err("throttled");
    assert!(error.retryable, "{error}");
}

#[tokio::test]
async fn iam_own_account_is_read_without_assuming_the_read_role() -> TestResult {
    let iam = IamRules::found();
    let sts = StsRules::new();
    let state = IamAccountState::from_clients(
        &sdk_config(None),
        iam.client(),
        sts.client(),
        Some("oidc-watch-read".into()),
        HOUR,
    );
    let snapshot = state.snapshot(OWN_ACCOUNT, ROLE).await?;
    assert_eq!(snapshot.account_id, OWN_ACCOUNT);
    assert!(snapshot.role(ROLE).is_some());
    assert_eq!(sts.identity.num_calls(), 1);
    assert_eq!(sts.assume.num_calls(), 0, "no AssumeRole into our own account");
    assert_eq!(iam.calls(), (1, 1, 2));

    // GetCallerIdentity is asked once per instance.
    state.snapshot(OWN_ACCOUNT, ROLE).await?;
    assert_eq!(sts.identity.num_calls(), 1);
    assert_eq!(sts.assume.num_calls(), 0);
    Ok(())
}

/// One request the fake IAM endpoint received.
#[derive(Debug, Clone)]
struct IamRequest {
    params: HashMap<String, String>,
    authorization: String,
    security_token: String,
}

/// A local endpoint answering IAM's query protocol (GetRole, ListOpenIDConnectProviders,
/// GetOpenIDConnectProvider) for `account`, recording every request.
fn fake_iam_endpoint(account: &'static str) -> (String, Seen<IamRequest>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    let endpoint = format!("http://{}", listener.local_addr().expect("bound"));
    let seen = Seen::new();
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut headers = HashMap::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                }
            }
            let length = headers
                .get("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let params: HashMap<String, String> = String::from_utf8_lossy(&body)
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (url_decode(k), url_decode(v)))
                .collect();
            let action = params.get("Action").cloned().unwrap_or_default();
            record.push(&IamRequest {
                params,
                authorization: headers.get("authorization").cloned().unwrap_or_default(),
                security_token: headers.get("x-amz-security-token").cloned().unwrap_or_default(),
            });
            let result = match action.as_str() {
                "GetRole" => format!(
                    "<Role><Path>/</Path><RoleName>{ROLE}</RoleName><RoleId>AROAEXAMPLE</RoleId>\
                     <Arn>arn:aws:iam::{account}:role/{ROLE}</Arn><CreateDate>2025-04-22T07:48:10Z</CreateDate>\
                     <AssumeRolePolicyDocument>{}</AssumeRolePolicyDocument>\
                     <MaxSessionDuration>3600</MaxSessionDuration></Role>",
                    url_encode(TRUST_POLICY)
                ),
                "ListOpenIDConnectProviders" => format!(
                    "<OpenIDConnectProviderList><member><Arn>arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com</Arn></member></OpenIDConnectProviderList>"
                ),
                "GetOpenIDConnectProvider" => "<Url>token.actions.githubusercontent.com</Url>\
                     <ClientIDList><member>sts.amazonaws.com</member></ClientIDList>\
                     <ThumbprintList><member>6938fd4d98bab03faadb97b34396831e3780aea1</member></ThumbprintList>\
                     <CreateDate>2023-02-14T10:21:37Z</CreateDate>"
                    .to_owned(),
                _ => String::new(),
            };
            let (status, xml) = if result.is_empty() {
                (
                    "400 Bad Request",
                    "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>not faked</Message></Error></ErrorResponse>".to_owned(),
                )
            } else {
                (
                    "200 OK",
                    format!(
                        "<{action}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><{action}Result>{result}</{action}Result>\
                         <ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></{action}Response>"
                    ),
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            );
        }
    });
    (endpoint, seen)
}

#[tokio::test]
async fn iam_other_account_is_read_through_the_assumed_read_role() -> TestResult {
    let own_iam = IamRules::found();
    let sts = StsRules::new();
    let (endpoint, requests) = fake_iam_endpoint(ACCOUNT);
    let state = IamAccountState::from_clients(
        &sdk_config(Some(endpoint)),
        own_iam.client(),
        sts.client(),
        Some("oidc-watch-read".into()),
        HOUR,
    );

    let snapshot = state.snapshot(ACCOUNT, ROLE).await?;
    // match_requests pinned role_arn arn:aws:iam::111122223333:role/oidc-watch-read.
    assert_eq!(sts.identity.num_calls(), 1);
    assert_eq!(sts.assume.num_calls(), 1);
    assert_eq!(
        own_iam.calls(),
        (0, 0, 0),
        "our own IAM client is not used for another account"
    );

    let role = snapshot.role(ROLE).expect("the role, read in the other account");
    assert_eq!(role.arn, format!("arn:aws:iam::{ACCOUNT}:role/{ROLE}"));
    assert!(role.trust_policy.is_ok());
    assert_eq!(
        snapshot
            .provider("token.actions.githubusercontent.com")
            .map(|p| &p.client_ids[..]),
        Some(&["sts.amazonaws.com".to_owned()][..])
    );

    let requests = requests.all();
    // GetRole and the provider list are asked concurrently: in either order.
    let mut actions: Vec<&str> = requests.iter().map(|r| r.params["Action"].as_str()).collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "GetOpenIDConnectProvider",
            "GetRole",
            "ListOpenIDConnectProviders"
        ]
    );
    let get_role = requests
        .iter()
        .find(|r| r.params["Action"] == "GetRole")
        .expect("a GetRole");
    assert_eq!(get_role.params["RoleName"], ROLE);
    for request in &requests {
        assert!(
            request
                .authorization
                .contains(&format!("Credential={READ_ROLE_KEY}/")),
            "signed with the read role's credentials: {}",
            request.authorization
        );
        assert_eq!(request.security_token, READ_ROLE_TOKEN);
    }

    // The assumed client is reused, and the answers cached.
    state.snapshot(ACCOUNT, ROLE).await?;
    assert_eq!(sts.assume.num_calls(), 1);
    Ok(())
}

#[tokio::test]
async fn iam_assume_role_failure_is_a_port_error() {
    let identity = mock!(aws_sdk_sts::Client::get_caller_identity)
        .then_output(|| GetCallerIdentityOutput::builder().account(OWN_ACCOUNT).build());
    let assume = mock!(aws_sdk_sts::Client::assume_role).then_error(|| {
        aws_sdk_sts::operation::assume_role::AssumeRoleError::generic(
            ErrorMetadata::builder()
                .code("AccessDenied")
                .message("not authorized to perform: sts:AssumeRole")
                .build(),
        )
    });
    let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&identity, &assume]);
    let iam = IamRules::found();
    let state = IamAccountState::from_clients(
        &sdk_config(None),
        iam.client(),
        sts,
        Some("oidc-watch-read".into()),
        HOUR,
    );
    let error = state.snapshot(ACCOUNT, ROLE).await.expect_err("no read role");
    assert_eq!(error.service, "sts");
    assert!(
        error
            .message
            .contains("arn:aws:iam::111122223333:role/oidc-watch-read"),
        "{error}"
    );
    assert_eq!(iam.calls(), (0, 0, 0));
}

/// A GetCallerIdentity failure (a cold-start blip) is remembered only briefly: past the
/// error TTL (zero here) the next lookup asks again. Meanwhile nothing is read, not even
/// what may be our own account, and our own account is never read through AssumeRole.
#[tokio::test]
async fn iam_caller_identity_failure_does_not_stick_or_assume_into_our_own_account() {
    let identity = mock!(aws_sdk_sts::Client::get_caller_identity)
        .sequence()
        .error(|| GetCallerIdentityError::generic(ErrorMetadata::builder().code("Throttling").build()))
        .output(|| GetCallerIdentityOutput::builder().account(OWN_ACCOUNT).build())
        .repeatedly()
        .build();
    let assume = mock!(aws_sdk_sts::Client::assume_role).then_error(|| {
        aws_sdk_sts::operation::assume_role::AssumeRoleError::generic(
            ErrorMetadata::builder().code("AccessDenied").build(),
        )
    });
    let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&identity, &assume], |c| c
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled()));
    let iam = IamRules::found();
    let state = IamAccountState::from_clients(
        &sdk_config(None),
        iam.client(),
        sts,
        Some("oidc-watch-read".into()),
        HOUR,
    )
    .with_error_ttl(Duration::ZERO);
    let first = state
        .snapshot(OWN_ACCOUNT, ROLE)
        .await
        .expect_err("our own account is unknown");
    assert_eq!(first.service, "sts");
    assert!(first.retryable, "{first}");
    assert_eq!(
        iam.calls(),
        (0, 0, 0),
        "nothing read while our account is unknown"
    );

    let second = state.snapshot(OWN_ACCOUNT, ROLE).await;
    assert!(second.is_ok(), "{second:?}");
    assert_eq!(
        (identity.num_calls(), assume.num_calls()),
        (2, 0),
        "GetCallerIdentity should be asked again after a failure, and our own account read \
         with our own client, not through AssumeRole"
    );
    assert_eq!(iam.calls(), (1, 1, 2));
}

// ---------------------------------------------------------------------------------------
// SNS
// ---------------------------------------------------------------------------------------

const TOPIC: &str = "arn:aws:sns:us-east-1:999999999999:oidc-watch-alerts";

fn incident_alert() -> Result<Alert, Box<dyn std::error::Error>> {
    let d = sample_diagnosis()?;
    Ok(Alert {
        kind: AlertKind::Incident,
        severity: Severity::High,
        thread_id: "inc-0001".into(),
        account_id: ACCOUNT.into(),
        cause: Some(d.cause),
        attempts: 3,
        diagnosis: Some(d),
        spike: None,
        notes: Vec::new(),
    })
}

fn sns_capture() -> (Rule, Seen<aws_sdk_sns::operation::publish::PublishInput>) {
    let seen = Seen::new();
    let record = seen.clone();
    let rule = mock!(aws_sdk_sns::Client::publish).then_compute_output(move |request| {
        record.push(request);
        aws_sdk_sns::operation::publish::PublishOutput::builder()
            .message_id("msg-1")
            .build()
    });
    (rule, seen)
}

#[tokio::test]
async fn sns_publish_sends_the_q_notification_email_text_and_attributes() -> TestResult {
    let (rule, seen) = sns_capture();
    let sink = SnsAlertSink {
        client: mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule]),
        topic_arn: TOPIC.into(),
    };
    sink.publish(&incident_alert()?).await?;
    let request = seen.only();

    assert_eq!(request.topic_arn(), Some(TOPIC));
    assert_eq!(request.message_structure(), Some("json"));

    let message: Value = serde_json::from_str(request.message().expect("a message"))?;
    let keys: Vec<&String> = message.as_object().expect("an object").keys().collect();
    assert_eq!(
        keys,
        ["default", "email"],
        "one body for chat/Lambda, one for email"
    );

    // "default" is a string holding the Amazon Q custom notification.
    let q: Value = serde_json::from_str(message["default"].as_str().expect("a string"))?;
    assert_eq!(q["version"], "1.0");
    assert_eq!(q["source"], "custom");
    assert_eq!(q["metadata"]["threadId"], "inc-0001");
    let context = q["metadata"]["additionalContext"]
        .as_object()
        .expect("additionalContext");
    assert!(
        context.values().all(Value::is_string),
        "Amazon Q wants additionalContext as strings: {context:?}"
    );
    let embedded: Value = serde_json::from_str(context["diagnosis"].as_str().expect("diagnosis"))?;
    assert_eq!(embedded["cause"], "SubjectMismatch");
    assert_eq!(context["cause"], "SubjectMismatch");
    assert_eq!(context["account"], ACCOUNT);

    let email = message["email"].as_str().expect("plain text for email");
    assert!(email.starts_with("[HIGH] SubjectMismatch"), "{email}");
    assert!(email.contains("Thread: inc-0001"), "{email}");
    assert!(!email.trim_start().starts_with('{'), "email is not JSON");

    let subject = request.subject().expect("a subject");
    assert!(subject.starts_with("oidc-watch: SubjectMismatch"), "{subject}");
    assert!(
        subject.len() <= 100 && subject.is_ascii() && !subject.contains(['\n', '\r']),
        "{subject:?}"
    );

    let attributes: BTreeMap<String, (String, String)> = request
        .message_attributes()
        .expect("message attributes")
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                (
                    value.data_type().to_owned(),
                    value.string_value().unwrap_or_default().to_owned(),
                ),
            )
        })
        .collect();
    let string = |v: &str| ("String".to_owned(), v.to_owned());
    assert_eq!(
        attributes,
        BTreeMap::from([
            ("account".to_owned(), string(ACCOUNT)),
            ("cause".to_owned(), string("SubjectMismatch")),
            ("kind".to_owned(), string("incident")),
            ("severity".to_owned(), string("high")),
        ])
    );
    Ok(())
}

#[tokio::test]
async fn sns_subject_of_a_long_non_ascii_title_stays_within_100_ascii_characters() -> TestResult {
    let (rule, seen) = sns_capture();
    let sink = SnsAlertSink {
        client: mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule]),
        topic_arn: TOPIC.into(),
    };
    let alert = Alert {
        kind: AlertKind::Spike,
        severity: Severity::Medium,
        thread_id: "spike-1".into(),
        account_id: "-".into(),
        cause: None,
        attempts: 40,
        diagnosis: None,
        spike: Some(SpikeSummary {
            scope: "all".into(),
            window_seconds: 300,
            failures: 40,
            baseline: 1.5,
            // The title names the role carrying most of the burst.
            top_roles: vec![("déploiement\n".repeat(20), 40)],
            top_causes: vec![],
        }),
        notes: Vec::new(),
    };
    sink.publish(&alert).await?;
    let request = seen.only();
    let subject = request.subject().expect("a subject");
    assert!(subject.len() <= 100, "{} characters: {subject}", subject.len());
    assert!(subject.is_ascii() && !subject.contains('\n'), "{subject:?}");
    assert!(subject.ends_with("..."), "{subject}");
    let attributes = request.message_attributes().expect("attributes");
    assert_eq!(attributes["cause"].string_value(), Some("None"));
    assert_eq!(attributes["kind"].string_value(), Some("spike"));
    Ok(())
}

#[tokio::test]
async fn sns_throttling_is_a_retryable_error() -> TestResult {
    let rule = mock!(aws_sdk_sns::Client::publish).then_error(|| {
        aws_sdk_sns::operation::publish::PublishError::generic(
            ErrorMetadata::builder()
                .code("Throttling")
                .message("Rate exceeded")
                .build(),
        )
    });
    // The SDK retries throttling itself (3 attempts, backoff shortened here); the adapter
    // then reports the failure as worth retrying.
    let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule], |c| c.retry_config(
        aws_sdk_sns::config::retry::RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(1))
            .with_max_backoff(Duration::from_millis(2))
    ));
    let sink = SnsAlertSink {
        client,
        topic_arn: TOPIC.into(),
    };
    let error = sink.publish(&incident_alert()?).await.expect_err("throttled");
    assert_eq!(error.service, "sns");
    assert!(error.retryable, "{error}");
    assert!(error.message.contains("Rate exceeded"), "{error}");
    assert_eq!(rule.num_calls(), 3, "the SDK's own retries");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// DynamoDB
// ---------------------------------------------------------------------------------------
//
// Every rule records the requests it answers (`recording`), and each test compares them,
// whole, with the `Request` it expects: table, key (or a put's whole item), update and
// condition expressions, names, values, ReturnValues, ConsistentRead.

const TABLE: &str = "oidc-watch-state";
/// An incident key as the handler makes them (a SHA-256): short enough to stay unhashed.
const KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const INCIDENT_PK: &str = "incident#0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const NOW: i64 = 1_700_000_000;

type Item = HashMap<String, AttributeValue>;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn ss(values: &[&str]) -> AttributeValue {
    AttributeValue::Ss(values.iter().map(|v| (*v).to_owned()).collect())
}

fn item(map: &[(&str, AttributeValue)]) -> Item {
    map.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

fn incident_pk() -> [(&'static str, AttributeValue); 2] {
    [("pk", s(INCIDENT_PK)), ("sk", s("-"))]
}

/// A store whose client fails at once: no SDK retries, so an error is the adapter's answer.
fn store(rules: &[&Rule]) -> DynamoStateStore {
    DynamoStateStore::new(
        mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules.iter().copied(), |c| c
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())),
        TABLE,
    )
}

/// A rule answering the `i`-th request it sees with `answer(i, request)`, recording each.
fn recording<I, O, E>(
    builder: RuleBuilder<I, O, E>,
    answer: impl Fn(usize, &I) -> MockResponse<O, E> + Send + Sync + 'static,
) -> (Rule, Seen<I>)
where
    I: Clone + std::fmt::Debug + Send + Sync + 'static,
    O: std::fmt::Debug + Send + Sync + 'static,
    E: std::fmt::Debug + std::error::Error + Send + Sync + 'static,
{
    let seen = Seen::new();
    let record = seen.clone();
    let rule = builder.then_compute_response(move |request: &I| {
        let index = record.all().len();
        record.push(request);
        answer(index, request)
    });
    (rule, seen)
}

fn put_ok() -> (Rule, Seen<PutItemInput>) {
    recording(mock!(aws_sdk_dynamodb::Client::put_item), |_, _| {
        MockResponse::Output(PutItemOutput::builder().build())
    })
}

fn put_fails() -> (Rule, Seen<PutItemInput>) {
    recording(mock!(aws_sdk_dynamodb::Client::put_item), |_, _| {
        MockResponse::Error(PutItemError::ConditionalCheckFailedException(condition_failed()))
    })
}

/// UpdateItem answering with `attributes` (the item after the update, for ALL_NEW).
fn update_ok(attributes: Option<Item>) -> (Rule, Seen<UpdateItemInput>) {
    recording(mock!(aws_sdk_dynamodb::Client::update_item), move |_, _| {
        MockResponse::Output(
            UpdateItemOutput::builder()
                .set_attributes(attributes.clone())
                .build(),
        )
    })
}

fn update_fails() -> (Rule, Seen<UpdateItemInput>) {
    recording(mock!(aws_sdk_dynamodb::Client::update_item), |_, _| {
        MockResponse::Error(UpdateItemError::ConditionalCheckFailedException(
            condition_failed(),
        ))
    })
}

/// GetItem finding `found` (or nothing).
fn get(found: Option<Item>) -> (Rule, Seen<GetItemInput>) {
    recording(mock!(aws_sdk_dynamodb::Client::get_item), move |_, _| {
        MockResponse::Output(GetItemOutput::builder().set_item(found.clone()).build())
    })
}

fn condition_failed() -> ConditionalCheckFailedException {
    ConditionalCheckFailedException::builder()
        .message("The conditional request failed")
        .build()
}

fn throttled(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message("Rate of requests exceeds the allowed throughput")
        .build()
}

/// The parts of a DynamoDB request the adapter's correctness rests on.
#[derive(Debug, Clone, PartialEq)]
struct Request {
    table: Option<String>,
    /// The key of an update or a read; the whole item of a put.
    item: Option<Item>,
    update: Option<String>,
    condition: Option<String>,
    names: Option<HashMap<String, String>>,
    values: Option<Item>,
    return_values: Option<ReturnValue>,
    consistent_read: Option<bool>,
}

/// The request a test expects: `item` (a put's item, an update's or a read's key), then
/// whatever else it sends.
fn request(item_or_key: &[(&str, AttributeValue)]) -> Request {
    Request {
        table: Some(TABLE.to_owned()),
        item: Some(item(item_or_key)),
        update: None,
        condition: None,
        names: None,
        values: None,
        return_values: None,
        consistent_read: None,
    }
}

impl Request {
    fn update(mut self, expression: &str) -> Self {
        self.update = Some(expression.to_owned());
        self
    }

    fn condition(mut self, expression: &str) -> Self {
        self.condition = Some(expression.to_owned());
        self
    }

    fn names(mut self, names: &[(&str, &str)]) -> Self {
        self.names = Some(
            names
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        self
    }

    fn values(mut self, values: &[(&str, AttributeValue)]) -> Self {
        self.values = Some(item(values));
        self
    }

    fn returns(mut self, value: ReturnValue) -> Self {
        self.return_values = Some(value);
        self
    }

    fn with_item(mut self, whole: Item) -> Self {
        self.item = Some(whole);
        self
    }

    fn consistent(mut self) -> Self {
        self.consistent_read = Some(true);
        self
    }
}

impl From<&PutItemInput> for Request {
    fn from(r: &PutItemInput) -> Self {
        Request {
            table: r.table_name().map(str::to_owned),
            item: r.item().cloned(),
            update: None,
            condition: r.condition_expression().map(str::to_owned),
            names: r.expression_attribute_names().cloned(),
            values: r.expression_attribute_values().cloned(),
            return_values: r.return_values().cloned(),
            consistent_read: None,
        }
    }
}

impl From<&UpdateItemInput> for Request {
    fn from(r: &UpdateItemInput) -> Self {
        Request {
            table: r.table_name().map(str::to_owned),
            item: r.key().cloned(),
            update: r.update_expression().map(str::to_owned),
            condition: r.condition_expression().map(str::to_owned),
            names: r.expression_attribute_names().cloned(),
            values: r.expression_attribute_values().cloned(),
            return_values: r.return_values().cloned(),
            consistent_read: None,
        }
    }
}

impl From<&GetItemInput> for Request {
    fn from(r: &GetItemInput) -> Self {
        Request {
            table: r.table_name().map(str::to_owned),
            item: r.key().cloned(),
            update: None,
            condition: None,
            names: r.expression_attribute_names().cloned(),
            values: None,
            return_values: None,
            consistent_read: r.consistent_read(),
        }
    }
}

/// What a rule saw, request by request, is `expected`.
#[track_caller]
fn assert_requests<T>(seen: &Seen<T>, expected: &[Request])
where
    T: Clone,
    for<'a> Request: From<&'a T>,
{
    let sent: Vec<Request> = seen.all().iter().map(Request::from).collect();
    assert_eq!(sent, expected);
}

/// A stored incident opened by `opened_by`, open until `until`, remembering `events`.
fn stored_incident(opened_by: &str, until: i64, attempts: i64, alerted: bool, events: &[&str]) -> Item {
    let mut stored = item(&incident_pk());
    stored.extend(item(&[
        ("id", s("0f1e2d3c4b5a6978-1700000000")),
        ("opened_by", s(opened_by)),
        ("opened_at", n(NOW)),
        ("until", n(until)),
        ("attempts", n(attempts)),
        ("alerted", AttributeValue::Bool(alerted)),
        ("claim_until", n(NOW + 30)),
        ("event_ids", ss(events)),
        ("expires_at", n(NOW + 90_000)),
    ]));
    stored
}

fn incident(opened_by: &str, until: i64, attempts: u64, alerted: bool) -> Incident {
    Incident {
        id: "0f1e2d3c4b5a6978-1700000000".into(),
        opened_by: opened_by.into(),
        opened_at: NOW,
        until,
        attempts,
        alerted,
    }
}

/// The open incident `evt-1` opens.
fn opening() -> Incident {
    incident("evt-1", NOW + 3600, 1, false)
}

/// `sight_incident(KEY, event, opening(), NOW, lease NOW+30, expires NOW+90000, expect_open)`.
async fn sight(store: &DynamoStateStore, event: &str, expect_open: bool) -> Result<Sighting, PortError> {
    store
        .sight_incident(KEY, event, &opening(), NOW, NOW + 30, NOW + 90_000, expect_open)
        .await
}

/// The conditional put that opens an incident for `event`.
fn open_request(event: &str) -> Request {
    // The opener holds the alert lease (claim_until) and is the first remembered event.
    let stored = stored_incident("evt-1", NOW + 3600, 1, false, &[event]);
    request(&[])
        .condition("attribute_not_exists(pk) OR (#until < :now AND NOT contains(event_ids, :event))")
        .names(&[("#until", "until")])
        .values(&[(":now", n(NOW)), (":event", s(event))])
        .with_item(stored)
}

/// The attempt update remembering `event` in the capped set.
fn attempt_request(event: &str) -> Request {
    request(&incident_pk())
        .update("ADD attempts :one, event_ids :events")
        .condition(
            "attribute_exists(pk) AND #until >= :now AND NOT contains(event_ids, :event) AND size(event_ids) < :cap",
        )
        .names(&[("#until", "until")])
        .values(&[
            (":one", n(1)),
            (":now", n(NOW)),
            (":events", ss(&[event])),
            (":event", s(event)),
            (":cap", n(MAX_INCIDENT_EVENTS as i64)),
        ])
        .returns(ReturnValue::AllNew)
}

fn incident_read() -> Request {
    request(&incident_pk()).consistent()
}

#[tokio::test]
async fn dynamo_first_sighting_is_a_conditional_put() -> TestResult {
    let (rule, seen) = put_ok();
    assert!(store(&[&rule]).first_sighting("evt-1", 1_700_090_000).await?);
    assert_requests(
        &seen,
        &[request(&[
            ("pk", s("event#evt-1")),
            ("sk", s("-")),
            ("expires_at", n(1_700_090_000)),
        ])
        .condition("attribute_not_exists(pk)")],
    );

    // Redelivery of the same event: the condition fails, which is an answer, not an error.
    let (failing, _) = put_fails();
    assert!(!store(&[&failing]).first_sighting("evt-1", 1_700_090_000).await?);
    assert_eq!(failing.num_calls(), 1);

    // Keys past 512 bytes are replaced by their SHA-256 (partition keys are capped at 2048 bytes).
    let (rule, seen) = put_ok();
    store(&[&rule]).first_sighting(&"x".repeat(3000), 1).await?;
    let pk = seen.only().item().and_then(|i| i.get("pk").cloned());
    let pk = pk.as_ref().and_then(|v| v.as_s().ok()).expect("pk").clone();
    assert!(
        pk.starts_with("event#h") && pk.len() == "event#h".len() + 64,
        "{pk}"
    );
    assert_eq!(key_part(&"x".repeat(3000)), pk["event#".len()..]);
    assert_eq!(key_part("short"), "short");
    Ok(())
}

#[tokio::test]
async fn dynamo_sight_incident_opens_with_one_conditional_put() -> TestResult {
    let (put, puts) = put_ok();
    let (update, _) = update_fails();
    let (read, _) = get(None);
    let sighting = sight(&store(&[&put, &update, &read]), "evt-1", false).await?;
    assert_eq!(sighting, Sighting::Opened(opening()));
    assert_requests(&puts, &[open_request("evt-1")]);
    assert_eq!(
        (update.num_calls(), read.num_calls()),
        (0, 0),
        "one write, nothing else"
    );
    Ok(())
}

#[tokio::test]
async fn dynamo_sight_incident_adds_an_attempt_to_the_open_incident() -> TestResult {
    let after = stored_incident("evt-1", NOW + 3600, 2, false, &["evt-1", "evt-2"]);
    let (update, updates) = update_ok(Some(after));
    let (put, _) = put_ok();
    let sighting = sight(&store(&[&put, &update]), "evt-2", true).await?;
    assert_eq!(
        sighting,
        Sighting::Attempt(incident("evt-1", NOW + 3600, 2, false))
    );
    assert_requests(&updates, &[attempt_request("evt-2")]);
    assert_eq!(put.num_calls(), 0, "expect_open tries the attempt first");
    Ok(())
}

#[tokio::test]
async fn dynamo_sight_incident_finds_a_redelivery_in_the_event_set() -> TestResult {
    // The attempt's condition fails; the read shows the event remembered.
    let (update, updates) = update_fails();
    let (read, reads) = get(Some(stored_incident(
        "evt-1",
        NOW + 3600,
        3,
        true,
        &["evt-1", "evt-2"],
    )));
    let (put, _) = put_ok();
    let sighting = sight(&store(&[&update, &read, &put]), "evt-2", true).await?;
    assert_eq!(
        sighting,
        Sighting::Duplicate(incident("evt-1", NOW + 3600, 3, true))
    );
    assert_requests(&updates, &[attempt_request("evt-2")]);
    assert_requests(&reads, &[incident_read()]);
    assert_eq!(put.num_calls(), 0);

    // The opener's own redelivery, tried as an opening: the put fails, the read says duplicate.
    let (put, puts) = put_fails();
    let (read, _) = get(Some(stored_incident("evt-1", NOW + 3600, 1, false, &["evt-1"])));
    let (update, _) = update_ok(None);
    let sighting = sight(&store(&[&put, &read, &update]), "evt-1", false).await?;
    assert_eq!(
        sighting,
        Sighting::Duplicate(incident("evt-1", NOW + 3600, 1, false))
    );
    assert_requests(&puts, &[open_request("evt-1")]);
    assert_eq!(update.num_calls(), 0);
    Ok(())
}

#[tokio::test]
async fn dynamo_sight_incident_falls_back_between_opening_and_attempt() -> TestResult {
    // Expected open, but nothing is stored (expired and deleted): it opens.
    let (update, updates) = update_fails();
    let (read, _) = get(None);
    let (put, puts) = put_ok();
    let sighting = sight(&store(&[&update, &read, &put]), "evt-1", true).await?;
    assert_eq!(sighting, Sighting::Opened(opening()));
    assert_requests(&updates, &[attempt_request("evt-1")]);
    assert_requests(&puts, &[open_request("evt-1")]);

    // Expected open, but the stored one ended (TTL deletes late): it opens over it.
    let (update, _) = update_fails();
    let (read, _) = get(Some(stored_incident("evt-0", NOW - 1, 9, true, &["evt-0"])));
    let (put, puts) = put_ok();
    let sighting = sight(&store(&[&update, &read, &put]), "evt-1", true).await?;
    assert_eq!(sighting, Sighting::Opened(opening()));
    assert_requests(&puts, &[open_request("evt-1")]);

    // Tried as an opening, but another delivery opened it first: an attempt.
    let (put, _) = put_fails();
    let (read, _) = get(Some(stored_incident("evt-0", NOW + 3600, 1, false, &["evt-0"])));
    let after = stored_incident("evt-0", NOW + 3600, 2, false, &["evt-0", "evt-1"]);
    let (update, updates) = update_ok(Some(after));
    let sighting = sight(&store(&[&put, &read, &update]), "evt-1", false).await?;
    assert_eq!(
        sighting,
        Sighting::Attempt(incident("evt-0", NOW + 3600, 2, false))
    );
    assert_requests(&updates, &[attempt_request("evt-1")]);
    Ok(())
}

#[tokio::test]
async fn dynamo_sight_incident_counts_without_remembering_once_the_event_set_is_full() -> TestResult {
    let full: Vec<String> = (0..MAX_INCIDENT_EVENTS).map(|i| format!("evt-{i}")).collect();
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    let (read, reads) = get(Some(stored_incident("evt-0", NOW + 3600, 300, true, &full)));
    let after = stored_incident("evt-0", NOW + 3600, 301, true, &full);
    // The remembering attempt fails on the cap; the counting one succeeds.
    let (update, updates) = recording(mock!(aws_sdk_dynamodb::Client::update_item), move |i, _| {
        if i == 0 {
            MockResponse::Error(UpdateItemError::ConditionalCheckFailedException(
                condition_failed(),
            ))
        } else {
            MockResponse::Output(
                UpdateItemOutput::builder()
                    .set_attributes(Some(after.clone()))
                    .build(),
            )
        }
    });
    let counting = |event: &str| {
        request(&incident_pk())
            .update("ADD attempts :one")
            .condition("attribute_exists(pk) AND #until >= :now AND NOT contains(event_ids, :event)")
            .names(&[("#until", "until")])
            .values(&[(":one", n(1)), (":now", n(NOW)), (":event", s(event))])
            .returns(ReturnValue::AllNew)
    };
    let store = store(&[&update, &read]);
    let sighting = sight(&store, "evt-9999", true).await?;
    assert_eq!(
        sighting,
        Sighting::Attempt(incident("evt-0", NOW + 3600, 301, true))
    );
    assert_requests(&updates, &[attempt_request("evt-9999"), counting("evt-9999")]);
    assert_eq!(reads.all().len(), 1);

    // The store now knows the set is full: the next retry is one round trip.
    sight(&store, "evt-10000", true).await?;
    assert_requests(
        &updates,
        &[
            attempt_request("evt-9999"),
            counting("evt-9999"),
            counting("evt-10000"),
        ],
    );
    assert_eq!(reads.all().len(), 1, "no read for a retry of a full incident");
    Ok(())
}

#[tokio::test]
async fn dynamo_sight_incident_gives_up_after_losing_every_race_with_a_retryable_error() {
    // Every write loses, and every read shows an open incident without this event.
    let (put, _) = put_fails();
    let (update, _) = update_fails();
    let (read, _) = get(Some(stored_incident("evt-0", NOW + 3600, 1, false, &["evt-0"])));
    let error = sight(&store(&[&put, &update, &read]), "evt-1", false)
        .await
        .expect_err("no write ever wins");
    assert!(error.retryable, "{error}");
    assert_eq!(error.service, "dynamodb");
    assert!(error.message.contains("races"), "{error}");
    assert_eq!(
        put.num_calls() + update.num_calls(),
        read.num_calls(),
        "each lost write is read once"
    );
    assert!(read.num_calls() <= 8, "bounded: {} reads", read.num_calls());
}

#[tokio::test]
async fn dynamo_claim_alert_takes_an_ended_lease_of_its_own_incident() -> TestResult {
    let (update, updates) = update_ok(None);
    let claim = store(&[&update])
        .claim_alert(KEY, "evt-1", NOW + 40, NOW + 70)
        .await?;
    assert_eq!(claim, AlertClaim::Claimed);
    assert_requests(
        &updates,
        &[request(&incident_pk())
            .update("SET claim_until = :lease")
            .condition(
                "opened_by = :event AND alerted = :no AND (attribute_not_exists(claim_until) OR claim_until <= :wall)",
            )
            .values(&[
                (":lease", n(NOW + 70)),
                (":event", s("evt-1")),
                (":no", AttributeValue::Bool(false)),
                (":wall", n(NOW + 40)),
            ])],
    );

    // The condition fails: the read tells a held lease (Busy) from a settled alert (Done).
    let cases = [
        (
            Some(stored_incident("evt-1", NOW + 3600, 1, false, &["evt-1"])),
            AlertClaim::Busy,
        ),
        (
            Some(stored_incident("evt-1", NOW + 3600, 1, true, &["evt-1"])),
            AlertClaim::Done,
        ),
        (
            Some(stored_incident(
                "evt-0",
                NOW + 3600,
                2,
                false,
                &["evt-0", "evt-1"],
            )),
            AlertClaim::Done,
        ),
        (None, AlertClaim::Done),
    ];
    for (stored, expected) in cases {
        let (update, _) = update_fails();
        let (read, reads) = get(stored.clone());
        let claim = store(&[&update, &read])
            .claim_alert(KEY, "evt-1", NOW + 10, NOW + 40)
            .await?;
        assert_eq!(claim, expected, "{stored:?}");
        assert_requests(&reads, &[incident_read()]);
    }
    Ok(())
}

#[tokio::test]
async fn dynamo_release_and_finish_alert_are_conditional_updates() -> TestResult {
    let (update, updates) = update_ok(None);
    store(&[&update]).release_alert(KEY).await?;
    store(&[&update]).finish_alert(KEY).await?;
    assert_requests(
        &updates,
        &[
            request(&incident_pk())
                .update("REMOVE claim_until")
                .condition("attribute_exists(pk) AND alerted = :no")
                .values(&[(":no", AttributeValue::Bool(false))]),
            request(&incident_pk())
                .update("SET alerted = :yes REMOVE claim_until")
                .condition("attribute_exists(pk)")
                .values(&[(":yes", AttributeValue::Bool(true))]),
        ],
    );

    // Already alerted, or expired meanwhile: nothing to do, and no item without a TTL.
    let (update, _) = update_fails();
    store(&[&update]).release_alert(KEY).await?;
    store(&[&update]).finish_alert(KEY).await?;
    assert_eq!(update.num_calls(), 2);
    Ok(())
}

/// The counter update that remembers the incident in the capped set.
fn count_request(incident_id: &str) -> Request {
    request(&[("pk", s("counter#all")), ("sk", s("000028333333#gha-deploy"))])
        .update("SET expires_at = :expires ADD failures :one, #cause :one, incidents :incidents")
        .condition("attribute_not_exists(incidents) OR (NOT contains(incidents, :incident) AND size(incidents) < :cap)")
        .names(&[("#cause", "cause:SubjectMismatch")])
        .values(&[
            (":one", n(1)),
            (":expires", n(1_700_090_000)),
            (":incident", s(incident_id)),
            (":incidents", ss(&[incident_id])),
            (":cap", n(MAX_COUNTER_INCIDENTS as i64)),
        ])
}

/// The counter update that counts without remembering (the set is full).
fn count_unremembered_request(incident_id: &str) -> Request {
    request(&[("pk", s("counter#all")), ("sk", s("000028333333#gha-deploy"))])
        .update("SET expires_at = :expires ADD failures :one, #cause :one")
        .condition("NOT contains(incidents, :incident)")
        .names(&[("#cause", "cause:SubjectMismatch")])
        .values(&[
            (":one", n(1)),
            (":expires", n(1_700_090_000)),
            (":incident", s(incident_id)),
        ])
}

#[tokio::test]
async fn dynamo_count_failure_counts_each_incident_once_per_minute_and_role() -> TestResult {
    let count = FailureCount {
        minute: 28_333_333,
        role: "gha-deploy",
        cause: "SubjectMismatch",
        incident_id: "inc-1",
        expires_at: 1_700_090_000,
    };
    let (update, updates) = update_ok(None);
    store(&[&update]).count_failure(&count).await?;
    assert_requests(&updates, &[count_request("inc-1")]);

    // Counted already (or the set is full): the second update counts only an incident the
    // set does not hold; a failed second condition is an answer too.
    let (update, updates) = update_fails();
    store(&[&update]).count_failure(&count).await?;
    assert_requests(
        &updates,
        &[count_request("inc-1"), count_unremembered_request("inc-1")],
    );

    let (update, updates) = recording(mock!(aws_sdk_dynamodb::Client::update_item), |i, _| {
        if i == 0 {
            MockResponse::Error(UpdateItemError::ConditionalCheckFailedException(
                condition_failed(),
            ))
        } else {
            MockResponse::Output(UpdateItemOutput::builder().build())
        }
    });
    store(&[&update]).count_failure(&count).await?;
    assert_eq!(updates.all().len(), 2);
    Ok(())
}

#[tokio::test]
async fn dynamo_failure_counts_reads_every_page_and_sums_roles_per_minute() -> TestResult {
    let counter = |sk: &str, failures: i64, causes: &[(&str, i64)]| {
        let mut counter = item(&[
            ("pk", s("counter#all")),
            ("sk", s(sk)),
            ("failures", n(failures)),
            ("incidents", ss(&["inc-a"])),
            ("expires_at", n(1_700_090_000)),
        ]);
        for (cause, count) in causes {
            counter.insert(format!("cause:{cause}"), n(*count));
        }
        counter
    };
    let last_key = item(&[("pk", s("counter#all")), ("sk", s("000028333331#deploy"))]);
    let page_two_start = last_key.clone();
    let (query, queries) = recording(mock!(aws_sdk_dynamodb::Client::query), move |i, _| {
        let page = if i == 0 {
            QueryOutput::builder()
                .items(counter("000028333331#deploy", 2, &[("SubjectMismatch", 2)]))
                .set_last_evaluated_key(Some(page_two_start.clone()))
        } else {
            // The same minute continues on the next page, under another role.
            QueryOutput::builder()
                .items(counter("000028333331#web", 1, &[("AudienceMismatch", 1)]))
                .items(counter("000028333333#deploy", 5, &[("SubjectMismatch", 5)]))
        };
        MockResponse::Output(page.build())
    });
    let counts = store(&[&query]).failure_counts(28_333_330, 28_333_335).await?;
    assert_eq!(
        counts,
        [
            MinuteCount {
                minute: 28_333_331,
                failures: 3,
                labels: BTreeMap::from([
                    ("cause:AudienceMismatch".to_owned(), 1),
                    ("cause:SubjectMismatch".to_owned(), 2),
                    ("role:deploy".to_owned(), 2),
                    ("role:web".to_owned(), 1),
                ]),
            },
            MinuteCount {
                minute: 28_333_333,
                failures: 5,
                labels: BTreeMap::from([
                    ("cause:SubjectMismatch".to_owned(), 5),
                    ("role:deploy".to_owned(), 5),
                ]),
            },
        ]
    );
    let sent = queries.all();
    assert_eq!(sent.len(), 2, "two pages, two queries");
    for (query, start) in sent.iter().zip([None, Some(last_key)]) {
        assert_eq!(query.table_name(), Some(TABLE));
        assert_eq!(
            query.key_condition_expression(),
            Some("pk = :pk AND sk BETWEEN :from AND :to")
        );
        // (from, to]: the first minute is excluded, every role of the last included.
        assert_eq!(
            query.expression_attribute_values().cloned(),
            Some(item(&[
                (":pk", s("counter#all")),
                (":from", s("000028333331")),
                (":to", s("000028333335~")),
            ]))
        );
        assert_eq!(query.consistent_read(), Some(true), "sees the count just written");
        assert_eq!(query.exclusive_start_key().cloned(), start);
    }
    Ok(())
}

fn spike(version: u64, pending: Option<PendingSpikeAlert>) -> SpikeState {
    SpikeState {
        version,
        spiking: true,
        since: NOW,
        last_alert: NOW + 60,
        peak: 42,
        pending,
    }
}

fn pending_spike() -> PendingSpikeAlert {
    PendingSpikeAlert {
        recovery: false,
        thread_since: NOW,
        summary: SpikeSummary {
            scope: "all".into(),
            window_seconds: 300,
            failures: 30,
            baseline: 0.5,
            top_roles: vec![("gha-deploy".into(), 28), ("web".into(), 2)],
            top_causes: vec![("SubjectMismatch".into(), 30)],
        },
        lease_until: NOW + 30,
    }
}

fn spike_item(state: &SpikeState) -> Result<Item, serde_json::Error> {
    let mut stored = item(&[
        ("pk", s("spike#all")),
        ("sk", s("-")),
        ("version", n(state.version as i64)),
        ("spiking", AttributeValue::Bool(state.spiking)),
        ("since", n(state.since)),
        ("last_alert", n(state.last_alert)),
        ("peak", n(state.peak as i64)),
        ("expires_at", n(NOW + 604_800)),
    ]);
    if let Some(pending) = &state.pending {
        stored.insert("pending".into(), s(&serde_json::to_string(pending)?));
    }
    Ok(stored)
}

#[tokio::test]
async fn dynamo_save_spike_state_is_versioned_and_expires() -> TestResult {
    // Version 1: there must be no state yet. The pending alert travels as JSON.
    let first = spike(1, Some(pending_spike()));
    let (put, puts) = put_ok();
    assert!(
        store(&[&put])
            .save_spike_state("all", &first, NOW + 604_800)
            .await?
    );
    assert_requests(
        &puts,
        &[request(&[])
            .with_item(spike_item(&first)?)
            .condition("attribute_not_exists(pk)")],
    );

    // Later versions: only over the version that was read. No pending alert, no attribute.
    let later = spike(7, None);
    let (put, puts) = put_ok();
    assert!(
        store(&[&put])
            .save_spike_state("all", &later, NOW + 604_800)
            .await?
    );
    assert_requests(
        &puts,
        &[request(&[])
            .with_item(spike_item(&later)?)
            .condition("#version = :previous")
            .names(&[("#version", "version")])
            .values(&[(":previous", n(6))])],
    );
    assert!(!spike_item(&later)?.contains_key("pending"));

    // Someone else saved first.
    let (failing, _) = put_fails();
    assert!(
        !store(&[&failing])
            .save_spike_state("all", &later, NOW + 604_800)
            .await?
    );
    Ok(())
}

#[tokio::test]
async fn dynamo_spike_state_reads_the_pending_alert_back() -> TestResult {
    let saved = spike(3, Some(pending_spike()));
    let (read, reads) = get(Some(spike_item(&saved)?));
    assert_eq!(store(&[&read]).spike_state("all").await?, Some(saved));
    assert_requests(
        &reads,
        &[request(&[("pk", s("spike#all")), ("sk", s("-"))]).consistent()],
    );

    let (read, _) = get(None);
    assert_eq!(store(&[&read]).spike_state("all").await?, None);
    Ok(())
}

#[tokio::test]
async fn dynamo_take_token_is_conditional_on_the_period_having_passed_or_the_same_holder() -> TestResult {
    let (put, puts) = put_ok();
    assert!(
        store(&[&put])
            .take_token("probe#github:stranger", "inc-1", NOW, 600)
            .await?
    );
    assert_requests(
        &puts,
        &[request(&[
            ("pk", s("token#probe#github:stranger")),
            ("sk", s("-")),
            ("until", n(NOW + 600)),
            ("holder", s("inc-1")),
            ("expires_at", n(NOW + 600 + 86_400)),
        ])
        .condition("attribute_not_exists(pk) OR #until <= :now OR holder = :holder")
        .names(&[("#until", "until")])
        .values(&[(":now", n(NOW)), (":holder", s("inc-1"))])],
    );

    let (failing, _) = put_fails();
    assert!(
        !store(&[&failing])
            .take_token("probe#github:stranger", "inc-2", NOW + 1, 600)
            .await?
    );
    Ok(())
}

#[tokio::test]
async fn dynamo_count_alert_adds_the_holder_to_the_capped_window_set() -> TestResult {
    let window = item(&[
        ("pk", s("token#alerts")),
        ("sk", s("001699999200")),
        ("holders", ss(&["inc-0", "inc-1", "inc-2"])),
        ("expires_at", n(1_700_089_600)),
    ]);
    let (update, updates) = update_ok(Some(window.clone()));
    assert_eq!(
        store(&[&update])
            .count_alert(1_699_999_200, "inc-2", 1_700_089_600)
            .await?,
        3
    );
    assert_requests(
        &updates,
        &[request(&[("pk", s("token#alerts")), ("sk", s("001699999200"))])
            .update("SET expires_at = :expires ADD holders :holder")
            .condition("attribute_not_exists(holders) OR contains(holders, :h) OR size(holders) < :cap")
            .values(&[
                (":expires", n(1_700_089_600)),
                (":holder", ss(&["inc-2"])),
                (":h", s("inc-2")),
                (":cap", n(MAX_WINDOW_ALERTS as i64)),
            ])
            // ALL_NEW: moto's UPDATED_NEW leaves out a set a repeated holder did not change.
            .returns(ReturnValue::AllNew)],
    );

    // The window is full: past any limit, so the alert is held back.
    let (update, _) = update_fails();
    assert_eq!(
        store(&[&update])
            .count_alert(1_699_999_200, "inc-9", 1_700_089_600)
            .await?,
        MAX_WINDOW_ALERTS as u64 + 1
    );

    let (read, reads) = get(Some(window));
    assert_eq!(store(&[&read]).alert_count(1_699_999_200).await?, 3);
    assert_requests(
        &reads,
        &[request(&[("pk", s("token#alerts")), ("sk", s("001699999200"))]).consistent()],
    );
    let (read, _) = get(None);
    assert_eq!(store(&[&read]).alert_count(1_699_999_200).await?, 0);
    Ok(())
}

#[tokio::test]
async fn dynamo_service_errors_are_retryable_port_errors_naming_the_operation() {
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .then_error(|| PutItemError::generic(throttled("InternalServerError")));
    let update = mock!(aws_sdk_dynamodb::Client::update_item)
        .then_error(|| UpdateItemError::generic(throttled("ThrottlingException")));
    let query = mock!(aws_sdk_dynamodb::Client::query)
        .then_error(|| QueryError::generic(throttled("ProvisionedThroughputExceededException")));
    let read = mock!(aws_sdk_dynamodb::Client::get_item)
        .then_error(|| GetItemError::generic(throttled("RequestLimitExceeded")));
    let store = store(&[&put, &update, &query, &read]);
    let count = FailureCount {
        minute: 1,
        role: "-",
        cause: "SubjectMismatch",
        incident_id: "inc-1",
        expires_at: 2,
    };
    let results: Vec<(&str, &str, PortError)> = vec![
        (
            "PutItem event",
            "InternalServerError",
            store.first_sighting("evt-1", 1).await.unwrap_err(),
        ),
        (
            "PutItem incident",
            "InternalServerError",
            sight(&store, "evt-1", false).await.unwrap_err(),
        ),
        (
            "UpdateItem incident",
            "ThrottlingException",
            sight(&store, "evt-1", true).await.unwrap_err(),
        ),
        (
            "UpdateItem claim",
            "ThrottlingException",
            store.claim_alert(KEY, "evt-1", 1, 2).await.unwrap_err(),
        ),
        (
            "UpdateItem release",
            "ThrottlingException",
            store.release_alert(KEY).await.unwrap_err(),
        ),
        (
            "UpdateItem alerted",
            "ThrottlingException",
            store.finish_alert(KEY).await.unwrap_err(),
        ),
        (
            "UpdateItem counter",
            "ThrottlingException",
            store.count_failure(&count).await.unwrap_err(),
        ),
        (
            "Query counters",
            "ProvisionedThroughputExceededException",
            store.failure_counts(0, 5).await.unwrap_err(),
        ),
        (
            "GetItem spike",
            "RequestLimitExceeded",
            store.spike_state("all").await.unwrap_err(),
        ),
        (
            "PutItem spike",
            "InternalServerError",
            store
                .save_spike_state("all", &spike(2, None), 1)
                .await
                .unwrap_err(),
        ),
        (
            "PutItem token",
            "InternalServerError",
            store.take_token("k", "h", 1, 2).await.unwrap_err(),
        ),
        (
            "UpdateItem alert window",
            "ThrottlingException",
            store.count_alert(0, "h", 1).await.unwrap_err(),
        ),
        (
            "GetItem alert window",
            "RequestLimitExceeded",
            store.alert_count(0).await.unwrap_err(),
        ),
    ];
    for (operation, code, error) in results {
        assert_eq!(error.service, "dynamodb", "{operation}");
        assert!(error.retryable, "{operation}: {error}");
        assert!(
            error.message.starts_with(&format!("{operation}: {code}")),
            "{operation}: {error}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// CloudWatch PutMetricData
// ---------------------------------------------------------------------------------------

fn cloudwatch() -> (CloudWatchSink, Rule, Seen<PutMetricDataInput>) {
    let seen = Seen::new();
    let record = seen.clone();
    let rule = mock!(aws_sdk_cloudwatch::Client::put_metric_data)
        .match_requests(|r| r.namespace() == Some("OidcWatch"))
        .then_compute_output(move |r| {
            record.push(r);
            PutMetricDataOutput::builder().build()
        });
    let sink = CloudWatchSink {
        client: mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]),
        namespace: "OidcWatch".into(),
    };
    (sink, rule, seen)
}

fn record(counts: Vec<(MetricName, f64)>) -> MetricRecord {
    MetricRecord {
        timestamp_ms: 1_700_000_000_123,
        counts,
        dimensions: BTreeMap::from([
            (Dimension::Cause, "SubjectMismatch".to_owned()),
            (Dimension::RoleName, ROLE.to_owned()),
            (Dimension::AccountId, ACCOUNT.to_owned()),
        ]),
        properties: BTreeMap::new(),
    }
}

/// A `MetricDatum` as sent, in comparable form.
#[derive(Debug, PartialEq)]
struct SentDatum {
    name: String,
    dimensions: Vec<(String, String)>,
    value: Option<f64>,
    unit: Option<StandardUnit>,
    timestamp_ms: Option<i64>,
}

impl From<&aws_sdk_cloudwatch::types::MetricDatum> for SentDatum {
    fn from(d: &aws_sdk_cloudwatch::types::MetricDatum) -> Self {
        SentDatum {
            name: d.metric_name().unwrap_or_default().to_owned(),
            dimensions: d
                .dimensions()
                .iter()
                .map(|x| {
                    (
                        x.name().unwrap_or_default().to_owned(),
                        x.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            value: d.value(),
            unit: d.unit().cloned(),
            timestamp_ms: d.timestamp().map(|t| t.to_millis().expect("in range")),
        }
    }
}

#[tokio::test]
async fn cloudwatch_put_metric_data_expands_the_dimension_sets() -> TestResult {
    let (sink, rule, seen) = cloudwatch();
    sink.publish(&record(vec![(MetricName::AssumeFailures, 1.0)]))
        .await?;
    assert_eq!(rule.num_calls(), 1);
    let request = seen.only();
    assert_eq!(request.namespace(), Some("OidcWatch"));
    let data: Vec<SentDatum> = request.metric_data().iter().map(SentDatum::from).collect();
    let datum = |dimensions: &[(&str, &str)]| SentDatum {
        name: "AssumeFailures".to_owned(),
        dimensions: dimensions
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        value: Some(1.0),
        unit: Some(StandardUnit::Count),
        timestamp_ms: Some(1_700_000_000_123),
    };
    assert_eq!(
        data,
        [
            datum(&[]),
            datum(&[("Cause", "SubjectMismatch")]),
            datum(&[("RoleName", ROLE)]),
            datum(&[("AccountId", ACCOUNT)]),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn cloudwatch_put_metric_data_sends_at_most_1000_data_per_call() -> TestResult {
    let (sink, rule, seen) = cloudwatch();
    // 251 counts × 4 dimension sets = 1004 data.
    let many = record(vec![(MetricName::AssumeFailures, 1.0); 251]);
    assert_eq!(many.to_data().len(), 1004);
    sink.publish(&many).await?;
    assert_eq!(rule.num_calls(), 2);
    let sizes: Vec<usize> = seen.all().iter().map(|r| r.metric_data().len()).collect();
    assert_eq!(sizes, [MAX_DATA_PER_CALL, 4]);

    // Exactly 1000 is one call; nothing to send is none.
    let (sink, rule, _) = cloudwatch();
    sink.publish(&record(vec![(MetricName::AssumeFailures, 1.0); 250]))
        .await?;
    assert_eq!(rule.num_calls(), 1);
    let (sink, rule, _) = cloudwatch();
    sink.publish(&record(vec![])).await?;
    assert_eq!(rule.num_calls(), 0);
    Ok(())
}

// ------------------------------------------------------------ the record of successes

const GITHUB: &str = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com";

fn success<'a>(subject: &'a str, at: i64) -> Success<'a> {
    Success {
        account: "111122223333",
        role: "GHA-Deploy",
        subject,
        provider: Some(GITHUB),
        audience: Some("sts.amazonaws.com"),
        at,
        expires_at: at + 90 * 86_400,
    }
}

#[tokio::test]
async fn dynamo_record_success_upserts_one_item_per_subject_of_the_lower_cased_role() -> TestResult {
    let subject = "repo:acme/web:ref:refs/heads/main";
    let (update, updates) = update_ok(None);
    store(&[&update])
        .record_success(&success(subject, 1_700_000_000))
        .await?;
    let request = updates.only();
    let key = request.key().cloned().unwrap_or_default();
    assert_eq!(key["pk"], s("success#111122223333#gha-deploy"));
    assert_eq!(
        success_partition("111122223333", "gha-deploy"),
        "success#111122223333#gha-deploy"
    );
    // The sort key is the subject's SHA-256: any subject fits, none collides.
    let sk = success_sort_key(subject);
    assert_eq!(key["sk"], s(&sk));
    assert!(sk.len() == 64 && sk.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(sk, success_sort_key("repo:acme/web:ref:refs/heads/mainx"));
    assert_eq!(
        request.update_expression(),
        Some("SET subject = :subject, first_seen = if_not_exists(first_seen, :at), last_seen = :at, expires_at = :expires, provider = :provider, audience = :audience")
    );
    assert_eq!(
        request.condition_expression(),
        Some("attribute_not_exists(last_seen) OR last_seen <= :at")
    );
    let values = request.expression_attribute_values().cloned().unwrap_or_default();
    assert_eq!(values[":subject"], s(subject));
    assert_eq!(values[":at"], n(1_700_000_000));
    assert_eq!(values[":expires"], n(1_700_000_000 + 90 * 86_400));
    assert_eq!(values[":provider"], s(GITHUB));

    // An older call than the one recorded: the condition fails, and that is an answer.
    let (update, _) = update_fails();
    store(&[&update])
        .record_success(&success(subject, 1_600_000_000))
        .await?;

    // Without provider or audience, the stale ones are removed.
    let (update, updates) = update_ok(None);
    let bare = Success {
        provider: None,
        audience: None,
        ..success(subject, 1_700_000_100)
    };
    store(&[&update]).record_success(&bare).await?;
    let expression = updates.only().update_expression().unwrap_or_default().to_owned();
    assert!(expression.ends_with(" REMOVE provider, audience"), "{expression}");
    Ok(())
}

#[tokio::test]
async fn dynamo_record_success_skips_an_oversized_subject_and_reports_errors() -> TestResult {
    let long = "x".repeat(MAX_OBSERVED_SUBJECT + 1);
    let (update, updates) = update_ok(None);
    store(&[&update]).record_success(&success(&long, 1)).await?;
    store(&[&update]).record_success(&success("", 1)).await?;
    assert!(
        updates.all().is_empty(),
        "no write for an oversized or empty subject"
    );

    let throttled_update = mock!(aws_sdk_dynamodb::Client::update_item)
        .then_error(|| UpdateItemError::generic(throttled("ProvisionedThroughputExceededException")));
    let error = store(&[&throttled_update])
        .record_success(&success("repo:acme/web:ref:refs/heads/main", 1))
        .await
        .unwrap_err();
    assert!(
        error.retryable && error.message.contains("UpdateItem success"),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn dynamo_successful_subjects_reads_pages_up_to_the_cap() -> TestResult {
    let row = |k: usize| {
        let subject = format!("repo:acme/web:ref:refs/heads/b{k}");
        item(&[
            ("pk", s("success#111122223333#gha-deploy")),
            ("sk", s(&success_sort_key(&subject))),
            ("subject", s(&subject)),
            ("provider", s(GITHUB)),
            ("audience", s("sts.amazonaws.com")),
            ("first_seen", n(100 + k as i64)),
            ("last_seen", n(200 + k as i64)),
            ("expires_at", n(9_999_999_999_i64)),
        ])
    };
    let more = item(&[("pk", s("success#111122223333#gha-deploy")), ("sk", s("ff"))]);
    let (query, queries) = recording(mock!(aws_sdk_dynamodb::Client::query), move |i, _| {
        let page = if i == 0 {
            QueryOutput::builder()
                .items(row(0))
                // An item without a subject is not one.
                .items(item(&[
                    ("pk", s("success#111122223333#gha-deploy")),
                    ("sk", s("00")),
                ]))
                .set_last_evaluated_key(Some(more.clone()))
        } else {
            QueryOutput::builder().items(row(1))
        };
        MockResponse::Output(page.build())
    });
    let subjects = store(&[&query])
        .successful_subjects("111122223333", "gha-DEPLOY")
        .await?;
    assert_eq!(
        subjects,
        [
            ObservedSubject {
                subject: "repo:acme/web:ref:refs/heads/b0".into(),
                provider: Some(GITHUB.into()),
                audience: Some("sts.amazonaws.com".into()),
                first_seen: 100,
                last_seen: 200,
            },
            ObservedSubject {
                subject: "repo:acme/web:ref:refs/heads/b1".into(),
                provider: Some(GITHUB.into()),
                audience: Some("sts.amazonaws.com".into()),
                first_seen: 101,
                last_seen: 201,
            },
        ]
    );
    let requests = queries.all();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].key_condition_expression(), Some("pk = :pk"));
    assert_eq!(
        requests[0]
            .expression_attribute_values()
            .and_then(|v| v.get(":pk")),
        Some(&s("success#111122223333#gha-deploy"))
    );
    assert_eq!(requests[0].limit(), Some(MAX_OBSERVED_SUBJECTS as i32));
    assert!(requests[1].exclusive_start_key().is_some());

    // A role with endless pages: the cap ends the reading.
    let endless = item(&[("pk", s("success#111122223333#gha-deploy")), ("sk", s("ff"))]);
    let (query, queries) = recording(mock!(aws_sdk_dynamodb::Client::query), move |i, _| {
        MockResponse::Output(
            QueryOutput::builder()
                .set_items(Some((0..100).map(|k| row(i * 100 + k)).collect()))
                .set_last_evaluated_key(Some(endless.clone()))
                .build(),
        )
    });
    let subjects = store(&[&query])
        .successful_subjects("111122223333", "gha-deploy")
        .await?;
    assert_eq!(subjects.len(), MAX_OBSERVED_SUBJECTS);
    assert_eq!(queries.all().len(), MAX_OBSERVED_SUBJECTS / 100);
    Ok(())
}
