#!/bin/sh
set -e
# Options alone (`--appendonly yes`) mean redis-server with them, as in the official image.
if [ "${1#-}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid redis --regid redis --init-groups "$0" "$@"
fi
exec "$@"
