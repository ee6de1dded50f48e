#!/bin/sh
# Write the configuration handed over by the launcher onto the tmpfs and run squid in the
# foreground (the root filesystem is read-only).
set -eu
: "${PERSTACK_SQUID_CONF:?the launcher passes the squid configuration in PERSTACK_SQUID_CONF}"
printf '%s\n' "$PERSTACK_SQUID_CONF" > /tmp/squid.conf
unset PERSTACK_SQUID_CONF
squid -k parse -f /tmp/squid.conf 2>/tmp/parse.log || { cat /tmp/parse.log >&2; exit 2; }
exec squid -N -f /tmp/squid.conf
