//! The Slack credential from Secrets Manager and SSM against mocked SDK clients
//! (aws-smithy-mocks). Rules with `match_requests` pin a request's shape
//! (`RuleMode::MatchAny`: a request no rule matches fails the test).

#[macro_use]
mod common;

use aws_sdk_secretsmanager::operation::get_secret_value::{GetSecretValueError, GetSecretValueOutput};
use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
use aws_sdk_ssm::types::{Parameter, ParameterType};
use aws_smithy_mocks::{mock, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use common::error_metadata;
use oidc_watch_aws::secrets::{self, SecretError};

const SECRET_ID: &str = "oidc-watch/slack";
const PARAMETER: &str = "/oidc-watch/slack/bot-token";

/// A mocked Secrets Manager client answering with `rules`, without retries: an error is its
/// answer.
fn secrets_manager(rules: &[&Rule]) -> aws_sdk_secretsmanager::Client {
    declared_client!(
        aws_sdk_secretsmanager,
        oidc_watch_aws::secrets::SECRETS_MANAGER_OPERATIONS,
        RuleMode::MatchAny,
        rules.iter().copied(),
        |c| c.retry_config(aws_sdk_secretsmanager::config::retry::RetryConfig::disabled())
    )
}

/// A mocked SSM client answering with `rules`, without retries.
fn ssm(rules: &[&Rule]) -> aws_sdk_ssm::Client {
    declared_client!(
        aws_sdk_ssm,
        oidc_watch_aws::secrets::SSM_OPERATIONS,
        RuleMode::MatchAny,
        rules.iter().copied(),
        |c| c.retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled())
    )
}

// ---------------------------------------------------------------------------------------
// Secrets Manager

#[tokio::test]
async fn the_webhook_url_comes_from_secrets_manager() {
    let get = mock!(aws_sdk_secretsmanager::Client::get_secret_value)
        .match_requests(|r| r.secret_id() == Some(SECRET_ID) && r.version_stage().is_none())
        .then_output(|| {
            GetSecretValueOutput::builder()
                .name(SECRET_ID)
                .secret_string(r#"{"webhook_url": "https://hooks.slack.com/services/T0/B0/abc"}"#)
                .build()
        });
    let client = secrets_manager(&[&get]);
    let stored = secrets::from_secrets_manager(&client, SECRET_ID).await.unwrap();
    assert_eq!(
        stored,
        r#"{"webhook_url": "https://hooks.slack.com/services/T0/B0/abc"}"#
    );
    assert_eq!(get.num_calls(), 1);
}

#[tokio::test]
async fn secrets_manager_errors_name_the_secret_and_the_code() {
    let missing = mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_error(|| {
        GetSecretValueError::generic(error_metadata(
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
        ))
    });
    let client = secrets_manager(&[&missing]);
    let error = secrets::from_secrets_manager(&client, SECRET_ID)
        .await
        .unwrap_err();
    assert!(matches!(error, SecretError::SecretsManager { ref id, .. } if id == SECRET_ID));
    assert!(error.to_string().contains("ResourceNotFoundException"), "{error}");

    let binary = mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_output(|| {
        GetSecretValueOutput::builder()
            .secret_binary(aws_smithy_types::Blob::new(b"xoxb-1".to_vec()))
            .build()
    });
    let client = secrets_manager(&[&binary]);
    let error = secrets::from_secrets_manager(&client, SECRET_ID)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no SecretString"), "{error}");
}

// ---------------------------------------------------------------------------------------
// SSM Parameter Store

fn parameter(kind: ParameterType, value: &str) -> GetParameterOutput {
    GetParameterOutput::builder()
        .parameter(
            Parameter::builder()
                .name(PARAMETER)
                .r#type(kind)
                .value(value)
                .version(3)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn the_bot_token_comes_from_a_decrypted_securestring() {
    let get = mock!(aws_sdk_ssm::Client::get_parameter)
        .match_requests(|r| r.name() == Some(PARAMETER) && r.with_decryption() == Some(true))
        .then_output(|| parameter(ParameterType::SecureString, "xoxb-111-222-abc"));
    let client = ssm(&[&get]);
    let stored = secrets::from_parameter(&client, PARAMETER).await.unwrap();
    assert_eq!(stored, "xoxb-111-222-abc");
    assert_eq!(get.num_calls(), 1);
}

#[tokio::test]
async fn plain_string_parameters_and_missing_ones_are_refused() {
    let plain =
        mock!(aws_sdk_ssm::Client::get_parameter).then_output(|| parameter(ParameterType::String, "xoxb-1"));
    let client = ssm(&[&plain]);
    let error = secrets::from_parameter(&client, PARAMETER).await.unwrap_err();
    assert!(error.to_string().contains("SecureString"), "{error}");
    assert!(
        !error.to_string().contains("xoxb-1"),
        "the value is not echoed: {error}"
    );

    let missing = mock!(aws_sdk_ssm::Client::get_parameter).then_error(|| {
        GetParameterError::generic(ErrorMetadata::builder().code("ParameterNotFound").build())
    });
    let client = ssm(&[&missing]);
    let error = secrets::from_parameter(&client, PARAMETER).await.unwrap_err();
    assert!(matches!(error, SecretError::Parameter { ref name, .. } if name == PARAMETER));
    assert!(error.to_string().contains("ParameterNotFound"), "{error}");
}
