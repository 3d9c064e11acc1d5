//! Metric model: names and dimension sets (docs/contracts.md, "Metrics"), and CloudWatch
//! Embedded Metric Format, validated against EMF's limits because CloudWatch drops a bad
//! blob silently.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

pub const DEFAULT_NAMESPACE: &str = "OidcWatch";

/// The value a dimension takes when the real one must not be used (a role that does not
/// exist, whose name a stranger chose).
pub const UNKNOWN_DIMENSION: &str = "-";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetricName {
    AssumeFailures,
    AssumeSuccesses,
    ProbeAttempts,
    EnrichmentErrors,
    MalformedEvents,
    /// Incident and probe alerts held back by the per-owner or global alert rate.
    AlertsHeldBack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    Cause,
    RoleName,
    AccountId,
}

impl MetricName {
    pub const ALL: [MetricName; 6] = [
        MetricName::AssumeFailures,
        MetricName::AssumeSuccesses,
        MetricName::ProbeAttempts,
        MetricName::EnrichmentErrors,
        MetricName::MalformedEvents,
        MetricName::AlertsHeldBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MetricName::AssumeFailures => "AssumeFailures",
            MetricName::AssumeSuccesses => "AssumeSuccesses",
            MetricName::ProbeAttempts => "ProbeAttempts",
            MetricName::EnrichmentErrors => "EnrichmentErrors",
            MetricName::MalformedEvents => "MalformedEvents",
            MetricName::AlertsHeldBack => "AlertsHeldBack",
        }
    }

    /// The dimension sets each metric is published with. Subjects, repositories and run
    /// ids are never dimensions: strangers choose them.
    pub fn dimension_sets(self) -> &'static [&'static [Dimension]] {
        use Dimension::*;
        match self {
            MetricName::AssumeFailures | MetricName::AssumeSuccesses => {
                &[&[], &[Cause], &[RoleName], &[AccountId]]
            }
            MetricName::ProbeAttempts | MetricName::EnrichmentErrors => &[&[], &[AccountId]],
            MetricName::MalformedEvents => &[&[]],
            MetricName::AlertsHeldBack => &[&[], &[AccountId]],
        }
    }
}

impl Dimension {
    pub const ALL: [Dimension; 3] = [Dimension::Cause, Dimension::RoleName, Dimension::AccountId];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Cause => "Cause",
            Dimension::RoleName => "RoleName",
            Dimension::AccountId => "AccountId",
        }
    }
}

/// What one event counts, with the context that goes into logs but not into dimensions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricRecord {
    pub timestamp_ms: i64,
    pub counts: Vec<(MetricName, f64)>,
    pub dimensions: BTreeMap<Dimension, String>,
    /// High-cardinality context: EMF properties, searchable in Logs Insights.
    pub properties: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmfError {
    #[error(
        "namespace must be 1-255 characters of [0-9A-Za-z.-_/#:] and not begin with \"AWS/\", got {0:?}"
    )]
    Namespace(String),
    #[error("dimension {0} is missing from the record")]
    MissingDimension(&'static str),
    #[error("dimension {name} value must be 1-1024 printable ASCII characters")]
    DimensionValue { name: &'static str },
    #[error("more than {MAX_METRICS} metrics in one record")]
    TooManyMetrics,
    #[error("property {0:?} collides with a metric or dimension name")]
    PropertyCollision(String),
    #[error("metric {0} has a value that is not finite")]
    Value(&'static str),
}

/// EMF limits (CloudWatch "Specification: Embedded metric format").
pub const MAX_METRICS: usize = 100;
pub const MAX_DIMENSIONS_PER_SET: usize = 30;
pub const MAX_DIMENSION_VALUE: usize = 1024;

pub fn validate_namespace(namespace: &str) -> Result<(), EmfError> {
    let valid = !namespace.is_empty()
        && namespace.len() <= 255
        && !namespace.starts_with(':')
        && !namespace.starts_with("AWS/")
        && namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c));
    if valid {
        Ok(())
    } else {
        Err(EmfError::Namespace(namespace.to_owned()))
    }
}

/// Dimension values are ours (an enum, an existing role's name, an account id), but a
/// value CloudWatch would reject must fail loudly here.
fn valid_dimension_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_DIMENSION_VALUE
        && value.chars().all(|c| c.is_ascii() && !c.is_ascii_control())
        && !value.starts_with(':')
}

impl MetricRecord {
    /// The record as one EMF JSON object: one directive per group of metrics that share
    /// dimension sets, dimension values and properties at the top level.
    pub fn to_emf(&self, namespace: &str) -> Result<Value, EmfError> {
        validate_namespace(namespace)?;
        if self.counts.len() > MAX_METRICS {
            return Err(EmfError::TooManyMetrics);
        }
        let mut root = Map::new();
        let mut directives: Vec<(&'static [&'static [Dimension]], Vec<MetricName>)> = Vec::new();
        for (name, value) in &self.counts {
            if !value.is_finite() {
                return Err(EmfError::Value(name.as_str()));
            }
            let sets = name.dimension_sets();
            match directives.iter_mut().find(|(s, _)| *s == sets) {
                Some((_, names)) => names.push(*name),
                None => directives.push((sets, vec![*name])),
            }
            root.insert(name.as_str().to_owned(), json!(value));
        }
        let mut used = std::collections::BTreeSet::new();
        for (sets, _) in &directives {
            for set in sets.iter() {
                used.extend(set.iter().copied());
            }
        }
        for dimension in used {
            let value = self
                .dimensions
                .get(&dimension)
                .ok_or(EmfError::MissingDimension(dimension.as_str()))?;
            if !valid_dimension_value(value) {
                return Err(EmfError::DimensionValue {
                    name: dimension.as_str(),
                });
            }
            root.insert(dimension.as_str().to_owned(), json!(value));
        }
        for (key, value) in &self.properties {
            if root.contains_key(key) || key == "_aws" {
                return Err(EmfError::PropertyCollision(key.clone()));
            }
            root.insert(key.clone(), value.clone());
        }
        let metrics: Vec<Value> = directives
            .iter()
            .map(|(sets, names)| {
                json!({
                    "Namespace": namespace,
                    "Dimensions": sets.iter().map(|set| set.iter().map(|d| d.as_str()).collect::<Vec<_>>()).collect::<Vec<_>>(),
                    "Metrics": names.iter().map(|n| json!({"Name": n.as_str(), "Unit": "Count"})).collect::<Vec<_>>(),
                })
            })
            .collect();
        root.insert(
            "_aws".to_owned(),
            json!({"Timestamp": self.timestamp_ms, "CloudWatchMetrics": metrics}),
        );
        Ok(Value::Object(root))
    }
}

/// One datum per metric and dimension set, as `PutMetricData` wants them.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub name: MetricName,
    pub value: f64,
    pub dimensions: Vec<(Dimension, String)>,
    pub timestamp_ms: i64,
}

impl MetricRecord {
    pub fn to_data(&self) -> Vec<Datum> {
        let mut data = Vec::new();
        for (name, value) in &self.counts {
            for set in name.dimension_sets() {
                let dimensions: Option<Vec<(Dimension, String)>> = set
                    .iter()
                    .map(|d| self.dimensions.get(d).map(|v| (*d, v.clone())))
                    .collect();
                if let Some(dimensions) = dimensions {
                    data.push(Datum {
                        name: *name,
                        value: *value,
                        dimensions,
                        timestamp_ms: self.timestamp_ms,
                    });
                }
            }
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> MetricRecord {
        MetricRecord {
            timestamp_ms: 1_700_000_000_000,
            counts: vec![
                (MetricName::AssumeFailures, 1.0),
                (MetricName::ProbeAttempts, 1.0),
            ],
            dimensions: [
                (Dimension::Cause, "SubjectMismatch".to_owned()),
                (Dimension::RoleName, "-".to_owned()),
                (Dimension::AccountId, "111122223333".to_owned()),
            ]
            .into(),
            properties: [("subject".to_owned(), json!("repo:evil/x:pull_request"))].into(),
        }
    }

    #[test]
    fn emf_groups_metrics_by_dimension_sets() {
        let emf = record().to_emf(DEFAULT_NAMESPACE).unwrap();
        let directives = emf["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 2);
        assert_eq!(
            directives[0]["Dimensions"],
            json!([[], ["Cause"], ["RoleName"], ["AccountId"]])
        );
        assert_eq!(directives[1]["Dimensions"], json!([[], ["AccountId"]]));
        assert_eq!(directives[1]["Metrics"][0]["Name"], "ProbeAttempts");
        assert_eq!(
            (emf["Cause"].as_str(), emf["AssumeFailures"].as_f64()),
            (Some("SubjectMismatch"), Some(1.0))
        );
        assert_eq!(emf["subject"], "repo:evil/x:pull_request");
    }

    #[test]
    fn emf_refuses_what_cloudwatch_would_drop() {
        assert!(matches!(record().to_emf(""), Err(EmfError::Namespace(_))));
        assert!(matches!(
            record().to_emf("AWS/Lambda"),
            Err(EmfError::Namespace(_))
        ));
        let mut bad = record();
        bad.dimensions.insert(Dimension::RoleName, "x".repeat(2000));
        assert!(matches!(
            bad.to_emf("OidcWatch"),
            Err(EmfError::DimensionValue { .. })
        ));
        let mut collide = record();
        collide.properties.insert("Cause".into(), json!("x"));
        assert!(matches!(
            collide.to_emf("OidcWatch"),
            Err(EmfError::PropertyCollision(_))
        ));
        let mut missing = record();
        missing.dimensions.remove(&Dimension::AccountId);
        assert!(matches!(
            missing.to_emf("OidcWatch"),
            Err(EmfError::MissingDimension("AccountId"))
        ));
    }

    #[test]
    fn data_expand_every_dimension_set() {
        let data = record().to_data();
        assert_eq!(data.len(), 4 + 2);
        assert!(data
            .iter()
            .any(|d| d.name == MetricName::AssumeFailures && d.dimensions.is_empty()));
    }
}
