#!/usr/bin/env bash
# Installs Debian's Chromium for the report test, which renders report.html headless (driven by the
# playwright package from the dev extra, pointed at this browser: playwright downloads no browser of its
# own). Idempotent: nothing to do when /usr/bin/chromium is already there.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
. "$(dirname "$0")/apt-lib.sh"
can_install chromium "the report's browser test" "install Debian's chromium as /usr/bin/chromium" || exit 0
echo "installing chromium for the report's browser test"
apt_install chromium
