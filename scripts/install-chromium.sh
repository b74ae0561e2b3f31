#!/usr/bin/env bash
# Installs Debian's Chromium for the report test, which renders report.html headless (driven by the
# playwright package from the dev extra, pointed at this browser: playwright downloads no browser of its
# own). Idempotent: nothing to do when /usr/bin/chromium is already there.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "warning: chromium is not installed and this user cannot install it; the report's browser test" \
         "will be skipped (install Debian's chromium)" >&2
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "warning: no apt-get here; install Chromium as /usr/bin/chromium by hand or the report's browser test" \
       "is skipped" >&2
  exit 0
fi
echo "installing chromium for the report's browser test"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
