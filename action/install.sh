#!/usr/bin/env bash
# Installs the oidc-watch release binary for this runner's OS and architecture, checked by
# SHA-256, and writes its path to $GITHUB_OUTPUT as `binary`. With INPUT_BINARY, uses that
# prebuilt binary instead.
#
# Release assets (README, "GitHub Action"):
#   oidc-watch-<version>-<target>.tar.gz         holding oidc-watch (oidc-watch.exe on Windows)
#   oidc-watch-<version>-<target>.tar.gz.sha256  "<hex digest>  <asset name>"
# OIDC_WATCH_RELEASE_BASE_URL overrides where they are fetched from (tests use file://).
set -euo pipefail

fail() {
  echo "::error title=oidc-watch install::$*" >&2
  exit 1
}

output() {
  if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
    printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
  fi
}

if [[ -n "${INPUT_BINARY:-}" ]]; then
  [[ -f "$INPUT_BINARY" && -x "$INPUT_BINARY" ]] || fail "binary: ${INPUT_BINARY} is not an executable file"
  binary=$(cd "$(dirname "$INPUT_BINARY")" && pwd)/$(basename "$INPUT_BINARY")
  "$binary" --version >/dev/null || fail "binary: ${binary} does not run"
  output binary "$binary"
  echo "Using the prebuilt $("$binary" --version)"
  exit 0
fi

version=${INPUT_VERSION:-}
version=${version#v}
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-.+][0-9A-Za-z.-]+)?$ ]] || fail "version: ${version} is not a release version (e.g. 0.1.0)"

os=${RUNNER_OS:-$(uname -s)}
arch=${RUNNER_ARCH:-$(uname -m)}
case "$os" in
  Linux) os_part=unknown-linux-musl ;;
  macOS | Darwin) os_part=apple-darwin ;;
  Windows | MINGW* | MSYS* | CYGWIN*) os_part=pc-windows-msvc ;;
  *) fail "no release for OS ${os}" ;;
esac
case "$arch" in
  X64 | x86_64 | amd64) arch_part=x86_64 ;;
  ARM64 | aarch64 | arm64) arch_part=aarch64 ;;
  *) fail "no release for architecture ${arch}" ;;
esac
target="${arch_part}-${os_part}"
asset="oidc-watch-${version}-${target}.tar.gz"

base=${OIDC_WATCH_RELEASE_BASE_URL:-}
if [[ -z "$base" ]]; then
  repository=${INPUT_RELEASE_REPOSITORY:-${ACTION_REPOSITORY:-}}
  [[ "$repository" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || fail "release-repository: give OWNER/REPO of the releases"
  base="https://github.com/${repository}/releases/download/v${version}"
fi

work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/oidc-watch.XXXXXX")
curl --fail --silent --show-error --location --proto '=https,file' --retry 3 \
  --output "$work/$asset" "$base/$asset" || fail "cannot download ${base}/${asset}"

digest() {
  if command -v sha256sum >/dev/null; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}
actual=$(digest "$work/$asset")
expected=$(printf '%s' "${INPUT_SHA256:-}" | tr 'A-F' 'a-f')
if [[ -z "$expected" ]]; then
  curl --fail --silent --show-error --location --proto '=https,file' --retry 3 \
    --output "$work/$asset.sha256" "$base/$asset.sha256" || fail "cannot download ${base}/${asset}.sha256"
  expected=$(cut -d' ' -f1 <"$work/$asset.sha256" | head -n1 | tr 'A-F' 'a-f')
fi
[[ "$expected" =~ ^[0-9a-f]{64}$ ]] || fail "no SHA-256 digest to check ${asset} against"
[[ "$actual" == "$expected" ]] || fail "SHA-256 of ${asset} is ${actual}, expected ${expected}: not installed"

name=oidc-watch
[[ "$os_part" == pc-windows-msvc ]] && name=oidc-watch.exe
tar -xzf "$work/$asset" -C "$work" "$name" || fail "${asset} holds no ${name}"
binary="$work/$name"
[[ -f "$binary" ]] || fail "${asset} holds no oidc-watch binary"
chmod +x "$binary"
output binary "$binary"
echo "Installed $("$binary" --version) (${target}, sha256 ${actual})"
