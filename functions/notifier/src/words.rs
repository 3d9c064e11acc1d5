//! The words every channel says the same way: counts, durations, times, who ran the job,
//! whether its owner is ours. Plain text: each renderer escapes for its own markup.

use diagnosis::alert::{Alert, SpikeSummary};
use diagnosis::owner::Trust;
use diagnosis::Diagnosis;

pub fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `300 s` as `5 min`, `3600 s` as `1 h`.
pub fn duration(seconds: i64) -> String {
    match seconds {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// Epoch seconds as `2026-10-06 14:30 UTC`.
pub fn utc(t: i64) -> String {
    let u = diagnosis::time::Utc::from_epoch(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        u.year, u.month, u.day, u.hour, u.minute
    )
}

/// A count that is whole prints without decimals.
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{}", (n * 100.0).round() / 100.0)
    }
}

pub fn role_of(d: Option<&Diagnosis>) -> Option<&str> {
    d.and_then(|d| d.role_name.as_deref().or(d.role_arn.as_deref()))
}

/// Who ran the job: the repository, else what the subject says about it.
pub fn who(d: Option<&Diagnosis>) -> Option<String> {
    let d = d?;
    let c = &d.claims;
    if let Some(repository) = &c.repository {
        return Some(repository.clone());
    }
    if let (Some(ns), Some(sa)) = (&c.namespace, &c.service_account) {
        return Some(format!("{ns}/{sa}"));
    }
    if let (Some(org), Some(ws)) = (&c.organization, &c.workspace) {
        return Some(format!("{org}/{ws}"));
    }
    d.subject.clone()
}

pub fn comparison(operator: &str) -> String {
    match operator {
        "GreaterThanThreshold" => ">".to_owned(),
        "GreaterThanOrEqualToThreshold" => ">=".to_owned(),
        "LessThanThreshold" => "<".to_owned(),
        "LessThanOrEqualToThreshold" => "<=".to_owned(),
        "LessThanLowerOrGreaterThanUpperThreshold" => "outside the band".to_owned(),
        "GreaterThanUpperThreshold" => "above the band".to_owned(),
        "LessThanLowerThreshold" => "below the band".to_owned(),
        other => other.to_owned(),
    }
}

/// A spike or recovery alert's summary; one without (a forged or truncated message) as
/// its attempt count alone.
pub fn spike_of(alert: &Alert) -> SpikeSummary {
    alert.spike.clone().unwrap_or(SpikeSummary {
        scope: "-".to_owned(),
        window_seconds: 0,
        failures: alert.attempts,
        baseline: 0.0,
        top_roles: Vec::new(),
        top_causes: Vec::new(),
    })
}

/// Whether the token's owner is ours, in words.
pub fn trust_words(trust: Trust) -> &'static str {
    match trust {
        Trust::Ours => "ours",
        Trust::Foreign => "not one of ours",
        Trust::Unknown => "ours or not: unknown (no ALLOWED_OWNERS, no trust policy naming owners)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(utc(1_791_297_000), "2026-10-06 14:30 UTC");
        assert_eq!(duration(300), "5 min");
        assert_eq!(duration(7200), "2 h");
        assert_eq!(duration(90), "90 s");
        assert_eq!(number(12.0), "12");
        assert_eq!(number(1.25), "1.25");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(2.0 / 3.0), "0.67");
    }
}
