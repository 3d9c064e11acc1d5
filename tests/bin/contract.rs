//! `oidc-watch-contract`: what the functions promise the infrastructure, as JSON, for
//! infra/tests to check infra/template.yaml against (docs/contracts.md): the metrics and
//! their dimension sets, every environment variable each function reads with its default
//! and limits, the monitor's `diagnosis` log line, the SDK operations each function calls
//! and the state-table key prefixes each may touch.

use std::io::Write as _;

use diagnosis::metrics::{validate_namespace, MetricName, DEFAULT_NAMESPACE};
use oidc_watch_aws::env::Variable;
use serde_json::{json, Value};

fn operations(by_service: &[(&str, &[&str])]) -> Value {
    by_service
        .iter()
        .map(|(service, ops)| ((*service).to_owned(), json!(ops)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn variables(list: &[Variable]) -> Value {
    json!(list)
}

/// Namespaces on both sides of the rules, for the template's `MetricsNamespace` pattern to
/// be checked against the code's.
const NAMESPACE_SAMPLES: &[&str] = &[
    "OidcWatch",
    "Team/OidcWatch",
    "oidc watch",
    "a.b-c_d#e:f",
    "AWSome",
    "aws/lambda",
    "AWS/Lambda",
    ":OidcWatch",
    "",
    "Oidc!Watch",
    "Oidc\tWatch",
    "Öidc",
];

fn main() {
    let long_ok = "n".repeat(255);
    let too_long = "n".repeat(256);
    let namespaces: Vec<Value> = NAMESPACE_SAMPLES
        .iter()
        .copied()
        .chain([long_ok.as_str(), too_long.as_str()])
        .map(|n| json!({"namespace": n, "valid": validate_namespace(n).is_ok()}))
        .collect();
    let metrics: Vec<Value> = MetricName::ALL
        .iter()
        .map(|m| {
            let sets: Vec<Vec<&str>> = m
                .dimension_sets()
                .iter()
                .map(|set| set.iter().map(|d| d.as_str()).collect())
                .collect();
            json!({"name": m.as_str(), "dimension_sets": sets})
        })
        .collect();
    let contract = json!({
        "namespace_default": DEFAULT_NAMESPACE,
        "namespace_samples": namespaces,
        "state_table": {"ttl_attribute": oidc_watch_aws::dynamodb::TTL_ATTRIBUTE},
        "metrics": metrics,
        "functions": {
            "monitor": {
                "environment": variables(oidc_watch_aws::config::VARIABLES),
                "log": {
                    "message": oidc_monitor::contract::DIAGNOSIS_MESSAGE,
                    "fields": oidc_monitor::contract::DIAGNOSIS_LOG_FIELDS,
                },
                "sdk_operations": operations(oidc_monitor::contract::SDK_OPERATIONS),
                "key_prefixes": oidc_watch_aws::dynamodb::KEY_PREFIXES,
            },
            "notifier": {
                "environment": variables(oidc_notifier::config::VARIABLES),
                "forbidden_environment": oidc_notifier::config::FORBIDDEN,
                "sdk_operations": operations(&[
                    ("dynamodb", oidc_watch_aws::notifier_store::SDK_OPERATIONS),
                    ("cloudwatch", oidc_watch_aws::breakdown::SDK_OPERATIONS),
                    ("secretsmanager", oidc_watch_aws::secrets::SECRETS_MANAGER_OPERATIONS),
                    ("ssm", oidc_watch_aws::secrets::SSM_OPERATIONS),
                ]),
                "get_parameter_with_decryption": oidc_watch_aws::secrets::GET_PARAMETER_WITH_DECRYPTION,
                "key_prefixes": oidc_watch_aws::notifier_store::KEY_PREFIXES,
            },
            "auditor": {
                "environment": variables(oidc_auditor::config::VARIABLES),
                "sdk_operations": operations(oidc_auditor::contract::SDK_OPERATIONS),
                "key_prefixes": oidc_auditor::contract::KEY_PREFIXES,
                "read_key_prefixes": oidc_auditor::contract::READ_KEY_PREFIXES,
            },
        },
    });
    // A closed pipe (`| head`) is the reader's choice, not an error worth a panic.
    let _ = writeln!(std::io::stdout(), "{contract:#}");
}
