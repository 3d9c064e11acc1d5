#!/usr/bin/env bash
# A prebuilt Rust Lambda binary as a real Lambda process: `cargo lambda watch --only-lambda-apis`
# serves the Lambda Runtime API and the Invoke API on 127.0.0.1, the binary polls it, and
# `cargo lambda invoke` sends it events.
#
# Usage:
#   tests/e2e/lambda.sh start <binary> <log-file> [KEY=VALUE | @env-file]...
#       Starts the watch server if it is not running, then ONE instance of <binary> with the
#       default env below overridden by the given KEY=VALUE pairs (an @file holds KEY=VALUE
#       lines). Waits (bounded) until the instance polls for work. Prints the instance pid.
#       Call it again to add another instance: all instances poll the same server and share
#       the invocations (two racing instances need nothing more).
#   tests/e2e/lambda.sh invoke <data-file>       prints the function's response (one JSON
#       line) on stdout; exit 0 on success, 1 when the handler returned Err (error on stderr),
#       124 when no answer within E2E_INVOKE_TIMEOUT. Refuses (exit 1) when no instance is alive.
#   tests/e2e/lambda.sh invoke-raw <data-file>   the same with curl on the Invoke API: prints
#       the body ({"errorType","errorMessage"} on a handler error), exit 0 / 1 / 124 likewise.
#   tests/e2e/lambda.sh stop-instances           stops the binaries, keeps the watch server
#   tests/e2e/lambda.sh stop                     stops the binaries and the watch server
#   tests/e2e/lambda.sh status                   lists what runs
#
# Default env of an instance (each overridable):
#   AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:$E2E_LAMBDA_PORT/.rt   (what watch prints)
#   AWS_LAMBDA_FUNCTION_NAME=<binary file name>  AWS_LAMBDA_FUNCTION_VERSION=$LATEST
#   AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128  AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/<name>
#   AWS_LAMBDA_LOG_STREAM_NAME=e2e/<n>
#   AWS_ENDPOINT_URL=http://127.0.0.1:$E2E_MOTO_PORT  AWS_REGION=AWS_DEFAULT_REGION=$E2E_REGION
#   AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing (moto's default account 123456789012)
#   AWS_EC2_METADATA_DISABLED=true, AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE pointing at
#   nothing; PATH, HOME, RUST_LOG and RUST_BACKTRACE from the caller; nothing else inherited.
# Env of this script: E2E_LAMBDA_PORT (9055), E2E_MOTO_PORT (5055), E2E_REGION (us-east-1),
#   E2E_INVOKE_TIMEOUT seconds (60), E2E_LAMBDA_START_TIMEOUT seconds (30), E2E_VENV, E2E_STATE.
# Files: target/e2e/lambda-watch.{pid,log}, target/e2e/lambda-instances (pid cold-ms binary log).
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

watch_pidfile="$E2E_STATE/lambda-watch.pid"
watch_log="$E2E_STATE/lambda-watch.log"
instances="$E2E_STATE/lambda-instances"
invoke_timeout="${E2E_INVOKE_TIMEOUT:-60}"
start_timeout="${E2E_LAMBDA_START_TIMEOUT:-30}"
runtime_api="http://127.0.0.1:$E2E_LAMBDA_PORT/.rt"

# True when process $1 has an established TCP connection to 127.0.0.1:$E2E_LAMBDA_PORT, i.e. it
# is long-polling /runtime/invocation/next (lambda_runtime connects lazily, on its first poll).
polling() {
  local pid="$1" port_hex inode
  port_hex="$(printf '%04X' "$E2E_LAMBDA_PORT")"
  # /proc/net/tcp: field 3 remote addr:port (hex), field 4 state (01 = ESTABLISHED), field 10 inode
  for inode in $(awk -v r="0100007F:$port_hex" '$3 == r && $4 == "01" { print $10 }' /proc/net/tcp); do
    if find "/proc/$pid/fd" -maxdepth 1 -lname "socket:\[$inode\]" 2>/dev/null | grep -q .; then
      return 0
    fi
  done
  return 1
}

watch_running() { [[ -f "$watch_pidfile" ]] && e2e_alive "$(cat "$watch_pidfile")"; }

start_watch() {
  if watch_running; then return 0; fi
  e2e_need_venv
  if e2e_port_open "$E2E_LAMBDA_PORT"; then
    e2e_die "port $E2E_LAMBDA_PORT is taken by another process; set E2E_LAMBDA_PORT"
  fi
  # cargo-lambda runs `cargo metadata` on ./Cargo.toml even with --only-lambda-apis: give it a
  # tiny manifest of its own, so the watch server does not depend on the workspace's state.
  local dir="$E2E_STATE/watch-manifest" t0 deadline pid
  mkdir -p "$dir/src"
  [[ -f "$dir/Cargo.toml" ]] || printf '%s\n' '[package]' 'name = "e2e-watch"' 'version = "0.0.0"' \
    'edition = "2021"' 'publish = false' '' '[workspace]' >"$dir/Cargo.toml"
  [[ -f "$dir/src/main.rs" ]] || echo 'fn main() {}' >"$dir/src/main.rs"
  t0="$(e2e_now_ms)"; deadline=$(( t0 + start_timeout * 1000 ))
  (cd "$dir" && exec env -u AWS_PROFILE setsid "$E2E_VENV/bin/cargo-lambda" lambda watch -v \
      --only-lambda-apis --invoke-address 127.0.0.1 --invoke-port "$E2E_LAMBDA_PORT" \
      --timeout "$invoke_timeout" >"$watch_log" 2>&1 </dev/null) &
  pid=$!
  echo "$pid" >"$watch_pidfile"
  until e2e_port_open "$E2E_LAMBDA_PORT" && grep -q 'starting Runtime server' "$watch_log"; do
    if ! e2e_alive "$pid"; then cat "$watch_log" >&2; rm -f "$watch_pidfile"; e2e_die "cargo lambda watch exited"; fi
    if (( $(e2e_now_ms) > deadline )); then
      cat "$watch_log" >&2; e2e_stop_pid "$pid" "cargo lambda watch"; rm -f "$watch_pidfile"
      e2e_die "cargo lambda watch not listening on 127.0.0.1:$E2E_LAMBDA_PORT within ${start_timeout}s"
    fi
    sleep 0.05
  done
  e2e_log "cargo lambda watch up on 127.0.0.1:$E2E_LAMBDA_PORT (pid $pid) in $(( $(e2e_now_ms) - t0 )) ms"
}

start_instance() {
  local binary="$1" log="$2"; shift 2
  [[ -x "$binary" ]] || e2e_die "not an executable: $binary"
  local name n pid t0 deadline cold arg
  name="$(basename "$binary")"
  n=$(( $( [[ -f "$instances" ]] && wc -l <"$instances" || echo 0) + 1 ))
  local env_args=(
    "PATH=$PATH" "HOME=${HOME:-/tmp}" "TZ=UTC"
    "AWS_LAMBDA_RUNTIME_API=$runtime_api"
    "AWS_LAMBDA_FUNCTION_NAME=$name"
    "AWS_LAMBDA_FUNCTION_VERSION=\$LATEST"
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128"
    "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/$name"
    "AWS_LAMBDA_LOG_STREAM_NAME=e2e/$n"
    "AWS_ENDPOINT_URL=$E2E_MOTO_URL"
    "AWS_REGION=$E2E_REGION" "AWS_DEFAULT_REGION=$E2E_REGION"
    "AWS_ACCESS_KEY_ID=testing" "AWS_SECRET_ACCESS_KEY=testing"
    "AWS_EC2_METADATA_DISABLED=true"
    "AWS_CONFIG_FILE=$E2E_STATE/no-aws-config" "AWS_SHARED_CREDENTIALS_FILE=$E2E_STATE/no-aws-credentials"
  )
  [[ -n "${RUST_LOG:-}" ]] && env_args+=("RUST_LOG=$RUST_LOG")
  [[ -n "${RUST_BACKTRACE:-}" ]] && env_args+=("RUST_BACKTRACE=$RUST_BACKTRACE")
  for arg in "$@"; do
    if [[ "$arg" == @* ]]; then
      while IFS= read -r line || [[ -n "$line" ]]; do
        [[ -z "$line" || "$line" == \#* ]] && continue
        env_args+=("$line")
      done <"${arg#@}"
    elif [[ "$arg" == *=* ]]; then
      env_args+=("$arg")
    else
      e2e_die "not KEY=VALUE or @file: $arg"
    fi
  done
  mkdir -p "$(dirname "$log")"
  t0="$(e2e_now_ms)"; deadline=$(( t0 + start_timeout * 1000 ))
  env -i "${env_args[@]}" setsid "$binary" >"$log" 2>&1 </dev/null &
  pid=$!
  until polling "$pid"; do
    if ! e2e_alive "$pid"; then
      tail -30 "$log" >&2; e2e_die "$name exited before polling for work (init failed?): see $log"
    fi
    if (( $(e2e_now_ms) > deadline )); then
      tail -30 "$log" >&2; e2e_stop_pid "$pid" "$name"
      e2e_die "$name did not poll 127.0.0.1:$E2E_LAMBDA_PORT within ${start_timeout}s"
    fi
    sleep 0.005
  done
  cold=$(( $(e2e_now_ms) - t0 ))
  echo "$pid $cold $binary $log" >>"$instances"
  e2e_log "$name instance $n (pid $pid) polling after $cold ms (process start to first poll)"
  echo "$pid"
}

stop_instances() {
  [[ -f "$instances" ]] || return 0
  local pid _rest
  while read -r pid _rest; do e2e_stop_pid "$pid" "lambda instance"; done <"$instances"
  rm -f "$instances"
}

stop_watch() {
  if [[ -f "$watch_pidfile" ]]; then e2e_stop_pid "$(cat "$watch_pidfile")" "cargo lambda watch"; fi
  rm -f "$watch_pidfile"
}

any_instance_alive() {
  [[ -f "$instances" ]] || return 1
  local pid _rest
  while read -r pid _rest; do e2e_alive "$pid" && return 0; done <"$instances"
  return 1
}

# Refuse to invoke with no live instance: the watch server would queue the event, time out, and
# hand the stale event to the next instance that polls (see README).
invoke_guard() {
  local data="$1"
  [[ -f "$data" ]] || e2e_die "no such data file: $data"
  watch_running || e2e_die "cargo lambda watch is not running (tests/e2e/lambda.sh start ...)"
  any_instance_alive || e2e_die "no live instance polls the watch server (did the binary exit? see its log)"
}

invoke() {
  local data="$1" rc=0 err; shift
  invoke_guard "$data"
  err="$(mktemp "$E2E_STATE/invoke-err.XXXXXX")"
  # The watch server answers after --timeout ($invoke_timeout s) itself; the outer timeout is
  # a backstop (exit 124).
  timeout --kill-after=5 "$(( invoke_timeout + 10 ))" "$E2E_VENV/bin/cargo-lambda" lambda invoke _ \
    --invoke-address 127.0.0.1 --invoke-port "$E2E_LAMBDA_PORT" --data-file "$data" --color never "$@" \
    2>"$err" || rc=$?
  cat "$err" >&2
  if (( rc != 0 )) && grep -q 'invalid error payload EOF' "$err"; then
    e2e_log "no answer within ${invoke_timeout}s (watch --timeout). An event no instance took stays queued and goes to the next instance that polls: run lambda.sh stop before the next test"
    any_instance_alive || e2e_log "no instance is alive any more: see the instance logs"
    rc=124
  fi
  rm -f "$err"
  return "$rc"
}

# The same through the Invoke API with curl: prints the body (the handler's JSON, or
# {"errorType","errorMessage"} on error); exit 0 on HTTP 200, 1 on a handler error (HTTP 500),
# 124 on a timeout.
invoke_raw() {
  local data="$1" code rc=0 body
  invoke_guard "$data"
  body="$(mktemp "$E2E_STATE/invoke-body.XXXXXX")"
  code="$(curl -s -m "$(( invoke_timeout + 10 ))" -o "$body" -w '%{http_code}' -X POST \
    -H 'content-type: application/json' --data-binary @"$data" \
    "http://127.0.0.1:$E2E_LAMBDA_PORT/2015-03-31/functions/_/invocations")" || rc=$?
  cat "$body"; echo; rm -f "$body"
  if (( rc == 28 )); then return 124; elif (( rc != 0 )); then return "$rc"; fi
  [[ "$code" == 200 ]] && return 0
  e2e_log "invoke-raw: HTTP $code"
  return 1
}

case "${1:-}" in
  start)
    [[ $# -ge 3 ]] || { echo "usage: $0 start <binary> <log-file> [KEY=VALUE|@file]..." >&2; exit 2; }
    shift
    started_watch=0
    watch_running || started_watch=1
    # If anything below fails, stop what this call started.
    trap 'rc=$?; if (( rc != 0 && started_watch )); then stop_watch; fi' EXIT
    start_watch
    start_instance "$@"
    ;;
  invoke) [[ $# -ge 2 ]] || { echo "usage: $0 invoke <data-file> [cargo lambda invoke args]" >&2; exit 2; }
    shift; invoke "$@" ;;
  invoke-raw) [[ $# -eq 2 ]] || { echo "usage: $0 invoke-raw <data-file>" >&2; exit 2; }
    invoke_raw "$2" ;;
  stop-instances) stop_instances ;;
  stop) stop_instances; stop_watch ;;
  status)
    watch_running && echo "watch: pid $(cat "$watch_pidfile") on 127.0.0.1:$E2E_LAMBDA_PORT" || echo "watch: not running"
    if [[ -f "$instances" ]]; then
      while read -r pid cold bin log; do
        state=dead; e2e_alive "$pid" && state=alive
        polling "$pid" && state="$state, polling"
        echo "instance: pid $pid ($state) cold ${cold} ms $bin log $log"
      done <"$instances"
    fi ;;
  *) echo "usage: $0 start|invoke|invoke-raw|stop-instances|stop|status" >&2; exit 2 ;;
esac
