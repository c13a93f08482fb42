#!/bin/sh
# As the official registry image's entry point: a config file means `registry serve FILE`, a
# subcommand or an option means `registry ...`; anything else runs as given.
set -e
case "$1" in
    *.yaml | *.yml) set -- registry serve "$@" ;;
    serve | garbage-collect | help | -*) set -- registry "$@" ;;
esac
exec "$@"
