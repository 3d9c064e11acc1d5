//! `oidc-watch query`: the SQL that selects AssumeRoleWithWebIdentity records from an Athena
//! table over a trail's S3 logs, or from a CloudTrail Lake event data store, with the
//! columns `diagnose` reads back from the engine's result (see `tabular`). At terabyte
//! scale the scan belongs in the engine; the diagnosis stays here.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use diagnosis::evaluate::epoch_seconds;
use diagnosis::time::{iso8601, Utc};

use crate::commands::CommandError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// Amazon Athena over the trail's S3 logs (the CloudTrailSerde table of the AWS docs).
    Athena,
    /// A CloudTrail Lake event data store.
    Lake,
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    #[arg(long, value_enum)]
    pub engine: Engine,
    /// Athena: the table (`db.table` or `table`). Lake: the event data store ID (the last
    /// part of its ARN).
    #[arg(long, value_name = "TABLE")]
    pub table: String,
    /// Start: `7d`, `12h`, `2026-11-01` or `2026-11-01T06:00:00Z`.
    #[arg(long, value_name = "WHEN")]
    pub since: String,
    /// End (exclusive), in the same forms [default: now].
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Only these accounts (recipientAccountId), comma-separated.
    #[arg(long, value_name = "ID,ID", value_delimiter = ',')]
    pub accounts: Vec<String>,
    /// Only these regions, comma-separated.
    #[arg(long, value_name = "REGION,REGION", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Athena: the table's date partition column in `yyyy/MM/dd` form (`timestamp` in the
    /// partition-projection table of the AWS docs), so the engine reads only those days.
    #[arg(long, value_name = "COLUMN")]
    pub date_partition: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("{flag}: {value:?} is not a time (7d, 12h, 2026-11-01 or 2026-11-01T06:00:00Z)")]
    Time { flag: &'static str, value: String },
    #[error("--since must be before --until")]
    EmptyRange,
    #[error("{flag}: {value:?} is not {what}")]
    Value {
        flag: &'static str,
        value: String,
        what: &'static str,
    },
}

pub fn run(args: &QueryArgs, now: i64) -> Result<ExitCode, CommandError> {
    let sql = sql(args, now).map_err(|e| CommandError::Usage(e.to_string()))?;
    println!("{sql}");
    Ok(ExitCode::SUCCESS)
}

/// The result columns, in order: what `tabular` maps back onto a CloudTrail record.
pub const COLUMNS: &[&str] = &[
    "eventid",
    "eventtime",
    "eventsource",
    "eventname",
    "awsregion",
    "sourceipaddress",
    "useragent",
    "errorcode",
    "errormessage",
    "requestid",
    "recipientaccountid",
    "readonly",
    "useridentity_type",
    "useridentity_principalid",
    "useridentity_username",
    "requestparameters",
    "responseelements",
    "additionaleventdata",
    "resource_arn",
];

pub fn sql(args: &QueryArgs, now: i64) -> Result<String, QueryError> {
    let since = when(&args.since, now).ok_or_else(|| QueryError::Time {
        flag: "--since",
        value: args.since.clone(),
    })?;
    let until = match &args.until {
        Some(value) => when(value, now).ok_or_else(|| QueryError::Time {
            flag: "--until",
            value: value.clone(),
        })?,
        None => now,
    };
    if since >= until {
        return Err(QueryError::EmptyRange);
    }
    let table = checked(&args.table, "--table", "a table or event data store name", |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
    })?;
    let accounts = args
        .accounts
        .iter()
        .map(|a| checked(a, "--accounts", "a 12-digit account ID", |c| c.is_ascii_digit()))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(bad) = accounts.iter().find(|a| a.len() != 12) {
        return Err(QueryError::Value {
            flag: "--accounts",
            value: (*bad).to_owned(),
            what: "a 12-digit account ID",
        });
    }
    let regions = args
        .regions
        .iter()
        .map(|r| {
            checked(r, "--regions", "a region name", |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut out = String::new();
    let mut conditions: Vec<String> = Vec::new();
    match args.engine {
        Engine::Athena => {
            out.push_str(&format!(
                "-- oidc-watch query --engine athena: AssumeRoleWithWebIdentity records {} to {}.\n\
                 -- Download the result CSV (or UNLOAD it as JSON) and run: oidc-watch diagnose RESULT\n",
                iso8601(since),
                iso8601(until)
            ));
            out.push_str("SELECT\n");
            let select: Vec<String> = COLUMNS.iter().map(|c| athena_column(c)).collect();
            let select: Vec<&str> = select.iter().map(String::as_str).collect();
            out.push_str(&indent_list(&select));
            out.push_str(&format!("FROM {}\n", athena_table(table)));
            conditions.push("eventsource = 'sts.amazonaws.com'".into());
            conditions.push("eventname = 'AssumeRoleWithWebIdentity'".into());
            conditions.push(format!("eventtime >= '{}'", iso8601(since)));
            conditions.push(format!("eventtime < '{}'", iso8601(until)));
            if let Some(column) = &args.date_partition {
                let column = checked(column, "--date-partition", "a column name", |c| {
                    c.is_ascii_alphanumeric() || c == '_'
                })?;
                conditions.push(format!(
                    "\"{column}\" BETWEEN '{}' AND '{}'",
                    day_path(since),
                    day_path(until)
                ));
            }
            if !accounts.is_empty() {
                conditions.push(format!("recipientaccountid IN ({})", quoted_list(&accounts)));
            }
            if !regions.is_empty() {
                conditions.push(format!("awsregion IN ({})", quoted_list(&regions)));
            }
        }
        Engine::Lake => {
            out.push_str(&format!(
                "-- oidc-watch query --engine lake: AssumeRoleWithWebIdentity records {} to {}.\n\
                 -- Save `aws cloudtrail get-query-results` as JSON, or the results delivered to S3\n\
                 -- (CSV), and run: oidc-watch diagnose RESULT\n",
                iso8601(since),
                iso8601(until)
            ));
            out.push_str("SELECT\n");
            let select = [
                "eventID AS eventid",
                "eventTime AS eventtime",
                "eventSource AS eventsource",
                "eventName AS eventname",
                "awsRegion AS awsregion",
                "sourceIPAddress AS sourceipaddress",
                "userAgent AS useragent",
                "errorCode AS errorcode",
                "errorMessage AS errormessage",
                "requestID AS requestid",
                "recipientAccountId AS recipientaccountid",
                "readOnly AS readonly",
                "userIdentity.type AS useridentity_type",
                "userIdentity.principalId AS useridentity_principalid",
                "userIdentity.userName AS useridentity_username",
                "json_format(CAST(requestParameters AS JSON)) AS requestparameters",
                "json_format(CAST(responseElements AS JSON)) AS responseelements",
                "json_format(CAST(additionalEventData AS JSON)) AS additionaleventdata",
                "element_at(resources, 1).arn AS resource_arn",
            ];
            out.push_str(&indent_list(&select));
            out.push_str(&format!("FROM {table}\n"));
            conditions.push("eventSource = 'sts.amazonaws.com'".into());
            conditions.push("eventName = 'AssumeRoleWithWebIdentity'".into());
            conditions.push(format!("eventTime >= timestamp '{}'", lake_time(since)));
            conditions.push(format!("eventTime < timestamp '{}'", lake_time(until)));
            if !accounts.is_empty() {
                conditions.push(format!("recipientAccountId IN ({})", quoted_list(&accounts)));
            }
            if !regions.is_empty() {
                conditions.push(format!("awsRegion IN ({})", quoted_list(&regions)));
            }
        }
    }
    out.push_str("WHERE ");
    out.push_str(&conditions.join("\n  AND "));
    out.push('\n');
    out.push_str(match args.engine {
        Engine::Athena => "ORDER BY eventtime",
        Engine::Lake => "ORDER BY eventTime",
    });
    Ok(out)
}

/// `7d`, `12h`, `30m`, a date, or an ISO 8601 time in UTC.
pub fn when(value: &str, now: i64) -> Option<i64> {
    let value = value.trim();
    let relative = |unit: char, seconds: i64| {
        value
            .strip_suffix(unit)
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| (0..=36_500).contains(n))
            .map(|n| now - n * seconds)
    };
    relative('d', 86_400)
        .or_else(|| relative('h', 3_600))
        .or_else(|| relative('m', 60))
        .or_else(|| {
            if value.len() == 10 {
                epoch_seconds(&format!("{value}T00:00:00Z"))
            } else {
                epoch_seconds(value)
            }
        })
}

fn checked<'a>(
    value: &'a str,
    flag: &'static str,
    what: &'static str,
    allowed: impl Fn(char) -> bool,
) -> Result<&'a str, QueryError> {
    if !value.is_empty() && value.len() <= 255 && value.chars().all(allowed) {
        Ok(value)
    } else {
        Err(QueryError::Value {
            flag,
            value: value.to_owned(),
            what,
        })
    }
}

/// An Athena select item for a result column: the CloudTrail table's own column, a field
/// of its `useridentity` struct, or the first resource's ARN (the role when
/// requestParameters.roleArn is null: CloudTrail then names it only in resources).
fn athena_column(column: &str) -> String {
    match (column, column.strip_prefix("useridentity_")) {
        ("resource_arn", _) => "element_at(resources, 1).arn AS resource_arn".to_owned(),
        (_, Some(field)) => format!("useridentity.{field} AS {column}"),
        _ => column.to_owned(),
    }
}

fn athena_table(table: &str) -> String {
    table
        .split('.')
        .map(|part| format!("\"{part}\""))
        .collect::<Vec<_>>()
        .join(".")
}

fn indent_list(items: &[&str]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        out.push_str("  ");
        out.push_str(item);
        out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
    }
    out
}

fn quoted_list(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("'{v}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn day_path(t: i64) -> String {
    let u = Utc::from_epoch(t);
    format!("{:04}/{:02}/{:02}", u.year, u.month, u.day)
}

fn lake_time(t: i64) -> String {
    let u = Utc::from_epoch(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        u.year, u.month, u.day, u.hour, u.minute, u.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_633_600; // 2025-12-02T00:00:00Z

    fn args(engine: Engine) -> QueryArgs {
        QueryArgs {
            engine,
            table: "cloudtrail.logs".into(),
            since: "7d".into(),
            until: None,
            accounts: vec!["111122223333".into()],
            regions: vec!["us-east-1".into()],
            date_partition: Some("timestamp".into()),
        }
    }

    #[test]
    fn athena_selects_the_columns_tabular_reads_within_the_range() {
        let sql = sql(&args(Engine::Athena), NOW).unwrap();
        for column in COLUMNS {
            assert!(sql.contains(column), "{column} missing:\n{sql}");
        }
        assert!(sql.contains("FROM \"cloudtrail\".\"logs\""), "{sql}");
        assert!(sql.contains("eventtime >= '2025-11-25T00:00:00Z'"), "{sql}");
        assert!(sql.contains("eventtime < '2025-12-02T00:00:00Z'"), "{sql}");
        assert!(
            sql.contains("\"timestamp\" BETWEEN '2025/11/25' AND '2025/12/02'"),
            "{sql}"
        );
        assert!(sql.contains("recipientaccountid IN ('111122223333')"), "{sql}");
        assert!(sql.contains("eventname = 'AssumeRoleWithWebIdentity'"), "{sql}");
    }

    #[test]
    fn lake_uses_timestamps_and_json_for_the_maps() {
        let mut a = args(Engine::Lake);
        a.table = "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111".into();
        a.since = "2025-11-01".into();
        a.until = Some("2025-11-02T12:00:00Z".into());
        let sql = sql(&a, NOW).unwrap();
        for column in COLUMNS {
            assert!(sql.contains(&format!("AS {column}")), "{column} missing:\n{sql}");
        }
        assert!(
            sql.contains("eventTime >= timestamp '2025-11-01 00:00:00'"),
            "{sql}"
        );
        assert!(
            sql.contains("eventTime < timestamp '2025-11-02 12:00:00'"),
            "{sql}"
        );
        assert!(
            sql.contains("json_format(CAST(requestParameters AS JSON))"),
            "{sql}"
        );
    }

    #[test]
    fn refuses_what_would_break_or_inject_into_the_sql() {
        let mut a = args(Engine::Athena);
        a.table = "logs; DROP TABLE x".into();
        assert!(matches!(
            sql(&a, NOW),
            Err(QueryError::Value { flag: "--table", .. })
        ));
        let mut a = args(Engine::Athena);
        a.accounts = vec!["1111' OR '1'='1".into()];
        assert!(matches!(
            sql(&a, NOW),
            Err(QueryError::Value {
                flag: "--accounts",
                ..
            })
        ));
        let mut a = args(Engine::Athena);
        a.since = "yesterday".into();
        assert!(matches!(sql(&a, NOW), Err(QueryError::Time { .. })));
        let mut a = args(Engine::Athena);
        a.until = Some("30d".into());
        assert_eq!(sql(&a, NOW), Err(QueryError::EmptyRange));
    }
}
