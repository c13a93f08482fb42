"""What redis_exporter is told to watch, shared by the compose renderer and the configs check."""

from __future__ import annotations

# The shards' event stream (services/ese_server/store.py: key prefix `ese`, stream `:events`).
STREAM_KEY = "ese:events"
