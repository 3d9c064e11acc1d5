# Sourced by the tests/e2e scripts: paths, ports and small helpers. Not executable on its own.
# shellcheck shell=bash
e2e_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
e2e_root="$(cd "$e2e_here/../.." && pwd)"
E2E_VENV="${E2E_VENV:-${TEST_VENV:-$e2e_root/target/test-venv}/main}"
E2E_STATE="${E2E_STATE:-$e2e_root/target/e2e}"
E2E_MOTO_PORT="${E2E_MOTO_PORT:-5055}"
E2E_LAMBDA_PORT="${E2E_LAMBDA_PORT:-9055}"
E2E_REGION="${E2E_REGION:-us-east-1}"
E2E_MOTO_URL="http://127.0.0.1:$E2E_MOTO_PORT"
mkdir -p "$E2E_STATE"

e2e_log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
e2e_die() { e2e_log "ERROR: $*"; exit 1; }
e2e_now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# True when something accepts TCP connections on 127.0.0.1:$1.
e2e_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# e2e_alive PID: the process exists and is not a zombie.
e2e_alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null | tr -d ' ')" || return 1
  [[ -n "$state" && "$state" != Z* ]]
}

# e2e_stop_pid PID NAME: TERM, wait up to 5 s, then KILL. Only ever the given pid.
e2e_stop_pid() {
  local pid="$1" name="$2" i
  e2e_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do e2e_alive "$pid" || { e2e_log "stopped $name (pid $pid)"; return 0; }; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 1 20); do e2e_alive "$pid" || break; sleep 0.1; done
  e2e_log "killed $name (pid $pid) after 5 s"
}

e2e_need_venv() {
  [[ -x "$E2E_VENV/bin/moto_server" && -x "$E2E_VENV/bin/cargo-lambda" ]] \
    || e2e_die "no e2e venv at $E2E_VENV: run tests/setup-venv.sh"
}
