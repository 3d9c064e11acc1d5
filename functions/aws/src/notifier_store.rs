//! oidc-notifier's state in the shared DynamoDB state table (partition key `pk` (S), sort
//! key `sk` (S), TTL attribute `expires_at` (N), as [`crate::dynamodb`]'s store):
//!
//! | pk | what |
//! |---|---|
//! | `delivery#<SNS MessageId>` | `state` = `pending` (with `lease_until`) or `posted` |
//! | `thread#<threadId>` | `channel`, `ts` of the thread's first message |
//! | `notify-token#notify-probe#<owner>` | `until`, `holder` (the message that took it) |
//!
//! The partition-key prefixes (`delivery#`, `thread#`, `notify-token#`) are disjoint from
//! the monitor's (`event#`, `incident#`, `counter#`, `spike#`, `token#`): each function's
//! role may touch only its own (dynamodb:LeadingKeys in infra/template.yaml).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use diagnosis::ports::{NotifierStore, PortError, ThreadRef};

use crate::dynamodb::{key_part, n, put_if, s, store_error, ONE};

/// The DynamoDB operations this store calls (the notifier's IAM policy grants them).
pub const SDK_OPERATIONS: &[&str] = &["DeleteItem", "GetItem", "PutItem", "UpdateItem"];
/// The partition-key prefixes this store writes; its role may touch no other.
pub const KEY_PREFIXES: &[&str] = &["delivery#", "notify-token#", "thread#"];

pub struct DynamoNotifierStore {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

pub fn delivery_key(message_id: &str) -> String {
    format!("delivery#{}", key_part(message_id))
}

pub fn thread_key(thread_id: &str) -> String {
    format!("thread#{}", key_part(thread_id))
}

pub fn token_key(key: &str) -> String {
    format!("notify-token#{}", key_part(key))
}

impl DynamoNotifierStore {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        DynamoNotifierStore {
            client: aws_sdk_dynamodb::Client::new(sdk),
            table: table.into(),
        }
    }

    fn key(&self, pk: String) -> HashMap<String, AttributeValue> {
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(ONE))])
    }
}

impl NotifierStore for DynamoNotifierStore {
    async fn begin_delivery(
        &self,
        message_id: &str,
        now: i64,
        lease: i64,
        expires_at: i64,
    ) -> Result<bool, PortError> {
        let mut item = self.key(delivery_key(message_id));
        item.extend([
            ("state".to_owned(), s("pending")),
            ("lease_until".to_owned(), n(now + lease)),
            (crate::dynamodb::TTL_ATTRIBUTE.to_owned(), n(expires_at)),
        ]);
        put_if(
            &self.client,
            &self.table,
            "PutItem delivery",
            item,
            "attribute_not_exists(pk) OR (#state = :pending AND #lease < :now)",
            &[("#state", "state"), ("#lease", "lease_until")],
            &[(":pending", s("pending")), (":now", n(now))],
        )
        .await
    }

    async fn finish_delivery(&self, message_id: &str, expires_at: i64) -> Result<(), PortError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(delivery_key(message_id))))
            .update_expression("SET #state = :posted, expires_at = :expires REMOVE lease_until")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":posted", s("posted"))
            .expression_attribute_values(":expires", n(expires_at))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error("UpdateItem delivery", e))
    }

    async fn abandon_delivery(&self, message_id: &str) -> Result<(), PortError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.key(delivery_key(message_id))))
            .condition_expression("#state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s("pending"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                Some(e) if e.is_conditional_check_failed_exception() => Ok(()),
                _ => Err(store_error("DeleteItem delivery", error)),
            },
        }
    }

    async fn delivery_posted(&self, message_id: &str) -> Result<bool, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key(delivery_key(message_id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem delivery", e))?;
        Ok(output
            .item
            .and_then(|item| item.get("state").and_then(|v| v.as_s().ok()).cloned())
            .is_some_and(|state| state == "posted"))
    }

    async fn thread(&self, thread_id: &str) -> Result<Option<ThreadRef>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key(thread_key(thread_id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem thread", e))?;
        Ok(output.item.and_then(|item| {
            let get = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            Some(ThreadRef {
                channel: get("channel")?,
                ts: get("ts")?,
            })
        }))
    }

    async fn save_thread(
        &self,
        thread_id: &str,
        thread: &ThreadRef,
        expires_at: i64,
    ) -> Result<(), PortError> {
        let mut item = self.key(thread_key(thread_id));
        item.extend([
            ("channel".to_owned(), s(&thread.channel)),
            ("ts".to_owned(), s(&thread.ts)),
            (crate::dynamodb::TTL_ATTRIBUTE.to_owned(), n(expires_at)),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error("PutItem thread", e))
    }

    async fn take_token(&self, key: &str, holder: &str, now: i64, period: i64) -> Result<bool, PortError> {
        let mut item = self.key(token_key(key));
        item.extend([
            ("until".to_owned(), n(now + period)),
            ("holder".to_owned(), s(key_part(holder))),
            (
                crate::dynamodb::TTL_ATTRIBUTE.to_owned(),
                n(now + period + 86_400),
            ),
        ]);
        put_if(
            &self.client,
            &self.table,
            "PutItem token",
            item,
            "attribute_not_exists(pk) OR #until <= :now OR #holder = :holder",
            &[("#until", "until"), ("#holder", "holder")],
            &[(":now", n(now)), (":holder", s(key_part(holder)))],
        )
        .await
    }
}
