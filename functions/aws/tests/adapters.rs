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
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_iam::operation::get_open_id_connect_provider::GetOpenIdConnectProviderOutput;
use aws_sdk_iam::operation::get_role::{GetRoleError, GetRoleOutput};
use aws_sdk_iam::operation::list_open_id_connect_providers::ListOpenIdConnectProvidersOutput;
use aws_sdk_iam::types::error::NoSuchEntityException;
use aws_sdk_iam::types::{OpenIdConnectProviderListEntry, Role as IamRole};
use aws_sdk_sts::operation::assume_role::AssumeRoleOutput;
use aws_sdk_sts::operation::get_caller_identity::{GetCallerIdentityError, GetCallerIdentityOutput};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::DateTime;
use diagnosis::alert::{Alert, AlertKind, Severity, SpikeSummary};
use diagnosis::metrics::{Dimension, MetricName, MetricRecord};
use diagnosis::ports::{AccountState, AlertSink, Incident, MetricSink, StateStore};
use diagnosis::record::InputItem;
use diagnosis::spike::{MinuteCount, SpikeState};
use diagnosis::{Cause, Diagnosis};
use oidc_watch_aws::dynamodb::DynamoStateStore;
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
            scope: format!("role:{}", "déploiement\n".repeat(20)),
            window_seconds: 300,
            failures: 40,
            baseline: 1.5,
            top_roles: vec![],
            top_causes: vec![],
        }),
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

const TABLE: &str = "oidc-watch-state";

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn store(rules: &[&Rule]) -> DynamoStateStore {
    DynamoStateStore {
        client: mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules.iter().copied()),
        table: TABLE.into(),
    }
}

fn put_ok() -> (Rule, Seen<PutItemInput>) {
    let seen = Seen::new();
    let record = seen.clone();
    let rule = mock!(aws_sdk_dynamodb::Client::put_item).then_compute_output(move |r| {
        record.push(r);
        PutItemOutput::builder().build()
    });
    (rule, seen)
}

fn put_condition_fails() -> Rule {
    mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
        PutItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder()
                .message("The conditional request failed")
                .build(),
        )
    })
}

fn names(map: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    Some(
        map.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn values(map: &[(&str, AttributeValue)]) -> Option<HashMap<String, AttributeValue>> {
    Some(map.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
}

#[tokio::test]
async fn dynamo_first_sighting_is_a_conditional_put() -> TestResult {
    let (rule, seen) = put_ok();
    assert!(store(&[&rule]).first_sighting("evt-1", 1_700_090_000).await?);
    let put = seen.only();
    assert_eq!(put.table_name(), Some(TABLE));
    assert_eq!(put.condition_expression(), Some("attribute_not_exists(pk)"));
    assert_eq!(
        put.item().cloned(),
        values(&[
            ("pk", s("event#evt-1")),
            ("sk", s("-")),
            ("expires_at", n(1_700_090_000))
        ])
    );

    // Redelivery of the same event: the condition fails, which is an answer, not an error.
    let failing = put_condition_fails();
    assert!(!store(&[&failing]).first_sighting("evt-1", 1_700_090_000).await?);
    assert_eq!(failing.num_calls(), 1);

    // Keys past 512 bytes are hashed (partition keys are capped at 2048 bytes).
    let (rule, seen) = put_ok();
    store(&[&rule]).first_sighting(&"x".repeat(3000), 1).await?;
    let pk = seen.only().item().and_then(|i| i.get("pk").cloned());
    let pk = pk.as_ref().and_then(|v| v.as_s().ok()).expect("pk").clone();
    assert!(
        pk.starts_with("event#h") && pk.len() == "event#h".len() + 16,
        "{pk}"
    );
    Ok(())
}

#[tokio::test]
async fn dynamo_other_errors_are_retryable_port_errors() {
    let rule = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
        PutItemError::generic(
            ErrorMetadata::builder()
                .code("InternalServerError")
                .message("try again")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule], |c| c
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()));
    let store = DynamoStateStore {
        client,
        table: TABLE.into(),
    };
    let error = store.first_sighting("evt-1", 1).await.expect_err("a 5xx");
    assert_eq!(error.service, "dynamodb");
    assert!(error.retryable);
    assert!(error.message.contains("InternalServerError"), "{error}");
}

#[tokio::test]
async fn dynamo_open_incident_is_conditional_on_the_open_one_having_ended() -> TestResult {
    let (rule, seen) = put_ok();
    let incident = Incident {
        id: "inc-0001".into(),
        opened_by: "evt-1".into(),
        opened_at: 1_700_000_000,
        until: 1_700_003_600,
        attempts: 1,
        alerted: false,
    };
    assert!(
        store(&[&rule])
            .open_incident(
                "111122223333|deploy|sub|SubjectMismatch",
                &incident,
                1_700_000_000,
                1_700_090_000
            )
            .await?
    );
    let put = seen.only();
    assert_eq!(
        put.condition_expression(),
        Some("attribute_not_exists(pk) OR #until < :now")
    );
    assert_eq!(
        put.expression_attribute_names().cloned(),
        names(&[("#until", "until")])
    );
    assert_eq!(
        put.expression_attribute_values().cloned(),
        values(&[(":now", n(1_700_000_000))])
    );
    assert_eq!(
        put.item().cloned(),
        values(&[
            ("pk", s("incident#111122223333|deploy|sub|SubjectMismatch")),
            ("sk", s("-")),
            ("id", s("inc-0001")),
            ("opened_by", s("evt-1")),
            ("opened_at", n(1_700_000_000)),
            ("until", n(1_700_003_600)),
            ("attempts", n(1)),
            ("alerted", AttributeValue::Bool(false)),
            ("expires_at", n(1_700_090_000)),
        ])
    );

    let failing = put_condition_fails();
    assert!(!store(&[&failing]).open_incident("k", &incident, 1, 2).await?);
    Ok(())
}

#[tokio::test]
async fn dynamo_add_attempt_adds_and_returns_the_updated_incident() -> TestResult {
    let seen: Seen<UpdateItemInput> = Seen::new();
    let record = seen.clone();
    let rule = mock!(aws_sdk_dynamodb::Client::update_item).then_compute_output(move |r| {
        record.push(r);
        UpdateItemOutput::builder()
            .set_attributes(values(&[
                ("pk", s("incident#k")),
                ("sk", s("-")),
                ("id", s("inc-0001")),
                ("opened_by", s("evt-1")),
                ("opened_at", n(1_700_000_000)),
                ("until", n(1_700_003_600)),
                ("attempts", n(4)),
                ("alerted", AttributeValue::Bool(true)),
                ("expires_at", n(1_700_090_000)),
            ]))
            .build()
    });
    let incident = store(&[&rule]).add_attempt("k").await?;
    assert_eq!(
        incident,
        Some(Incident {
            id: "inc-0001".into(),
            opened_by: "evt-1".into(),
            opened_at: 1_700_000_000,
            until: 1_700_003_600,
            attempts: 4,
            alerted: true,
        })
    );
    let update = seen.only();
    assert_eq!(update.table_name(), Some(TABLE));
    assert_eq!(
        update.key().cloned(),
        values(&[("pk", s("incident#k")), ("sk", s("-"))])
    );
    assert_eq!(update.update_expression(), Some("ADD attempts :one"));
    assert_eq!(update.condition_expression(), Some("attribute_exists(pk)"));
    assert_eq!(
        update.expression_attribute_values().cloned(),
        values(&[(":one", n(1))])
    );
    assert_eq!(update.return_values(), Some(&ReturnValue::AllNew));

    // No incident under the key: the condition fails and there is nothing to return.
    let missing = mock!(aws_sdk_dynamodb::Client::update_item).then_error(|| {
        UpdateItemError::ConditionalCheckFailedException(ConditionalCheckFailedException::builder().build())
    });
    assert_eq!(store(&[&missing]).add_attempt("k").await?, None);
    Ok(())
}

#[tokio::test]
async fn dynamo_count_failure_adds_to_the_minute_and_its_labels() -> TestResult {
    let seen: Seen<UpdateItemInput> = Seen::new();
    let record = seen.clone();
    let rule = mock!(aws_sdk_dynamodb::Client::update_item).then_compute_output(move |r| {
        record.push(r);
        UpdateItemOutput::builder().build()
    });
    store(&[&rule])
        .count_failure(
            "all",
            28_333_333,
            &["role:deploy".into(), "cause:SubjectMismatch".into()],
            1_700_090_000,
        )
        .await?;
    let update = seen.only();
    assert_eq!(
        update.key().cloned(),
        values(&[("pk", s("counter#all")), ("sk", s("000028333333"))])
    );
    assert_eq!(
        update.update_expression(),
        Some("SET expires_at = :expires ADD #count :one, #l0 :one, #l1 :one")
    );
    assert_eq!(
        update.expression_attribute_names().cloned(),
        names(&[
            ("#count", "failures"),
            ("#l0", "label:role:deploy"),
            ("#l1", "label:cause:SubjectMismatch"),
        ])
    );
    assert_eq!(
        update.expression_attribute_values().cloned(),
        values(&[(":one", n(1)), (":expires", n(1_700_090_000))])
    );
    Ok(())
}

#[tokio::test]
async fn dynamo_failure_counts_queries_the_minutes_and_reads_labels() -> TestResult {
    let seen: Seen<QueryInput> = Seen::new();
    let record = seen.clone();
    let rule = mock!(aws_sdk_dynamodb::Client::query).then_compute_output(move |r| {
        record.push(r);
        let item = |minute: &str, failures: i64, labels: &[(&str, i64)]| {
            let mut item = values(&[
                ("pk", s("counter#all")),
                ("sk", s(minute)),
                ("failures", n(failures)),
                ("expires_at", n(1_700_090_000)),
            ])
            .unwrap_or_default();
            for (label, count) in labels {
                item.insert(format!("label:{label}"), n(*count));
            }
            item
        };
        QueryOutput::builder()
            .items(item(
                "000028333331",
                2,
                &[("role:deploy", 2), ("cause:SubjectMismatch", 1)],
            ))
            .items(item("000028333333", 5, &[("cause:AudienceMismatch", 5)]))
            .build()
    });
    let counts = store(&[&rule])
        .failure_counts("all", 28_333_330, 28_333_335)
        .await?;
    assert_eq!(
        counts,
        [
            MinuteCount {
                minute: 28_333_331,
                failures: 2,
                labels: BTreeMap::from([
                    ("cause:SubjectMismatch".to_owned(), 1),
                    ("role:deploy".to_owned(), 2),
                ]),
            },
            MinuteCount {
                minute: 28_333_333,
                failures: 5,
                labels: BTreeMap::from([("cause:AudienceMismatch".to_owned(), 5)]),
            },
        ]
    );
    let query = seen.only();
    assert_eq!(query.table_name(), Some(TABLE));
    assert_eq!(
        query.key_condition_expression(),
        Some("pk = :pk AND sk BETWEEN :from AND :to")
    );
    // (from, to]: the first minute is excluded.
    assert_eq!(
        query.expression_attribute_values().cloned(),
        values(&[
            (":pk", s("counter#all")),
            (":from", s("000028333331")),
            (":to", s("000028333335")),
        ])
    );
    Ok(())
}

#[tokio::test]
async fn dynamo_save_spike_state_is_versioned() -> TestResult {
    let state = |version| SpikeState {
        version,
        spiking: true,
        since: 1_700_000_000,
        last_alert: 1_700_000_060,
        peak: 42,
    };

    // Version 1: there must be no state yet.
    let (rule, seen) = put_ok();
    assert!(store(&[&rule]).save_spike_state("all", &state(1)).await?);
    let put = seen.only();
    assert_eq!(put.condition_expression(), Some("attribute_not_exists(pk)"));
    assert_eq!(put.expression_attribute_names(), None);
    assert_eq!(put.expression_attribute_values(), None);
    assert_eq!(
        put.item().cloned(),
        values(&[
            ("pk", s("spike#all")),
            ("sk", s("-")),
            ("version", n(1)),
            ("spiking", AttributeValue::Bool(true)),
            ("since", n(1_700_000_000)),
            ("last_alert", n(1_700_000_060)),
            ("peak", n(42)),
        ])
    );

    // Later versions: only over the version that was read.
    let (rule, seen) = put_ok();
    assert!(store(&[&rule]).save_spike_state("all", &state(7)).await?);
    let put = seen.only();
    assert_eq!(put.condition_expression(), Some("#version = :previous"));
    assert_eq!(
        put.expression_attribute_names().cloned(),
        names(&[("#version", "version")])
    );
    assert_eq!(
        put.expression_attribute_values().cloned(),
        values(&[(":previous", n(6))])
    );

    // Someone else saved first.
    let failing = put_condition_fails();
    assert!(!store(&[&failing]).save_spike_state("all", &state(7)).await?);
    Ok(())
}

#[tokio::test]
async fn dynamo_take_token_is_conditional_on_the_period_having_passed() -> TestResult {
    let (rule, seen) = put_ok();
    assert!(
        store(&[&rule])
            .take_token("probe|acme", 1_700_000_000, 600)
            .await?
    );
    let put = seen.only();
    assert_eq!(
        put.condition_expression(),
        Some("attribute_not_exists(pk) OR #until <= :now")
    );
    assert_eq!(
        put.expression_attribute_names().cloned(),
        names(&[("#until", "until")])
    );
    assert_eq!(
        put.expression_attribute_values().cloned(),
        values(&[(":now", n(1_700_000_000))])
    );
    assert_eq!(
        put.item().cloned(),
        values(&[
            ("pk", s("token#probe|acme")),
            ("sk", s("-")),
            ("until", n(1_700_000_600)),
            ("expires_at", n(1_700_000_600 + 86_400)),
        ])
    );

    let failing = put_condition_fails();
    assert!(
        !store(&[&failing])
            .take_token("probe|acme", 1_700_000_001, 600)
            .await?
    );
    Ok(())
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
