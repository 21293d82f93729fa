#!/usr/bin/env bash
# Headless Chromium for the dashboard test (tests/integration/test_dashboard.py).
#
#   bash .ci/install-chromium.sh
#
# Idempotent: does nothing when /usr/bin/chromium (or $CHROMIUM) already exists.
# Installs Debian's `chromium` package with apt-get (needs root, as in CI; uses sudo
# otherwise when it is available). Only the browser is installed: the test runs it with
# --headless and no network access is needed at test time.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$CHROMIUM" ]]; then
  echo "chromium present: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
  exit 0
fi

SUDO=()
if [[ "$(id -u)" != "0" ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "error: installing chromium needs root (or sudo): apt-get install -y chromium" >&2
    exit 2
  fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "installing chromium (apt-get install -y chromium)"
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null

if [[ ! -x "$CHROMIUM" ]]; then
  echo "error: apt-get finished but $CHROMIUM is missing" >&2
  exit 1
fi
echo "chromium installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
