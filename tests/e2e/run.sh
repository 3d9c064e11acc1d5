#!/usr/bin/env bash
# The end-to-end tests of oidc-monitor (tests/e2e/test_monitor.py; with the CLI,
# test_cli_snapshot.py and test_impact_observed.py, which need target/debug/oidc-watch) and of
# oidc-notifier (tests/e2e/test_notifier.py) and of oidc-auditor (tests/e2e/test_auditor.py)
# around PREBUILT binaries: the venv (pinned,
# skipped when up to date; tests/setup-venv.sh), moto on 127.0.0.1, pytest; and, whatever
# happens (failure, Ctrl-C), everything it started is stopped. It builds nothing: the caller
# does, and a binary that is missing is an error, never a reason to skip its tests.
#
# Usage: tests/e2e/run.sh [monitor-binary] [notifier-binary] [auditor-binary] [pytest args...]
#          monitor-binary defaults to target/debug/oidc-monitor (cargo build -p oidc-monitor);
#          notifier-binary (a second argument not starting with -) defaults to
#          $E2E_NOTIFIER_BINARY, else target/debug/oidc-notifier (cargo build -p
#          oidc-notifier). The notifier tests also run the monitor binary (it publishes the
#          alerts they replay). auditor-binary (a third argument not starting with -)
#          defaults to $E2E_AUDITOR_BINARY, else target/debug/oidc-auditor (cargo build -p
#          oidc-auditor).
#        e.g. tests/e2e/run.sh target/release/oidc-monitor -k spike
#             tests/e2e/run.sh target/debug/oidc-monitor target/debug/oidc-notifier -k test_notifier
# Env:   E2E_MOTO_PORT (5055), E2E_LAMBDA_PORT (9055), E2E_STATE (target/e2e),
#        E2E_INVOKE_TIMEOUT (30 s per invocation), E2E_PYTEST_TIMEOUT (600 s for the whole run).
# Logs:  $E2E_STATE/{monitor,notifier}-tests/<test>-<n>.log (each instance), $E2E_STATE/moto.log.
# It stops the watch server of $E2E_STATE at the end, and moto if it started it; run two at
# once only with different E2E_STATE and ports.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
source "$here/common.sh"

# Relative to the caller's directory, else to the repository root; made absolute.
absolute() {
  local path="$1"
  if [[ "$path" != /* && ! -e "$path" ]]; then path="$e2e_root/$path"; fi
  [[ -f "$path" && -x "$path" ]] || e2e_die "not an executable: $path (build it first: cargo build -p $2)"
  echo "$(cd "$(dirname "$path")" && pwd)/$(basename "$path")"
}
binary="${1:-$e2e_root/target/debug/oidc-monitor}"
if [[ $# -gt 0 ]]; then shift; fi
binary="$(absolute "$binary" oidc-monitor)"
notifier="${E2E_NOTIFIER_BINARY:-$e2e_root/target/debug/oidc-notifier}"
if [[ $# -gt 0 && "$1" != -* ]]; then notifier="$1"; shift; fi
notifier="$(absolute "$notifier" oidc-notifier)"
auditor="${E2E_AUDITOR_BINARY:-$e2e_root/target/debug/oidc-auditor}"
if [[ $# -gt 0 && "$1" != -* ]]; then auditor="$1"; shift; fi
auditor="$(absolute "$auditor" oidc-auditor)"
tests=("$here/test_monitor.py" "$here/test_cli_snapshot.py" "$here/test_cli_s3.py" "$here/test_cli_backfill.py" "$here/test_cli_audit.py" "$here/test_impact_observed.py" "$here/test_changes.py" "$here/test_notifier.py" "$here/test_auditor.py")
cd "$e2e_root"

export E2E_STATE E2E_VENV E2E_MOTO_PORT E2E_LAMBDA_PORT
export E2E_INVOKE_TIMEOUT="${E2E_INVOKE_TIMEOUT:-30}"

started_moto=0
pytest_pid=""
cleanup() {
  local rc=$?
  "$here/lambda.sh" stop || true
  if (( started_moto )); then "$here/moto.sh" stop || true; fi
  exit "$rc"
}
# pytest runs in the background under `timeout` (its own process group), and this script
# waits for it with `wait`, which a trapped signal interrupts at once (bash would defer the
# trap until a foreground child exits). On Ctrl-C or TERM: stop pytest (timeout passes TERM
# on), then cleanup stops the instances, the watch server and moto.
on_signal() {
  trap - INT TERM
  if [[ -n "$pytest_pid" ]]; then kill -TERM "$pytest_pid" 2>/dev/null || true; wait "$pytest_pid" 2>/dev/null || true; fi
  exit 130
}
trap cleanup EXIT
trap on_signal INT TERM

t0=$(e2e_now_ms)
TEST_VENV="$(dirname "$E2E_VENV")" "$e2e_root/tests/setup-venv.sh" >/dev/null
if ! "$here/moto.sh" status >/dev/null 2>&1; then
  started_moto=1
  "$here/moto.sh" start
fi
e2e_log "venv and moto ready in $(( $(e2e_now_ms) - t0 )) ms; testing $binary, $notifier and $auditor"

# No .pytest_cache or __pycache__ in the work tree.
rm -f "$E2E_STATE/monitor-tests/timings.json" "$E2E_STATE/notifier-tests/timings.json"
rc=0
E2E_MONITOR_BINARY="$binary" E2E_NOTIFIER_BINARY="$notifier" E2E_AUDITOR_BINARY="$auditor" PYTHONDONTWRITEBYTECODE=1 \
  timeout --kill-after=10 "${E2E_PYTEST_TIMEOUT:-600}" \
  "$E2E_VENV/bin/python" -m pytest -q -p no:cacheprovider --durations=5 \
  "${tests[@]}" "$@" </dev/null &
pytest_pid=$!
wait "$pytest_pid" || rc=$?
pytest_pid=""
for suite in monitor notifier; do
  if [[ -f "$E2E_STATE/$suite-tests/timings.json" ]]; then
    e2e_log "$suite timings (s): $(cat "$E2E_STATE/$suite-tests/timings.json")"
  fi
done
exit "$rc"
