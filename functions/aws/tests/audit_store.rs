//! oidc-auditor's findings in DynamoDB against mocked SDK clients (aws-smithy-mocks): a
//! save writes the parts, then switches the head, then deletes the previous generation's
//! parts, all under `audit#<account>`; a read takes the head's generation only, and a
//! generation missing a part is an error, not an empty audit.

#[macro_use]
mod common;

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_mocks::{mock, RuleMode};
use common::{n, s, Seen, TABLE};
use diagnosis::audit::{AccountFinding, FindingCode, Severity};
use oidc_watch_aws::audit_store::{DynamoFindingStore, SDK_OPERATIONS};

const PK: &str = "audit#111122223333";

fn finding(role: &str) -> AccountFinding {
    AccountFinding {
        account: "111122223333".into(),
        role: Some(role.into()),
        provider: Some("token.actions.githubusercontent.com".into()),
        statement: Some(0),
        code: FindingCode::OwnerWildcard,
        severity: Severity::High,
        value: Some("repo:*/web:*".into()),
        message: "Statement 0 allows \"repo:*/web:*\".".into(),
        suggested_change: None,
    }
}

fn head(generation: i64, parts: i64, first_at: i64) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), s(PK)),
        ("sk".to_owned(), s("head")),
        ("generation".to_owned(), n(generation)),
        ("parts".to_owned(), n(parts)),
        ("first_at".to_owned(), n(first_at)),
    ])
}

fn head_rule(found: Option<HashMap<String, AttributeValue>>) -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_dynamodb::Client::get_item)
        .match_requests(|r| {
            r.table_name() == Some(TABLE)
                && r.consistent_read() == Some(true)
                && r.key()
                    .is_some_and(|k| k.get("pk") == Some(&s(PK)) && k.get("sk") == Some(&s("head")))
        })
        .then_output(move || GetItemOutput::builder().set_item(found.clone()).build())
}

#[tokio::test]
async fn a_save_writes_parts_then_the_head_then_drops_the_old_generation() {
    let puts: Seen<(String, Option<String>)> = Seen::new();
    let seen = puts.clone();
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(move |r| {
            let item = r.item().cloned().unwrap_or_default();
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).cloned();
            assert_eq!(text("pk").as_deref(), Some(PK));
            assert_eq!(
                number("expires_at").as_deref(),
                Some(&*(2000 + 400 * 86_400).to_string())
            );
            seen.push(&(text("sk").unwrap_or_default(), number("first_at")));
            true
        })
        .then_output(|| PutItemOutput::builder().build());
    let deleted: Seen<String> = Seen::new();
    let seen = deleted.clone();
    let delete = mock!(aws_sdk_dynamodb::Client::delete_item)
        .match_requests(move |r| {
            let key = r.key().cloned().unwrap_or_default();
            assert_eq!(key.get("pk"), Some(&s(PK)));
            seen.push(
                &key.get("sk")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default(),
            );
            true
        })
        .then_output(|| DeleteItemOutput::builder().build());
    let client = declared_client!(
        aws_sdk_dynamodb,
        SDK_OPERATIONS,
        RuleMode::MatchAny,
        [&head_rule(Some(head(1000, 2, 500))), &put, &delete]
    );
    let store = DynamoFindingStore::new(client, TABLE);
    store
        .save("111122223333", &[finding("a"), finding("b")], 2000)
        .await
        .unwrap();
    assert_eq!(
        puts.all(),
        [
            ("g#000000002000#0000".to_owned(), None),
            ("head".to_owned(), Some("500".to_owned())),
        ],
        "the part first, then the head, which keeps the first audit's time"
    );
    assert_eq!(
        deleted.all(),
        ["g#000000001000#0000", "g#000000001000#0001"],
        "the previous generation's parts, after the switch"
    );
}

#[tokio::test]
async fn a_read_takes_the_heads_generation_and_refuses_a_missing_part() {
    let part = |sk: &str, findings: &[AccountFinding]| {
        HashMap::from([
            ("pk".to_owned(), s(PK)),
            ("sk".to_owned(), s(sk)),
            (
                "findings".to_owned(),
                s(&serde_json::to_string(findings).unwrap()),
            ),
        ])
    };
    let parts = vec![
        part("g#000000001000#0001", &[finding("b")]),
        part("g#000000001000#0000", &[finding("a")]),
    ];
    let query = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(|r| {
            r.key_condition_expression() == Some("pk = :pk AND begins_with(sk, :prefix)")
                && r.expression_attribute_values().is_some_and(|v| {
                    v.get(":pk") == Some(&s(PK)) && v.get(":prefix") == Some(&s("g#000000001000#"))
                })
                && r.consistent_read() == Some(true)
        })
        .then_output(move || QueryOutput::builder().set_items(Some(parts.clone())).build());
    let client = declared_client!(
        aws_sdk_dynamodb,
        SDK_OPERATIONS,
        RuleMode::MatchAny,
        [&head_rule(Some(head(1000, 2, 500))), &query]
    );
    let store = DynamoFindingStore::new(client, TABLE);
    let previous = store.previous("111122223333").await.unwrap();
    let roles: Vec<_> = previous.findings.iter().map(|f| f.role.as_deref()).collect();
    assert_eq!(roles, [Some("a"), Some("b")], "parts in their order");
    assert_eq!(previous.first_audit, Some(500));

    // The head says three parts; two are there: an error worth retrying.
    let query = mock!(aws_sdk_dynamodb::Client::query).then_output(move || {
        QueryOutput::builder()
            .set_items(Some(vec![part("g#000000001000#0000", &[finding("a")])]))
            .build()
    });
    let client = declared_client!(
        aws_sdk_dynamodb,
        SDK_OPERATIONS,
        RuleMode::MatchAny,
        [&head_rule(Some(head(1000, 3, 500))), &query]
    );
    let error = DynamoFindingStore::new(client, TABLE)
        .previous("111122223333")
        .await
        .unwrap_err();
    assert!(
        error.retryable && error.message.contains("1 of 3 parts"),
        "{error}"
    );

    // Never audited: nothing, and no Query.
    let client = declared_client!(
        aws_sdk_dynamodb,
        SDK_OPERATIONS,
        RuleMode::MatchAny,
        [&head_rule(None)]
    );
    let previous = DynamoFindingStore::new(client, TABLE)
        .previous("111122223333")
        .await
        .unwrap();
    assert!(previous.findings.is_empty() && previous.first_audit.is_none());
}
