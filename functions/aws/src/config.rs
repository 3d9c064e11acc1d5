//! Configuration from the environment, read once at init. The variable names are a
//! contract (docs/contracts.md, "Environment variables"); a bad value fails init with a
//! message naming the variable.

use std::collections::HashMap;

use diagnosis::metrics::validate_namespace;
use diagnosis::owner::Owners;
use diagnosis::spike::SpikeConfig;

pub use crate::env::{ConfigError, METRICS_NAMESPACE, PROBE_ALERT_INTERVAL_SECONDS, STATE_TABLE_NAME};
use crate::env::{Env, Kind, Variable, UNBOUNDED};

pub const ALERT_TOPIC_ARN: Variable = Variable::required("ALERT_TOPIC_ARN");
pub const METRICS_SINK: Variable = Variable::choice("METRICS_SINK", "emf", &["emf", "api", "off"]);
/// `provider:owner`, comma-separated; empty: the owners the account's trust policies name.
pub const ALLOWED_OWNERS: Variable = Variable::text("ALLOWED_OWNERS");
pub const INCIDENT_WINDOW_SECONDS: Variable =
    Variable::number("INCIDENT_WINDOW_SECONDS", "900", 1, UNBOUNDED);
/// The spike defaults are `SpikeConfig::default()`'s (a test checks they agree).
pub const SPIKE_WINDOW_SECONDS: Variable = Variable::number("SPIKE_WINDOW_SECONDS", "300", 60, UNBOUNDED);
pub const SPIKE_MIN_FAILURES: Variable = Variable::number("SPIKE_MIN_FAILURES", "20", 1, UNBOUNDED);
pub const SPIKE_FACTOR: Variable = Variable {
    name: "SPIKE_FACTOR",
    default: Some("3"),
    required: false,
    kind: Kind::Decimal { min: 1.0 },
};
pub const SPIKE_COOLDOWN_SECONDS: Variable = Variable::number("SPIKE_COOLDOWN_SECONDS", "1800", 0, UNBOUNDED);
pub const IAM_CACHE_TTL_SECONDS: Variable = Variable::number("IAM_CACHE_TTL_SECONDS", "300", 0, UNBOUNDED);
/// Unset: no cross-account reads.
pub const READ_ROLE_NAME: Variable = Variable::text("READ_ROLE_NAME");
pub const ALERTS_PER_HOUR: Variable = Variable::number("ALERTS_PER_HOUR", "60", 1, UNBOUNDED);
/// Longer is taken as the maximum (ten years): the TTL stays a sane epoch.
pub const OBSERVED_SUBJECT_DAYS: Variable = Variable::number("OBSERVED_SUBJECT_DAYS", "90", 0, 3650);
/// How long after an IAM change of a role or provider its incident and spike alerts name
/// it; at most the change record's lifetime (three days).
pub const CHANGE_WINDOW_SECONDS: Variable = Variable::number("CHANGE_WINDOW_SECONDS", "3600", 0, 259_200);

/// Every variable oidc-monitor reads (docs/contracts.md, "Environment variables").
pub const VARIABLES: &[Variable] = &[
    ALERT_TOPIC_ARN,
    STATE_TABLE_NAME,
    METRICS_SINK,
    METRICS_NAMESPACE,
    ALLOWED_OWNERS,
    INCIDENT_WINDOW_SECONDS,
    SPIKE_WINDOW_SECONDS,
    SPIKE_MIN_FAILURES,
    SPIKE_FACTOR,
    SPIKE_COOLDOWN_SECONDS,
    IAM_CACHE_TTL_SECONDS,
    READ_ROLE_NAME,
    PROBE_ALERT_INTERVAL_SECONDS,
    ALERTS_PER_HOUR,
    OBSERVED_SUBJECT_DAYS,
    CHANGE_WINDOW_SECONDS,
];

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
    /// `CHANGE_WINDOW_SECONDS`: alerts this long after an IAM change of their role or
    /// provider name the change.
    pub change_window_seconds: i64,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Env::new(vars);
        let metrics_sink = env.choice(&METRICS_SINK, |v| match v {
            "emf" => Some(MetricsSinkKind::Emf),
            "api" => Some(MetricsSinkKind::Api),
            "off" => Some(MetricsSinkKind::Off),
            _ => None,
        })?;
        let metrics_namespace = env.required(&METRICS_NAMESPACE)?;
        validate_namespace(&metrics_namespace)
            .map_err(|e| ConfigError::new(METRICS_NAMESPACE.name, e.to_string()))?;
        let defaults = SpikeConfig::default();
        Ok(Config {
            alert_topic_arn: env.required(&ALERT_TOPIC_ARN)?,
            state_table_name: env.required(&STATE_TABLE_NAME)?,
            metrics_sink,
            metrics_namespace,
            owners: Owners::parse_list(env.text(&ALLOWED_OWNERS).unwrap_or(""))
                .map_err(|e| ConfigError::new(ALLOWED_OWNERS.name, e.to_string()))?,
            incident_window_seconds: env.number(&INCIDENT_WINDOW_SECONDS)?,
            spike: SpikeConfig {
                window_seconds: env.number(&SPIKE_WINDOW_SECONDS)?,
                min_failures: env.number(&SPIKE_MIN_FAILURES)? as u64,
                factor: env.decimal(&SPIKE_FACTOR)?,
                cooldown_seconds: env.number(&SPIKE_COOLDOWN_SECONDS)?,
                baseline_windows: defaults.baseline_windows,
            },
            iam_cache_ttl_seconds: env.number(&IAM_CACHE_TTL_SECONDS)? as u64,
            read_role_name: env.text(&READ_ROLE_NAME).map(str::to_owned),
            probe_alert_interval_seconds: env.number(&PROBE_ALERT_INTERVAL_SECONDS)?,
            alerts_per_hour: env.number(&ALERTS_PER_HOUR)? as u64,
            observed_subject_days: env.number_or_max(&OBSERVED_SUBJECT_DAYS)?,
            change_window_seconds: env.number(&CHANGE_WINDOW_SECONDS)?,
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
        (ALERT_TOPIC_ARN.name, "arn:aws:sns:us-east-1:1:t"),
        (STATE_TABLE_NAME.name, "t"),
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
        let long = Config::from_map(&env(&[
            REQUIRED[0],
            REQUIRED[1],
            (OBSERVED_SUBJECT_DAYS.name, "99999"),
        ]))
        .unwrap();
        assert_eq!(long.observed_subject_days, 3650, "longer is taken as the maximum");
        let off = Config::from_map(&env(&[
            REQUIRED[0],
            REQUIRED[1],
            (OBSERVED_SUBJECT_DAYS.name, "0"),
        ]))
        .unwrap();
        assert_eq!(off.observed_subject_days, 0);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases = [
            (METRICS_SINK.name, "stdout"),
            (SPIKE_FACTOR.name, "0.5"),
            (SPIKE_MIN_FAILURES.name, "many"),
            (INCIDENT_WINDOW_SECONDS.name, "-1"),
            (METRICS_NAMESPACE.name, "bad\nname"),
            (OBSERVED_SUBJECT_DAYS.name, "-1"),
            (PROBE_ALERT_INTERVAL_SECONDS.name, "604801"),
        ];
        for (variable, value) in cases {
            let mut pairs = REQUIRED.to_vec();
            pairs.push((variable, value));
            let error = Config::from_map(&env(&pairs)).unwrap_err();
            assert_eq!(error.variable, variable, "{error}");
        }
        assert_eq!(
            Config::from_map(&env(&[])).unwrap_err().variable,
            ALERT_TOPIC_ARN.name
        );
        let owners = Config::from_map(&env(&[
            REQUIRED[0],
            REQUIRED[1],
            (ALLOWED_OWNERS.name, " acme, gitlab:acme-labs ,"),
        ]))
        .unwrap();
        let Owners::Allowed(list) = owners.owners else {
            panic!("an allow-list")
        };
        let list: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(list, ["github:acme", "gitlab:acme-labs"]);
        let bad = Config::from_map(&env(&[REQUIRED[0], REQUIRED[1], (ALLOWED_OWNERS.name, "acme*")]));
        assert_eq!(bad.map_err(|e| e.variable), Err(ALLOWED_OWNERS.name));
    }

    #[test]
    fn the_spike_defaults_are_spike_configs() {
        let defaults = SpikeConfig::default();
        let spike = Config::from_map(&env(&REQUIRED)).unwrap().spike;
        assert_eq!(spike.window_seconds, defaults.window_seconds);
        assert_eq!(spike.min_failures, defaults.min_failures);
        assert_eq!(spike.factor, defaults.factor);
        assert_eq!(spike.cooldown_seconds, defaults.cooldown_seconds);
    }
}
