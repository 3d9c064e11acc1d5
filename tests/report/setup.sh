#!/usr/bin/env bash
# Installs the headless browser the report tier drives: Debian's chromium, pinned. Nothing
# is installed when that version is already there. Needs root (apt-get); reaches only
# Debian's package archive.
set -euo pipefail
version="148.0.7778.167-1~deb12u1"
installed="$(dpkg-query -W -f='${Version}' chromium 2>/dev/null || true)"
if [[ "$installed" == "$version" && -x /usr/bin/chromium ]]; then
  echo "chromium $version already installed" >&2
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "tests/report/setup.sh: chromium $version is not installed and this is not root; install it with apt-get" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# apt-get waits up to 5 minutes for another apt on the machine to finish.
apt_get() { timeout 900 apt-get -o DPkg::Lock::Timeout=300 "$@"; }
if ! apt-cache show "chromium=$version" >/dev/null 2>&1; then
  apt_get update -qq
fi
apt_get install -y -qq --no-install-recommends "chromium=$version" >&2
/usr/bin/chromium --version >&2
