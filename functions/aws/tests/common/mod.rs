//! What the adapter tests share: the requests a mocked rule saw, DynamoDB requests
//! compared whole ([`Request`], [`assert_requests`]), the sample event, and mocked clients
//! that fail a test calling an SDK operation its adapter does not declare
//! ([`declared_client!`], the adapters' `SDK_OPERATIONS` lists that docs/contracts.md and
//! the IAM policies rest on).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_smithy_mocks::{mock, MockResponse, Rule, RuleBuilder};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::ErrorMetadata;
use diagnosis::record::InputItem;
use diagnosis::Diagnosis;

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

pub fn throttled(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message("Rate of requests exceeds the allowed throughput")
        .build()
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
