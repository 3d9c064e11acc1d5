//! What the adapter tests share: the requests a mocked rule saw, DynamoDB requests
//! compared whole ([`Request`], [`assert_requests`]), the sample event, and mocked clients
//! that fail a test calling an SDK operation its adapter does not declare
//! ([`declared_client!`], the adapters' `SDK_OPERATIONS` lists that docs/contracts.md and
//! the IAM policies rest on). Below the macro: the IAM, STS and SNS mocks, clients and
//! answers of a local IAM endpoint that the IAM, SNS and bounds tests share.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_iam::operation::get_role::GetRoleError;
use aws_sdk_iam::operation::list_open_id_connect_providers::ListOpenIdConnectProvidersOutput;
use aws_sdk_iam::types::error::NoSuchEntityException;
use aws_sdk_iam::types::Role as IamRole;
use aws_sdk_sns::operation::publish::{PublishError, PublishInput, PublishOutput};
use aws_sdk_sts::operation::assume_role::AssumeRoleOutput;
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
use aws_smithy_mocks::{mock, MockResponse, Rule, RuleBuilder, RuleMode};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::DateTime;
use diagnosis::alert::{Alert, AlertKind, Severity};
use diagnosis::ports::{AccountState, PortError};
use diagnosis::record::InputItem;
use diagnosis::Diagnosis;
use oidc_watch_aws::iam::IamAccountState;
use oidc_watch_aws::sns::SnsAlertSink;

pub const ACCOUNT: &str = "111122223333";
pub const OWN_ACCOUNT: &str = "999999999999";
pub const ROLE: &str = "gha-deploy-main-only";
pub const GITHUB_PROVIDER: &str =
    "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com";
pub const GHES_PROVIDER: &str =
    "arn:aws:iam::111122223333:oidc-provider/github.acme.internal/_services/token";
pub const TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com","token.actions.githubusercontent.com:sub":"repo:acme/web-app:ref:refs/heads/main"}}}]}"#;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Requests a rule saw, for assertions after the call.
pub struct Seen<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Seen<T> {
    fn clone(&self) -> Self {
        Seen(self.0.clone())
    }
}

impl<T: Clone> Seen<T> {
    pub fn new() -> Self {
        Seen(Arc::new(Mutex::new(Vec::new())))
    }

    pub fn push(&self, value: &T) {
        self.0.lock().unwrap().push(value.clone());
    }

    pub fn all(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }

    pub fn only(&self) -> T {
        let all = self.all();
        assert_eq!(all.len(), 1, "expected exactly one request");
        all[0].clone()
    }
}

pub fn sample_diagnosis() -> Result<Diagnosis, Box<dyn std::error::Error>> {
    Ok(diagnosis::diagnose(&*sample_event()?, None))
}

pub fn sample_event() -> Result<Box<diagnosis::WebIdentityEvent>, Box<dyn std::error::Error>> {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json"
    ))?;
    match diagnosis::read_input(&bytes).into_iter().next() {
        Some(Ok(InputItem::Event(event))) => Ok(event),
        other => Err(format!("the sample is not one event: {other:?}").into()),
    }
}

pub const TABLE: &str = "oidc-watch-state";
pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn ss(values: &[&str]) -> AttributeValue {
    AttributeValue::Ss(values.iter().map(|v| (*v).to_owned()).collect())
}

pub fn item(map: &[(&str, AttributeValue)]) -> Item {
    map.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

/// A rule answering the `i`-th request it sees with `answer(i, request)`, recording each.
pub fn recording<I, O, E>(
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

pub fn put_ok() -> (Rule, Seen<PutItemInput>) {
    recording(mock!(aws_sdk_dynamodb::Client::put_item), |_, _| {
        MockResponse::Output(PutItemOutput::builder().build())
    })
}

pub fn put_fails() -> (Rule, Seen<PutItemInput>) {
    recording(mock!(aws_sdk_dynamodb::Client::put_item), |_, _| {
        MockResponse::Error(PutItemError::ConditionalCheckFailedException(condition_failed()))
    })
}

/// UpdateItem answering with `attributes` (the item after the update, for ALL_NEW).
pub fn update_ok(attributes: Option<Item>) -> (Rule, Seen<UpdateItemInput>) {
    recording(mock!(aws_sdk_dynamodb::Client::update_item), move |_, _| {
        MockResponse::Output(
            UpdateItemOutput::builder()
                .set_attributes(attributes.clone())
                .build(),
        )
    })
}

pub fn update_fails() -> (Rule, Seen<UpdateItemInput>) {
    recording(mock!(aws_sdk_dynamodb::Client::update_item), |_, _| {
        MockResponse::Error(UpdateItemError::ConditionalCheckFailedException(
            condition_failed(),
        ))
    })
}

/// GetItem finding `found` (or nothing).
pub fn get(found: Option<Item>) -> (Rule, Seen<GetItemInput>) {
    recording(mock!(aws_sdk_dynamodb::Client::get_item), move |_, _| {
        MockResponse::Output(GetItemOutput::builder().set_item(found.clone()).build())
    })
}

pub fn condition_failed() -> ConditionalCheckFailedException {
    ConditionalCheckFailedException::builder()
        .message("The conditional request failed")
        .build()
}

/// The metadata of a service error (an unmodeled one, with `E::generic`).
pub fn error_metadata(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

pub fn throttled(code: &str) -> ErrorMetadata {
    error_metadata(code, "Rate of requests exceeds the allowed throughput")
}

/// The parts of a DynamoDB request the adapter's correctness rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub table: Option<String>,
    /// The key of an update or a read; the whole item of a put.
    pub item: Option<Item>,
    pub update: Option<String>,
    pub condition: Option<String>,
    pub names: Option<HashMap<String, String>>,
    pub values: Option<Item>,
    pub return_values: Option<ReturnValue>,
    pub consistent_read: Option<bool>,
}

/// The request a test expects: `item` (a put's item, an update's or a read's key), then
/// whatever else it sends.
pub fn request(item_or_key: &[(&str, AttributeValue)]) -> Request {
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
    pub fn update(mut self, expression: &str) -> Self {
        self.update = Some(expression.to_owned());
        self
    }

    pub fn condition(mut self, expression: &str) -> Self {
        self.condition = Some(expression.to_owned());
        self
    }

    pub fn names(mut self, names: &[(&str, &str)]) -> Self {
        self.names = Some(
            names
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        self
    }

    pub fn values(mut self, values: &[(&str, AttributeValue)]) -> Self {
        self.values = Some(item(values));
        self
    }

    pub fn returns(mut self, value: ReturnValue) -> Self {
        self.return_values = Some(value);
        self
    }

    pub fn with_item(mut self, whole: Item) -> Self {
        self.item = Some(whole);
        self
    }

    pub fn consistent(mut self) -> Self {
        self.consistent_read = Some(true);
        self
    }
}

/// A put's or an update's request: the parts the two share, with `item` (a put's item, an
/// update's key) and `update`.
macro_rules! written {
    ($r:expr, $item:expr, $update:expr) => {
        Request {
            table: $r.table_name().map(str::to_owned),
            item: $item.cloned(),
            update: $update,
            condition: $r.condition_expression().map(str::to_owned),
            names: $r.expression_attribute_names().cloned(),
            values: $r.expression_attribute_values().cloned(),
            return_values: $r.return_values().cloned(),
            consistent_read: None,
        }
    };
}

impl From<&PutItemInput> for Request {
    fn from(r: &PutItemInput) -> Self {
        written!(r, r.item(), None)
    }
}

impl From<&UpdateItemInput> for Request {
    fn from(r: &UpdateItemInput) -> Self {
        written!(r, r.key(), r.update_expression().map(str::to_owned))
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
pub fn assert_requests<T>(seen: &Seen<T>, expected: &[Request])
where
    T: Clone,
    for<'a> Request: From<&'a T>,
{
    let sent: Vec<Request> = seen.all().iter().map(Request::from).collect();
    assert_eq!(sent, expected);
}

/// A stored incident opened by `opened_by`, open until `until`, remembering `events`.
/// Panics on a call to an SDK operation that is not in the adapter's declared list.
#[derive(Debug)]
pub struct Declared(pub &'static [&'static str]);

impl Intercept for Declared {
    fn name(&self) -> &'static str {
        "Declared"
    }

    /// The operation's configuration (its `Metadata`) is in the bag from this hook on.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map(Metadata::name).unwrap_or("?");
        assert!(
            self.0.contains(&operation),
            "the adapter called {operation}, which is not in its SDK_OPERATIONS {:?}",
            self.0
        );
        Ok(())
    }
}

/// `aws_smithy_mocks::mock_client!` with a [`Declared`] list of the operations the client
/// may be asked for.
macro_rules! declared_client {
    ($sdk:ident, $declared:expr, $mode:expr, $rules:expr) => {
        declared_client!($sdk, $declared, $mode, $rules, |conf| conf)
    };
    ($sdk:ident, $declared:expr, $mode:expr, $rules:expr, $configure:expr) => {{
        let mut mocks = aws_smithy_mocks::MockResponseInterceptor::new().rule_mode($mode);
        for rule in $rules {
            mocks = mocks.with_rule(rule)
        }
        fn coerce<T: Fn($sdk::config::Builder) -> $sdk::config::Builder>(f: T) -> T {
            f
        }
        $sdk::client::Client::from_conf(
            coerce($configure)(
                $sdk::config::Config::builder()
                    .with_test_defaults_v2()
                    .http_client(aws_smithy_mocks::create_mock_http_client())
                    .interceptor(mocks)
                    .interceptor(crate::common::Declared($declared)),
            )
            .build(),
        )
    }};
}

// ---------------------------------------------------------------------------------------
// IAM and STS
// ---------------------------------------------------------------------------------------

pub const HOUR: Duration = Duration::from_secs(3600);

/// IAM returns trust policies URL-encoded (RFC 3986 unreserved characters kept).
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn url_decode(text: &str) -> String {
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

/// The role `name` in `account` as GetRole returns it, trusting [`TRUST_POLICY`].
pub fn iam_role(account: &str, name: &str) -> IamRole {
    IamRole::builder()
        .path("/")
        .role_name(name)
        .role_id("AROABTX3GSDS56JEVSHUM")
        .arn(format!("arn:aws:iam::{account}:role/{name}"))
        .create_date(DateTime::from_secs(1_745_308_090))
        .assume_role_policy_document(url_encode(TRUST_POLICY))
        .max_session_duration(7200)
        .build()
        .expect("a role with every required field")
}

/// GetRole finding no role.
pub fn no_such_role() -> Rule {
    mock!(aws_sdk_iam::Client::get_role)
        .then_error(|| GetRoleError::NoSuchEntityException(NoSuchEntityException::builder().build()))
}

/// GetRole failing with `code` and `message`.
pub fn get_role_fails(code: &'static str, message: &'static str) -> Rule {
    mock!(aws_sdk_iam::Client::get_role)
        .then_error(move || GetRoleError::generic(error_metadata(code, message)))
}

/// An account without OIDC providers.
pub fn no_providers() -> Rule {
    mock!(aws_sdk_iam::Client::list_open_id_connect_providers)
        .then_output(|| ListOpenIdConnectProvidersOutput::builder().build())
}

/// A mocked IAM client answering with `rules`, its configuration passed through `configure`.
pub fn iam_client_configured(
    rules: &[&Rule],
    configure: impl Fn(aws_sdk_iam::config::Builder) -> aws_sdk_iam::config::Builder,
) -> aws_sdk_iam::Client {
    declared_client!(
        aws_sdk_iam,
        oidc_watch_aws::iam::IAM_OPERATIONS,
        RuleMode::MatchAny,
        rules.iter().copied(),
        configure
    )
}

/// A mocked IAM client answering with `rules`.
pub fn iam_client(rules: &[&Rule]) -> aws_sdk_iam::Client {
    iam_client_configured(rules, |c| c)
}

/// A mocked IAM client answering with `rules` that does not retry, so an error is its answer.
pub fn iam_client_without_retries(rules: &[&Rule]) -> aws_sdk_iam::Client {
    iam_client_configured(rules, |c| {
        c.retry_config(aws_sdk_iam::config::retry::RetryConfig::disabled())
    })
}

/// A mocked STS client answering with `rules`, its configuration passed through `configure`.
pub fn sts_client_configured(
    rules: &[&Rule],
    configure: impl Fn(aws_sdk_sts::config::Builder) -> aws_sdk_sts::config::Builder,
) -> aws_sdk_sts::Client {
    declared_client!(
        aws_sdk_sts,
        oidc_watch_aws::iam::STS_OPERATIONS,
        RuleMode::MatchAny,
        rules.iter().copied(),
        configure
    )
}

/// A mocked STS client answering with `rules`.
pub fn sts_client(rules: &[&Rule]) -> aws_sdk_sts::Client {
    sts_client_configured(rules, |c| c)
}

/// A mocked STS client answering with `rules` that does not retry.
pub fn sts_client_without_retries(rules: &[&Rule]) -> aws_sdk_sts::Client {
    sts_client_configured(rules, |c| {
        c.retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
    })
}

/// AssumeRole of the read role failing with AccessDenied and `message`.
pub fn assume_role_denied(message: &'static str) -> Rule {
    mock!(aws_sdk_sts::Client::assume_role).then_error(move || {
        aws_sdk_sts::operation::assume_role::AssumeRoleError::generic(error_metadata("AccessDenied", message))
    })
}

pub const READ_ROLE_KEY: &str = "ASIAREADROLEEXAMPLE1";
pub const READ_ROLE_TOKEN: &str = "session-token-of-the-read-role";

/// STS rules: GetCallerIdentity says we are `OWN_ACCOUNT`; AssumeRole only for the read
/// role in `ACCOUNT`, answering with recognisable credentials.
pub struct StsRules {
    pub identity: Rule,
    pub assume: Rule,
}

impl StsRules {
    pub fn new() -> Self {
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

    pub fn client(&self) -> aws_sdk_sts::Client {
        sts_client(&[&self.identity, &self.assume])
    }
}

/// An `SdkConfig` for IAM clients the adapter builds itself (after AssumeRole).
pub fn sdk_config(endpoint: Option<String>) -> aws_config::SdkConfig {
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .retry_config(aws_config::retry::RetryConfig::disabled());
    builder.set_endpoint_url(endpoint);
    builder.build()
}

/// The adapter on `iam` and `sts`, without a read role, caching for an hour.
pub fn iam_state(iam: aws_sdk_iam::Client, sts: aws_sdk_sts::Client) -> IamAccountState {
    IamAccountState::from_clients(&sdk_config(None), iam, sts, None, HOUR)
}

/// The adapter on `iam` and `sts`, reading other accounts through the read role
/// `oidc-watch-read`, caching for an hour.
pub fn iam_state_with_read_role(iam: aws_sdk_iam::Client, sts: aws_sdk_sts::Client) -> IamAccountState {
    IamAccountState::from_clients(&sdk_config(None), iam, sts, Some("oidc-watch-read".into()), HOUR)
}

/// The lookup of `ROLE` in `account` while our own account is unknown (GetCallerIdentity
/// failed): a retryable STS error.
pub async fn own_account_unknown(state: &IamAccountState, account: &str) -> PortError {
    let error = state
        .snapshot(account, ROLE)
        .await
        .expect_err("our own account is unknown");
    assert_eq!(error.service, "sts");
    assert!(error.retryable, "worth retrying later: {error}");
    error
}

/// One request a local IAM endpoint received: its headers (names in lower case) and its
/// decoded query parameters.
pub struct QueryRequest {
    pub headers: HashMap<String, String>,
    pub params: HashMap<String, String>,
}

impl QueryRequest {
    pub fn action(&self) -> String {
        self.params.get("Action").cloned().unwrap_or_default()
    }
}

/// Reads one IAM query-protocol request from `stream` (None if it ends early).
pub fn read_query_request(stream: &TcpStream) -> Option<QueryRequest> {
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
    reader.read_exact(&mut body).ok()?;
    let params = String::from_utf8_lossy(&body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (url_decode(k), url_decode(v)))
        .collect();
    Some(QueryRequest { headers, params })
}

/// GetRole's result: `ROLE` in `account`, trusting [`TRUST_POLICY`].
pub fn get_role_result(account: &str) -> String {
    format!(
        "<Role><Path>/</Path><RoleName>{ROLE}</RoleName><RoleId>AROAEXAMPLE</RoleId>\
         <Arn>arn:aws:iam::{account}:role/{ROLE}</Arn><CreateDate>2025-04-22T07:48:10Z</CreateDate>\
         <AssumeRolePolicyDocument>{}</AssumeRolePolicyDocument>\
         <MaxSessionDuration>3600</MaxSessionDuration></Role>",
        url_encode(TRUST_POLICY)
    )
}

/// ListOpenIDConnectProviders' result: a provider in `account` for each of `urls`.
pub fn providers_result(account: &str, urls: &[&str]) -> String {
    let members: String = urls
        .iter()
        .map(|url| format!("<member><Arn>arn:aws:iam::{account}:oidc-provider/{url}</Arn></member>"))
        .collect();
    format!("<OpenIDConnectProviderList>{members}</OpenIDConnectProviderList>")
}

/// GetOpenIDConnectProvider's result: the provider at `url`, for the STS audience.
pub fn provider_result(url: &str) -> String {
    format!(
        "<Url>{url}</Url><ClientIDList><member>sts.amazonaws.com</member></ClientIDList>\
         <ThumbprintList><member>6938fd4d98bab03faadb97b34396831e3780aea1</member></ThumbprintList>\
         <CreateDate>2023-02-14T10:21:37Z</CreateDate>"
    )
}

/// Answers `action` with `result` as IAM does; an empty result (an action not faked) with a
/// 400 InvalidAction.
pub fn write_query_response(stream: &mut TcpStream, action: &str, result: &str) {
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

// ---------------------------------------------------------------------------------------
// SNS
// ---------------------------------------------------------------------------------------

pub const TOPIC: &str = "arn:aws:sns:us-east-1:999999999999:oidc-watch-alerts";

/// The high-severity incident alert `inc-0001` in `ACCOUNT` for `d`, after three attempts.
pub fn alert_of(d: Diagnosis) -> Alert {
    Alert {
        kind: AlertKind::Incident,
        severity: Severity::High,
        thread_id: "inc-0001".into(),
        account_id: ACCOUNT.into(),
        cause: Some(d.cause),
        attempts: 3,
        diagnosis: Some(d),
        spike: None,
        notes: Vec::new(),
        changes: Vec::new(),
        digest: None,
    }
}

/// A sink publishing to `TOPIC` through a mocked client answering with `rules`, its
/// configuration passed through `configure`.
pub fn sns_sink_configured(
    rules: &[&Rule],
    configure: impl Fn(aws_sdk_sns::config::Builder) -> aws_sdk_sns::config::Builder,
) -> SnsAlertSink {
    SnsAlertSink {
        client: declared_client!(
            aws_sdk_sns,
            oidc_watch_aws::sns::SDK_OPERATIONS,
            RuleMode::MatchAny,
            rules.iter().copied(),
            configure
        ),
        topic_arn: TOPIC.into(),
    }
}

/// A sink publishing to `TOPIC` through a mocked client answering with `rules`.
pub fn sns_sink(rules: &[&Rule]) -> SnsAlertSink {
    sns_sink_configured(rules, |c| c)
}

/// A sink publishing to `TOPIC` through a mocked client that does not retry.
pub fn sns_sink_without_retries(rules: &[&Rule]) -> SnsAlertSink {
    sns_sink_configured(rules, |c| {
        c.retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())
    })
}

/// Publish answering `msg-1`, recording each request.
pub fn sns_capture() -> (Rule, Seen<PublishInput>) {
    recording(mock!(aws_sdk_sns::Client::publish), |_, _| {
        MockResponse::Output(PublishOutput::builder().message_id("msg-1").build())
    })
}

/// Publish failing with `code` and `message`.
pub fn publish_fails(code: &'static str, message: &'static str) -> Rule {
    mock!(aws_sdk_sns::Client::publish)
        .then_error(move || PublishError::generic(error_metadata(code, message)))
}
