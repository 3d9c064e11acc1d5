#!/usr/bin/env bash
# The action's work: check-workflows on the repository (SARIF to INPUT_SARIF_FILE,
# annotations on stdout), impact on each trust policy the change touches, a job summary
# in $GITHUB_STEP_SUMMARY, outputs in $GITHUB_OUTPUT. Exits non-zero when either finds
# something to fail on, or cannot read its input.
#
# Every input arrives in the environment (never interpolated into this script):
#   OIDC_WATCH_BIN       the binary (from install.sh)
#   INPUT_PATH           repository root [.]
#   INPUT_FAIL_ON        error | warning | note [error]
#   INPUT_REPOSITORY     OWNER/REPO, INPUT_SUB_TEMPLATE  passed to check-workflows
#   INPUT_ACCOUNT        snapshot paths, one per line
#   INPUT_POLICIES       GLOB or ROLE=GLOB, one per line
#   INPUT_HISTORY        CloudTrail paths, one per line
#   INPUT_BASE           base commit [PULL_REQUEST_BASE]
#   INPUT_SARIF_FILE     [oidc-watch.sarif]
set -uo pipefail

bin=${OIDC_WATCH_BIN:?OIDC_WATCH_BIN: no oidc-watch binary (did the install step run?)}
root=${INPUT_PATH:-.}
fail_on=${INPUT_FAIL_ON:-error}
sarif=${INPUT_SARIF_FILE:-oidc-watch.sarif}
summary=${GITHUB_STEP_SUMMARY:-/dev/null}
base=${INPUT_BASE:-${PULL_REQUEST_BASE:-}}
work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/oidc-watch-run.XXXXXX")

case "$fail_on" in error | warning | note) ;; *)
  echo "::error title=oidc-watch::fail-on must be error, warning or note" >&2
  exit 2
  ;;
esac

output() {
  if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
    printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
  fi
}

# Multi-line output: name<<DELIMITER ... DELIMITER, with a delimiter no line can hold.
output_lines() {
  if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
    local delimiter="oidc_watch_$RANDOM$RANDOM$RANDOM"
    { printf '%s<<%s\n' "$1" "$delimiter"; printf '%s' "$2"; printf '\n%s\n' "$delimiter"; } >>"$GITHUB_OUTPUT"
  fi
}

# Text for the summary's HTML: nothing in a file name or a finding can open a tag.
html() {
  sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g'
}

# Workflow-command escaping: a file name or message from the change cannot end the
# annotation or start another command.
escape_data() {
  local v=${1//'%'/%25}
  v=${v//$'\r'/%0D}
  printf '%s' "${v//$'\n'/%0A}"
}
escape_property() {
  local v
  v=$(escape_data "$1")
  v=${v//:/%3A}
  printf '%s' "${v//,/%2C}"
}

# Prints files of untrusted text with workflow commands turned off meanwhile.
untrusted() {
  local token="oidc-watch-$RANDOM$RANDOM$RANDOM"
  echo "::stop-commands::$token"
  cat "$@"
  echo "::$token::"
}

lines() {
  # The non-empty, trimmed lines of $1.
  printf '%s\n' "$1" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' | grep -v '^$' || true
}

accounts=()
while IFS= read -r path; do accounts+=(--account "$path"); done < <(lines "${INPUT_ACCOUNT:-}")
history=()
while IFS= read -r path; do history+=("$path"); done < <(lines "${INPUT_HISTORY:-}")

# 1. check-workflows
cw_args=(check-workflows "$root" --fail-on "$fail_on")
[[ -n "${INPUT_REPOSITORY:-}" ]] && cw_args+=(--repository "$INPUT_REPOSITORY")
[[ -n "${INPUT_SUB_TEMPLATE:-}" ]] && cw_args+=(--sub-template "$INPUT_SUB_TEMPLATE")
[[ -n "${INPUT_DEFAULT_BRANCH:-}" ]] && cw_args+=(--default-branch "$INPUT_DEFAULT_BRANCH")
cw_args+=(${accounts[@]+"${accounts[@]}"})

"$bin" "${cw_args[@]}" --format sarif >"$sarif" 2>"$work/cw.err"
cw_exit=$?
if [[ $cw_exit -ge 2 || ! -s "$sarif" ]]; then
  # Still a valid SARIF log, so an upload step does not fail on top.
  printf '%s\n' '{"version":"2.1.0","$schema":"https://json.schemastore.org/sarif-2.1.0.json","runs":[{"tool":{"driver":{"name":"oidc-watch","informationUri":"https://github.com"}},"invocations":[{"executionSuccessful":false}],"results":[]}]}' >"$sarif"
fi
"$bin" "${cw_args[@]}" --format github 2>/dev/null || true
"$bin" "${cw_args[@]}" --format text >"$work/cw.txt" 2>>"$work/cw.err" || true
untrusted "$work/cw.err"

{
  echo "## oidc-watch pre-flight"
  echo
  echo "### check-workflows"
  case $cw_exit in
    0) echo "No finding at or above \`$fail_on\`." ;;
    1) echo "**Findings at or above \`$fail_on\`** (SARIF: \`$(printf '%s' "$sarif" | html)\`)." ;;
    *) echo "**check-workflows could not read its input** (exit $cw_exit):" ;;
  esac
  echo
  echo "<pre>"
  cat "$work/cw.err" "$work/cw.txt" | html
  echo "</pre>"
} >>"$summary"

# 2. impact on the trust policies the change touches
impact_exit=0
verdicts=""
changed=()
if [[ -n "$(lines "${INPUT_POLICIES:-}")" ]]; then
  if [[ -z "$base" ]]; then
    echo "::notice title=oidc-watch::no base commit (not a pull request, and no base input): impact skipped"
    printf '\n### impact\nNo base commit (not a pull request, and no `base` input): skipped.\n' >>"$summary"
  else
    if ! git -C "$root" cat-file -e "${base}^{commit}" 2>/dev/null; then
      git -C "$root" fetch --quiet --depth=1 origin "$base" 2>/dev/null || true
    fi
    if ! git -C "$root" diff --name-only -z "${base}...HEAD" -- >"$work/changed" 2>"$work/diff.err"; then
      # A shallow clone may lack the merge base: compare the two commits instead (this
      # also lists what changed on the base meanwhile, which is judged too).
      if git -C "$root" diff --name-only -z "$base" HEAD -- >"$work/changed" 2>>"$work/diff.err"; then
        echo "::notice title=oidc-watch::no merge base of ${base} and HEAD (a shallow clone? use fetch-depth: 0): comparing the two commits"
      else
        echo "::error title=oidc-watch::$(escape_data "cannot diff ${base}...HEAD: $(head -c 500 "$work/diff.err")")"
        impact_exit=2
      fi
    fi
    while IFS= read -r -d '' file; do changed+=("$file"); done <"$work/changed"
  fi
fi

printf '\n### impact\n' >>"$summary"
judged=0
if [[ ${#changed[@]} -gt 0 ]]; then
  while IFS= read -r entry; do
    role=""
    glob=$entry
    if [[ "$entry" == *=* ]]; then
      role=${entry%%=*}
      glob=${entry#*=}
    fi
    for file in ${changed[@]+"${changed[@]}"}; do
      # shellcheck disable=SC2053 # the glob is meant to match
      [[ "$file" == $glob ]] || continue
      judged=$((judged + 1))
      name=$(basename "$file")
      file_role=${role:-${name%.*}}
      shown=$(printf '%s' "$file" | html)
      if [[ ! -f "$root/$file" ]]; then
        printf '\n**%s** was deleted: not judged (the role goes with it only if its stack does).\n' "$shown" >>"$summary"
        continue
      fi
      old_args=()
      if [[ ${#accounts[@]} -gt 0 ]]; then
        old_args=(${accounts[@]+"${accounts[@]}"})
      elif git -C "$root" cat-file -e "${base}:${file}" 2>/dev/null; then
        mkdir -p "$work/base-$judged"
        git -C "$root" show "${base}:${file}" >"$work/base-$judged/$name"
        old_args=(--old "$work/base-$judged/$name")
      else
        printf '\n**%s** is new and no `account` snapshot is given: nothing to compare with.\n' "$shown" >>"$summary"
        continue
      fi
      args=(impact --role "$file_role" --policy "$root/$file" "${old_args[@]}")
      [[ ${#history[@]} -gt 0 ]] && args+=(--history "${history[@]}")
      "$bin" "${args[@]}" --format text >"$work/impact-$judged.txt" 2>"$work/impact-$judged.err"
      code=$?
      "$bin" "${args[@]}" --format json >"$work/impact-$judged.json" 2>/dev/null
      verdict=$(sed -n 's/.*"verdict":"\([a-z-]*\)".*/\1/p' "$work/impact-$judged.json" | head -n1)
      [[ -n "$verdict" ]] || verdict=error
      verdicts+="${file}=${verdict}"$'\n'
      [[ $code -gt $impact_exit ]] && impact_exit=$code
      case $code in
        0) ;;
        1) echo "::error file=$(escape_property "$file"),title=oidc-watch impact::$(escape_data "the change to role ${file_role} ${verdict//-/ }: see the job summary")" ;;
        *) echo "::error file=$(escape_property "$file"),title=oidc-watch impact::$(escape_data "cannot judge the change to role ${file_role}: $(head -c 500 "$work/impact-$judged.err")")" ;;
      esac
      untrusted "$work/impact-$judged.err" "$work/impact-$judged.txt"
      {
        printf '\n**%s** (role `%s`): %s\n\n<pre>\n' "$shown" "$(printf '%s' "$file_role" | html)" "$verdict"
        cat "$work/impact-$judged.err" "$work/impact-$judged.txt" | html
        printf '</pre>\n'
      } >>"$summary"
    done
  done < <(lines "${INPUT_POLICIES:-}")
fi
if [[ $judged -eq 0 ]]; then
  echo "No trust policy named by \`policies\` changed." >>"$summary"
fi

failed=false
[[ $cw_exit -ne 0 || $impact_exit -ne 0 ]] && failed=true
output sarif-file "$sarif"
output check-workflows-exit "$cw_exit"
output impact-exit "$impact_exit"
output_lines impact-verdicts "${verdicts%$'\n'}"
output failed "$failed"

if [[ $cw_exit -ne 0 || $impact_exit -ne 0 ]]; then
  exit $((cw_exit > impact_exit ? cw_exit : impact_exit))
fi
exit 0
