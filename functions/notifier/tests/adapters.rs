//! The AWS adapters against mocked SDK clients (aws-smithy-mocks): the Slack credential
//! from Secrets Manager and SSM, the alarm breakdown from GetMetricData, and the
//! delivery/thread/token state in DynamoDB. Rules with `match_requests` pin a request's
//! shape (`RuleMode::MatchAny`: a request no rule matches fails the test).

use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
use aws_sdk_cloudwatch::types::MetricDataResult;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_secretsmanager::operation::get_secret_value::{GetSecretValueError, GetSecretValueOutput};
use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
use aws_sdk_ssm::types::{Parameter, ParameterType};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::DateTime;
use oidc_notifier::cloudwatch::CloudWatchBreakdown;
use oidc_notifier::config::Mode;
use oidc_notifier::dynamo::DynamoNotifierStore;
use oidc_notifier::ports::{AlarmBreakdown, BreakdownRequest, NotifierStore, ThreadRef};
use oidc_notifier::secrets::{self, SecretError};

const SECRET_ID: &str = "oidc-watch/slack";
const PARAMETER: &str = "/oidc-watch/slack/bot-token";
const TABLE: &str = "oidc-watch-state";

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
    let client = mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, [&get]);
    let stored = secrets::from_secrets_manager(&client, SECRET_ID).await.unwrap();
    let url = secrets::extract(&stored, Mode::Webhook).unwrap();
    assert_eq!(url.expose(), "https://hooks.slack.com/services/T0/B0/abc");
    assert_eq!(get.num_calls(), 1);
}

#[tokio::test]
async fn secrets_manager_errors_name_the_secret_and_the_code() {
    let missing = mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_error(|| {
        GetSecretValueError::generic(
            ErrorMetadata::builder()
                .code("ResourceNotFoundException")
                .message("Secrets Manager can't find the specified secret.")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, [&missing], |c| c
        .retry_config(aws_sdk_secretsmanager::config::retry::RetryConfig::disabled()));
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
    let client = mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, [&binary]);
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
    let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&get]);
    let stored = secrets::from_parameter(&client, PARAMETER).await.unwrap();
    assert_eq!(
        secrets::extract(&stored, Mode::Bot).unwrap().expose(),
        "xoxb-111-222-abc"
    );
    assert_eq!(get.num_calls(), 1);
}

#[tokio::test]
async fn plain_string_parameters_and_missing_ones_are_refused() {
    let plain =
        mock!(aws_sdk_ssm::Client::get_parameter).then_output(|| parameter(ParameterType::String, "xoxb-1"));
    let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&plain]);
    let error = secrets::from_parameter(&client, PARAMETER).await.unwrap_err();
    assert!(error.to_string().contains("SecureString"), "{error}");
    assert!(
        !error.to_string().contains("xoxb-1"),
        "the value is not echoed: {error}"
    );

    let missing = mock!(aws_sdk_ssm::Client::get_parameter).then_error(|| {
        GetParameterError::generic(ErrorMetadata::builder().code("ParameterNotFound").build())
    });
    let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&missing], |c| c
        .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled()));
    let error = secrets::from_parameter(&client, PARAMETER).await.unwrap_err();
    assert!(matches!(error, SecretError::Parameter { ref name, .. } if name == PARAMETER));
    assert!(error.to_string().contains("ParameterNotFound"), "{error}");
}

// ---------------------------------------------------------------------------------------
// GetMetricData

fn series(id: &str, label: &str, values: &[f64]) -> MetricDataResult {
    let mut builder = MetricDataResult::builder().id(id).label(label);
    for (i, v) in values.iter().enumerate() {
        builder = builder
            .values(*v)
            .timestamps(DateTime::from_secs(1_791_297_000 - 300 * i as i64));
    }
    builder.build()
}

const WINDOW: BreakdownRequest = BreakdownRequest {
    start: 1_791_296_100,
    end: 1_791_297_000,
    period: 300,
};

#[tokio::test]
async fn the_alarm_breakdown_searches_by_cause_and_by_role_over_the_window() {
    let get = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| {
            let queries = r.metric_data_queries();
            queries.len() == 2
                && queries[0].id() == Some("cause")
                && queries[0].expression()
                    == Some("SEARCH('{\"OidcWatch\",Cause} MetricName=\"AssumeFailures\"', 'Sum', 300)")
                && queries[0].label() == Some("${PROP('Dim.Cause')}")
                && queries[1].id() == Some("role")
                && queries[1].expression()
                    == Some("SEARCH('{\"OidcWatch\",RoleName} MetricName=\"AssumeFailures\"', 'Sum', 300)")
                && queries.iter().all(|q| q.return_data() == Some(true))
                && r.start_time() == Some(&DateTime::from_secs(WINDOW.start))
                && r.end_time() == Some(&DateTime::from_secs(WINDOW.end))
        })
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(series("cause", "SubjectMismatch", &[20.0, 9.0, 2.0]))
                .metric_data_results(series("cause", "RoleNotFound", &[6.0, 3.0]))
                .metric_data_results(series("cause", "AudienceMismatch", &[0.0]))
                .metric_data_results(series("role", "gha-deploy-main-only", &[25.0, 4.0]))
                .metric_data_results(series("role", "-", &[9.0]))
                .build()
        });
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&get]);
    let breakdown = CloudWatchBreakdown {
        client,
        namespace: "OidcWatch".into(),
    }
    .breakdown(&WINDOW)
    .await
    .unwrap();
    assert_eq!(get.num_calls(), 1);
    assert_eq!((breakdown.start, breakdown.end), (WINDOW.start, WINDOW.end));
    assert_eq!(
        breakdown.by_cause,
        [
            ("SubjectMismatch".to_owned(), 31.0),
            ("RoleNotFound".to_owned(), 9.0)
        ],
        "largest first, zero series left out"
    );
    assert_eq!(
        breakdown.by_role,
        [("gha-deploy-main-only".to_owned(), 29.0), ("-".to_owned(), 9.0)]
    );
}

#[tokio::test]
async fn the_alarm_breakdown_follows_next_token() {
    let first = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.next_token().is_none())
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(series("cause", "SubjectMismatch", &[5.0]))
                .next_token("page-2")
                .build()
        });
    let second = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(series("cause", "SubjectMismatch", &[2.0]))
                .metric_data_results(series("role", "gha-deploy-prod", &[7.0]))
                .build()
        });
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&first, &second]);
    let breakdown = CloudWatchBreakdown {
        client,
        namespace: "OidcWatch".into(),
    }
    .breakdown(&WINDOW)
    .await
    .unwrap();
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    assert_eq!(breakdown.by_cause, [("SubjectMismatch".to_owned(), 7.0)]);
    assert_eq!(breakdown.by_role, [("gha-deploy-prod".to_owned(), 7.0)]);
}

// ---------------------------------------------------------------------------------------
// DynamoDB state

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn pk_is(item: Option<&std::collections::HashMap<String, AttributeValue>>, pk: &str) -> bool {
    item.is_some_and(|i| i.get("pk") == Some(&s(pk)) && i.get("sk") == Some(&s("-")))
}

#[tokio::test]
async fn a_delivery_is_claimed_with_a_conditional_put() {
    let claim = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(|r| {
            let item = r.item();
            r.table_name() == Some(TABLE)
                && pk_is(item, "delivery#msg-1")
                && item.is_some_and(|i| {
                    i.get("state") == Some(&s("pending"))
                        && i.get("lease_until") == Some(&AttributeValue::N("1120".into()))
                        && i.get("expires_at") == Some(&AttributeValue::N("9999".into()))
                })
                && r.condition_expression()
                    == Some("attribute_not_exists(pk) OR (#state = :pending AND #lease < :now)")
                && r.expression_attribute_values()
                    .is_some_and(|v| v.get(":now") == Some(&AttributeValue::N("1000".into())))
        })
        .then_output(|| PutItemOutput::builder().build());
    let taken = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(|r| pk_is(r.item(), "delivery#msg-2"))
        .then_error(|| {
            PutItemError::ConditionalCheckFailedException(ConditionalCheckFailedException::builder().build())
        });
    let finish = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.key().is_some_and(|k| k.get("pk") == Some(&s("delivery#msg-1")))
                && r.update_expression()
                    == Some("SET #state = :posted, expires_at = :expires REMOVE lease_until")
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let release = mock!(aws_sdk_dynamodb::Client::delete_item)
        .match_requests(|r| {
            r.key().is_some_and(|k| k.get("pk") == Some(&s("delivery#msg-1")))
                && r.condition_expression() == Some("#state = :pending")
        })
        .then_error(|| {
            DeleteItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            )
        });
    let client = mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        [&claim, &taken, &finish, &release]
    );
    let store = DynamoNotifierStore {
        client,
        table: TABLE.into(),
    };
    assert!(store.begin_delivery("msg-1", 1000, 120, 9999).await.unwrap());
    assert!(
        !store.begin_delivery("msg-2", 1000, 120, 9999).await.unwrap(),
        "claimed elsewhere"
    );
    store.finish_delivery("msg-1", 9999).await.unwrap();
    // Releasing a claim that is no longer pending is not an error.
    store.abandon_delivery("msg-1").await.unwrap();
    assert_eq!(
        (
            claim.num_calls(),
            taken.num_calls(),
            finish.num_calls(),
            release.num_calls()
        ),
        (1, 1, 1, 1)
    );
}

#[tokio::test]
async fn threads_and_probe_tokens_round_trip() {
    let save = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(|r| {
            pk_is(r.item(), "thread#spike-all-1")
                && r.item()
                    .is_some_and(|i| i.get("ts") == Some(&s("1791297000.000001")))
                && r.condition_expression().is_none()
        })
        .then_output(|| PutItemOutput::builder().build());
    let get = mock!(aws_sdk_dynamodb::Client::get_item)
        .match_requests(|r| {
            r.key()
                .is_some_and(|k| k.get("pk") == Some(&s("thread#spike-all-1")))
                && r.consistent_read() == Some(true)
        })
        .then_output(|| {
            GetItemOutput::builder()
                .item("pk", s("thread#spike-all-1"))
                .item("sk", s("-"))
                .item("channel", s("C0ALERTS"))
                .item("ts", s("1791297000.000001"))
                .build()
        });
    let token = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(|r| {
            pk_is(r.item(), "notify-token#notify-probe#evil-corp")
                && r.condition_expression()
                    == Some("attribute_not_exists(pk) OR #until <= :now OR #holder = :holder")
                && r.expression_attribute_values()
                    .is_some_and(|v| v.get(":holder") == Some(&s("msg-9")))
        })
        .then_output(|| PutItemOutput::builder().build());
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&save, &get, &token]);
    let store = DynamoNotifierStore {
        client,
        table: TABLE.into(),
    };
    let thread = ThreadRef {
        channel: "C0ALERTS".into(),
        ts: "1791297000.000001".into(),
    };
    store.save_thread("spike-all-1", &thread, 5000).await.unwrap();
    assert_eq!(store.thread("spike-all-1").await.unwrap(), Some(thread));
    assert!(store
        .take_token("notify-probe#evil-corp", "msg-9", 1000, 3600)
        .await
        .unwrap());
    assert_eq!((save.num_calls(), get.num_calls(), token.num_calls()), (1, 1, 1));
}
