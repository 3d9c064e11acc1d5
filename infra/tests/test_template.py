"""The shape of the stack that infra/README.md describes, checked on the parsed template and
on its CloudFormation translation."""

import json
import re

import pytest

from conftest import PSEUDO, policy_statements, resources_of, with_parameters

RULE_STATE = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
BASE_PATTERN = {
    "source": ["aws.sts"],
    "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {"eventSource": ["sts.amazonaws.com"], "eventName": ["AssumeRoleWithWebIdentity"]},
}
# The IAM calls whose records the monitor reads as changes (diagnosis::change).
IAM_CHANGE_PATTERN = {
    "source": ["aws.iam"],
    "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {"eventSource": ["iam.amazonaws.com"],
               "eventName": ["CreateRole", "DeleteRole", "UpdateAssumeRolePolicy",
                             "CreateOpenIDConnectProvider", "DeleteOpenIDConnectProvider",
                             "AddClientIDToOpenIDConnectProvider", "RemoveClientIDFromOpenIDConnectProvider",
                             "UpdateOpenIDConnectProviderThumbprint"],
               "errorCode": [{"exists": False}]},
}
# Write events reach a plain ENABLED rule.
CHANGE_RULE_STATE = "ENABLED"


def functions(template):
    return resources_of(template, "AWS::Serverless::Function")


def test_functions_are_rust_cargolambda_on_al2023(template):
    glob = template["Globals"]["Function"]
    assert glob["Runtime"] == "provided.al2023" and glob["Handler"] == "bootstrap"
    assert glob["Architectures"] == [{"Ref": "Architecture"}]
    arch = template["Parameters"]["Architecture"]
    assert arch["Default"] == "arm64" and set(arch["AllowedValues"]) == {"arm64", "x86_64"}
    bins = {}
    for name, fn in functions(template).items():
        assert fn["Metadata"]["BuildMethod"] == "rust-cargolambda"
        assert fn["Properties"]["CodeUri"] == "..", "CodeUri is the Cargo workspace root"
        bins[name] = fn["Metadata"]["BuildProperties"]["Binary"]
    assert sorted(bins.values()) == ["oidc-auditor", "oidc-monitor", "oidc-notifier"]


def test_json_logs_into_explicit_log_groups_with_retention(template, transformed):
    for name, fn in resources_of(transformed, "AWS::Lambda::Function").items():
        logging = fn["Properties"]["LoggingConfig"]
        assert logging["LogFormat"] == "JSON", name
        group = transformed["Resources"][logging["LogGroup"]["Ref"]]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}


def test_state_table(template):
    table = template["Resources"]["StateTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    keys = {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]}
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert keys == {"pk": "HASH", "sk": "RANGE"} and types == {"pk": "S", "sk": "S"}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_topic_encrypted_and_email_optional(template):
    topic = template["Resources"]["AlertTopic"]["Properties"]
    assert topic["KmsMasterKeyId"]
    sub = template["Resources"]["AlertEmailSubscription"]
    assert sub["Condition"] == "HasAlertEmail" and sub["Properties"]["Protocol"] == "email"


def test_slack_secret_by_name_only(template):
    params = template["Parameters"]
    for name, param in params.items():
        assert not re.search(r"webhook|token|password", name, re.I) or "Name" in name, name
        assert param.get("NoEcho") is None, f"{name}: a secret value must never be a parameter"
    for deployed in (with_parameters(template), with_parameters(template, SlackParameterName="/oidc-watch/slack")):
        env = deployed["Resources"]["NotifierFunction"]["Properties"]["Environment"]["Variables"]
        assert not {"SLACK_WEBHOOK_URL", "SLACK_BOT_TOKEN", "SLACK_TOKEN"} & set(env)
    env = with_parameters(template)["Resources"]["NotifierFunction"]["Properties"]["Environment"]["Variables"]
    assert env["SLACK_SECRET_ID"] == {"Ref": "SlackSecretName"} and "SLACK_PARAMETER_NAME" not in env


def statements(fn):
    return policy_statements(fn)


def by_action(stmts):
    table = {}
    for s in stmts:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        for a in actions:
            table.setdefault(a, []).append(s)
    return table


def test_monitor_least_privilege(template):
    table = by_action(statements(template["Resources"]["MonitorFunction"]))
    assert table["sts:AssumeRole"][0]["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${ReadRoleName}"}
    put = table["cloudwatch:PutMetricData"][0]
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": {"Ref": "MetricsNamespace"}}}
    assert table["sns:Publish"][0]["Resource"] == {"Ref": "AlertTopic"}
    for action, stmts in table.items():
        if action.startswith("dynamodb:"):
            assert stmts[0]["Resource"] == {"Fn::GetAtt": ["StateTable", "Arn"]}, action
        if stmts[0]["Resource"] == "*":
            # Only actions without resource-level permissions (or narrowed by a condition).
            assert action in {"iam:ListOpenIDConnectProviders", "cloudwatch:PutMetricData"}, action
    assert not [a for a in table if "*" in a], "no wildcard actions"


def test_notifier_least_privilege(template):
    table = by_action(statements(template["Resources"]["NotifierFunction"]))
    secret = table["secretsmanager:GetSecretValue"][0]["Resource"]["Fn::Sub"]
    assert secret.endswith(":secret:${SlackSecretName}-??????")
    assert table["cloudwatch:GetMetricData"][0]["Resource"] == "*"
    for action, stmts in table.items():
        if stmts[0]["Resource"] == "*":
            assert action == "cloudwatch:GetMetricData", action
    assert not [a for a in table if "*" in a]


def test_auditor_least_privilege(template):
    table = by_action(statements(template["Resources"]["AuditorFunction"]))
    assert set(table) == {
        "iam:ListRoles", "iam:GetRole", "iam:ListOpenIDConnectProviders", "iam:GetOpenIDConnectProvider",
        "sts:AssumeRole", "sns:Publish", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem",
        "dynamodb:Query", "kms:Decrypt", "kms:GenerateDataKey"}, set(table)
    own_roles = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"}
    assert table["iam:ListRoles"][0]["Resource"] == own_roles
    assert table["sns:Publish"][0]["Resource"] == {"Ref": "AlertTopic"}
    for action, stmts in table.items():
        if stmts[0]["Resource"] == "*":
            assert action == "iam:ListOpenIDConnectProviders", action
    assert not [a for a in table if "*" in a]


def resolve(x, params: dict):
    """Fn::Sub (with and without a map), Fn::Join and Fn::Split with Ref of parameters:
    what CloudFormation makes of a resource list."""
    if isinstance(x, dict) and set(x) == {"Ref"}:
        return params[x["Ref"]]
    if isinstance(x, dict) and "Fn::Sub" in x:
        text, names = (x["Fn::Sub"], {}) if isinstance(x["Fn::Sub"], str) else x["Fn::Sub"]
        names = {k: resolve(v, params) for k, v in names.items()}
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(names.get(m[1], params.get(m[1]))), text)
    if isinstance(x, dict) and "Fn::Join" in x:
        sep, items = x["Fn::Join"]
        return resolve(sep, params).join(resolve(items, params))
    if isinstance(x, dict) and "Fn::Split" in x:
        sep, text = x["Fn::Split"]
        return resolve(text, params).split(sep)
    if isinstance(x, list):
        return [resolve(i, params) for i in x]
    return x


def test_the_auditor_assumes_the_read_role_of_the_configured_accounts_only(template):
    alone = with_parameters(template)["Resources"]["AuditorFunction"]
    assert "sts:AssumeRole" not in by_action(statements(alone)), "one account: no AssumeRole at all"
    deployed = with_parameters(template, AuditAccounts="111122223333,444455556666", ReadRoleName="audit-read")
    (stmt,) = by_action(statements(deployed["Resources"]["AuditorFunction"]))["sts:AssumeRole"]
    params = {**PSEUDO, "ReadRoleName": "audit-read", "AuditAccounts": "111122223333,444455556666"}
    assert resolve(stmt["Resource"], params) == [
        "arn:aws:iam::111122223333:role/audit-read", "arn:aws:iam::444455556666:role/audit-read"]


def test_the_audit_schedule_invokes_the_auditor_with_its_payload(template):
    schedule = template["Resources"]["AuditorSchedule"]
    assert schedule["Type"] == "AWS::Scheduler::Schedule"
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == {"Ref": "AuditSchedule"}
    assert template["Parameters"]["AuditSchedule"]["Default"] == "rate(7 days)"
    pattern = template["Parameters"]["AuditSchedule"]["AllowedPattern"]
    for good in ("rate(7 days)", "rate(1 day)", "cron(0 6 ? * MON *)"):
        assert re.fullmatch(pattern, good), good
    for bad in ("rate(0 days)", "weekly", "rate(7 fortnights)", "at(2026-01-01T00:00:00)"):
        assert not re.fullmatch(pattern, bad), bad
    target = props["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["AuditorFunction", "Arn"]}
    assert json.loads(target["Input"]) == {"source": "oidc-watch.audit-schedule"}
    role = template["Resources"][target["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    (policy,) = role["Policies"]
    (invoke,) = policy["PolicyDocument"]["Statement"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert invoke["Resource"] == {"Fn::GetAtt": ["AuditorFunction", "Arn"]}
    accounts = template["Parameters"]["AuditAccounts"]["AllowedPattern"]
    assert re.fullmatch(accounts, "") and re.fullmatch(accounts, "111122223333,444455556666")
    assert not re.fullmatch(accounts, "111122223333, 444455556666")
    assert not re.fullmatch(accounts, "*")


def test_async_failures_go_to_encrypted_queues(template):
    for name, fn in functions(template).items():
        config = fn["Properties"]["EventInvokeConfig"]
        dest = config["DestinationConfig"]["OnFailure"]
        assert dest["Type"] == "SQS" and dest["Destination"] == {"Fn::GetAtt": ["FailedInvocationQueue", "Arn"]}
    for queue in ("FailedInvocationQueue", "EventDeliveryDeadLetterQueue"):
        assert template["Resources"][queue]["Properties"]["KmsMasterKeyId"]
    alarmed = {}
    for name in ("DeadLettersAlarm", "FailedInvocationsAlarm"):
        alarm = template["Resources"][name]["Properties"]
        (dim,) = alarm["Dimensions"]
        alarmed[dim["Value"]["Fn::GetAtt"][0]] = name
    assert alarmed == {"EventDeliveryDeadLetterQueue": "DeadLettersAlarm", "FailedInvocationQueue": "FailedInvocationsAlarm"}


def rules(t):
    return resources_of(t, "AWS::Events::Rule")


def kind(pattern):
    """'changes' for IAM_CHANGE_PATTERN; else 'failures' or 'successes', from the errorCode
    clause, and the rest must be BASE_PATTERN."""
    if pattern == IAM_CHANGE_PATTERN:
        return "changes"
    p = json.loads(json.dumps(pattern))
    clause = p["detail"].pop("errorCode")
    assert p == BASE_PATTERN, p
    assert clause in ([{"exists": True}], [{"exists": False}]), clause
    return "failures" if clause[0]["exists"] else "successes"


def test_rules(template, forwarder):
    central = rules(template)
    kinds = {name: kind(r["Properties"]["EventPattern"]) for name, r in central.items()}
    assert sorted(kinds.values()) == ["changes", "changes", "failures", "failures", "successes", "successes"]
    buses = {name: r["Properties"].get("EventBusName", "default") for name, r in central.items()}
    bus = str({"Fn::GetAtt": ["CentralEventBus", "Name"]})
    assert {(kinds[n], str(buses[n])) for n in central} == {
        (k, b) for k in ("failures", "successes", "changes") for b in ("default", bus)}
    for name, rule in central.items():
        props = rule["Properties"]
        assert props["State"] == (CHANGE_RULE_STATE if kinds[name] == "changes" else RULE_STATE), name
        (target,) = props["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": ["MonitorFunction", "Arn"]}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
        assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["EventDeliveryDeadLetterQueue", "Arn"]}
        permissions = [p for p in resources_of(template, "AWS::Lambda::Permission").values()
                       if p["Properties"]["SourceArn"] == {"Fn::GetAtt": [name, "Arn"]}]
        assert len(permissions) == 1, name
    fwd = rules(forwarder)
    fwd_kinds = {name: kind(r["Properties"]["EventPattern"]) for name, r in fwd.items()}
    assert sorted(fwd_kinds.values()) == ["changes", "failures", "successes"]
    for name, rule in fwd.items():
        props = rule["Properties"]
        if fwd_kinds[name] == "changes":
            # IAM is global: CloudTrail hands its events to EventBridge in us-east-1 only.
            assert rule["Condition"] == "ForwardIamChanges", name
            assert forwarder["Conditions"]["ForwardIamChanges"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}
            assert props["State"] == CHANGE_RULE_STATE, name
        else:
            assert "Condition" not in rule, name
            assert props["State"] == RULE_STATE, name
        assert "EventBusName" not in props, name
        (target,) = props["Targets"]
        assert target["Arn"] == {"Ref": "CentralEventBusArn"} and target["RoleArn"]
        assert "RetryPolicy" not in target, "event-bus targets take no retry policy"
        assert target["DeadLetterConfig"]


def test_central_bus_accepts_only_the_organisation(template):
    policy = template["Resources"]["CentralEventBusPolicy"]
    assert policy["Condition"] == "HasOrganization"
    stmt = policy["Properties"]["Statement"]
    assert stmt["Action"] == "events:PutEvents" and stmt["Effect"] == "Allow"
    assert stmt["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}


def test_forwarder_read_role(forwarder):
    role = forwarder["Resources"]["ReadRole"]
    props = role["Properties"]
    assert role["Condition"] == "CreateReadRole"
    assert props["RoleName"] == {"Ref": "ReadRoleName"}
    (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Fn::If": ["HasAuditor", [{"Ref": "MonitorRoleArn"}, {"Ref": "AuditorRoleArn"}],
                                                      {"Ref": "MonitorRoleArn"}]}}
    assert trust["Action"] == "sts:AssumeRole"
    actions = sorted(s["Action"] for p in props["Policies"] for s in p["PolicyDocument"]["Statement"])
    # GetRole for the monitor; ListRoles for the auditor's whole-account read.
    assert actions == ["iam:GetOpenIDConnectProvider", "iam:GetRole", "iam:ListOpenIDConnectProviders", "iam:ListRoles"]
    put = forwarder["Resources"]["ForwarderRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert put == [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": {"Ref": "CentralEventBusArn"}}]


@pytest.mark.parametrize("name", ["FailureSpikeAlarm", "FailureRateAlarm", "MonitorErrorsAlarm",
                                  "NotifierErrorsAlarm", "DeadLettersAlarm", "FailedInvocationsAlarm"])
def test_alarms_go_to_the_alert_topic(template, name):
    props = template["Resources"][name]["Properties"]
    assert props["AlarmActions"] == [{"Ref": "AlertTopic"}]


def test_anomaly_alarm_uses_the_detector(template):
    detector = template["Resources"]["FailuresAnomalyDetector"]["Properties"]["SingleMetricAnomalyDetector"]
    alarm = template["Resources"]["FailureSpikeAlarm"]["Properties"]
    band = next(m for m in alarm["Metrics"] if m["Id"] == alarm["ThresholdMetricId"])
    assert band["Expression"]["Fn::Sub"].startswith("ANOMALY_DETECTION_BAND(failures,")
    metric = next(m for m in alarm["Metrics"] if m["Id"] == "failures")["MetricStat"]
    assert metric["Metric"]["MetricName"] == detector["MetricName"] and metric["Stat"] == detector["Stat"]
    assert metric["Metric"]["Namespace"] == detector["Namespace"]
    assert "Dimensions" not in metric["Metric"] and "Dimensions" not in detector


def test_thresholds_are_parameters(template):
    rate = template["Resources"]["FailureRateAlarm"]["Properties"]
    assert rate["Threshold"] == {"Ref": "FailureRateThresholdPercent"}
    expr = next(m for m in rate["Metrics"] if m["Id"] == "rate")["Expression"]["Fn::Sub"]
    assert "${FailureRateMinAttempts}" in expr
    for name in ("MonitorErrorsAlarm", "NotifierErrorsAlarm"):
        assert template["Resources"][name]["Properties"]["Threshold"] == {"Ref": "FunctionErrorsThreshold"}
