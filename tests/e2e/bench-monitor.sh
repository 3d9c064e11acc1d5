#!/usr/bin/env bash
# Measures the release oidc-monitor as a real Lambda process against moto on loopback:
#   cold start  process start to its first poll for work (lambda_runtime connects lazily),
#               over $BENCH_STARTS starts;
#   first event the first invocation of a fresh instance (IAM lookups through the read role);
#   warm event  invocations with the role cached, end to end through cargo lambda watch and
#               moto (so moto's own latency is in it; the handler's own cost is the criterion
#               benchmark `cargo bench -p oidc-monitor`);
#   peak memory VmHWM of the instance after every sample event and the warm run;
#   binary size of the release binary.
# Usage: tests/e2e/bench-monitor.sh [binary]   (default target/release/oidc-monitor)
# Uses its own ports and state directory, so it can run beside the end-to-end tests.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export E2E_MOTO_PORT="${BENCH_MOTO_PORT:-5065}" E2E_LAMBDA_PORT="${BENCH_LAMBDA_PORT:-9065}"
export E2E_STATE="$root/target/e2e-bench" E2E_MOTO_RECORD=0
binary="$(cd "$root" && realpath "${1:-target/release/oidc-monitor}")"
starts="${BENCH_STARTS:-10}"
warm="${BENCH_WARM_EVENTS:-100}"
# shellcheck source=common.sh
source "$here/common.sh"

cleanup() { "$here/lambda.sh" stop >/dev/null 2>&1 || true; "$here/moto.sh" stop >/dev/null 2>&1 || true; }
trap cleanup EXIT

TEST_VENV="$(dirname "$E2E_VENV")" "$e2e_root/tests/setup-venv.sh" >&2
"$here/moto.sh" start >&2
python="$E2E_VENV/bin/python"
"$python" "$here/seed.py" --endpoint "$E2E_MOTO_URL" "$root"/events/accounts/*.json --out "$E2E_STATE/seed.json" >/dev/null
topic="$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["topic_arn"])' "$E2E_STATE/seed.json")"
env_file="$E2E_STATE/monitor.env"
cat >"$env_file" <<EOF
ALERT_TOPIC_ARN=$topic
STATE_TABLE_NAME=oidc-watch-state
METRICS_SINK=emf
ALLOWED_OWNERS=acme,acme-labs,acme-group
READ_ROLE_NAME=oidc-watch-read
AWS_LAMBDA_LOG_FORMAT=JSON
EOF

event="$root/events/subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json"
# Each invocation gets its own eventID, as CloudTrail gives each retry.
with_id() { "$python" - "$1" "$2" <<'PY'
import json, sys
event = json.load(open(sys.argv[1])); n = sys.argv[2]
event["id"] = f"bench-{n}"; event["detail"]["eventID"] = f"00000000-0000-4000-8000-{int(n):012d}"
print(json.dumps(event))
PY
}

colds=(); firsts=()
for i in $(seq 1 "$starts"); do
  "$here/lambda.sh" start "$binary" "$E2E_STATE/monitor-$i.log" "@$env_file" >/dev/null 2>&1
  colds+=("$(tail -1 "$E2E_STATE/lambda-instances" | cut -d' ' -f2)")
  with_id "$event" "$i" >"$E2E_STATE/event.json"
  t0="$(e2e_now_ms)"; "$here/lambda.sh" invoke-raw "$E2E_STATE/event.json" >/dev/null; t1="$(e2e_now_ms)"
  firsts+=("$(( t1 - t0 ))")
  "$here/lambda.sh" stop-instances >/dev/null 2>&1
done

pid="$("$here/lambda.sh" start "$binary" "$E2E_STATE/monitor-warm.log" "@$env_file" 2>/dev/null)"
while IFS= read -r sample; do
  "$here/lambda.sh" invoke-raw "$sample" >/dev/null
done < <(find "$root/events" -name '*.json' -not -path '*/accounts/*' -not -path '*/replay/*' | sort)
for i in $(seq 1 "$warm"); do with_id "$event" "$(( 1000 + i ))" >"$E2E_STATE/warm-$i.json"; done
t0="$(e2e_now_ms)"
for i in $(seq 1 "$warm"); do "$here/lambda.sh" invoke-raw "$E2E_STATE/warm-$i.json" >/dev/null; done
t1="$(e2e_now_ms)"
peak_kb="$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")"
size="$(stat -c %s "$binary")"

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cat <<EOF
| measure | value |
|---|---|
| cold start, process start to first poll (median of $starts) | $(median "${colds[@]}") ms (min $(printf '%s\n' "${colds[@]}" | sort -n | head -1), max $(printf '%s\n' "${colds[@]}" | sort -n | tail -1)) |
| first event of a fresh instance, end to end (median of $starts) | $(median "${firsts[@]}") ms |
| warm event, role cached, end to end through watch + moto (mean of $warm) | $(( (t1 - t0) / warm )) ms |
| peak memory (VmHWM) after $(find "$root/events" -name '*.json' -not -path '*/accounts/*' -not -path '*/replay/*' | wc -l) samples + $warm warm events | $(( peak_kb / 1024 )) MiB ($peak_kb KiB) |
| release binary size | $(( size / 1024 / 1024 )) MiB ($size bytes) |
EOF
