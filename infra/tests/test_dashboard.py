"""The DashboardBody and the Contributor Insights rule bodies are valid JSON once their
${...} are filled, and every ${...} names a parameter, a pseudo parameter, a resource or a
resource attribute of the template (a typo would deploy as a literal)."""

import json
import re

import pytest

PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
          "AWS::StackName": "oidc-watch", "AWS::URLSuffix": "amazonaws.com"}


def fill(text: str, template: dict) -> str:
    params, resources = template["Parameters"], template["Resources"]

    def value(match):
        name = match.group(1)
        if name in PSEUDO:
            return PSEUDO[name]
        if name in params:
            return str(params[name].get("Default", "x"))
        base, _, attr = name.partition(".")
        assert base in resources, f"${{{name}}} names nothing in the template"
        if attr:
            return f"{base}-{attr}"
        return f"{base}-ref"

    filled = re.sub(r"\$\{([^}!]+)\}", value, text)
    assert "${" not in filled
    return filled


def sub_text(prop):
    assert isinstance(prop, dict) and "Fn::Sub" in prop, "expected !Sub of a JSON string"
    return prop["Fn::Sub"]


def test_dashboard_body_is_json(template):
    body = json.loads(fill(sub_text(template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]), template))
    assert body["widgets"]
    kinds = [w["type"] for w in body["widgets"]]
    assert kinds.count("log") == 1 and "metric" in kinds
    for w in body["widgets"]:
        assert {"x", "y", "width", "height", "properties"} <= set(w), w
        assert 0 <= w["x"] and w["x"] + w["width"] <= 24


def dashboard(template):
    return json.loads(fill(sub_text(template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]), template))


def test_dashboard_has_the_issue_widgets(template):
    widgets = [w["properties"] for w in dashboard(template)["widgets"]]
    text = json.dumps(widgets)
    rate = next(w for w in widgets if "Failure rate" in w.get("title", ""))
    expr = [m[0]["expression"] for m in rate["metrics"] if isinstance(m[0], dict)]
    assert expr and "FILL(f,0)/(FILL(f,0)+FILL(s,0))" in expr[0].replace(" ", "")
    assert "{OidcWatch,Cause}" in text and "{OidcWatch,RoleName}" in text
    assert sum("insightRule" in w for w in widgets) == 2
    log = next(w for w in widgets if "query" in w)
    assert log["query"].startswith("SOURCE 'MonitorLogGroup-ref'")
    assert "sort @timestamp desc" in log["query"] and "limit 20" in log["query"]
    health = json.dumps([w for w in widgets if "AWS/" in json.dumps(w)])
    for metric in ("Errors", "Throttles", "Duration", "ApproximateNumberOfMessagesVisible"):
        assert f'"{metric}"' in health, metric
    assert "MonitorFunction-ref" in health and "NotifierFunction-ref" in health


@pytest.mark.parametrize("name", ["TopRepositoriesRule", "TopSubjectsRule"])
def test_insight_rule_bodies_are_json(template, name):
    body = json.loads(fill(sub_text(template["Resources"][name]["Properties"]["RuleBody"]), template))
    assert body["Schema"] == {"Name": "CloudWatchLogRule", "Version": 1}
    assert body["LogFormat"] == "JSON" and body["LogGroupNames"] == ["MonitorLogGroup-ref"]
    assert body["AggregateOn"] == "Count" and 1 <= len(body["Contribution"]["Keys"]) <= 4
