//! The IAM adapter against mocked SDK clients (aws-smithy-mocks): the requests it sends,
//! how it reads the answers, what it caches and what it makes of errors.
//!
//! Mocked clients use `RuleMode::MatchAny`: rules with `match_requests` pin a request's
//! shape (a request no rule matches panics the test), rules with `then_compute_output`
//! record the request. Cross-account IAM clients are built by the adapter from an
//! `SdkConfig`, which cannot carry a mock interceptor; they talk to a small local HTTP
//! server that answers IAM's query protocol and records who signed each call.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::Duration;

use aws_sdk_iam::operation::get_open_id_connect_provider::{
    GetOpenIDConnectProviderError, GetOpenIdConnectProviderOutput,
};
use aws_sdk_iam::operation::get_role::GetRoleOutput;
use aws_sdk_iam::operation::list_open_id_connect_providers::ListOpenIdConnectProvidersOutput;
use aws_sdk_iam::types::error::NoSuchEntityException;
use aws_sdk_iam::types::OpenIdConnectProviderListEntry;
use aws_sdk_sts::operation::get_caller_identity::{GetCallerIdentityError, GetCallerIdentityOutput};
use aws_smithy_mocks::{mock, Rule};
use aws_smithy_types::error::ErrorMetadata;
use diagnosis::ports::AccountState;
use diagnosis::Cause;
use oidc_watch_aws::iam::IamAccountState;

use common::*;

// ---------------------------------------------------------------------------------------
// IAM
// ---------------------------------------------------------------------------------------

/// GetOpenIDConnectProvider answering for `arn` alone, with `output`.
fn provider(arn: &'static str, output: fn() -> GetOpenIdConnectProviderOutput) -> Rule {
    mock!(aws_sdk_iam::Client::get_open_id_connect_provider)
        .match_requests(move |r| r.open_id_connect_provider_arn() == Some(arn))
        .then_output(output)
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
                .then_output(|| GetRoleOutput::builder().role(iam_role(ACCOUNT, ROLE)).build()),
            ..Self::providers()
        }
    }

    fn providers() -> Self {
        IamRules {
            get_role: no_such_role(),
            list: mock!(aws_sdk_iam::Client::list_open_id_connect_providers).then_output(|| {
                let entries = [GITHUB_PROVIDER, GHES_PROVIDER]
                    .map(|arn| OpenIdConnectProviderListEntry::builder().arn(arn).build());
                ListOpenIdConnectProvidersOutput::builder()
                    .set_open_id_connect_provider_list(Some(entries.into()))
                    .build()
            }),
            get_github: provider(GITHUB_PROVIDER, || {
                GetOpenIdConnectProviderOutput::builder()
                    .url("token.actions.githubusercontent.com")
                    .client_id_list("sts.amazonaws.com")
                    .client_id_list("https://github.com/acme")
                    .thumbprint_list("6938fd4d98bab03faadb97b34396831e3780aea1")
                    .build()
            }),
            get_ghes: provider(GHES_PROVIDER, || {
                GetOpenIdConnectProviderOutput::builder()
                    // Pinned: a scheme, should IAM ever return one, is dropped.
                    .url("https://github.acme.internal/_services/token")
                    .client_id_list("sts.amazonaws.com")
                    .build()
            }),
        }
    }

    fn client(&self) -> aws_sdk_iam::Client {
        iam_client(&[&self.get_role, &self.list, &self.get_github, &self.get_ghes])
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

#[tokio::test]
async fn iam_snapshot_reads_the_role_and_providers_and_caches_them() -> TestResult {
    let iam = IamRules::found();
    let sts = StsRules::new();
    let state = iam_state(iam.client(), sts.client());

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
    let state = iam_state(iam.client(), StsRules::new().client());
    let plain = providers(&state.snapshot(ACCOUNT, ROLE).await?);
    assert_eq!(plain.0.len(), 2);

    // The event's provider is fetched alongside the list; the list still decides.
    let iam = IamRules::found();
    let state = iam_state(iam.client(), StsRules::new().client());
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
    let client = iam_client(&[&iam.get_role, &iam.list, &iam.get_github, &iam.get_ghes, &unknown]);
    let state = iam_state(client, StsRules::new().client());
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
        let state = iam_state(iam.client(), StsRules::new().client());
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
    let state = iam_state(iam.client(), sts.client());

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
    let get_role = get_role_fails(
        "AccessDenied",
        "User: arn:aws:sts::999999999999:assumed-role/oidc-monitor/fn is not authorized to perform: iam:GetRole",
    );
    let list = no_providers();
    let state = iam_state(iam_client(&[&get_role, &list]), StsRules::new().client());

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
    let get_role = get_role_fails("Throttling", "Rate exceeded");
    let list = no_providers();
    let state = iam_state(
        iam_client_without_retries(&[&get_role, &list]),
        StsRules::new().client(),
    );
    let error = state.snapshot(ACCOUNT, ROLE).await.expect_err("throttled");
    assert!(error.retryable, "{error}");
}

#[tokio::test]
async fn iam_own_account_is_read_without_assuming_the_read_role() -> TestResult {
    let iam = IamRules::found();
    let sts = StsRules::new();
    let state = iam_state_with_read_role(iam.client(), sts.client());
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
            let Some(QueryRequest { headers, params }) = read_query_request(&stream) else {
                continue;
            };
            let header = |name: &str| headers.get(name).cloned().unwrap_or_default();
            let action = params.get("Action").cloned().unwrap_or_default();
            record.push(&IamRequest {
                params,
                authorization: header("authorization"),
                security_token: header("x-amz-security-token"),
            });
            let result = match action.as_str() {
                "GetRole" => get_role_result(account),
                "ListOpenIDConnectProviders" => {
                    providers_result(account, &["token.actions.githubusercontent.com"])
                }
                "GetOpenIDConnectProvider" => provider_result("token.actions.githubusercontent.com"),
                _ => String::new(),
            };
            write_query_response(&mut stream, &action, &result);
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
    let assume = assume_role_denied("not authorized to perform: sts:AssumeRole");
    let iam = IamRules::found();
    let state = iam_state_with_read_role(iam.client(), sts_client(&[&identity, &assume]));
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
    let assume = assume_role_denied("not authorized to perform: sts:AssumeRole");
    let sts = sts_client_without_retries(&[&identity, &assume]);
    let iam = IamRules::found();
    let state = iam_state_with_read_role(iam.client(), sts).with_error_ttl(Duration::ZERO);
    own_account_unknown(&state, OWN_ACCOUNT).await;
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
