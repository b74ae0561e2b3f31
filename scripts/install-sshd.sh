#!/usr/bin/env bash
# Installs Debian's OpenSSH server for the ssh tests, which start their own sshd on 127.0.0.1 with
# throwaway keys (tests/device_fixtures.py). Idempotent: nothing to do when sshd is already there.
# A fresh install leaves the system's ssh service off: /etc/ssh/sshd_not_to_be_run keeps Debian's
# ssh.service from starting, now or at boot, so setting up the tests opens no port.
set -euo pipefail

if command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ]; then
  exit 0
fi
. "$(dirname "$0")/apt-lib.sh"
can_install sshd "the ssh tests" "install Debian's openssh-server" || exit 0
echo "installing openssh-server for the ssh tests (its system service stays off)"
$SUDO mkdir -p /etc/ssh
$SUDO touch /etc/ssh/sshd_not_to_be_run
apt_install openssh-server
