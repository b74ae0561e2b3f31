#!/usr/bin/env bash
# Installs Debian's OpenSSH server for the ssh tests, which start their own sshd on 127.0.0.1 with
# throwaway keys (tests/device_fixtures.py). Idempotent: nothing to do when sshd is already there.
# A fresh install leaves the system's ssh service off: /etc/ssh/sshd_not_to_be_run keeps Debian's
# ssh.service from starting, now or at boot, so setting up the tests opens no port.
set -euo pipefail

if command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "warning: sshd is not installed and this user cannot install it; the ssh tests will be skipped" \
         "(install Debian's openssh-server)" >&2
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "warning: no apt-get here; install an OpenSSH server (sshd) by hand or the ssh tests are skipped" >&2
  exit 0
fi
echo "installing openssh-server for the ssh tests (its system service stays off)"
$SUDO mkdir -p /etc/ssh
$SUDO touch /etc/ssh/sshd_not_to_be_run
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
