//! oidc-notifier's delivery, thread and token state in DynamoDB against mocked SDK clients
//! (aws-smithy-mocks). Rules with `match_requests` pin a request's shape
//! (`RuleMode::MatchAny`: a request no rule matches fails the test).

#[macro_use]
mod common;

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_mocks::{mock, RuleMode};
use common::{s, TABLE};
use diagnosis::ports::{NotifierStore, ThreadRef};
use oidc_watch_aws::notifier_store::DynamoNotifierStore;

// ---------------------------------------------------------------------------------------
// DynamoDB state

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
    let client = declared_client!(
        aws_sdk_dynamodb,
        oidc_watch_aws::notifier_store::SDK_OPERATIONS,
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
    let client = declared_client!(
        aws_sdk_dynamodb,
        oidc_watch_aws::notifier_store::SDK_OPERATIONS,
        RuleMode::MatchAny,
        [&save, &get, &token]
    );
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
