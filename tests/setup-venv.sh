#!/usr/bin/env bash
# Creates (or reuses) the pinned Python venvs that the end-to-end tier (tests/e2e/) and the
# infrastructure tier (infra/tests/) run from. One venv holds what both tiers use, installed
# once; the infrastructure tier adds its tools to it:
#   $TEST_VENV/main     moto[server], cargo-lambda, boto3, pytest, cbor2 (both tiers)
#                       + aws-sam-cli, cfn-lint, ziglang (with --infra)
#   $TEST_VENV/checkov  checkov (with --infra; its pins clash with pytest 9 and aws-sam-cli's
#                       boto3: packaging<24, boto3 1.35)
#   $TEST_VENV/report   pytest, playwright (with --report: the report tier, tests/report/; its
#                       wheel brings the driver, no browser: the tier drives Debian's chromium)
# Transitive pins: tests/constraints.txt (main; boto3 is aws-sam-cli's 1.43, which the e2e
# tier uses too) and infra/tests/constraints-checkov.txt. Idempotent: each venv's stamp file
# lists what was installed (Python version, pins, constraints hash); nothing is installed
# when every wanted line is in it.
#
# Usage: tests/setup-venv.sh [--infra]      (venvs under target/test-venv)
#        tests/setup-venv.sh --report       (only the report venv; prints its bin directory)
#        TEST_VENV=/some/dir tests/setup-venv.sh
# Prints the main venv's bin directory as its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
base="${TEST_VENV:-$root/target/test-venv}"
python="${TEST_PYTHON:-python3}"
pyver="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

shared_pins=(
  "moto[server]==5.2.5"
  "cargo-lambda==1.9.2"
  "boto3==1.43.108"
  "pytest==9.2.0"
  # The CloudWatch stand-in (tests/standins/cloudwatch.py) decodes Smithy RPC v2 CBOR.
  "cbor2==6.3.0"
)
infra_pins=(
  "aws-sam-cli==1.170.0"
  "cfn-lint==1.58.0"
  "ziglang==0.17.0"
)
checkov_pins=("checkov==3.3.30")
report_pins=("pytest==9.2.0" "playwright==1.65.2")
shared_check='import moto, boto3, pytest, cbor2; print("moto", moto.__version__, "boto3", boto3.__version__, "pytest", pytest.__version__)'
infra_check='import cfnlint.version, samcli; print("cfn-lint", cfnlint.version.__version__, "sam", samcli.__version__)'

# install VENV CONSTRAINTS CHECK-COMMAND PINS...
install() {
  local venv="$1" constraints="$2" check="$3"
  shift 3
  local stamp="$venv/.test-venv-stamp" line missing=0 keep=""
  local made_by=("python=$pyver" "constraints=$(sha256sum "$constraints" | cut -d' ' -f1)")
  if [[ -f "$stamp" && -x "$venv/bin/python" ]]; then
    for line in "${made_by[@]}" "$@"; do
      grep -Fxq -- "$line" "$stamp" || { missing=1; break; }
    done
    if (( ! missing )); then
      echo "venv up to date: $venv" >&2
      return 0
    fi
    # Made by this Python with these constraints: keep the pins it has, add the rest.
    if grep -Fxq -- "${made_by[0]}" "$stamp" && grep -Fxq -- "${made_by[1]}" "$stamp"; then
      keep="$(grep -v -e '^python=' -e '^constraints=' "$stamp" || true)"
    fi
  fi
  echo "venv: installing $* into $venv" >&2
  local started
  started=$(date +%s)
  [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
  rm -f "$stamp"
  # A bounded install: pip's own network timeout, and a wall-clock bound on the whole step.
  timeout 900 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --timeout 60 --retries 3 -c "$constraints" "$@"
  "$venv/bin/python" -c "$check" >&2
  { printf '%s\n' "${made_by[@]}" "$@"; if [[ -n "$keep" ]]; then printf '%s\n' "$keep"; fi; } | sort -u > "$stamp"
  echo "venv ready in $(( $(date +%s) - started )) s: $venv" >&2
}

if [[ "${1:-}" == "--report" ]]; then
  install "$base/report" "$here/constraints.txt" \
    'import pytest, playwright.sync_api; print("pytest", pytest.__version__, "playwright ok")' "${report_pins[@]}"
  echo "$base/report/bin"
  exit 0
fi

if [[ "${1:-}" == "--infra" ]]; then
  install "$base/main" "$here/constraints.txt" "$shared_check; $infra_check" "${shared_pins[@]}" "${infra_pins[@]}"
  install "$base/checkov" "$root/infra/tests/constraints-checkov.txt" \
    'import checkov.version as v; print("checkov", v.version)' "${checkov_pins[@]}"
else
  install "$base/main" "$here/constraints.txt" "$shared_check" "${shared_pins[@]}"
fi
# cargo-lambda's wheel ships the binary as bin/cargo-lambda.
[[ -x "$base/main/bin/cargo-lambda" && -x "$base/main/bin/moto_server" ]] \
  || { echo "venv $base/main lacks cargo-lambda or moto_server" >&2; exit 1; }
echo "$base/main/bin"
