#!/usr/bin/env bash
# moto in server mode on 127.0.0.1 for the end-to-end tier.
#
# Usage: tests/e2e/moto.sh start    start it (bounded wait until it answers), pid in target/e2e/moto.pid
#        tests/e2e/moto.sh stop     stop it (no-op when not running)
#        tests/e2e/moto.sh status   exit 0 when running and answering
#        tests/e2e/moto.sh reset    drop every resource in every account (POST /moto-api/reset)
#                                   and empty the request recording
#        tests/e2e/moto.sh reset-recording   empty the request recording only
# Env:   E2E_MOTO_PORT (default 5055), E2E_MOTO_START_TIMEOUT seconds (default 30),
#        E2E_MOTO_RECORD (default 1: record every request), E2E_VENV, E2E_STATE.
# Files: target/e2e/moto.log (one line per request, no action names),
#        target/e2e/moto-recording.jsonl (moto's recorder: headers and body of every request;
#        `state.py calls` turns it into service/action/account lines, e.g. to count GetRole).
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

pidfile="$E2E_STATE/moto.pid"
logfile="$E2E_STATE/moto.log"
recording="$E2E_STATE/moto-recording.jsonl"

answers() { curl -s -m 2 -o /dev/null -w '%{http_code}' "$E2E_MOTO_URL/moto-api/" 2>/dev/null | grep -q '^200$'; }
running_pid() { [[ -f "$pidfile" ]] && e2e_alive "$(cat "$pidfile")" && cat "$pidfile"; }

start() {
  e2e_need_venv
  if pid="$(running_pid)" && answers; then
    e2e_log "moto already running (pid $pid) on $E2E_MOTO_URL"; return 0
  fi
  if e2e_port_open "$E2E_MOTO_PORT"; then
    e2e_die "port $E2E_MOTO_PORT is taken by another process; set E2E_MOTO_PORT"
  fi
  local t0 timeout="${E2E_MOTO_START_TIMEOUT:-30}" deadline pid
  t0="$(e2e_now_ms)"; deadline=$(( t0 + timeout * 1000 ))
  # MOTO_ACCOUNT_ID would pin every request to one account and break cross-account reads
  # (see README): make sure it is not inherited.
  local record=()
  : >"$recording"
  if [[ "${E2E_MOTO_RECORD:-1}" == 1 ]]; then
    record=("MOTO_ENABLE_RECORDING=true" "MOTO_RECORDER_FILEPATH=$recording")
  fi
  env -u MOTO_ACCOUNT_ID -u AWS_PROFILE ${record[@]+"${record[@]}"} setsid "$E2E_VENV/bin/moto_server" -H 127.0.0.1 -p "$E2E_MOTO_PORT" \
    >"$logfile" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$pidfile"
  until answers; do
    if ! e2e_alive "$pid"; then tail -20 "$logfile" >&2; rm -f "$pidfile"; e2e_die "moto exited during start-up"; fi
    if (( $(e2e_now_ms) > deadline )); then
      tail -20 "$logfile" >&2; e2e_stop_pid "$pid" moto; rm -f "$pidfile"
      e2e_die "moto did not answer on $E2E_MOTO_URL within ${timeout}s"
    fi
    sleep 0.1
  done
  e2e_log "moto up on $E2E_MOTO_URL (pid $pid) in $(( $(e2e_now_ms) - t0 )) ms"
}

stop() {
  if [[ -f "$pidfile" ]]; then
    e2e_stop_pid "$(cat "$pidfile")" moto
    rm -f "$pidfile"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) pid="$(running_pid)" && answers && echo "moto running (pid $pid) on $E2E_MOTO_URL" ;;
  reset) curl -s -m 10 -f -X POST "$E2E_MOTO_URL/moto-api/reset" >/dev/null \
           && curl -s -m 10 -f -X POST "$E2E_MOTO_URL/moto-api/recorder/reset-recording" >/dev/null \
           && e2e_log "moto reset" ;;
  reset-recording) curl -s -m 10 -f -X POST "$E2E_MOTO_URL/moto-api/recorder/reset-recording" >/dev/null ;;
  *) echo "usage: $0 start|stop|status|reset|reset-recording" >&2; exit 2 ;;
esac
