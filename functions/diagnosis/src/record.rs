//! The CloudTrail record of `AssumeRoleWithWebIdentity`, and the shapes it arrives in.
//!
//! Our own model: `aws_lambda_events`' `AWSAPICall` drops `errorCode`, `errorMessage`,
//! `readOnly` and `identityProvider`. Every field may be missing or null.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

pub const EVENT_NAME: &str = "AssumeRoleWithWebIdentity";
pub const DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CloudTrailRecord {
    pub event_version: Option<String>,
    pub user_identity: Option<UserIdentity>,
    pub event_time: Option<String>,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub aws_region: Option<String>,
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub request_parameters: Option<RequestParameters>,
    pub response_elements: Option<ResponseElements>,
    pub additional_event_data: Option<AdditionalEventData>,
    #[serde(rename = "requestID")]
    pub request_id: Option<String>,
    #[serde(rename = "eventID")]
    pub event_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub read_only: Option<bool>,
    pub resources: Option<Vec<Resource>>,
    pub event_type: Option<String>,
    pub recipient_account_id: Option<String>,
    pub tls_details: Option<TlsDetails>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    #[serde(rename = "type")]
    pub identity_type: Option<String>,
    pub principal_id: Option<String>,
    pub user_name: Option<String>,
    pub identity_provider: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestParameters {
    pub role_arn: Option<String>,
    pub role_session_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub duration_seconds: Option<u64>,
    pub source_identity: Option<String>,
    #[serde(default, deserialize_with = "lenient_tags")]
    pub principal_tags: Option<BTreeMap<String, String>>,
    pub transitive_tag_keys: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResponseElements {
    pub subject_from_web_identity_token: Option<String>,
    pub provider: Option<String>,
    pub audience: Option<String>,
    pub assumed_role_user: Option<AssumedRoleUser>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AssumedRoleUser {
    pub assumed_role_id: Option<String>,
    pub arn: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct AdditionalEventData {
    #[serde(rename = "identityProviderConnectionVerificationMethod")]
    pub verification_method: Option<String>,
    #[serde(rename = "RequestDetails")]
    pub request_details: Option<RequestDetails>,
    #[serde(rename = "RoleAuthorizedByIdp", default, deserialize_with = "lenient_bool")]
    pub role_authorized_by_idp: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestDetails {
    pub aws_serving_region: Option<String>,
    pub endpoint_type: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Resource {
    #[serde(rename = "accountId")]
    pub account_id: Option<String>,
    #[serde(rename = "type")]
    pub resource_type: Option<String>,
    #[serde(rename = "ARN")]
    pub arn: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TlsDetails {
    pub tls_version: Option<String>,
    pub cipher_suite: Option<String>,
    pub client_provided_host_header: Option<String>,
}

/// The EventBridge envelope around a CloudTrail record, as Lambda receives it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Envelope {
    pub version: Option<String>,
    pub id: Option<String>,
    #[serde(rename = "detail-type")]
    pub detail_type: Option<String>,
    pub source: Option<String>,
    pub account: Option<String>,
    pub time: Option<String>,
    pub region: Option<String>,
    pub detail: Option<CloudTrailRecord>,
}

/// One web-identity event: the record, and what its envelope said, if it had one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebIdentityEvent {
    pub record: CloudTrailRecord,
    pub envelope_id: Option<String>,
    pub envelope_account: Option<String>,
    pub envelope_region: Option<String>,
}

impl CloudTrailRecord {
    /// Whether this record is an `AssumeRoleWithWebIdentity` call. Trimmed copies that
    /// lack `eventName` still count when the caller is a `WebIdentityUser`.
    pub fn is_web_identity_call(&self) -> bool {
        match self.event_name.as_deref() {
            Some(name) => name == EVENT_NAME,
            None => {
                self.user_identity
                    .as_ref()
                    .and_then(|u| u.identity_type.as_deref())
                    == Some("WebIdentityUser")
            }
        }
    }
}

impl Envelope {
    pub fn into_event(self) -> Option<WebIdentityEvent> {
        let record = self.detail?;
        Some(WebIdentityEvent {
            record,
            envelope_id: self.id,
            envelope_account: self.account,
            envelope_region: self.region,
        })
    }
}

/// What one record of an input turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum InputItem {
    Event(Box<WebIdentityEvent>),
    /// A well-formed record of some other API call (CloudTrail log files hold many).
    Skipped {
        event_name: Option<String>,
        /// For IAM's own successful changes to roles and OIDC providers, the change.
        change: Option<Box<crate::change::TrustChange>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {record} (line {line}): {message}")]
pub struct InputError {
    /// 1-based position of the record in the input.
    pub record: usize,
    /// 1-based line where the record starts.
    pub line: usize,
    pub message: String,
}

/// Top-level JSON object: an envelope, a CloudTrail log file, or (none of these fields) a
/// bare record. One pass reads an envelope with its record.
#[derive(Deserialize)]
struct TopLevel<'a> {
    #[serde(borrow, rename = "Records")]
    records: Option<Vec<&'a RawValue>>,
    #[serde(rename = "detail-type")]
    detail_type: Option<serde::de::IgnoredAny>,
    id: Option<String>,
    account: Option<String>,
    region: Option<String>,
    detail: Option<CloudTrailRecord>,
}

/// Reads every record in `input`: one JSON document (envelope, bare record, CloudTrail log
/// file `{"Records": [...]}`, or an array), several concatenated, or JSON lines. A record
/// that cannot be read yields an error and reading goes on with the next line that starts
/// a new JSON value.
pub fn read_input(input: &[u8]) -> Vec<Result<InputItem, InputError>> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let mut items = Vec::new();
    let mut record = 0usize;
    // One JSON object, as Lambda and most files hold: a single pass, no pre-scan.
    let start = skip_whitespace(input);
    if input.get(start) == Some(&b'{') {
        if let (Ok(top), Ok(text)) = (
            serde_json::from_slice::<TopLevel>(input),
            std::str::from_utf8(&input[start..]),
        ) {
            read_top(
                top,
                text.trim_end(),
                &mut record,
                line_of(input, start),
                &mut items,
            );
            return items;
        }
    }
    let mut offset = 0usize;
    while offset < input.len() {
        let mut stream = serde_json::Deserializer::from_slice(&input[offset..]).into_iter::<&RawValue>();
        loop {
            let start = offset + skip_whitespace(&input[offset..]);
            match stream.next() {
                None => {
                    offset = input.len();
                    break;
                }
                Some(Ok(raw)) => {
                    offset = start + raw.get().len();
                    read_value(raw.get(), &mut record, line_of(input, start), &mut items);
                }
                Some(Err(error)) => {
                    record += 1;
                    let line = line_of(input, start);
                    items.push(Err(InputError {
                        record,
                        line,
                        message: format!("not valid JSON: {error}"),
                    }));
                    offset = next_value_start(input, start);
                    break;
                }
            }
        }
    }
    items
}

type Items = Vec<Result<InputItem, InputError>>;

fn read_value(text: &str, record: &mut usize, line: usize, items: &mut Items) {
    if text.starts_with('[') {
        match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(elements) => elements
                .into_iter()
                .for_each(|e| read_object(e.get(), record, line, items)),
            Err(error) => {
                *record += 1;
                items.push(Err(InputError {
                    record: *record,
                    line,
                    message: error.to_string(),
                }));
            }
        }
    } else {
        read_object(text, record, line, items);
    }
}

fn read_object(text: &str, record: &mut usize, line: usize, items: &mut Items) {
    if !text.starts_with('{') {
        *record += 1;
        let kind = text.chars().next().map_or("nothing", json_kind);
        let message = format!("expected a JSON object, found {kind}");
        items.push(Err(InputError {
            record: *record,
            line,
            message,
        }));
        return;
    }
    match serde_json::from_str::<TopLevel>(text) {
        Ok(top) => read_top(top, text, record, line, items),
        Err(error) => {
            *record += 1;
            let item = read_record(text)
                .map_err(|_| format!("not a CloudTrail record or EventBridge envelope: {error}"));
            items.push(item.map_err(|message| InputError {
                record: *record,
                line,
                message,
            }));
        }
    }
}

/// `text` is the object `top` was read from, for a bare record's second read.
fn read_top(top: TopLevel, text: &str, record: &mut usize, line: usize, items: &mut Items) {
    if let Some(records) = top.records {
        for raw_record in records {
            *record += 1;
            let item = read_record(raw_record.get());
            items.push(item.map_err(|message| InputError {
                record: *record,
                line,
                message,
            }));
        }
        return;
    }
    *record += 1;
    let item = match (top.detail, top.detail_type) {
        (Some(detail), _) if detail.is_web_identity_call() => {
            Ok(InputItem::Event(Box::new(WebIdentityEvent {
                record: detail,
                envelope_id: top.id,
                envelope_account: top.account,
                envelope_region: top.region,
            })))
        }
        (Some(detail), _) => skipped(detail, top.account.as_deref(), || {
            serde_json::from_str::<serde_json::Value>(text)
                .map(|mut v| v["detail"].take())
                .unwrap_or_default()
        }),
        (None, Some(_)) => Err("EventBridge envelope without detail".to_owned()),
        (None, None) => read_record(text),
    };
    items.push(item.map_err(|message| InputError {
        record: *record,
        line,
        message,
    }));
}

/// The names a record is routed by, read without building the record: most records of a
/// trail's log file are other calls, and are skipped on these alone.
#[derive(Deserialize)]
struct RecordNames<'a> {
    #[serde(rename = "eventName", borrow)]
    event_name: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "eventSource", borrow)]
    event_source: Option<std::borrow::Cow<'a, str>>,
}

fn read_record(text: &str) -> Result<InputItem, String> {
    if let Ok(RecordNames {
        event_name: Some(name),
        event_source,
    }) = serde_json::from_str::<RecordNames>(text)
    {
        let is_change = event_source.as_deref() == Some(crate::change::IAM_EVENT_SOURCE)
            && crate::change::ChangeAction::from_name(&name).is_some();
        if name != EVENT_NAME && !is_change {
            return Ok(InputItem::Skipped {
                event_name: Some(name.into_owned()),
                change: None,
            });
        }
    }
    let record: CloudTrailRecord =
        serde_json::from_str(text).map_err(|e| format!("CloudTrail record: {e}"))?;
    if record.is_web_identity_call() {
        Ok(InputItem::Event(Box::new(WebIdentityEvent {
            record,
            ..WebIdentityEvent::default()
        })))
    } else {
        skipped(record, None, || serde_json::from_str(text).unwrap_or_default())
    }
}

/// A record of another call; an IAM change is read again as a change (`raw`: the record
/// as JSON), only then.
fn skipped(
    record: CloudTrailRecord,
    envelope_account: Option<&str>,
    raw: impl FnOnce() -> serde_json::Value,
) -> Result<InputItem, String> {
    let is_change = record.event_source.as_deref() == Some(crate::change::IAM_EVENT_SOURCE)
        && record
            .event_name
            .as_deref()
            .is_some_and(|n| crate::change::ChangeAction::from_name(n).is_some());
    let change = match is_change {
        true => crate::change::TrustChange::from_record(&raw(), envelope_account)
            .map_err(|e| e.to_string())?
            .map(Box::new),
        false => None,
    };
    Ok(InputItem::Skipped {
        event_name: record.event_name,
        change,
    })
}

fn json_kind(first: char) -> &'static str {
    match first {
        '"' => "a string",
        '[' => "an array",
        't' | 'f' => "a boolean",
        'n' => "null",
        _ => "a number",
    }
}

fn skip_whitespace(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_whitespace()).count()
}

fn line_of(input: &[u8], offset: usize) -> usize {
    1 + input[..offset.min(input.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// After a syntax error: the next line that starts (at column 0) with `{` or `[`, so a bad
/// JSON line is skipped alone and a broken pretty-printed document yields one error.
fn next_value_start(input: &[u8], from: usize) -> usize {
    let mut position = from;
    while let Some(newline) = input[position..].iter().position(|&b| b == b'\n') {
        position += newline + 1;
        if matches!(input.get(position), Some(b'{') | Some(b'[')) {
            return position;
        }
    }
    input.len()
}

fn lenient_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Bool(b) => Some(b),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    })
}

/// Session tags arrive as `{"key": "value"}`; keep string-like values, drop the rest.
fn lenient_tags<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Object(map) => Some(
            map.into_iter()
                .filter_map(|(k, v)| match v {
                    serde_json::Value::String(s) => Some((k, s)),
                    serde_json::Value::Number(n) => Some((k, n.to_string())),
                    serde_json::Value::Bool(b) => Some((k, b.to_string())),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(items: &[Result<InputItem, InputError>]) -> Vec<&WebIdentityEvent> {
        items
            .iter()
            .filter_map(|i| match i {
                Ok(InputItem::Event(e)) => Some(e.as_ref()),
                _ => None,
            })
            .collect()
    }

    const RECORD: &str = r#"{"eventName":"AssumeRoleWithWebIdentity","userIdentity":{"userName":"s"},"requestParameters":{"roleArn":null,"durationSeconds":"900"}}"#;

    #[test]
    fn reads_bare_record_envelope_log_file_and_array() {
        let envelope =
            format!(r#"{{"id":"e1","detail-type":"{DETAIL_TYPE}","account":"1","detail":{RECORD}}}"#);
        let log = format!(r#"{{"Records":[{RECORD},{{"eventName":"GetObject"}}]}}"#);
        let array = format!("[{RECORD},{envelope}]");
        for (input, expected_events) in [
            (RECORD.to_owned(), 1),
            (envelope.clone(), 1),
            (log, 1),
            (array, 2),
        ] {
            let items = read_input(input.as_bytes());
            assert!(items.iter().all(Result::is_ok), "{input}: {items:?}");
            assert_eq!(events(&items).len(), expected_events, "{input}");
        }
        let items = read_input(envelope.as_bytes());
        let event = events(&items)[0];
        assert_eq!(event.envelope_id.as_deref(), Some("e1"));
        let params = event.record.request_parameters.as_ref().unwrap();
        assert_eq!(
            (params.role_arn.as_deref(), params.duration_seconds),
            (None, Some(900))
        );
    }

    #[test]
    fn bad_json_line_is_one_error_and_reading_goes_on() {
        let input = format!("{RECORD}\n{{\"eventName\": \"AssumeRoleWith\n{RECORD}\n");
        let items = read_input(input.as_bytes());
        assert_eq!(items.len(), 3, "{items:?}");
        assert!(items[0].is_ok() && items[2].is_ok());
        let error = items[1].as_ref().unwrap_err();
        assert_eq!((error.record, error.line), (2, 2));
    }

    #[test]
    fn broken_pretty_printed_document_is_one_error() {
        let input = "{\n  \"eventName\": \"AssumeRoleWithWebIdentity\"\n  \"x\": 1,\n  \"y\": 2\n}\n";
        let items = read_input(input.as_bytes());
        assert_eq!(items.len(), 1);
        assert!(items[0].is_err());
    }

    #[test]
    fn foreign_and_odd_values() {
        let items = read_input(
            br#"{"detail-type":"x","detail":{"eventName":"GetObject"}} 42 "s" {"detail-type":"y"}"#,
        );
        assert_eq!(items.len(), 4, "{items:?}");
        assert_eq!(
            items[0],
            Ok(InputItem::Skipped {
                event_name: Some("GetObject".into()),
                change: None,
            })
        );
        assert!(items[1..].iter().all(Result::is_err));
        assert!(read_input(b"").is_empty());
        assert!(read_input(b"  \n ").is_empty());
    }

    #[test]
    fn iam_changes_come_out_typed_and_broken_ones_as_errors() {
        let envelope =
            br#"{"detail-type":"AWS API Call via CloudTrail","source":"aws.iam","account":"111122223333",
            "detail":{"eventSource":"iam.amazonaws.com","eventName":"DeleteRole","eventID":"e1",
            "eventTime":"2026-09-30T10:00:00Z","requestParameters":{"roleName":"gha-deploy"}}}"#;
        let items = read_input(envelope);
        let Ok(InputItem::Skipped {
            change: Some(change), ..
        }) = &items[0]
        else {
            panic!("{items:?}")
        };
        assert_eq!(
            (change.account.as_str(), change.role.as_deref()),
            ("111122223333", Some("gha-deploy"))
        );
        let log = br#"{"Records":[{"eventSource":"iam.amazonaws.com","eventName":"UpdateAssumeRolePolicy","eventID":"e2",
            "eventTime":"2026-09-30T10:00:00Z","recipientAccountId":"111122223333"}]}"#;
        assert!(read_input(log)[0].is_err(), "an update without its role");
        let failed =
            br#"{"eventSource":"iam.amazonaws.com","eventName":"DeleteRole","errorCode":"NoSuchEntity"}"#;
        assert!(matches!(
            &read_input(failed)[0],
            Ok(InputItem::Skipped { change: None, .. })
        ));
    }
}
