//! Reading the functions' environment, once at init: every variable a function reads is
//! a [`Variable`] (its name, default and limits), declared once here when both functions
//! read it and beside the function's config otherwise. infra/template.yaml's parameters
//! carry the same defaults and limits (infra/tests check them against `oidc-watch-contract`).

use std::collections::HashMap;

use serde::Serialize;

/// A bad value, named by its variable; init fails with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(variable: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            variable,
            message: message.into(),
        }
    }
}

/// What a variable holds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Kind {
    Text,
    /// A whole number in `min..=max`.
    Number {
        min: i64,
        /// [`UNBOUNDED`]: no limit, serialised as null.
        #[serde(serialize_with = "max_or_null")]
        max: i64,
    },
    /// A finite number at least `min`.
    Decimal {
        min: f64,
    },
    /// One of `values`.
    Choice {
        values: &'static [&'static str],
    },
    /// `on`/`true` or `off`/`false`.
    OnOff,
}

/// One environment variable a function reads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Variable {
    pub name: &'static str,
    /// Taken when the variable is unset or empty; `None`: unset means "none" or, with
    /// `required`, fails init.
    pub default: Option<&'static str>,
    pub required: bool,
    #[serde(flatten)]
    pub kind: Kind,
}

impl Variable {
    pub const fn text(name: &'static str) -> Self {
        Variable {
            name,
            default: None,
            required: false,
            kind: Kind::Text,
        }
    }

    pub const fn required(name: &'static str) -> Self {
        Variable {
            required: true,
            ..Variable::text(name)
        }
    }

    pub const fn number(name: &'static str, default: &'static str, min: i64, max: i64) -> Self {
        Variable {
            name,
            default: Some(default),
            required: false,
            kind: Kind::Number { min, max },
        }
    }

    pub const fn choice(name: &'static str, default: &'static str, values: &'static [&'static str]) -> Self {
        Variable {
            name,
            default: Some(default),
            required: false,
            kind: Kind::Choice { values },
        }
    }

    pub const fn with_default(self, default: &'static str) -> Self {
        Variable {
            default: Some(default),
            ..self
        }
    }
}

/// No upper limit.
pub const UNBOUNDED: i64 = i64::MAX;

fn max_or_null<S: serde::Serializer>(max: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    match *max {
        UNBOUNDED => serializer.serialize_none(),
        max => serializer.serialize_i64(max),
    }
}

// ------------------------------------------------------------------ read by both functions

pub const STATE_TABLE_NAME: Variable = Variable::required("STATE_TABLE_NAME");
/// Default: `diagnosis::metrics::DEFAULT_NAMESPACE` (a test checks they agree).
pub const METRICS_NAMESPACE: Variable = Variable::text("METRICS_NAMESPACE").with_default("OidcWatch");
/// At most one probe alert per owner per interval: the monitor's alert token and the
/// notifier's Slack token. At most 7 days.
pub const PROBE_ALERT_INTERVAL_SECONDS: Variable =
    Variable::number("PROBE_ALERT_INTERVAL_SECONDS", "3600", 0, 7 * 86_400);

/// The environment, as a function sees it at init.
pub struct Env<'a> {
    vars: &'a HashMap<String, String>,
}

impl<'a> Env<'a> {
    pub fn new(vars: &'a HashMap<String, String>) -> Self {
        Env { vars }
    }

    /// The value, trimmed; empty is unset.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// The value, or the variable's default.
    pub fn text(&self, variable: &Variable) -> Option<&'a str> {
        self.get(variable.name).or(variable.default)
    }

    /// The value; unset fails.
    pub fn required(&self, variable: &Variable) -> Result<String, ConfigError> {
        self.text(variable)
            .map(str::to_owned)
            .ok_or_else(|| ConfigError::new(variable.name, "is required"))
    }

    /// A whole number within the variable's limits.
    pub fn number(&self, variable: &Variable) -> Result<i64, ConfigError> {
        let (min, max) = match variable.kind {
            Kind::Number { min, max } => (min, max),
            _ => (i64::MIN, i64::MAX),
        };
        let text = self.text(variable).unwrap_or("0");
        match text.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ if max == UNBOUNDED => Err(ConfigError::new(
                variable.name,
                format!("must be a whole number >= {min}, got {text:?}"),
            )),
            _ => Err(ConfigError::new(
                variable.name,
                format!("must be a whole number in {min}..={max}, got {text:?}"),
            )),
        }
    }

    /// A whole number at least the variable's minimum; above its maximum is taken as
    /// the maximum.
    pub fn number_or_max(&self, variable: &Variable) -> Result<i64, ConfigError> {
        match variable.kind {
            Kind::Number { min, max } => {
                let at_least = Variable {
                    kind: Kind::Number { min, max: UNBOUNDED },
                    ..*variable
                };
                Ok(self.number(&at_least)?.min(max))
            }
            _ => self.number(variable),
        }
    }

    /// A finite number at least the variable's minimum.
    pub fn decimal(&self, variable: &Variable) -> Result<f64, ConfigError> {
        let min = match variable.kind {
            Kind::Decimal { min } => min,
            _ => f64::MIN,
        };
        let text = self.text(variable).unwrap_or("0");
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() && f >= min => Ok(f),
            _ => Err(ConfigError::new(
                variable.name,
                format!("must be a number >= {min}, got {text:?}"),
            )),
        }
    }

    /// The value as one of the variable's choices, mapped by `to`.
    pub fn choice<T>(&self, variable: &Variable, to: impl Fn(&str) -> Option<T>) -> Result<T, ConfigError> {
        let text = self.text(variable).unwrap_or("");
        to(text).ok_or_else(|| {
            let values = match variable.kind {
                Kind::Choice { values } => values.join(", "),
                _ => String::new(),
            };
            ConfigError::new(variable.name, format!("must be one of {values}, got {text:?}"))
        })
    }

    /// `on`/`true` or `off`/`false`.
    pub fn on_off(&self, variable: &Variable) -> Result<bool, ConfigError> {
        match self.text(variable).unwrap_or("off") {
            "on" | "true" => Ok(true),
            "off" | "false" => Ok(false),
            other => Err(ConfigError::new(
                variable.name,
                format!("must be on or off, got {other:?}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_trimmed_and_empty_is_unset() {
        let vars = HashMap::from([
            ("A".to_owned(), "  x ".to_owned()),
            ("B".to_owned(), "   ".to_owned()),
        ]);
        let env = Env::new(&vars);
        assert_eq!(env.get("A"), Some("x"));
        assert_eq!(env.get("B"), None);
        assert_eq!(env.text(&Variable::text("B").with_default("d")), Some("d"));
        assert_eq!(
            env.required(&Variable::required("B")).map_err(|e| e.variable),
            Err("B")
        );
    }

    #[test]
    fn numbers_keep_to_their_limits() {
        let vars = HashMap::from([
            ("N".to_owned(), "5".to_owned()),
            ("BIG".to_owned(), "604801".to_owned()),
            ("BAD".to_owned(), "five".to_owned()),
        ]);
        let env = Env::new(&vars);
        assert_eq!(env.number(&Variable::number("N", "1", 0, 10)), Ok(5));
        assert_eq!(env.number(&Variable::number("UNSET", "7", 0, 10)), Ok(7));
        assert!(env.number(&Variable::number("N", "1", 6, 10)).is_err());
        assert!(env
            .number(&PROBE_ALERT_INTERVAL_SECONDS.with_name("BIG"))
            .is_err());
        assert!(env.number(&Variable::number("BAD", "1", 0, UNBOUNDED)).is_err());
        assert_eq!(env.on_off(&Variable::text("UNSET").with_default("on")), Ok(true));
    }

    #[test]
    fn the_namespace_default_is_the_metrics_default() {
        assert_eq!(
            METRICS_NAMESPACE.default,
            Some(diagnosis::metrics::DEFAULT_NAMESPACE)
        );
    }

    impl Variable {
        fn with_name(self, name: &'static str) -> Self {
            Variable { name, ..self }
        }
    }
}
