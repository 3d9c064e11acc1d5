#!/usr/bin/env bash
# Infrastructure tests (docs/design.md, testing ladder, tier 5), for tests/run to call:
#   cfn-lint and sam validate --lint on both templates; checkov; the stack's shape; the
#   dashboard and Contributor Insights bodies as JSON; every metric, dimension, log field,
#   environment variable and permission checked against the Rust code; the EventBridge
#   patterns against every sample in events/ in moto (server mode, loopback), including a
#   forwarder stack created by moto's CloudFormation; and, with INFRA_SAM_BUILD=1 or
#   --build, a timed `sam build` (a release build of the workspace).
#
# Usage: infra/tests/run.sh [--build] [--contract PATH] [pytest args...]
#   --contract: the oidc-watch-contract binary (cargo test --workspace builds it), whose
#   JSON the names, environment and permission checks read (OIDC_WATCH_CONTRACT also works).
# Installs its pinned venvs under target/test-venv (tests/setup-venv.sh --infra). Never
# talks to AWS: fake credentials, no config files; moto is the only endpoint.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ "${1:-}" == "--build" ]]; then
  export INFRA_SAM_BUILD=1
  shift
fi
if [[ "${1:-}" == "--contract" ]]; then
  export OIDC_WATCH_CONTRACT="$2"
  shift 2
fi

export INFRA_VENV="${TEST_VENV:-$PWD/target/test-venv}"
bin="$(TEST_VENV="$INFRA_VENV" tests/setup-venv.sh --infra | tail -n1)"
export PATH="$bin:$PATH"
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing \
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
  PYTHONDONTWRITEBYTECODE=1
unset AWS_PROFILE

"$bin/python" -m pytest -q -rs -p no:cacheprovider infra/tests "$@"
