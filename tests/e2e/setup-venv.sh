#!/usr/bin/env bash
# Creates (or reuses) the Python venv that the end-to-end tier runs from: moto in server mode,
# cargo-lambda (binary wheel), boto3 for seeding and pytest for test_monitor.py, all pinned.
# Idempotent: a stamp file holding the pins is compared first, and nothing is installed when it
# matches.
#
# Usage: tests/e2e/setup-venv.sh            (venv at target/e2e-venv)
#        E2E_VENV=/some/dir tests/e2e/setup-venv.sh
# Prints the venv's bin directory as its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${E2E_VENV:-$root/target/e2e-venv}"

# The pins. Transitive dependencies are pinned in constraints.txt.
pins=(
  "moto[server]==5.2.5"
  "cargo-lambda==1.9.2"
  "boto3==1.44.5"
  "pytest==9.2.0"
)
constraints="$here/constraints.txt"

python="${E2E_PYTHON:-python3}"
pyver="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
want_stamp="$(printf '%s\n' "python=$pyver" "${pins[@]}"; sha256sum "$constraints" | cut -d' ' -f1)"
stamp="$venv/.e2e-stamp"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want_stamp" \
      && -x "$venv/bin/moto_server" && -x "$venv/bin/cargo-lambda" && -x "$venv/bin/python" \
      && -x "$venv/bin/pytest" ]]; then
  echo "e2e venv up to date: $venv" >&2
  echo "$venv/bin"
  exit 0
fi

echo "e2e venv: installing ${pins[*]} into $venv" >&2
started=$(date +%s)
if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv"
fi
rm -f "$stamp"
# A bounded install: pip's own network timeout, and a wall-clock bound on the whole step.
timeout 900 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --timeout 60 --retries 3 -c "$constraints" "${pins[@]}"
# cargo-lambda's wheel ships the binary as bin/cargo-lambda; check it runs.
"$venv/bin/cargo-lambda" lambda --version >&2
"$venv/bin/python" -c 'import moto, boto3, pytest; print("moto", moto.__version__, "boto3", boto3.__version__, "pytest", pytest.__version__)' >&2
printf '%s\n' "$want_stamp" > "$stamp"
echo "e2e venv ready in $(( $(date +%s) - started )) s" >&2
echo "$venv/bin"
