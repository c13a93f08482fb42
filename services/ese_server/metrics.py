"""Prometheus metrics of one shard (names fixed by the team brief; the dashboard uses them).

The four counters of the original Go server are rendered by hand: prometheus_client would add a
`_total` suffix to their sample names, and the original dashboard queries them without it.
"""

from __future__ import annotations

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# The *_created samples only add noise to every scrape; the dashboard never uses them.
disable_created_metrics()

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
LEGACY_COUNTERS = (
    ("health_ping_count", "Requests to GET / (original ese-server counter)."),
    ("add_event_ping_count", "Requests to POST /event (original ese-server counter)."),
    ("add_events_ping_count", "Requests to POST /events (original ese-server counter)."),
    ("get_events_ping_count", "Requests to GET /events (original ese-server counter)."),
)


class Metrics:
    """All metric objects, with label children cached (labels() is slow on the hot path).

    They live on a registry of their own (not prometheus_client's global one), so several apps
    can share a process, each with its own figures, e.g. in tests.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        # What the global registry exposes besides ours: process_* (RSS, CPU, open fds: the
        # dashboard plots them), python_gc_* and python_info. They describe the process, so
        # every app in it shows the same figures.
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            reg.register(collector)
        self.legacy: dict[str, int] = {name: 0 for name, _ in LEGACY_COUNTERS}
        self.duration = Histogram(
            "ese_http_request_duration_seconds",
            "HTTP request duration by route template, method and status.",
            ("route", "method", "status"),
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=reg,
        )
        self.ingested = Counter(
            "ese_events_ingested",
            "Events stored (duplicates excluded), by type.",
            ("type",),
            registry=reg,
        )
        self.rejected = Counter(
            "ese_requests_rejected",
            "Requests refused with a 4xx, by reason.",
            ("reason",),
            registry=reg,
        )
        self.redis_errors = Counter("ese_redis_errors", "Failed Redis calls.", registry=reg)
        self.store_full = Counter(
            "ese_store_full",
            "Writes refused because Redis reached maxmemory (the store is full, not down).",
            registry=reg,
        )
        self.not_replicated = Counter(
            "ese_not_replicated",
            "Appends refused because fewer replicas than ESE_ACK_REPLICAS confirmed them.",
            registry=reg,
        )
        self.redis_up = Gauge(
            "ese_redis_up", "1 when the last Redis call succeeded, else 0.", registry=reg
        )
        self.stream_length = Gauge(
            "ese_stream_length", "Entries in the event stream.", registry=reg
        )
        self._duration_children: dict[tuple[str, str, int], object] = {}
        self._ingested_children = {
            t: self.ingested.labels(t)
            for t in ("CLICK_STREAM_EVENT", "ORDER_STATE_UPDATE_EVENT", "other")
        }
        self._rejected_children: dict[str, object] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one request's duration."""
        key = (route, method, status)
        child = self._duration_children.get(key)
        if child is None:
            child = self.duration.labels(route, method, str(status))
            self._duration_children[key] = child
        child.observe(seconds)  # type: ignore[attr-defined]

    def ingest(self, type_key: str, count: int = 1) -> None:
        """Count stored events of one type."""
        self._ingested_children[type_key].inc(count)

    def reject(self, reason: str) -> None:
        """Count one rejected request."""
        child = self._rejected_children.get(reason)
        if child is None:
            child = self.rejected.labels(reason)
            self._rejected_children[reason] = child
        child.inc()  # type: ignore[attr-defined]

    def render(self) -> bytes:
        """The /metrics body: the registry plus the four legacy counters."""
        lines = []
        for name, text in LEGACY_COUNTERS:
            lines.append(
                f"# HELP {name} {text}\n# TYPE {name} counter\n{name} {self.legacy[name]}\n"
            )
        return generate_latest(self.registry) + "".join(lines).encode()
