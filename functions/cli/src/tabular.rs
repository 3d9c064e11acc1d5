//! Query-engine results read back as CloudTrail records, so `diagnose` gives the same
//! diagnoses from Athena or CloudTrail Lake as from the trail's own files:
//!
//! * CSV with a header row: Athena's result file (`<QueryExecutionId>.csv`, every value
//!   quoted, NULL as an empty field) and CloudTrail Lake's results delivered to S3
//!   (`result_<n>.csv[.gz]`);
//! * JSON lines of flat objects: Athena `UNLOAD ... WITH (format = 'JSON')`;
//! * `aws cloudtrail get-query-results` output: `{"QueryResultRows": [[{"col": "v"}, ...], ...]}`.
//!
//! Columns are matched by name, case-insensitively (the `oidc-watch query` aliases, or the
//! CloudTrail names of a `SELECT *`): see [`crate::query::COLUMNS`]. What is not a result
//! of this shape is left alone. A row that cannot be read is reported and skipped.

use serde_json::{Map, Value};

/// One CloudTrail record per line (JSON lines), and the rows that could not be read.
#[derive(Debug, Default, PartialEq)]
pub struct Converted {
    pub records: Vec<u8>,
    pub unreadable: Vec<String>,
}

/// `Some` when `bytes` is a query result this module reads.
pub fn convert(bytes: &[u8]) -> Option<Converted> {
    // A trail's own log file, by far the most common input: not even validated here.
    let head = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let head = &head[head.iter().take_while(|b| b.is_ascii_whitespace()).count()..];
    if head.starts_with(b"{\"Records\"") || head.starts_with(b"[") {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let start = text.trim_start();
    if start.starts_with('{') {
        if looks_like_lake_results(start) {
            return Some(lake_results(start));
        }
        if looks_like_flat_json_lines(start) {
            return Some(flat_json_lines(start));
        }
        return None;
    }
    let header = start.lines().next()?;
    if header.len() <= MAX_ROW_LINE && is_result_header(header) {
        return Some(csv_result(start));
    }
    None
}

fn looks_like_lake_results(text: &str) -> bool {
    let mut end = text.len().min(4096);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].contains("\"QueryResultRows\"")
}

/// The first line of UNLOAD's JSON lines is one row: small. A CloudTrail log file is one
/// line of megabytes, so it is never read here.
const MAX_ROW_LINE: usize = 1 << 20;

fn looks_like_flat_json_lines(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        eventid: Option<serde::de::IgnoredAny>,
        eventname: Option<serde::de::IgnoredAny>,
        #[serde(rename = "eventID")]
        cloudtrail_event_id: Option<serde::de::IgnoredAny>,
    }
    let first = text.split('\n').next().unwrap_or_default();
    if first.len() > MAX_ROW_LINE || first.starts_with("{\"Records\"") {
        return false;
    }
    matches!(
        serde_json::from_str::<Probe>(first),
        Ok(Probe {
            eventid: Some(_),
            eventname: Some(_),
            cloudtrail_event_id: None
        })
    )
}

fn is_result_header(header: &str) -> bool {
    let names: Vec<String> = header.split(',').map(normalise).collect();
    names.iter().any(|n| n == "eventid") && names.iter().any(|n| n == "eventname")
}

fn normalise(name: &str) -> String {
    name.trim()
        .trim_matches('"')
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        .map(|c| if c == '.' { '_' } else { c.to_ascii_lowercase() })
        .collect()
}

fn csv_result(text: &str) -> Converted {
    let mut out = Converted::default();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(normalise).collect(),
        Err(error) => {
            out.unreadable.push(format!("header: {error}"));
            return out;
        }
    };
    for (index, row) in reader.records().enumerate() {
        match row {
            Ok(row) => {
                let cells = headers
                    .iter()
                    .zip(row.iter())
                    .map(|(name, value)| (name.as_str(), value));
                push(&mut out, record(cells));
            }
            Err(error) => out.unreadable.push(format!("row {}: {error}", index + 1)),
        }
    }
    out
}

fn flat_json_lines(text: &str) -> Converted {
    let mut out = Converted::default();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Map<String, Value>>(line) {
            Ok(object) => {
                let cells: Vec<(String, String)> =
                    object.iter().map(|(k, v)| (normalise(k), cell_text(v))).collect();
                push(
                    &mut out,
                    record(cells.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                );
            }
            Err(error) => out.unreadable.push(format!("line {}: {error}", index + 1)),
        }
    }
    out
}

fn lake_results(text: &str) -> Converted {
    let mut out = Converted::default();
    let document: Value = match serde_json::from_str(text) {
        Ok(d) => d,
        Err(error) => {
            out.unreadable.push(format!("not valid JSON: {error}"));
            return out;
        }
    };
    let Some(rows) = document.get("QueryResultRows").and_then(Value::as_array) else {
        out.unreadable
            .push("QueryResultRows is not a list of rows".to_owned());
        return out;
    };
    for (index, row) in rows.iter().enumerate() {
        let Some(columns) = row.as_array() else {
            out.unreadable
                .push(format!("row {}: not a list of columns", index + 1));
            continue;
        };
        let cells: Vec<(String, String)> = columns
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|column| column.iter().map(|(k, v)| (normalise(k), cell_text(v))))
            .collect();
        push(
            &mut out,
            record(cells.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        );
    }
    out
}

fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn push(out: &mut Converted, record: Value) {
    // serde_json escapes every control character: one record is one line.
    out.records.extend_from_slice(record.to_string().as_bytes());
    out.records.push(b'\n');
}

/// The CloudTrail record of one result row.
fn record<'a>(cells: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    let mut record = Map::new();
    let mut identity = Map::new();
    for (name, value) in cells {
        if value.is_empty() || value.eq_ignore_ascii_case("null") {
            continue;
        }
        let text = |v: &str| Value::String(v.to_owned());
        match name {
            "eventid" => {
                record.insert("eventID".into(), text(value));
            }
            "eventtime" => {
                record.insert("eventTime".into(), text(&iso_time(value)));
            }
            "eventsource" => {
                record.insert("eventSource".into(), text(value));
            }
            "eventname" => {
                record.insert("eventName".into(), text(value));
            }
            "awsregion" => {
                record.insert("awsRegion".into(), text(value));
            }
            "sourceipaddress" => {
                record.insert("sourceIPAddress".into(), text(value));
            }
            "useragent" => {
                record.insert("userAgent".into(), text(value));
            }
            "errorcode" => {
                record.insert("errorCode".into(), text(value));
            }
            "errormessage" => {
                record.insert("errorMessage".into(), text(value));
            }
            "requestid" => {
                record.insert("requestID".into(), text(value));
            }
            "recipientaccountid" => {
                record.insert("recipientAccountId".into(), text(value));
            }
            "eventtype" => {
                record.insert("eventType".into(), text(value));
            }
            "readonly" => {
                record.insert("readOnly".into(), Value::Bool(value.eq_ignore_ascii_case("true")));
            }
            "useridentity_type" => {
                identity.insert("type".into(), text(value));
            }
            "useridentity_principalid" => {
                identity.insert("principalId".into(), text(value));
            }
            "useridentity_username" => {
                identity.insert("userName".into(), text(value));
            }
            "useridentity_identityprovider" => {
                identity.insert("identityProvider".into(), text(value));
            }
            // A `SELECT *` from Athena: the struct as Hive prints it, `{type=..., principalid=...}`.
            "useridentity" => {
                for (key, field) in [
                    ("type", "type"),
                    ("principalid", "principalId"),
                    ("username", "userName"),
                    ("identityprovider", "identityProvider"),
                ] {
                    if let Some(v) = hive_struct_field(value, key) {
                        identity.entry(field).or_insert_with(|| text(&v));
                    }
                }
            }
            "requestparameters" => {
                record.insert("requestParameters".into(), json_object(value));
            }
            "responseelements" => {
                record.insert("responseElements".into(), json_object(value));
            }
            "additionaleventdata" => {
                record.insert("additionalEventData".into(), json_object(value));
            }
            "resource_arn" => {
                record.insert(
                    "resources".into(),
                    serde_json::json!([{"ARN": value, "type": "AWS::IAM::Role"}]),
                );
            }
            _ => {}
        }
    }
    if !identity.is_empty() {
        record.insert("userIdentity".into(), Value::Object(identity));
    }
    Value::Object(record)
}

/// A JSON text column; a Lake map value that is itself JSON text is parsed too (a nested
/// object such as `assumedRoleUser`, a list such as `transitiveTagKeys`). Not JSON: left as the text, which the record reader
/// then reports.
fn json_object(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) if s.trim_start().starts_with(['{', '[']) => {
                        let parsed = serde_json::from_str::<Value>(&s).unwrap_or(Value::String(s));
                        (k, parsed)
                    }
                    other => (k, other),
                })
                .collect(),
        ),
        Ok(other) => other,
        Err(_) => Value::String(text.to_owned()),
    }
}

/// Lake prints timestamps as `2026-11-02 13:40:16.000`; CloudTrail writes `...T13:40:16Z`.
fn iso_time(value: &str) -> String {
    let clock = |t: &&str| t.bytes().all(|b| b.is_ascii_digit() || b == b':' || b == b'-');
    match (
        value.get(..10).filter(clock),
        value.get(10..11),
        value.get(11..19).filter(clock),
    ) {
        (Some(date), Some(" "), Some(time)) => format!("{date}T{time}Z"),
        _ => value.to_owned(),
    }
}

/// The value of `key=` at the top level of a Hive struct text, up to the next `, name=` or
/// the closing brace.
fn hive_struct_field(text: &str, key: &str) -> Option<String> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut depth = 0usize;
    let mut start = 0usize;
    let mut parts = Vec::new();
    for (i, c) in inner.char_indices() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0
                && inner[i + 1..].trim_start().split('=').next().is_some_and(|n| {
                    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                }) =>
            {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts.into_iter().find_map(|part| {
        let (name, value) = part.trim().split_once('=')?;
        (name.eq_ignore_ascii_case(key) && !value.is_empty() && value != "null").then(|| value.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(c: &Converted) -> Vec<Value> {
        std::str::from_utf8(&c.records)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn leaves_cloudtrail_files_alone() {
        assert_eq!(convert(br#"{"Records": []}"#), None);
        assert_eq!(
            convert(br#"{"eventID": "x", "eventName": "AssumeRoleWithWebIdentity"}"#),
            None
        );
        assert_eq!(convert(b"not, a, result\n1,2,3\n"), None);
    }

    #[test]
    fn hive_struct_fields_are_read_at_the_top_level_only() {
        let text = "{type=WebIdentityUser, principalid=arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com:sts.amazonaws.com:repo:acme/web:ref:refs/heads/main, arn=null, sessioncontext={attributes={creationdate=null}}, username=repo:acme/web:ref:refs/heads/main}";
        assert_eq!(
            hive_struct_field(text, "type").as_deref(),
            Some("WebIdentityUser")
        );
        assert_eq!(
            hive_struct_field(text, "username").as_deref(),
            Some("repo:acme/web:ref:refs/heads/main")
        );
        assert_eq!(hive_struct_field(text, "arn"), None);
        assert_eq!(hive_struct_field("no braces", "type"), None);
    }

    #[test]
    fn a_bad_row_is_reported_and_the_rest_read() {
        let mut csv = b"\"eventid\",\"eventname\"\n\"a\",\"AssumeRoleWithWebIdentity\"\n".to_vec();
        csv.extend_from_slice(b"\"b\xff\",\"x\"\n");
        // Not UTF-8 as a whole: not a result this module reads.
        assert_eq!(convert(&csv), None);
        let lines = "{\"eventid\": \"a\", \"eventname\": \"AssumeRoleWithWebIdentity\"}\n{broken\n{\"eventid\": \"c\", \"eventname\": \"AssumeRoleWithWebIdentity\"}\n";
        let converted = convert(lines.as_bytes()).unwrap();
        assert_eq!(records(&converted).len(), 2);
        assert_eq!(converted.unreadable.len(), 1, "{:?}", converted.unreadable);
    }

    #[test]
    fn lake_times_become_cloudtrail_times() {
        assert_eq!(iso_time("2026-11-02 13:40:16.000"), "2026-11-02T13:40:16Z");
        assert_eq!(iso_time("2026-11-02T13:40:16Z"), "2026-11-02T13:40:16Z");
        assert_eq!(iso_time("2026-11-02 1\u{e9}:40:16"), "2026-11-02 1\u{e9}:40:16");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_hostile_results(cell in "\\PC{0,40}", raw in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = convert(&raw);
            let csv = format!("eventid,eventname,useridentity,eventtime\n\"{}\",AssumeRoleWithWebIdentity,\"{{type={cell}, principalid={cell}}}\",{cell}\n", cell.replace('"', "\"\""));
            let converted = convert(csv.as_bytes()).expect("a result header");
            for line in std::str::from_utf8(&converted.records).unwrap().lines() {
                serde_json::from_str::<Value>(line).unwrap();
            }
            let lake = serde_json::json!({"QueryResultRows": [[{"eventid": cell}, {"eventtime": cell}, {"requestparameters": cell}]]});
            let _ = convert(lake.to_string().as_bytes());
        }
    }
}
