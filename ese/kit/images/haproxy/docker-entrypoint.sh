#!/bin/sh
# Mirrors the official haproxy image's entrypoint.
set -e

# `docker run IMAGE -f some.cfg` means haproxy with those arguments.
if [ "${1#-}" != "$1" ]; then
    set -- haproxy "$@"
fi

exec "$@"
