#!/bin/sh
# Mirrors the official redis image's entrypoint (Debian's setpriv instead of su-exec/gosu).
set -e

# `docker run IMAGE --option` or `IMAGE some.conf` means redis-server with those arguments.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi

# As root: own the data directory (a volume may come from another image) and drop privileges.
if [ "$1" = "redis-server" ] && [ "$(id -u)" = "0" ]; then
    find . \! -user redis -exec chown redis "{}" +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

# The official image compiles redis with protected mode off; Debian's binary has it on, which
# would refuse other containers when no password is set. Without a config file, switch it off
# (later command-line options still win).
if [ "$1" = "redis-server" ] && { [ $# -eq 1 ] || [ "${2#-}" != "$2" ]; }; then
    shift
    set -- redis-server --protected-mode no "$@"
fi

um="$(umask)"
if [ "$um" = "0022" ]; then
    umask 0077
fi

exec "$@"
