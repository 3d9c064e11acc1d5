//! Bounds of the IAM and SNS adapters (docs/design.md, "Untrusted input"): caches that a
//! stranger spraying role names and accounts cannot grow, errors cached briefly, no member
//! account read with our own credentials, IAM's spelling of a role name, concurrent
//! lookups, and an alert that always fits SNS's limit and whose failures say whether
//! retrying can help.

#[macro_use]
mod common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_iam::operation::get_role::GetRoleOutput;
use aws_sdk_iam::operation::list_open_id_connect_providers::ListOpenIDConnectProvidersError;
use aws_sdk_sns::operation::publish::PublishError;
use aws_sdk_sts::operation::assume_role::AssumeRoleOutput;
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
use aws_smithy_mocks::{mock, Rule};
use aws_smithy_types::error::ErrorMetadata;
use diagnosis::audit::{Finding, FindingCode};
use diagnosis::diagnose::FailedCondition;
use diagnosis::ports::{AccountState, AlertSink};
use diagnosis::Diagnosis;
use oidc_watch_aws::iam::{CacheSizes, IamAccountState, ACCOUNT_CACHE_CAPACITY, ROLE_CACHE_CAPACITY};
use oidc_watch_aws::sns::{to_publish, SnsAlertSink, MAX_PUBLISH_BYTES, PUBLISH_BUDGET};
use serde_json::Value;

use common::*;

fn throttling() -> ErrorMetadata {
    error_metadata("Throttling", "Rate exceeded")
}

/// The state on a mocked IAM client answering with `rules`, no read role.
fn state_on(rules: &[&Rule]) -> IamAccountState {
    iam_state(iam_client(rules), StsRules::new().client())
}

/// The state on a mocked IAM client answering with `rules` without retrying, no read role.
fn state_without_retries_on(rules: &[&Rule]) -> IamAccountState {
    iam_state(iam_client_without_retries(rules), StsRules::new().client())
}

/// GetRole finding `ROLE` in `ACCOUNT`, whatever it is asked for.
fn role_found() -> Rule {
    mock!(aws_sdk_iam::Client::get_role)
        .then_output(|| GetRoleOutput::builder().role(iam_role(ACCOUNT, ROLE)).build())
}

// ---------------------------------------------------------------------------------------
// IAM: bounded caches
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn iam_caches_stay_bounded_when_a_stranger_sprays_role_names_and_accounts() -> TestResult {
    let get_role = no_such_role();
    let list = no_providers();
    let state = state_on(&[&get_role, &list]);

    let names = ROLE_CACHE_CAPACITY + 200;
    for i in 0..names {
        state.snapshot(ACCOUNT, &format!("spray-{i}")).await?;
        assert!(state.cache_sizes().roles <= ROLE_CACHE_CAPACITY);
    }
    assert_eq!(state.cache_sizes().roles, ROLE_CACHE_CAPACITY);
    assert_eq!(get_role.num_calls(), names, "one GetRole per new lower-case name");

    // The newest answers are the ones kept: asked again, they cost nothing.
    state.snapshot(ACCOUNT, &format!("spray-{}", names - 1)).await?;
    assert_eq!(get_role.num_calls(), names);
    // The oldest was evicted.
    state.snapshot(ACCOUNT, "spray-0").await?;
    assert_eq!(get_role.num_calls(), names + 1);

    let accounts = ACCOUNT_CACHE_CAPACITY + 50;
    for i in 0..accounts {
        state
            .snapshot(&format!("{:012}", 200_000_000_000u64 + i as u64), ROLE)
            .await?;
        let sizes = state.cache_sizes();
        assert!(sizes.providers <= ACCOUNT_CACHE_CAPACITY && sizes.roles <= ROLE_CACHE_CAPACITY);
    }
    assert_eq!(state.cache_sizes().providers, ACCOUNT_CACHE_CAPACITY);
    Ok(())
}

#[tokio::test]
async fn iam_names_that_cannot_exist_cost_no_call() -> TestResult {
    let get_role = no_such_role();
    let list = no_providers();
    let state = state_on(&[&get_role, &list]);

    let long = "a".repeat(65);
    for name in ["role/with/path", "déploiement", "", long.as_str()] {
        let snapshot = state.snapshot(ACCOUNT, name).await?;
        assert!(snapshot.roles.is_empty(), "{name:?}");
    }
    assert_eq!(get_role.num_calls(), 0);

    let error = state
        .snapshot("not-an-account", ROLE)
        .await
        .expect_err("no account");
    assert!(!error.retryable, "{error}");
    assert_eq!(list.num_calls(), 1, "only the one real account's providers");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// IAM: errors cached briefly
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn iam_a_throttled_lookup_is_answered_from_the_cache_within_the_error_ttl() -> TestResult {
    let get_role = get_role_fails("Throttling", "Rate exceeded");
    let list = no_providers();
    let state = state_without_retries_on(&[&get_role, &list]);

    let first = state.snapshot(ACCOUNT, ROLE).await.expect_err("throttled");
    assert!(first.retryable, "{first}");
    // Any spelling of the name shares the cached error.
    let second = state
        .snapshot(ACCOUNT, "GHA-Deploy-Main-Only")
        .await
        .expect_err("the cached error");
    assert_eq!(second, first);
    assert_eq!(
        (get_role.num_calls(), list.num_calls()),
        (1, 1),
        "no call within the error TTL"
    );

    // Past the error TTL (zero here), IAM is asked again.
    let get_role = get_role_fails("Throttling", "Rate exceeded");
    let state = state_without_retries_on(&[&get_role, &list]).with_error_ttl(Duration::ZERO);
    let _ = state.snapshot(ACCOUNT, ROLE).await;
    let _ = state.snapshot(ACCOUNT, ROLE).await;
    assert_eq!(get_role.num_calls(), 2);
    Ok(())
}

#[tokio::test]
async fn iam_a_failed_provider_list_is_cached_briefly_too() -> TestResult {
    let get_role = role_found();
    let list = mock!(aws_sdk_iam::Client::list_open_id_connect_providers)
        .then_error(|| ListOpenIDConnectProvidersError::generic(throttling()));
    let state = state_without_retries_on(&[&get_role, &list]);
    let error = state.snapshot(ACCOUNT, ROLE).await.expect_err("throttled");
    assert!(
        error.retryable && error.message.contains("ListOpenIDConnectProviders"),
        "{error}"
    );
    let _ = state.snapshot(ACCOUNT, ROLE).await;
    assert_eq!((get_role.num_calls(), list.num_calls()), (1, 1));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// IAM: never a member account with our own credentials
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn iam_member_account_is_not_read_with_central_credentials_when_our_account_is_unknown() -> TestResult {
    let identity = mock!(aws_sdk_sts::Client::get_caller_identity)
        .then_error(|| GetCallerIdentityError::generic(throttling()));
    let assume = mock!(aws_sdk_sts::Client::assume_role).then_output(|| AssumeRoleOutput::builder().build());
    let sts = sts_client_without_retries(&[&identity, &assume]);
    let get_role = role_found();
    let list = no_providers();
    let state = iam_state_with_read_role(iam_client(&[&get_role, &list]), sts);

    let error = own_account_unknown(&state, ACCOUNT).await;
    assert!(error.message.contains(ACCOUNT), "{error}");
    assert_eq!(
        (get_role.num_calls(), list.num_calls(), assume.num_calls()),
        (0, 0, 0),
        "the central client is not used for a member account, nor is any role assumed"
    );
    assert_eq!(
        state.cache_sizes(),
        CacheSizes {
            roles: 0,
            providers: 0,
            clients: 0
        },
        "nothing cached under the member's key"
    );

    // Within the error TTL, STS is not asked again either.
    let again = state.snapshot(ACCOUNT, ROLE).await.expect_err("still unknown");
    assert!(again.retryable);
    assert_eq!(identity.num_calls(), 1);
    assert_eq!((get_role.num_calls(), list.num_calls()), (0, 0));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// IAM: IAM's spelling of the role name
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn iam_role_carries_the_name_iam_answered_with_not_the_events_spelling() -> TestResult {
    // IAM matching without regard to case: the first GetRole finds it.
    let get_role = mock!(aws_sdk_iam::Client::get_role)
        .match_requests(|r| r.role_name().is_some_and(|n| n.eq_ignore_ascii_case(ROLE)))
        .then_output(|| GetRoleOutput::builder().role(iam_role(ACCOUNT, ROLE)).build());
    let list = no_providers();
    let state = state_on(&[&get_role, &list]);
    let snapshot = state.snapshot(ACCOUNT, "GHA-Deploy-Main-Only").await?;
    let role = snapshot.role(ROLE).expect("the role");
    assert_eq!(role.name, ROLE);
    assert_eq!(role.arn, format!("arn:aws:iam::{ACCOUNT}:role/{ROLE}"));
    assert_eq!(get_role.num_calls(), 1);
    Ok(())
}

/// moto's GetRole (5.2.x) compares names exactly; the adapter still finds a lower-case
/// role asked for in another case, and a mixed-case one asked for exactly.
#[tokio::test]
async fn iam_case_sensitive_get_role_still_resolves_case_variants() -> TestResult {
    const MIXED: &str = "Deploy-Prod";
    let exact = mock!(aws_sdk_iam::Client::get_role)
        .match_requests(|r| r.role_name() == Some(ROLE))
        .then_output(|| GetRoleOutput::builder().role(iam_role(ACCOUNT, ROLE)).build());
    let mixed = mock!(aws_sdk_iam::Client::get_role)
        .match_requests(|r| r.role_name() == Some(MIXED))
        .then_output(|| GetRoleOutput::builder().role(iam_role(ACCOUNT, MIXED)).build());
    let other = no_such_role();
    let list = no_providers();
    let state = state_on(&[&exact, &mixed, &other, &list]);
    let calls = || exact.num_calls() + mixed.num_calls() + other.num_calls();

    // The event's spelling, then the lower-case one.
    let snapshot = state.snapshot(ACCOUNT, "GHA-DEPLOY-MAIN-ONLY").await?;
    assert_eq!(snapshot.role(ROLE).map(|r| r.name.as_str()), Some(ROLE));
    assert_eq!((other.num_calls(), exact.num_calls()), (1, 1));
    // Cached under the lower-case name: any spelling, no call.
    state.snapshot(ACCOUNT, "Gha-Deploy-Main-Only").await?;
    assert_eq!(calls(), 2);

    // A mixed-case role asked for in lower case is not found (cached as such)...
    let miss = state.snapshot(ACCOUNT, "deploy-prod").await?;
    assert!(miss.roles.is_empty());
    assert_eq!(calls(), 3);
    // ...but the spelling it exists under is still asked for, and then found.
    let hit = state.snapshot(ACCOUNT, MIXED).await?;
    assert_eq!(hit.role(MIXED).map(|r| r.name.as_str()), Some(MIXED));
    assert_eq!(calls(), 4);
    let cached = state.snapshot(ACCOUNT, "DEPLOY-PROD").await?;
    assert_eq!(cached.role(MIXED).map(|r| r.name.as_str()), Some(MIXED));
    assert_eq!(calls(), 4);

    // A stranger spraying case variants of a missing name gets a bounded number of calls.
    for spelling in ["Ghost", "GHOST", "gHost", "ghOst", "ghoSt", "ghosT"] {
        assert!(state.snapshot(ACCOUNT, spelling).await?.roles.is_empty());
    }
    assert_eq!(
        other.num_calls() - 2,
        4,
        "Ghost, ghost, GHOST, gHost; then no more"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// IAM: concurrent lookups, and none when warm
// ---------------------------------------------------------------------------------------

/// A local IAM endpoint answering each connection on its own thread after a pause, and
/// recording the most requests it had in flight at once.
struct SlowIam {
    endpoint: String,
    requests: Arc<Mutex<Vec<String>>>,
    max_in_flight: Arc<AtomicUsize>,
}

fn slow_iam(account: &'static str, pause: Duration) -> SlowIam {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    let endpoint = format!("http://{}", listener.local_addr().expect("bound"));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let (seen, most) = (requests.clone(), max_in_flight.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (seen, most, in_flight) = (seen.clone(), most.clone(), in_flight.clone());
            std::thread::spawn(move || answer(stream, account, pause, &seen, &most, &in_flight));
        }
    });
    SlowIam {
        endpoint,
        requests,
        max_in_flight,
    }
}

fn answer(
    mut stream: std::net::TcpStream,
    account: &str,
    pause: Duration,
    seen: &Mutex<Vec<String>>,
    most: &AtomicUsize,
    in_flight: &AtomicUsize,
) {
    let Some(request) = read_query_request(&stream) else {
        return;
    };
    let action = request.action();
    seen.lock().unwrap().push(action.clone());
    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    most.fetch_max(now, Ordering::SeqCst);
    std::thread::sleep(pause);
    in_flight.fetch_sub(1, Ordering::SeqCst);
    let result = match action.as_str() {
        "GetRole" => get_role_result(account),
        "ListOpenIDConnectProviders" => providers_result(
            account,
            &[
                "token.actions.githubusercontent.com",
                "gitlab.com",
                "app.terraform.io",
            ],
        ),
        "GetOpenIDConnectProvider" => {
            let arn = request
                .params
                .get("OpenIDConnectProviderArn")
                .map_or("", String::as_str);
            provider_result(arn.split_once("oidc-provider/").map_or("", |(_, url)| url))
        }
        _ => String::new(),
    };
    write_query_response(&mut stream, &action, &result);
}

#[tokio::test]
async fn iam_role_and_provider_lookups_run_concurrently_and_a_warm_lookup_calls_nothing() -> TestResult {
    let server = slow_iam(ACCOUNT, Duration::from_millis(150));
    let unused = mock!(aws_sdk_iam::Client::get_role).then_output(|| GetRoleOutput::builder().build());
    let central = iam_client(&[&unused]);
    let StsRules { identity, assume } = StsRules::new();
    let state = IamAccountState::from_clients(
        &sdk_config(Some(server.endpoint.clone())),
        central,
        sts_client(&[&identity, &assume]),
        Some("oidc-watch-read".into()),
        HOUR,
    );

    let snapshot = state.snapshot(ACCOUNT, ROLE).await?;
    assert!(snapshot.role(ROLE).is_some());
    assert_eq!(snapshot.providers.len(), 3);
    assert_eq!(
        snapshot
            .providers
            .iter()
            .map(|p| p.url.as_str())
            .collect::<Vec<_>>(),
        [
            "token.actions.githubusercontent.com",
            "gitlab.com",
            "app.terraform.io"
        ],
        "in the order IAM listed them"
    );
    let requests = server.requests.lock().unwrap().len();
    assert_eq!(requests, 5, "GetRole, the list, three providers");
    assert!(
        server.max_in_flight.load(Ordering::SeqCst) >= 2,
        "GetRole and the providers were asked one after the other"
    );

    // Warm: no IAM, no STS call at all.
    let again = state.snapshot(ACCOUNT, "GHA-Deploy-Main-Only").await?;
    assert!(again.role(ROLE).is_some());
    assert_eq!(server.requests.lock().unwrap().len(), requests);
    assert_eq!((identity.num_calls(), assume.num_calls()), (1, 1));
    assert_eq!(
        unused.num_calls(),
        0,
        "the central client never reads the member account"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// SNS: the message fits
// ---------------------------------------------------------------------------------------

fn huge_detail(d: &mut Diagnosis) {
    d.failed_conditions = (0..400)
        .map(|i| FailedCondition {
            statement: i,
            operator: "StringLike".into(),
            key: "token.actions.githubusercontent.com:sub".into(),
            expected: vec![format!("repo:acme/{}:*", "w".repeat(2_000))],
            actual: Value::String("\"quoted\" \\ text".repeat(100)),
            provenance: None,
        })
        .collect();
    d.findings = (0..400)
        .map(|i| Finding {
            code: FindingCode::NoSubjectCondition,
            severity: diagnosis::audit::Severity::High,
            statement: i,
            message: "m".repeat(1_000),
        })
        .collect::<Vec<_>>()
        .into();
}

struct Published {
    message: Value,
    q: Value,
    context: serde_json::Map<String, Value>,
    embedded: Value,
}

/// The published message, parsed all the way down (every layer must be JSON).
fn parse(message: &str) -> Result<Published, Box<dyn std::error::Error>> {
    let message: Value = serde_json::from_str(message)?;
    let q: Value = serde_json::from_str(message["default"].as_str().ok_or("default")?)?;
    let context = q["metadata"]["additionalContext"]
        .as_object()
        .ok_or("additionalContext")?
        .clone();
    assert!(context.values().all(Value::is_string), "{context:?}");
    let embedded = serde_json::from_str(context["diagnosis"].as_str().ok_or("diagnosis")?)?;
    Ok(Published {
        message,
        q,
        context,
        embedded,
    })
}

#[tokio::test]
async fn sns_a_huge_diagnosis_is_trimmed_under_the_limit_keeping_the_title_and_valid_json() -> TestResult {
    let mut d = sample_diagnosis()?;
    huge_detail(&mut d);
    d.explanation = format!("The subject did not match. {}", "e".repeat(300_000));
    d.fix = Some("f".repeat(100_000));
    d.subject = Some(format!("repo:acme/web-app:ref:refs/heads/{}", "é".repeat(50_000)));
    let alert = alert_of(d);
    let full = alert.to_q_notification();
    let title = full["content"]["title"].as_str().ok_or("title")?.to_owned();
    assert!(
        serde_json::to_string(&full)?.len() > MAX_PUBLISH_BYTES,
        "the alert is over the limit untrimmed"
    );

    let request = to_publish(&alert);
    assert!(request.size() <= PUBLISH_BUDGET && PUBLISH_BUDGET < MAX_PUBLISH_BYTES);
    let published = parse(&request.message)?;
    assert_eq!(published.q["content"]["title"], title.as_str(), "the title stays");
    assert_eq!(published.q["metadata"]["threadId"], "inc-0001");
    assert_eq!(published.context["truncated"], "true");
    assert_eq!(published.context["cause"], "SubjectMismatch");
    assert_eq!(published.embedded["cause"], "SubjectMismatch");
    assert_eq!(published.embedded["truncated"], true);
    for detail in ["findings", "failed_conditions", "suggested_change"] {
        assert!(published.embedded.get(detail).is_none(), "{detail} dropped");
    }
    let description = published.q["content"]["description"]
        .as_str()
        .ok_or("description")?;
    assert!(description.ends_with("[truncated]"), "{}", &description[..80]);
    let email = published.message["email"].as_str().ok_or("email")?;
    assert!(email.starts_with("[HIGH] SubjectMismatch"), "{}", &email[..80]);

    // What the sink sends is that request.
    let (rule, seen) = sns_capture();
    sns_sink(&[&rule]).publish(&alert).await?;
    let sent = seen.all()[0].clone();
    assert_eq!(sent.message(), Some(request.message.as_str()));
    Ok(())
}

#[test]
fn sns_detail_goes_first_and_the_explanation_stays_when_that_is_enough() -> TestResult {
    let mut d = sample_diagnosis()?;
    huge_detail(&mut d);
    let explanation = d.explanation.clone();
    let request = to_publish(&alert_of(d));
    assert!(request.size() <= PUBLISH_BUDGET);
    let published = parse(&request.message)?;
    assert!(published.embedded.get("failed_conditions").is_none());
    assert_eq!(published.embedded["explanation"], explanation.as_str());
    let description = published.q["content"]["description"]
        .as_str()
        .ok_or("description")?;
    assert!(description.ends_with(&explanation), "{description}");
    Ok(())
}

#[test]
fn sns_an_ordinary_alert_is_sent_whole() -> TestResult {
    let d = sample_diagnosis()?;
    let failed = d.failed_conditions.len();
    let request = to_publish(&alert_of(d));
    let published = parse(&request.message)?;
    assert!(published.context.get("truncated").is_none());
    assert!(published.embedded.get("truncated").is_none());
    assert_eq!(
        published.embedded["failed_conditions"].as_array().map(Vec::len),
        Some(failed)
    );
    Ok(())
}

#[test]
fn sns_an_enormous_role_name_still_gives_a_bounded_message_with_a_title() -> TestResult {
    let mut d = sample_diagnosis()?;
    let name = "r".repeat(400_000);
    d.role_name = Some(name.clone());
    d.role_arn = Some(format!("arn:aws:iam::{ACCOUNT}:role/{name}"));
    let alert = alert_of(d);
    let request = to_publish(&alert);
    assert!(request.size() <= PUBLISH_BUDGET, "{}", request.size());
    let published = parse(&request.message)?;
    let title = published.q["content"]["title"].as_str().ok_or("title")?;
    assert!(title.starts_with("SubjectMismatch"), "{}", &title[..60]);
    assert!(title.len() <= 1_024);
    assert!(request.subject.len() <= 100);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// SNS: which Publish errors are worth retrying
// ---------------------------------------------------------------------------------------

async fn publish_failing_with(
    code: &'static str,
) -> Result<diagnosis::ports::PortError, Box<dyn std::error::Error>> {
    let rule = publish_fails(code, "from the test");
    Ok(sns_sink_without_retries(&[&rule])
        .publish(&alert_of(sample_diagnosis()?))
        .await
        .expect_err("the mock fails"))
}

#[tokio::test]
async fn sns_client_errors_are_not_retryable_and_throttling_and_server_errors_are() -> TestResult {
    for code in [
        "InvalidParameter",
        "InvalidParameterValue",
        "ParameterValueInvalid",
        "NotFound",
        "AuthorizationError",
        "KMSDisabled",
        "KMSInvalidState",
        "KMSNotFound",
        "KMSAccessDenied",
        "InvalidSecurity",
    ] {
        let error = publish_failing_with(code).await?;
        assert!(!error.retryable, "{code}: {error}");
        assert!(error.message.contains(code), "{error}");
    }
    for code in [
        "Throttling",
        "Throttled",
        "KMSThrottling",
        "InternalError",
        "ServiceUnavailable",
    ] {
        let error = publish_failing_with(code).await?;
        assert!(error.retryable, "{code}: {error}");
    }
    // A modeled client error without a code in its metadata is still one.
    let rule = mock!(aws_sdk_sns::Client::publish).then_error(|| {
        PublishError::InvalidParameterException(
            aws_sdk_sns::types::error::InvalidParameterException::builder()
                .message("Invalid parameter: Message too long")
                .build(),
        )
    });
    let error = sns_sink(&[&rule])
        .publish(&alert_of(sample_diagnosis()?))
        .await
        .expect_err("too long");
    assert!(!error.retryable, "{error}");
    Ok(())
}

#[tokio::test]
async fn sns_server_errors_timeouts_and_transport_failures_are_retryable() -> TestResult {
    let alert = alert_of(sample_diagnosis()?);
    let config = |endpoint: String| {
        aws_sdk_sns::config::Builder::from(&sdk_config(Some(endpoint)))
            .credentials_provider(aws_sdk_sns::config::Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            ))
            .timeout_config(
                aws_sdk_sns::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_millis(300))
                    .build(),
            )
            .build()
    };

    // A 503 with no body.
    let rule = mock!(aws_sdk_sns::Client::publish)
        .sequence()
        .http_status(503, None)
        .build();
    let error = sns_sink_without_retries(&[&rule])
        .publish(&alert)
        .await
        .expect_err("503");
    assert!(error.retryable, "{error}");

    // Nothing listening: a dispatch failure.
    let closed = TcpListener::bind("127.0.0.1:0")?;
    let endpoint = format!("http://{}", closed.local_addr()?);
    drop(closed);
    let sink = SnsAlertSink {
        client: aws_sdk_sns::Client::from_conf(config(endpoint)),
        topic_arn: TOPIC.into(),
    };
    let error = sink.publish(&alert).await.expect_err("refused");
    assert!(error.retryable, "{error}");

    // Listening but never answering: a timeout.
    let silent = TcpListener::bind("127.0.0.1:0")?;
    let endpoint = format!("http://{}", silent.local_addr()?);
    let sink = SnsAlertSink {
        client: aws_sdk_sns::Client::from_conf(config(endpoint)),
        topic_arn: TOPIC.into(),
    };
    let error = sink.publish(&alert).await.expect_err("timed out");
    assert!(error.retryable, "{error}");
    drop(silent);
    Ok(())
}
