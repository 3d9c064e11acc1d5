//! Configuration from the environment, read once at init. The variable names are a
//! contract (docs/contracts.md, "Environment variables"); a bad value fails init with a
//! message naming the variable.

use std::collections::HashMap;

use diagnosis::metrics::{validate_namespace, DEFAULT_NAMESPACE};
use diagnosis::owner::Owners;
use diagnosis::spike::SpikeConfig;

pub const ALERT_TOPIC_ARN: &str = "ALERT_TOPIC_ARN";
pub const STATE_TABLE_NAME: &str = "STATE_TABLE_NAME";
pub const METRICS_SINK: &str = "METRICS_SINK";
pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";
pub const ALLOWED_OWNERS: &str = "ALLOWED_OWNERS";
pub const INCIDENT_WINDOW_SECONDS: &str = "INCIDENT_WINDOW_SECONDS";
pub const SPIKE_WINDOW_SECONDS: &str = "SPIKE_WINDOW_SECONDS";
pub const SPIKE_MIN_FAILURES: &str = "SPIKE_MIN_FAILURES";
pub const SPIKE_FACTOR: &str = "SPIKE_FACTOR";
pub const SPIKE_COOLDOWN_SECONDS: &str = "SPIKE_COOLDOWN_SECONDS";
pub const IAM_CACHE_TTL_SECONDS: &str = "IAM_CACHE_TTL_SECONDS";
pub const READ_ROLE_NAME: &str = "READ_ROLE_NAME";
pub const PROBE_ALERT_INTERVAL_SECONDS: &str = "PROBE_ALERT_INTERVAL_SECONDS";
pub const ALERTS_PER_HOUR: &str = "ALERTS_PER_HOUR";
pub const OBSERVED_SUBJECT_DAYS: &str = "OBSERVED_SUBJECT_DAYS";

/// Longer is taken as this (ten years): the TTL stays a sane epoch.
const MAX_OBSERVED_SUBJECT_DAYS: i64 = 3650;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsSinkKind {
    /// Embedded Metric Format on stdout (CloudWatch Logs turns it into metrics).
    Emf,
    /// PutMetricData.
    Api,
    Off,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub alert_topic_arn: String,
    pub state_table_name: String,
    pub metrics_sink: MetricsSinkKind,
    pub metrics_namespace: String,
    /// `ALLOWED_OWNERS` (`provider:owner`, a bare name is GitHub); empty: the owners the
    /// account's trust policies name.
    pub owners: Owners,
    pub incident_window_seconds: i64,
    pub spike: SpikeConfig,
    pub iam_cache_ttl_seconds: u64,
    pub read_role_name: Option<String>,
    pub probe_alert_interval_seconds: i64,
    /// Incident and probe alerts per hour across all owners; past it they are held back,
    /// counted and summarised. Critical alerts are never held back.
    pub alerts_per_hour: u64,
    /// How long the record of a role's successful subjects keeps one after its last
    /// success (`oidc-watch impact --observed`); 0: no record is kept.
    pub observed_subject_days: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    pub fn from_map(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let required = |name: &'static str| {
            get(name).map(str::to_owned).ok_or(ConfigError {
                variable: name,
                message: "is required".to_owned(),
            })
        };
        let number = |name: &'static str, default: i64, min: i64| -> Result<i64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(text) => match text.parse::<i64>() {
                    Ok(n) if n >= min => Ok(n),
                    _ => Err(ConfigError {
                        variable: name,
                        message: format!("must be a whole number >= {min}, got {text:?}"),
                    }),
                },
            }
        };
        let metrics_sink = match get(METRICS_SINK).unwrap_or("emf") {
            "emf" => MetricsSinkKind::Emf,
            "api" => MetricsSinkKind::Api,
            "off" => MetricsSinkKind::Off,
            other => {
                return Err(ConfigError {
                    variable: METRICS_SINK,
                    message: format!("must be emf, api or off, got {other:?}"),
                })
            }
        };
        let metrics_namespace = get(METRICS_NAMESPACE).unwrap_or(DEFAULT_NAMESPACE).to_owned();
        validate_namespace(&metrics_namespace).map_err(|e| ConfigError {
            variable: METRICS_NAMESPACE,
            message: e.to_string(),
        })?;
        let factor = match get(SPIKE_FACTOR) {
            None => 3.0,
            Some(text) => match text.parse::<f64>() {
                Ok(f) if f.is_finite() && f >= 1.0 => f,
                _ => {
                    return Err(ConfigError {
                        variable: SPIKE_FACTOR,
                        message: format!("must be a number >= 1, got {text:?}"),
                    })
                }
            },
        };
        let defaults = SpikeConfig::default();
        Ok(Config {
            alert_topic_arn: required(ALERT_TOPIC_ARN)?,
            state_table_name: required(STATE_TABLE_NAME)?,
            metrics_sink,
            metrics_namespace,
            owners: Owners::parse_list(get(ALLOWED_OWNERS).unwrap_or("")).map_err(|e| ConfigError {
                variable: ALLOWED_OWNERS,
                message: e.to_string(),
            })?,
            incident_window_seconds: number(INCIDENT_WINDOW_SECONDS, 900, 1)?,
            spike: SpikeConfig {
                window_seconds: number(SPIKE_WINDOW_SECONDS, defaults.window_seconds, 60)?,
                min_failures: number(SPIKE_MIN_FAILURES, defaults.min_failures as i64, 1)? as u64,
                factor,
                cooldown_seconds: number(SPIKE_COOLDOWN_SECONDS, defaults.cooldown_seconds, 0)?,
                baseline_windows: defaults.baseline_windows,
            },
            iam_cache_ttl_seconds: number(IAM_CACHE_TTL_SECONDS, 300, 0)? as u64,
            read_role_name: get(READ_ROLE_NAME).map(str::to_owned),
            probe_alert_interval_seconds: number(PROBE_ALERT_INTERVAL_SECONDS, 3600, 0)?,
            alerts_per_hour: number(ALERTS_PER_HOUR, 60, 1)? as u64,
            observed_subject_days: number(OBSERVED_SUBJECT_DAYS, 90, 0)?.min(MAX_OBSERVED_SUBJECT_DAYS),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const REQUIRED: [(&str, &str); 2] = [
        (ALERT_TOPIC_ARN, "arn:aws:sns:us-east-1:1:t"),
        (STATE_TABLE_NAME, "t"),
    ];

    #[test]
    fn defaults() {
        let config = Config::from_map(&env(&REQUIRED)).unwrap();
        assert_eq!(config.metrics_sink, MetricsSinkKind::Emf);
        assert_eq!(config.metrics_namespace, "OidcWatch");
        assert_eq!(config.incident_window_seconds, 900);
        assert!(config.owners == Owners::FromTrustPolicies && config.read_role_name.is_none());
        assert_eq!(config.alerts_per_hour, 60);
        assert_eq!(config.observed_subject_days, 90);
        let off = Config::from_map(&env(&[REQUIRED[0], REQUIRED[1], (OBSERVED_SUBJECT_DAYS, "0")])).unwrap();
        assert_eq!(off.observed_subject_days, 0);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases = [
            (METRICS_SINK, "stdout"),
            (SPIKE_FACTOR, "0.5"),
            (SPIKE_MIN_FAILURES, "many"),
            (INCIDENT_WINDOW_SECONDS, "-1"),
            (METRICS_NAMESPACE, "bad\nname"),
            (OBSERVED_SUBJECT_DAYS, "-1"),
        ];
        for (variable, value) in cases {
            let mut pairs = REQUIRED.to_vec();
            pairs.push((variable, value));
            let error = Config::from_map(&env(&pairs)).unwrap_err();
            assert_eq!(error.variable, variable, "{error}");
        }
        assert_eq!(Config::from_map(&env(&[])).unwrap_err().variable, ALERT_TOPIC_ARN);
        let owners = Config::from_map(&env(&[
            REQUIRED[0],
            REQUIRED[1],
            (ALLOWED_OWNERS, " acme, gitlab:acme-labs ,"),
        ]))
        .unwrap();
        let Owners::Allowed(list) = owners.owners else {
            panic!("an allow-list")
        };
        let list: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(list, ["github:acme", "gitlab:acme-labs"]);
        let bad = Config::from_map(&env(&[REQUIRED[0], REQUIRED[1], (ALLOWED_OWNERS, "acme*")]));
        assert_eq!(bad.map_err(|e| e.variable), Err(ALLOWED_OWNERS));
    }
}
