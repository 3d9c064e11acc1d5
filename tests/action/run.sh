#!/usr/bin/env bash
# Runs the GitHub Action's steps (action/install.sh, action/run.sh) locally, as the
# composite action.yml runs them, on fixture repositories built from tests/data/action/,
# with a prebuilt binary, a fake GITHUB_STEP_SUMMARY and GITHUB_OUTPUT.
#
#   tests/action/run.sh path/to/oidc-watch
#
# Prints one line per check and "N passed, N failed"; exits 1 when a check failed.
set -uo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 path/to/oidc-watch" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[[ -x "$bin" ]] || { echo "$1: not an executable" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is needed to check the SARIF's JSON" >&2; exit 2; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/oidc-watch-action-test.XXXXXX")
trap '[[ -n "${KEEP:-}" ]] || rm -rf "$scratch"' EXIT
passed=0
failed=0

check() {
  local name=$1
  shift
  if "$@"; then
    echo "ok   $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    failed=$((failed + 1))
  fi
}

# A repository whose main is tests/data/action/base and whose HEAD (a pull request's head)
# lays tests/data/action/<case> over it. Prints the base commit.
make_repo() {
  local case=$1 repo=$scratch/$2
  mkdir -p "$repo"
  cp -R "$here/tests/data/action/base/." "$repo/"
  git -C "$repo" init --quiet --initial-branch=main
  git -C "$repo" -c user.name=t -c user.email=t@example.invalid add -A
  git -C "$repo" -c user.name=t -c user.email=t@example.invalid commit --quiet -m base
  local base
  base=$(git -C "$repo" rev-parse HEAD)
  git -C "$repo" checkout --quiet -b change
  cp -R "$here/tests/data/action/$case/." "$repo/"
  git -C "$repo" -c user.name=t -c user.email=t@example.invalid add -A
  git -C "$repo" -c user.name=t -c user.email=t@example.invalid commit --quiet -m change
  echo "$base"
}

# Runs both steps with the action's environment; sets $code, $out, $summary, $outputs.
runs=0
run_action() {
  local case=$1 history=${2:-} account=${3:-}
  runs=$((runs + 1))
  local name=$runs-$case base
  base=$(make_repo "$case" "$name")
  out=$scratch/$name.out
  summary=$scratch/$name.summary.md
  outputs=$scratch/$name.outputs
  : >"$summary"
  : >"$outputs"
  (
    export GITHUB_STEP_SUMMARY=$summary GITHUB_OUTPUT=$outputs RUNNER_TEMP=$scratch
    export INPUT_BINARY=$bin INPUT_VERSION=0.1.0
    bash "$here/action/install.sh" || exit 99
    OIDC_WATCH_BIN=$(sed -n 's/^binary=//p' "$outputs")
    export OIDC_WATCH_BIN
    cd "$scratch/$name" || exit 99
    export INPUT_PATH=. INPUT_FAIL_ON=error INPUT_REPOSITORY=acme/web-app INPUT_SUB_TEMPLATE= INPUT_DEFAULT_BRANCH=main
    export INPUT_ACCOUNT=$account INPUT_POLICIES='gha-deploy-web-app=infra/trust/*.json'
    export INPUT_HISTORY=$history INPUT_BASE= PULL_REQUEST_BASE=$base INPUT_SARIF_FILE=results.sarif
    bash "$here/action/run.sh"
  ) >"$out" 2>&1
  code=$?
  sarif=$scratch/$name/results.sarif
}

sarif_is_valid() {
  python3 - "$1" <<'PY'
import json, sys
log = json.load(open(sys.argv[1]))
assert log["version"] == "2.1.0", log.get("version")
assert isinstance(log["runs"], list) and log["runs"], "no runs"
for run in log["runs"]:
    assert run["tool"]["driver"]["name"], "no tool name"
    assert isinstance(run.get("results", []), list)
PY
}

sarif_has_results() {
  python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); sys.exit(0 if any(r.get("results") for r in l["runs"]) else 1)' "$1"
}

output_is() { grep -qx "$1=$2" "$outputs"; }
summary_has() { grep -qF -- "$1" "$summary"; }

# action.yml itself: valid YAML (where PyYAML is installed), composite, and no `${{ }}`
# inside a run: script (inputs go through env:).
no_expression_in_run() { ! grep -nE '^\s*run:.*\$\{\{' "$here/action.yml"; }
check "action.yml: no \${{ }} in run:" no_expression_in_run
if python3 -c 'import yaml' 2>/dev/null; then
  action_parses() {
    python3 - "$here/action.yml" <<'PY'
import sys, yaml
action = yaml.safe_load(open(sys.argv[1]))
assert action["runs"]["using"] == "composite"
for step in action["runs"]["steps"]:
    assert step["shell"] == "bash" and "${{" not in step["run"], step
for name, spec in action["inputs"].items():
    assert "description" in spec, name
PY
  }
  check "action.yml: valid composite action" action_parses
else
  echo "skip action.yml YAML check: no PyYAML"
fi

history="$here/events/none/github-push-main-success.json
$here/events/none/github-environment-prod-success.json"

# A neutral trust-policy change on a clean repository: success.
run_action neutral "$history"
check "neutral: exit 0" test "$code" -eq 0
check "neutral: SARIF is valid JSON with runs" sarif_is_valid "$sarif"
check "neutral: summary written" summary_has "## oidc-watch pre-flight"
check "neutral: summary judges the policy" summary_has "infra/trust/gha-deploy-web-app.json"
check "neutral: verdict output" grep -qx "infra/trust/gha-deploy-web-app.json=neutral" "$outputs"
check "neutral: failed=false" output_is failed false
check "neutral: sarif-file output" output_is sarif-file results.sarif
[[ $code -eq 0 ]] || cat "$out"

# The old policy from an account snapshot instead of the base commit; check-workflows
# judges the job's subject against it too.
run_action narrowing "$history" "$here/tests/data/impact/account.json"
check "account: narrowing still breaks" output_is impact-exit 1
check "account: old policy is the snapshot's" summary_has "(snapshot arn:aws:iam::111122223333:role/gha-deploy-web-app)"
check "account: check-workflows judges the job's subject" grep -Eq "repo:acme/web-app:environment:prod +allowed" "$summary"

# The change drops a subject that assumed the role: the step fails.
run_action narrowing "$history"
check "narrowing: exit non-zero" test "$code" -ne 0
check "narrowing: impact-exit=1" output_is impact-exit 1
check "narrowing: verdict breaks" grep -qx "infra/trust/gha-deploy-web-app.json=breaks" "$outputs"
check "narrowing: summary names the subject" summary_has "repo:acme/web-app:environment:prod"
check "narrowing: annotation on the policy file" grep -q "::error file=infra/trust/gha-deploy-web-app.json" "$out"
check "narrowing: SARIF still valid" sarif_is_valid "$sarif"
check "narrowing: failed=true" output_is failed true

# The workflow loses id-token: write: check-workflows fails the step with SARIF results.
run_action missing-id-token ""
check "missing-id-token: exit non-zero" test "$code" -ne 0
check "missing-id-token: check-workflows-exit=1" output_is check-workflows-exit 1
check "missing-id-token: SARIF valid with results" sarif_is_valid "$sarif"
check "missing-id-token: SARIF has results" sarif_has_results "$sarif"
check "missing-id-token: annotation" grep -q "^::error file=" "$out"
check "missing-id-token: summary written" summary_has "check-workflows"
check "missing-id-token: no policy change judged" summary_has "No trust policy named by"

# Install from a release: the archive is checked by SHA-256, and a wrong digest refuses it.
release=$scratch/release
mkdir -p "$release/pack"
cp "$bin" "$release/pack/oidc-watch"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) target=x86_64-unknown-linux-musl ;;
  Linux-aarch64) target=aarch64-unknown-linux-musl ;;
  Darwin-x86_64) target=x86_64-apple-darwin ;;
  Darwin-arm64) target=aarch64-apple-darwin ;;
  *) target="" ;;
esac
if [[ -n "$target" ]]; then
  asset=oidc-watch-0.1.0-$target.tar.gz
  tar -czf "$release/$asset" -C "$release/pack" oidc-watch
  (cd "$release" && sha256sum "$asset" >"$asset.sha256" 2>/dev/null || shasum -a 256 "$asset" >"$asset.sha256")
  install_from() {
    : >"$scratch/install.outputs"
    env -u RUNNER_OS -u RUNNER_ARCH GITHUB_OUTPUT="$scratch/install.outputs" RUNNER_TEMP="$scratch" \
      INPUT_BINARY= INPUT_VERSION=0.1.0 INPUT_SHA256="${1:-}" \
      OIDC_WATCH_RELEASE_BASE_URL="file://$release" bash "$here/action/install.sh" >"$scratch/install.out" 2>&1
  }
  installed_runs() {
    local b
    b=$(sed -n 's/^binary=//p' "$scratch/install.outputs")
    [[ -n "$b" ]] && "$b" --version >/dev/null
  }
  check "install: from the release, checked by its .sha256" install_from ""
  check "install: the installed binary runs" installed_runs
  good=$(cut -d' ' -f1 <"$release/$asset.sha256")
  check "install: a pinned sha256 input" install_from "$good"
  bad=0000000000000000000000000000000000000000000000000000000000000000
  if install_from "$bad"; then
    echo "FAIL install: a wrong digest is refused"
    failed=$((failed + 1))
  else
    echo "ok   install: a wrong digest is refused"
    passed=$((passed + 1))
  fi
  printf 'deadbeef  %s\n' "$asset" >"$release/$asset.sha256"
  if install_from ""; then
    echo "FAIL install: a release whose .sha256 does not match is refused"
    failed=$((failed + 1))
  else
    echo "ok   install: a release whose .sha256 does not match is refused"
    passed=$((passed + 1))
  fi
else
  echo "skip install from a release: no release target for $(uname -s)-$(uname -m)"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
