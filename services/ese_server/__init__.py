"""ese-server: one shard of the event API (ingest and/or analytics) on a Redis Stream."""

__version__ = "1.0.0"
