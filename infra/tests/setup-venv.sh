#!/usr/bin/env bash
# The infrastructure tier's venvs: the shared test venv (tests/setup-venv.sh) with the
# infrastructure tools added (aws-sam-cli, cfn-lint, ziglang), and checkov in its own.
# Prints the main venv's bin directory as its last line.
set -euo pipefail
exec "$(cd "$(dirname "$0")/../.." && pwd)/tests/setup-venv.sh" --infra "$@"
