//! Configuration from the environment, read once at init; a bad value fails init with a
//! message naming the variable. The channel's credential (Slack webhook URL or bot token,
//! Teams workflow URL) is never an environment value: only where to read it (Secrets
//! Manager or an SSM SecureString).

use std::collections::HashMap;
use std::time::Duration;

use diagnosis::metrics::validate_namespace;
pub use oidc_watch_aws::env::{
    ConfigError, METRICS_NAMESPACE, PROBE_ALERT_INTERVAL_SECONDS, STATE_TABLE_NAME,
};
use oidc_watch_aws::env::{Env, Variable};
pub use oidc_watch_aws::secrets::SecretLocation;

use crate::http::RetryPolicy;
use crate::secrets::is_acceptable_url;
use crate::slack::DEFAULT_API_URL;

/// Where alerts go: `slack` or `teams` (a Teams Workflows incoming webhook).
pub const NOTIFIER_CHANNEL: Variable = Variable::choice("NOTIFIER_CHANNEL", "slack", &["slack", "teams"]);
/// Teams: exactly one of this (Secrets Manager) and [`TEAMS_PARAMETER_NAME`] (SSM
/// SecureString) holds the workflow's URL.
pub const TEAMS_SECRET_ID: Variable = Variable::text("TEAMS_SECRET_ID");
pub const TEAMS_PARAMETER_NAME: Variable = Variable::text("TEAMS_PARAMETER_NAME");
pub const TEAMS_MAX_ATTEMPTS: Variable = Variable::number("TEAMS_MAX_ATTEMPTS", "4", 1, 10);
pub const TEAMS_MAX_RETRY_AFTER_SECONDS: Variable =
    Variable::number("TEAMS_MAX_RETRY_AFTER_SECONDS", "10", 0, 60);
pub const SLACK_MODE: Variable = Variable::choice("SLACK_MODE", "webhook", &["webhook", "bot"]);
/// Exactly one of this (Secrets Manager) and [`SLACK_PARAMETER_NAME`] (SSM SecureString).
pub const SLACK_SECRET_ID: Variable = Variable::text("SLACK_SECRET_ID");
pub const SLACK_PARAMETER_NAME: Variable = Variable::text("SLACK_PARAMETER_NAME");
/// Bot mode: the default channel; required there.
pub const SLACK_CHANNEL: Variable = Variable::text("SLACK_CHANNEL");
pub const SLACK_ROUTES: Variable = Variable::text("SLACK_ROUTES");
pub const SLACK_API_URL: Variable = Variable::text("SLACK_API_URL").with_default(DEFAULT_API_URL);
pub const SLACK_MAX_ATTEMPTS: Variable = Variable::number("SLACK_MAX_ATTEMPTS", "4", 1, 10);
pub const SLACK_MAX_RETRY_AFTER_SECONDS: Variable =
    Variable::number("SLACK_MAX_RETRY_AFTER_SECONDS", "10", 0, 60);
pub const ALARM_BREAKDOWN: Variable = Variable::text("ALARM_BREAKDOWN").with_default("on");

/// Every variable oidc-notifier reads (docs/contracts.md, "Environment variables").
pub const VARIABLES: &[Variable] = &[
    NOTIFIER_CHANNEL,
    TEAMS_SECRET_ID,
    TEAMS_PARAMETER_NAME,
    TEAMS_MAX_ATTEMPTS,
    TEAMS_MAX_RETRY_AFTER_SECONDS,
    SLACK_MODE,
    SLACK_SECRET_ID,
    SLACK_PARAMETER_NAME,
    SLACK_CHANNEL,
    SLACK_ROUTES,
    SLACK_API_URL,
    SLACK_MAX_ATTEMPTS,
    SLACK_MAX_RETRY_AFTER_SECONDS,
    STATE_TABLE_NAME,
    METRICS_NAMESPACE,
    ALARM_BREAKDOWN,
    PROBE_ALERT_INTERVAL_SECONDS,
];

/// Variables that would put the credential in plain sight: refused.
pub const FORBIDDEN: [&str; 4] = [
    "SLACK_WEBHOOK_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_TOKEN",
    "TEAMS_WEBHOOK_URL",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    Slack,
    Teams,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Incoming webhook: one channel, no threads.
    Webhook,
    /// Bot token and `chat.postMessage`: channels, routing, threads.
    Bot,
}

/// Owner or account to channel (bot mode). Owners match case-insensitively and win over
/// accounts; the rest go to the default channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    pub owners: Vec<(String, String)>,
    pub accounts: Vec<(String, String)>,
}

impl Routes {
    /// `owner:acme=C0123,account:111122223333=C0456`
    pub fn parse(text: &str) -> Result<Routes, String> {
        let mut routes = Routes::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (key, channel) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?} is not KIND:VALUE=CHANNEL"))?;
            let channel = channel.trim();
            if channel.is_empty() {
                return Err(format!("{entry:?} has no channel"));
            }
            match key.trim().split_once(':') {
                Some(("owner", owner)) if !owner.is_empty() => routes
                    .owners
                    .push((owner.to_ascii_lowercase(), channel.to_owned())),
                Some(("account", account))
                    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    routes.accounts.push((account.to_owned(), channel.to_owned()))
                }
                _ => {
                    return Err(format!(
                        "{entry:?}: the key must be owner:NAME or account:12-DIGIT-ID"
                    ))
                }
            }
        }
        Ok(routes)
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty() && self.accounts.is_empty()
    }

    pub fn channel_for<'a>(&'a self, owner: Option<&str>, account: Option<&str>) -> Option<&'a str> {
        let by_owner = owner.and_then(|o| {
            self.owners
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(o))
                .map(|(_, c)| c.as_str())
        });
        by_owner.or_else(|| {
            account.and_then(|a| {
                self.accounts
                    .iter()
                    .find(|(id, _)| id == a)
                    .map(|(_, c)| c.as_str())
            })
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub kind: ChannelKind,
    /// Slack's mode; a Teams workflow is a webhook.
    pub mode: Mode,
    pub secret: SecretLocation,
    /// Bot mode: the default channel (ID or name).
    pub channel: Option<String>,
    pub routes: Routes,
    pub api_url: String,
    pub retry: RetryPolicy,
    pub state_table_name: String,
    pub metrics_namespace: String,
    pub alarm_breakdown: bool,
    pub probe_alert_interval_seconds: i64,
}

fn error(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(variable, message)
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Env::new(vars);
        if let Some(name) = FORBIDDEN.iter().find(|n| env.get(n).is_some()) {
            return Err(error(
                name,
                format!(
                    "must not be set: store the credential in Secrets Manager ({} or {}) \
                     or as an SSM SecureString ({} or {})",
                    SLACK_SECRET_ID.name,
                    TEAMS_SECRET_ID.name,
                    SLACK_PARAMETER_NAME.name,
                    TEAMS_PARAMETER_NAME.name
                ),
            ));
        }
        let kind = env.choice(&NOTIFIER_CHANNEL, |v| match v {
            "slack" => Some(ChannelKind::Slack),
            "teams" => Some(ChannelKind::Teams),
            _ => None,
        })?;
        if kind == ChannelKind::Teams {
            return Self::teams(&env);
        }
        let mode = env.choice(&SLACK_MODE, |v| match v {
            "webhook" => Some(Mode::Webhook),
            "bot" => Some(Mode::Bot),
            _ => None,
        })?;
        let (secret_id, parameter) = (SLACK_SECRET_ID.name, SLACK_PARAMETER_NAME.name);
        let secret = match (env.text(&SLACK_SECRET_ID), env.text(&SLACK_PARAMETER_NAME)) {
            (Some(id), None) => SecretLocation::SecretsManager(id.to_owned()),
            (None, Some(name)) => SecretLocation::Parameter(name.to_owned()),
            (Some(_), Some(_)) => {
                return Err(error(
                    secret_id,
                    format!("set {secret_id} or {parameter}, not both"),
                ))
            }
            (None, None) => {
                return Err(error(
                    secret_id,
                    format!("{secret_id} (Secrets Manager) or {parameter} (SSM SecureString) is required"),
                ))
            }
        };
        let channel = env.text(&SLACK_CHANNEL).map(str::to_owned);
        let routes =
            Routes::parse(env.text(&SLACK_ROUTES).unwrap_or("")).map_err(|m| error(SLACK_ROUTES.name, m))?;
        match mode {
            Mode::Bot if channel.is_none() => {
                return Err(error(SLACK_CHANNEL.name, "is required with SLACK_MODE=bot"));
            }
            Mode::Webhook if !routes.is_empty() => {
                return Err(error(
                    SLACK_ROUTES.name,
                    "needs SLACK_MODE=bot: a webhook posts to its own channel only",
                ));
            }
            _ => {}
        }
        let api_url = env.required(&SLACK_API_URL)?.trim_end_matches('/').to_owned();
        if !is_acceptable_url(&api_url) {
            return Err(error(
                SLACK_API_URL.name,
                "must be an https:// URL (or http:// on loopback)",
            ));
        }
        let metrics_namespace = env.required(&METRICS_NAMESPACE)?;
        validate_namespace(&metrics_namespace).map_err(|e| error(METRICS_NAMESPACE.name, e.to_string()))?;
        let retry = RetryPolicy {
            max_attempts: env.number(&SLACK_MAX_ATTEMPTS)? as u32,
            max_retry_after: Duration::from_secs(env.number(&SLACK_MAX_RETRY_AFTER_SECONDS)? as u64),
            ..RetryPolicy::default()
        };
        Ok(Config {
            kind,
            mode,
            secret,
            channel,
            routes,
            api_url,
            retry,
            state_table_name: env.required(&STATE_TABLE_NAME)?,
            metrics_namespace,
            alarm_breakdown: env.on_off(&ALARM_BREAKDOWN)?,
            probe_alert_interval_seconds: env.number(&PROBE_ALERT_INTERVAL_SECONDS)?,
        })
    }
}

impl Config {
    /// `NOTIFIER_CHANNEL=teams`: the workflow URL's location, the retry bounds and what
    /// both channels share. Slack's variables have no meaning here and are refused, so a
    /// half-switched deployment fails at init instead of posting nowhere.
    fn teams(env: &Env<'_>) -> Result<Config, ConfigError> {
        let slack_only = [
            SLACK_MODE,
            SLACK_SECRET_ID,
            SLACK_PARAMETER_NAME,
            SLACK_CHANNEL,
            SLACK_ROUTES,
        ];
        if let Some(v) = slack_only.iter().find(|v| env.get(v.name).is_some()) {
            return Err(error(
                v.name,
                "is a Slack setting: unset it with NOTIFIER_CHANNEL=teams",
            ));
        }
        let (secret_id, parameter) = (TEAMS_SECRET_ID.name, TEAMS_PARAMETER_NAME.name);
        let secret = match (env.text(&TEAMS_SECRET_ID), env.text(&TEAMS_PARAMETER_NAME)) {
            (Some(id), None) => SecretLocation::SecretsManager(id.to_owned()),
            (None, Some(name)) => SecretLocation::Parameter(name.to_owned()),
            (Some(_), Some(_)) => return Err(error(secret_id, format!("set {secret_id} or {parameter}, not both"))),
            (None, None) => {
                return Err(error(
                    secret_id,
                    format!("{secret_id} (Secrets Manager) or {parameter} (SSM SecureString) is required with NOTIFIER_CHANNEL=teams"),
                ))
            }
        };
        let metrics_namespace = env.required(&METRICS_NAMESPACE)?;
        validate_namespace(&metrics_namespace).map_err(|e| error(METRICS_NAMESPACE.name, e.to_string()))?;
        Ok(Config {
            kind: ChannelKind::Teams,
            mode: Mode::Webhook,
            secret,
            channel: None,
            routes: Routes::default(),
            api_url: String::new(),
            retry: RetryPolicy {
                max_attempts: env.number(&TEAMS_MAX_ATTEMPTS)? as u32,
                max_retry_after: Duration::from_secs(env.number(&TEAMS_MAX_RETRY_AFTER_SECONDS)? as u64),
                ..RetryPolicy::default()
            },
            state_table_name: env.required(&STATE_TABLE_NAME)?,
            metrics_namespace,
            alarm_breakdown: env.on_off(&ALARM_BREAKDOWN)?,
            probe_alert_interval_seconds: env.number(&PROBE_ALERT_INTERVAL_SECONDS)?,
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
        (SLACK_SECRET_ID.name, "oidc-watch/slack"),
        (STATE_TABLE_NAME.name, "t"),
    ];

    #[test]
    fn teams_reads_its_own_credential_and_refuses_slack_settings() {
        let teams = |extra: &[(&str, &str)]| {
            let mut pairs = vec![(NOTIFIER_CHANNEL.name, "teams"), (STATE_TABLE_NAME.name, "t")];
            pairs.extend_from_slice(extra);
            Config::from_map(&env(&pairs))
        };
        let config = teams(&[(TEAMS_PARAMETER_NAME.name, "/oidc-watch/teams")]).unwrap();
        assert_eq!(config.kind, ChannelKind::Teams);
        assert_eq!(
            config.secret,
            SecretLocation::Parameter("/oidc-watch/teams".into())
        );
        assert_eq!(config.retry.max_attempts, 4);
        assert_eq!(teams(&[]).unwrap_err().variable, TEAMS_SECRET_ID.name);
        let both = teams(&[(TEAMS_SECRET_ID.name, "a"), (TEAMS_PARAMETER_NAME.name, "b")]);
        assert_eq!(both.unwrap_err().variable, TEAMS_SECRET_ID.name);
        let mixed = teams(&[(TEAMS_SECRET_ID.name, "a"), (SLACK_SECRET_ID.name, "b")]);
        assert_eq!(mixed.unwrap_err().variable, SLACK_SECRET_ID.name);
        let plain = teams(&[("TEAMS_WEBHOOK_URL", "https://example.invalid/workflows/x")]);
        assert_eq!(plain.unwrap_err().variable, "TEAMS_WEBHOOK_URL");
        let bad = Config::from_map(&env(&[
            (NOTIFIER_CHANNEL.name, "email"),
            REQUIRED[0],
            REQUIRED[1],
        ]));
        assert_eq!(bad.unwrap_err().variable, NOTIFIER_CHANNEL.name);
    }

    #[test]
    fn defaults() {
        let config = Config::from_map(&env(&REQUIRED)).unwrap();
        assert_eq!(config.mode, Mode::Webhook);
        assert_eq!(
            config.secret,
            SecretLocation::SecretsManager("oidc-watch/slack".into())
        );
        assert_eq!(config.api_url, "https://slack.com/api");
        assert_eq!(config.metrics_namespace, "OidcWatch");
        assert!(config.alarm_breakdown);
        assert_eq!(config.probe_alert_interval_seconds, 3600);
        assert_eq!(config.retry.max_attempts, 4);
        let week = Config::from_map(&env(&[
            REQUIRED[0],
            REQUIRED[1],
            (PROBE_ALERT_INTERVAL_SECONDS.name, "604800"),
        ]));
        assert_eq!(week.map(|c| c.probe_alert_interval_seconds), Ok(604_800));
        let longer = Config::from_map(&env(&[
            REQUIRED[0],
            REQUIRED[1],
            (PROBE_ALERT_INTERVAL_SECONDS.name, "604801"),
        ]));
        assert_eq!(
            longer.map_err(|e| e.variable),
            Err(PROBE_ALERT_INTERVAL_SECONDS.name)
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: [(&[(&str, &str)], &str); 9] = [
            (&[(SLACK_MODE.name, "email")], SLACK_MODE.name),
            (
                &[("SLACK_WEBHOOK_URL", "https://hooks.slack.com/x")],
                "SLACK_WEBHOOK_URL",
            ),
            (&[("SLACK_BOT_TOKEN", "xoxb-1")], "SLACK_BOT_TOKEN"),
            (&[(SLACK_PARAMETER_NAME.name, "/x")], SLACK_SECRET_ID.name),
            (&[(SLACK_MODE.name, "bot")], SLACK_CHANNEL.name),
            (&[(SLACK_ROUTES.name, "owner:acme=C1")], SLACK_ROUTES.name),
            (
                &[(SLACK_API_URL.name, "http://slack.example")],
                SLACK_API_URL.name,
            ),
            (&[(SLACK_MAX_ATTEMPTS.name, "0")], SLACK_MAX_ATTEMPTS.name),
            (&[(ALARM_BREAKDOWN.name, "maybe")], ALARM_BREAKDOWN.name),
        ];
        for (extra, variable) in cases {
            let mut pairs = REQUIRED.to_vec();
            pairs.extend_from_slice(extra);
            let error = Config::from_map(&env(&pairs)).unwrap_err();
            assert_eq!(error.variable, variable, "{error}");
        }
        assert_eq!(
            Config::from_map(&env(&[(SLACK_SECRET_ID.name, "x")]))
                .unwrap_err()
                .variable,
            STATE_TABLE_NAME.name
        );
    }

    #[test]
    fn routes_by_owner_then_account() {
        let routes = Routes::parse("owner:Acme=C1, account:111122223333=C2").unwrap();
        assert_eq!(routes.channel_for(Some("acme"), Some("111122223333")), Some("C1"));
        assert_eq!(
            routes.channel_for(Some("other"), Some("111122223333")),
            Some("C2")
        );
        assert_eq!(routes.channel_for(None, Some("999999999999")), None);
        assert!(Routes::parse("acme=C1").is_err());
        assert!(Routes::parse("account:12=C1").is_err());
        let bot = Config::from_map(&env(&[
            REQUIRED[0],
            REQUIRED[1],
            (SLACK_MODE.name, "bot"),
            (SLACK_CHANNEL.name, "C0"),
            (SLACK_ROUTES.name, "owner:acme=C1"),
            (SLACK_API_URL.name, "http://127.0.0.1:8080/api/"),
        ]))
        .unwrap();
        assert_eq!(bot.api_url, "http://127.0.0.1:8080/api");
        assert_eq!(bot.routes.owners, [("acme".to_owned(), "C1".to_owned())]);
    }
}
