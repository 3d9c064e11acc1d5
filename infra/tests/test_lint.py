"""cfn-lint and `sam validate --lint` on both templates (pinned tools from the infra venv)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FORWARDER, INFRA, TEMPLATE

BIN = Path(sys.executable).parent
ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=INFRA, env=ENV, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("path", [TEMPLATE, FORWARDER], ids=lambda p: p.name)
def test_cfn_lint(path):
    result = run(str(BIN / "cfn-lint"), "--format", "parseable", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", [TEMPLATE, FORWARDER], ids=lambda p: p.name)
def test_sam_validate_lint(path):
    result = run(str(BIN / "sam"), "validate", "--lint", "--template", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_cfn_lint_catches_a_bad_rule_state(tmp_path):
    """The lint really runs on the transformed template: a wrong rule state fails it."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(TEMPLATE.read_text().replace(
        "State: ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS", "State: ENABLED_ALWAYS", 1))
    result = run(str(BIN / "cfn-lint"), "--format", "parseable", str(bad))
    assert result.returncode != 0 and "ENABLED_ALWAYS" in result.stdout
