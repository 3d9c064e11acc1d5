"""Every metric, dimension and log field that the dashboard, the alarms and the Contributor
Insights rules name is one the code emits; every environment variable is one the code
reads; every permission is one the code uses. The code's side is read from the code
itself (conftest.CodeFacts and the parsers below), never from a second list kept here."""

import json
import re
from pathlib import Path

import pytest

from conftest import ROOT, actions_of, policy_statements, resources_of, rust_str_consts
from test_dashboard import dashboard, fill, sub_text

NS = "OidcWatch"  # the MetricsNamespace parameter's default, checked against the code below


def test_namespace_default_matches_code(template, code):
    assert template["Parameters"]["MetricsNamespace"]["Default"] == code.namespace_default == NS


def check_metric(code, name, dims, where):
    assert name in code.metric_names.values(), f"{where}: metric {name} is not emitted by the code"
    assert frozenset(dims) in code.dimension_sets[name], (
        f"{where}: {name} is never published with dimensions {sorted(dims)}; "
        f"the code publishes {[sorted(s) for s in code.dimension_sets[name]]}")


def dashboard_metrics(body):
    """(namespace, metric, dimension names) from metric arrays and SEARCH expressions."""
    found = []
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], dict):
                for ns, dims, metric in re.findall(
                        r"\{([^,}]+)((?:,[^,}]+)*)\}\s*MetricName=\"(\w+)\"", row[0].get("expression", "")):
                    found.append((ns, metric, [d for d in dims.split(",") if d]))
            else:
                strings = [x for x in row if isinstance(x, str)]
                found.append((strings[0], strings[1], strings[2::2]))
    return found


def test_dashboard_names_only_emitted_metrics(template, code):
    found = dashboard_metrics(dashboard(template))
    ours = [f for f in found if f[0] == NS]
    assert len(ours) >= 8, found
    for ns, metric, dims in ours:
        check_metric(code, metric, dims, "dashboard")
    assert {m for _, m, _ in ours} == set(code.metric_names.values()), "the dashboard shows every metric"
    searched = {tuple(d) for ns, m, d in ours if d}
    assert {("Cause",), ("RoleName",)} <= searched


def alarm_metrics(template):
    for name, alarm in resources_of(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        if "MetricName" in props:
            yield name, props["Namespace"], props["MetricName"], [d["Name"] for d in props.get("Dimensions", [])]
        for m in props.get("Metrics", []):
            if "MetricStat" in m:
                metric = m["MetricStat"]["Metric"]
                yield name, metric["Namespace"], metric["MetricName"], [d["Name"] for d in metric.get("Dimensions", [])]
    for name, det in resources_of(template, "AWS::CloudWatch::AnomalyDetector").items():
        single = det["Properties"]["SingleMetricAnomalyDetector"]
        yield name, single["Namespace"], single["MetricName"], [d["Name"] for d in single.get("Dimensions", [])]


def test_alarms_name_only_emitted_metrics(template, code):
    ours = 0
    for where, ns, metric, dims in alarm_metrics(template):
        if ns == {"Ref": "MetricsNamespace"}:
            ours += 1
            check_metric(code, metric, dims, where)
        else:
            assert ns in ("AWS/Lambda", "AWS/SQS"), (where, ns)
    assert ours >= 4


def log_json_prefix():
    """How lambda_runtime writes a tracing event with LogFormat JSON: tracing-subscriber's
    JSON formatter, which nests the event's fields (message included) under "fields"
    unless flatten_event(true) is set. Read from the runtime's own source, at the version
    Cargo.lock pins."""
    lock = (ROOT / "Cargo.lock").read_text()
    version = re.search(r'name = "lambda_runtime_api_client"\nversion = "([^"]+)"', lock).group(1)
    sources = sorted(Path.home().glob(f".cargo/registry/src/*/lambda_runtime_api_client-{version}/src/tracing.rs"))
    if not sources:
        pytest.skip(f"lambda_runtime_api_client {version} source not in ~/.cargo/registry (run cargo fetch)")
    src = sources[0].read_text()
    assert ".json()" in src and "AWS_LAMBDA_LOG_FORMAT" in src
    assert "flatten_event" not in src, "the runtime now flattens fields: the paths are $.cause, not $.fields.cause"
    main = (ROOT / "functions/monitor/src/main.rs").read_text()
    assert "lambda_runtime::tracing::init_default_subscriber()" in main
    return "fields"


def test_insight_rules_name_only_logged_fields(template, code):
    prefix = log_json_prefix()
    for name, rule in resources_of(template, "AWS::CloudWatch::InsightRule").items():
        body = json.loads(fill(sub_text(rule["Properties"]["RuleBody"]), template))
        paths = list(body["Contribution"]["Keys"]) + [f["Match"] for f in body["Contribution"]["Filters"]]
        for path in paths:
            head, _, field = path.partition(f"$.{prefix}.")
            assert head == "" and field, f"{name}: {path} is not a $.{prefix}.<field> path"
            assert field in code.log_fields | {"message"}, f"{name}: the diagnosis log line has no field {field}"
        message = [f for f in body["Contribution"]["Filters"] if f["Match"] == f"$.{prefix}.message"]
        assert message and message[0]["In"] == [code.diagnosis_message], name


def test_logs_insights_query_names_only_logged_fields(template, code):
    prefix = log_json_prefix()
    log = next(w for w in dashboard(template)["widgets"] if w["type"] == "log")["properties"]["query"]
    fields = re.findall(rf"`{prefix}\.(\w+)`", log)
    assert {"cause", "role", "repository", "subject", "run_id"} <= set(fields)
    for field in fields:
        assert field in code.log_fields | {"message"}, f"the diagnosis log line has no field {field}"
    assert f'`{prefix}.message` = "{code.diagnosis_message}"' in log
    bare = re.sub(r"`[^`]*`|'[^']*'|\"[^\"]*\"", "", log)
    assert not re.search(rf"\b{prefix}\.\w", bare), "quote nested field names with backticks"


def test_monitor_environment_is_config_rs(template):
    names = rust_str_consts(ROOT / "functions/aws/src/config.rs")
    assert all(k == v for k, v in names.items())
    env = template["Resources"]["MonitorFunction"]["Properties"]["Environment"]["Variables"]
    assert set(env) == set(names.values()), (set(env) ^ set(names.values()))


def test_notifier_environment_is_its_config_rs(template):
    config = ROOT / "functions/notifier/src/config.rs"
    if not config.exists():
        pytest.skip("functions/notifier not there yet")
    names = set(rust_str_consts(config).values())
    env = template["Resources"]["NotifierFunction"]["Properties"]["Environment"]["Variables"]
    assert set(env) <= names, set(env) - names
    assert {"SLACK_SECRET_ID", "STATE_TABLE_NAME"} <= set(env)


# ------------------------------------------------------------------ permissions vs SDK calls

# SDK method (snake_case, as the Rust SDK names it) -> IAM action, per service. Only the
# services the template grants; an SDK call not listed here is not something we grant. A
# tuple: the call is authorized per item by any of these actions (DynamoDB transactions;
# there is no dynamodb:TransactWriteItems action), none of them required on its own.
SDK_ACTIONS = {
    "iam": {"get_role": "iam:GetRole", "list_open_id_connect_providers": "iam:ListOpenIDConnectProviders",
            "get_open_id_connect_provider": "iam:GetOpenIDConnectProvider"},
    "sts": {"assume_role": "sts:AssumeRole"},
    "sns": {"publish": "sns:Publish"},
    "dynamodb": {**{op: "dynamodb:" + "".join(p.title() for p in op.split("_")) for op in
                    ("get_item", "put_item", "update_item", "delete_item", "query", "scan",
                     "batch_get_item", "batch_write_item")},
                 "transact_write_items": ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                                          "dynamodb:ConditionCheckItem"),
                 "transact_get_items": ("dynamodb:GetItem",)},
    "cloudwatch": {"put_metric_data": "cloudwatch:PutMetricData", "get_metric_data": "cloudwatch:GetMetricData"},
    "secretsmanager": {"get_secret_value": "secretsmanager:GetSecretValue"},
    "ssm": {"get_parameter": "ssm:GetParameter"},
}
# Calls the code makes that this template deliberately does not grant.
NOT_GRANTED: dict[str, str] = {}
# Permissions granted for something other than an SDK call in the function's code.
NOT_SDK = {"kms:Decrypt", "kms:GenerateDataKey"}  # the encrypted topic, table and queue; SSM's decryption
# Granted before the code needs them: the condition checks of the monitor's
# TransactWriteItems. Harmless once the code calls transact_write_items.
AHEAD_OF_CODE = {"MonitorFunction": {"dynamodb:ConditionCheckItem"}}


def sdk_calls(crate_dirs):
    """(actions the calls need, actions they may use)."""
    text = "\n".join(p.read_text() for d in crate_dirs for p in (ROOT / d).rglob("*.rs"))
    required, possible = set(), set()
    for ops in SDK_ACTIONS.values():
        for op, action in ops.items():
            if re.search(rf"\.{op}\(\)", text):
                if isinstance(action, tuple):
                    possible |= set(action)
                else:
                    required.add(action)
    return required, required | possible


def granted(template, function):
    """Every action of the function's policies, in either branch of a condition."""
    actions = set()
    for s in policy_statements(template["Resources"][function]):
        actions |= set(actions_of(s))
    return actions


@pytest.mark.parametrize("function, crates", [
    ("MonitorFunction", ["functions/monitor/src", "functions/aws/src"]),
    ("NotifierFunction", ["functions/notifier/src"]),
])
def test_permissions_are_the_sdk_calls(template, function, crates):
    if not all((ROOT / c).exists() for c in crates):
        pytest.skip(f"{crates} not there yet")
    required, possible = sdk_calls(crates)
    grants = granted(template, function) - NOT_SDK
    extra = grants - possible - AHEAD_OF_CODE.get(function, set())
    assert not extra, f"{function} is granted actions its code never calls: {extra}"
    missing = required - grants - set(NOT_GRANTED)
    assert not missing, f"{function} calls APIs it is not granted: {missing}"
