#!/usr/bin/env bash
# Creates (or reuses) the Python venvs the infrastructure tests run from, all pinned:
#   target/infra-venv/main     aws-sam-cli, cfn-lint, moto[server], cargo-lambda, ziglang, pytest
#   target/infra-venv/checkov  checkov (its pins clash with pytest 9 and aws-sam-cli's boto3)
# Transitive pins: constraints-main.txt, constraints-checkov.txt. Idempotent: a stamp file
# holding the pins is compared first, and nothing is installed when it matches.
#
# Usage: infra/tests/setup-venv.sh            (venvs under target/infra-venv)
#        INFRA_VENV=/some/dir infra/tests/setup-venv.sh
# Prints the main venv's bin directory as its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
base="${INFRA_VENV:-$root/target/infra-venv}"
python="${INFRA_PYTHON:-python3}"
pyver="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

main_pins=(
  "aws-sam-cli==1.170.0"
  "cfn-lint==1.58.0"
  "moto[server]==5.2.5"
  "cargo-lambda==1.9.2"
  "ziglang==0.17.0"
  "pytest==9.2.0"
)
checkov_pins=("checkov==3.3.30")

# install VENV CONSTRAINTS CHECK-COMMAND PINS...
install() {
  local venv="$1" constraints="$2" check="$3"
  shift 3
  local want stamp="$venv/.infra-stamp"
  want="$(printf '%s\n' "python=$pyver" "$@"; sha256sum "$constraints" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/python" ]]; then
    echo "infra venv up to date: $venv" >&2
    return 0
  fi
  echo "infra venv: installing $* into $venv" >&2
  local started
  started=$(date +%s)
  [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
  rm -f "$stamp"
  # A bounded install: pip's own network timeout, and a wall-clock bound on the whole step.
  timeout 900 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --timeout 60 --retries 3 -c "$constraints" "$@"
  "$venv/bin/python" -c "$check" >&2
  printf '%s\n' "$want" > "$stamp"
  echo "infra venv ready in $(( $(date +%s) - started )) s: $venv" >&2
}

install "$base/main" "$here/constraints-main.txt" \
  'import moto, boto3, cfnlint, samcli, pytest; print("moto", moto.__version__, "boto3", boto3.__version__, "sam", samcli.__version__, "pytest", pytest.__version__)' \
  "${main_pins[@]}"
install "$base/checkov" "$here/constraints-checkov.txt" \
  'import checkov.version as v; print("checkov", v.version)' \
  "${checkov_pins[@]}"
echo "$base/main/bin"
