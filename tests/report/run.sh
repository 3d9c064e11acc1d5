#!/usr/bin/env bash
# The report tier: `oidc-watch diagnose --report` pages opened in a real headless Chromium
# (Debian's, pinned; tests/report/setup.sh) through playwright (pinned, in the venv that
# tests/setup-venv.sh --report makes): the page renders, its charts are drawn, its numbers
# are the JSON output's, no console error, no request beyond the file, no horizontal
# overflow at 390 px, screenshots at 1280x800 and 390x844 (not blank) under
# $CARGO_TARGET_DIR (else target/)/report/. It builds nothing: BINARY is the caller's.
#
#   tests/report/run.sh path/to/oidc-watch [pytest args...]
set -euo pipefail
if [[ $# -lt 1 ]]; then
  echo "usage: $0 path/to/oidc-watch [pytest args...]" >&2
  exit 2
fi
root="$(cd "$(dirname "$0")/../.." && pwd)"
binary="$1"
shift
[[ "$binary" == /* || -e "$binary" ]] || binary="$root/$binary"
[[ -x "$binary" ]] || { echo "$binary: not an executable (build it: cargo build -p oidc-watch)" >&2; exit 2; }
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"

bash "$root/tests/report/setup.sh"
venv_bin="$(bash "$root/tests/setup-venv.sh" --report | tail -n 1)"

export OIDC_WATCH="$binary"
# No __pycache__ left in the source tree.
export PYTHONDONTWRITEBYTECODE=1
export REPORT_OUT="${REPORT_OUT:-${CARGO_TARGET_DIR:-$root/target}/report}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
mkdir -p "$REPORT_OUT"
cd "$root"
# A bound on the whole run: a browser that hangs must not hold the tiers.
exec timeout 600 "$venv_bin/python" -m pytest -p no:cacheprovider -q "$root/tests/report/test_report.py" "$@"
