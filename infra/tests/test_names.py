"""Every metric, dimension and log field that the dashboard, the alarms and the Contributor
Insights rules name is one the code emits; every environment variable is one the code
reads; every permission is one the code uses. The code's side is what the code declares
(oidc-watch-contract, conftest.CodeFacts), never a second list kept here."""

import json
import re
from pathlib import Path

import pytest

from conftest import ROOT, actions_of, policy_statements, resources_of
from test_dashboard import dashboard, fill, sub_text

NS = "OidcWatch"  # the MetricsNamespace parameter's default, checked against the code below


def test_namespace_default_matches_code(template, code):
    assert template["Parameters"]["MetricsNamespace"]["Default"] == code.namespace_default == NS


def test_namespace_pattern_admits_what_the_functions_accept(template, code):
    """A namespace the template lets through but the functions refuse fails every cold
    start; one the template refuses but the code takes is a needless limit."""
    pattern = template["Parameters"]["MetricsNamespace"]["AllowedPattern"]
    samples = code.contract["namespace_samples"]
    assert any(s["valid"] for s in samples) and any(not s["valid"] for s in samples)
    for sample in samples:
        assert bool(re.fullmatch(pattern, sample["namespace"])) == sample["valid"], sample


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


def test_monitor_environment_is_what_it_reads(template, code):
    names = set(code.environment("monitor"))
    env = template["Resources"]["MonitorFunction"]["Properties"]["Environment"]["Variables"]
    assert set(env) == names, set(env) ^ names


def test_notifier_environment_is_what_it_reads(template, code):
    names = set(code.environment("notifier"))
    env = template["Resources"]["NotifierFunction"]["Properties"]["Environment"]["Variables"]
    assert set(env) <= names, set(env) - names
    assert {"SLACK_SECRET_ID", "STATE_TABLE_NAME"} <= set(env)
    assert not set(env) & set(code.function("notifier")["forbidden_environment"])


def test_auditor_environment_is_what_it_reads(template, code):
    names = set(code.environment("auditor"))
    env = template["Resources"]["AuditorFunction"]["Properties"]["Environment"]["Variables"]
    assert set(env) == names, set(env) ^ names


@pytest.mark.parametrize("function, resource", [("monitor", "MonitorFunction"), ("notifier", "NotifierFunction"),
                                                ("auditor", "AuditorFunction")])
def test_parameters_have_the_codes_defaults_and_limits(template, code, function, resource):
    """A variable set from a parameter: the parameter's Default, MinValue and MaxValue
    (AllowedValues for a choice) are the function's, so a deploy the template accepts
    passes the function's init, and the other way round."""
    env = template["Resources"][resource]["Properties"]["Environment"]["Variables"]
    variables = code.environment(function)
    checked = 0
    for name, value in env.items():
        if not (isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in template["Parameters"]):
            continue
        parameter, variable = template["Parameters"][value["Ref"]], variables[name]
        if variable["default"] is not None and parameter.get("Default", "") != "":
            assert str(parameter["Default"]) == variable["default"], (name, parameter["Default"], variable)
        if variable["kind"] == "number":
            assert parameter["Type"] == "Number", name
            assert parameter.get("MinValue") == variable["min"], (name, parameter.get("MinValue"), variable)
            assert parameter.get("MaxValue") == variable["max"], (name, parameter.get("MaxValue"), variable)
            checked += 1
        if variable["kind"] == "choice":
            assert set(parameter["AllowedValues"]) == set(variable["values"]), name
    assert checked >= (6 if function == "monitor" else 1), checked


# ------------------------------------------------------------------ permissions vs SDK calls

# SDK operation (as the SDK names it) -> IAM action, per service. Only the services the
# template grants; an SDK operation not listed here is not something we grant. A tuple:
# the call is authorized per item by any of these actions (DynamoDB transactions; there
# is no dynamodb:TransactWriteItems action), none of them required on its own. None: the
# operation needs no permission (sts:GetCallerIdentity).
SDK_ACTIONS = {
    "iam": {op: "iam:" + op for op in ("GetRole", "ListRoles", "ListOpenIDConnectProviders",
                                       "GetOpenIDConnectProvider")},
    "sts": {"AssumeRole": "sts:AssumeRole", "GetCallerIdentity": None},
    "sns": {"Publish": "sns:Publish"},
    "dynamodb": {**{op: "dynamodb:" + op for op in
                    ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
                     "BatchWriteItem")},
                 "TransactWriteItems": ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                                        "dynamodb:ConditionCheckItem"),
                 "TransactGetItems": ("dynamodb:GetItem",)},
    "cloudwatch": {"PutMetricData": "cloudwatch:PutMetricData", "GetMetricData": "cloudwatch:GetMetricData"},
    "secretsmanager": {"GetSecretValue": "secretsmanager:GetSecretValue"},
    "ssm": {"GetParameter": "ssm:GetParameter"},
}
# Calls the code makes that this template deliberately does not grant.
NOT_GRANTED: dict[str, str] = {}
# Permissions granted for something other than an SDK call in the function's code.
NOT_SDK = {"kms:Decrypt", "kms:GenerateDataKey"}  # the encrypted topic, table and queue; SSM's decryption
# Granted before the code needs them: the condition checks of the monitor's
# TransactWriteItems. Harmless once the code calls transact_write_items.
AHEAD_OF_CODE = {"MonitorFunction": {"dynamodb:ConditionCheckItem"}}


def sdk_calls(operations: dict[str, list[str]]):
    """(actions the declared SDK operations need, actions they may use)."""
    required, possible = set(), set()
    for service, ops in operations.items():
        for op in ops:
            assert op in SDK_ACTIONS.get(service, {}), f"{service}:{op} is called but not mapped to an IAM action"
            action = SDK_ACTIONS[service][op]
            if isinstance(action, tuple):
                possible |= set(action)
            elif action is not None:
                required.add(action)
    return required, required | possible


def granted(template, function):
    """Every action of the function's policies, in either branch of a condition."""
    actions = set()
    for s in policy_statements(template["Resources"][function]):
        actions |= set(actions_of(s))
    return actions


@pytest.mark.parametrize("function, resource", [("monitor", "MonitorFunction"), ("notifier", "NotifierFunction"),
                                                ("auditor", "AuditorFunction")])
def test_permissions_are_the_sdk_calls(template, code, function, resource):
    required, possible = sdk_calls(code.function(function)["sdk_operations"])
    grants = granted(template, resource) - NOT_SDK
    extra = grants - possible - AHEAD_OF_CODE.get(resource, set())
    assert not extra, f"{resource} is granted actions its code never calls: {extra}"
    missing = required - grants - set(NOT_GRANTED)
    assert not missing, f"{resource} calls APIs it is not granted: {missing}"
