# Sourced by the install-*.sh scripts: a Debian package some tests need, installed as root or with
# password-less sudo; where neither works, a warning, and those tests skip.

# can_install WHAT FOR HINT: sets SUDO and returns 0 when this user can install with apt-get, else warns
# ("WHAT is not installed ...; FOR will be skipped (HINT)") and returns 1.
can_install() {
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      SUDO="sudo -n"
    else
      echo "warning: $1 is not installed and this user cannot install it; $2 will be skipped ($3)" >&2
      return 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "warning: no apt-get here; $3 by hand or $2 will be skipped" >&2
    return 1
  fi
}

# apt_install PACKAGE...: quietly, without recommended packages.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
