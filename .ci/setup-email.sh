#!/usr/bin/env bash
# Install Dovecot IMAP (and openssl, for the TLS test certificate) for the e-mail channel
# tests; the tests start their own Dovecot instance on a free loopback port.
set -euo pipefail

# /usr/sbin is not on every PATH, and that is where Debian puts dovecot.
PATH="$PATH:/usr/sbin:/sbin"

if command -v dovecot >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-email: dovecot or openssl is missing and this script needs root to install them" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
packages=(dovecot-core dovecot-imapd openssl)

# Keep the package's maintainer scripts from starting the system service: the tests start
# their own Dovecot on a free loopback port, and a system one would only hold ports 143/993.
policy=/usr/sbin/policy-rc.d
created_policy=no
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  created_policy=yes
fi
cleanup() {
  if [ "$created_policy" = yes ]; then
    rm -f "$policy"
  fi
}
trap cleanup EXIT

if ! apt-get install -y --no-install-recommends "${packages[@]}"; then
  apt-get update
  apt-get install -y --no-install-recommends "${packages[@]}"
fi

# In case an init system started it anyway, stop it and keep it from starting at boot.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now dovecot.service >/dev/null 2>&1 || true
elif command -v service >/dev/null 2>&1; then
  service dovecot stop >/dev/null 2>&1 || true
  if command -v update-rc.d >/dev/null 2>&1; then
    update-rc.d dovecot disable >/dev/null 2>&1 || true
  fi
fi

command -v dovecot >/dev/null 2>&1
dovecot --version
