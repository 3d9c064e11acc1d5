#!/usr/bin/env bash
# The whole end-to-end harness once, around any prebuilt Lambda binary: venv, moto, seed,
# emulator self-check, the binary under `cargo lambda watch`, invocations, a second instance
# racing the first, and stopping everything (also on failure or Ctrl-C).
#
# Usage: tests/e2e/smoke.sh <binary> [event-file...]   (default event: {"smoke": true})
#        extra instance env: E2E_FUNCTION_ENV="KEY=VALUE KEY2=VALUE2" (no spaces inside values)
# Each event is invoked twice on one instance; then two instances take 4 invocations at once.
# Prints timings; exits non-zero on the first failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
source "$here/common.sh"
cd "$e2e_root"

binary="${1:?usage: $0 <binary> [event-file...]}"; shift
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"
events=("$@")
if [[ ${#events[@]} -eq 0 ]]; then
  echo '{"smoke": true}' >"$E2E_STATE/smoke-event.json"; events=("$E2E_STATE/smoke-event.json")
fi
read -r -a fn_env <<<"${E2E_FUNCTION_ENV:-}"

cleanup() {
  local rc=$?
  "$here/lambda.sh" stop || true
  "$here/moto.sh" stop || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t=$(e2e_now_ms); TEST_VENV="$(dirname "$E2E_VENV")" "$e2e_root/tests/setup-venv.sh" >/dev/null; e2e_log "venv: $(( $(e2e_now_ms) - t )) ms"
"$here/moto.sh" start
t=$(e2e_now_ms)
"$E2E_VENV/bin/python" "$here/seed.py" --endpoint "$E2E_MOTO_URL" --region "$E2E_REGION" \
  --out "$E2E_STATE/seed.json" events/accounts/*.json >/dev/null
e2e_log "seeded $(ls events/accounts/*.json | wc -l) snapshots in $(( $(e2e_now_ms) - t )) ms: $E2E_STATE/seed.json"
"$E2E_VENV/bin/python" - "$E2E_STATE/seed.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print(json.dumps({k: d[k] for k in ("topic_arn", "queue_url", "table_name", "home_account")}))
for a, v in sorted(d["accounts"].items()):
    print(f"  account {a}: {len(v['roles'])} roles, {len(v['oidc_providers'])} OIDC providers, read role {v.get('read_role')}")
EOF
timeout 120 "$E2E_VENV/bin/python" "$here/check_moto.py" "$E2E_STATE/seed.json"

seed_env=(
  "ALERT_TOPIC_ARN=$("$E2E_VENV/bin/python" -c 'import json,sys;print(json.load(open(sys.argv[1]))["topic_arn"])' "$E2E_STATE/seed.json")"
  "STATE_TABLE_NAME=oidc-watch-state"
)
"$here/lambda.sh" start "$binary" "$E2E_STATE/smoke-instance-1.log" "${seed_env[@]}" "${fn_env[@]}" >/dev/null
for ev in "${events[@]}"; do
  for round in 1 2; do
    t=$(e2e_now_ms)
    "$here/lambda.sh" invoke "$ev"
    e2e_log "invoke $(basename "$ev") #$round: $(( $(e2e_now_ms) - t )) ms (cargo lambda invoke round trip)"
  done
done

"$here/lambda.sh" start "$binary" "$E2E_STATE/smoke-instance-2.log" "${seed_env[@]}" "${fn_env[@]}" >/dev/null
pids=()
for i in 1 2 3 4; do
  "$here/lambda.sh" invoke "${events[0]}" >"$E2E_STATE/smoke-race-$i.out" 2>&1 & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
e2e_log "4 concurrent invocations over 2 instances: all returned"
"$here/lambda.sh" status
e2e_log "alerts in the tap queue: $("$E2E_VENV/bin/python" "$here/state.py" count-alerts --seed "$E2E_STATE/seed.json")"
echo "smoke passed"
