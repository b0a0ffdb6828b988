#!/bin/sh
# Installs Dovecot's IMAP server for the tests when it is missing (Debian/Ubuntu apt-get).
# The tests start their own Dovecot in a temp dir; nothing is configured system-wide, and
# the service the package starts is stopped again. Elsewhere the IMAP tests skip with a reason.
command -v dovecot >/dev/null 2>&1 && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "dovecot is not installed and apt-get is not available: the IMAP tests will skip" >&2
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq dovecot-imapd openssl >/dev/null
# The package may start a system-wide Dovecot; the tests do not need it.
$SUDO service dovecot stop >/dev/null 2>&1 || true
exit 0
