"""prometheus/rules/ese.rules.test.yml: `promtool test rules` unit tests of every alert.

Each scenario feeds synthetic series (named after this topology's shards and exporters) into
the rules and says, at given times, which alerts fire with which labels and annotations. Every
rule needs a case where it fires and one where it must not (`uncovered` lists the rules that
lack one; rendering refuses them). The expected annotations are the rule's templates with the
labels filled in and the `$value` text written out here by hand, so a wrong label name, a
template error or a different number formatting fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from ese.render import alert_tests_redis
from ese.render.alert_cases import STEP, Check, Fired, Scenario, sel
from ese.render.alert_rules import Rule, rules
from ese.render.common import HEADER_NOTE, dump_yaml
from ese.render.haproxy_cfg import BACKEND
from ese.render.prometheus_yml import HAPROXY_JOB, REDIS_JOB, RULES_FILE, SHARD_JOB
from ese.render.swarm_haproxy import template_prefix
from ese.render.swarm_nodes import NODE_JOB
from ese.topology import Topology
from ese.topology_model import Shard

# Beside the rule file (relative to prometheus/), which it names relative to itself.
TESTS_FILE = str(PurePosixPath(RULES_FILE).with_suffix(".test.yml"))
RULES_NAME = PurePosixPath(RULES_FILE).name
MAXMEMORY = 268435456  # 256 MiB in the synthetic series (the test's own, not the topology's)


def _shard_labels(shard: Shard) -> dict[str, str]:
    """The labels Prometheus gives a shard's series (prometheus.yml's static_configs)."""
    return {
        "job": SHARD_JOB,
        "instance": f"{shard.name}:{shard.port}",
        "shard": shard.name,
        "role": shard.role,
    }


def _down_and_back(alert: str, metric: str, sick: Shard, well: Shard | None) -> Scenario:
    """`metric` drops to 0 on `sick` from 30 s to 90 s, then recovers; `well` stays at 1."""
    labels = _shard_labels(sick)
    series = [(sel(metric, **labels), "1 1 0 0 0 0 0 1 1")]
    if well is not None:
        series.append((sel(metric, **_shard_labels(well)), "1x8"))
    return Scenario(
        f"{alert}: {metric} of {sick.name} is 0 from 30 s to 90 s",
        tuple(series),
        (
            Check("45s", alert),  # 0 since 30 s: pending, not firing yet
            Check("60s", alert, (Fired(labels),)),  # the first evaluation 30 s on
            Check("120s", alert),  # back at 105 s: resolved
        ),
    )


def scenarios(topo: Topology) -> list[Scenario]:
    """The unit tests, in the order of the rules."""
    first = topo.ingest_shards[0]
    others = [s for s in topo.shards if s != first]
    other = others[0] if others else None
    ingest2 = next((s for s in topo.ingest_shards if s != first), None)
    exporter = {
        "job": REDIS_JOB,
        "instance": f"{topo.redis_exporter.name}:{topo.redis_exporter.port}",
    }
    lb = {
        "job": HAPROXY_JOB,
        "instance": f"{topo.balancer.name}:{topo.balancer.exporter_port}",
        "proxy": BACKEND,
    }
    out = [
        _down_and_back("EseShardDown", "up", first, other),
        _down_and_back("EseRedisDown", "ese_redis_up", first, other),
    ]

    def node(name: str, address: str) -> str:
        labels = {"job": NODE_JOB, "instance": f"{address}:9100", "nodename": name}
        return sel("node_uname_info", **labels)

    out.append(
        Scenario(
            "EseNodeDown: ese-node-2 stops reporting at 45 s and is back at 150 s, at a new "
            "address; ese-node-1 reports throughout",
            (
                (node("ese-node-1", "10.0.1.2"), "1x14"),
                # `stale`: the target left service discovery (its samples are marked stale).
                (node("ese-node-2", "10.0.1.3"), "1 1 1 stale"),
                (node("ese-node-2", "10.0.1.9"), "_x10 1x4"),
            ),
            (
                Check("30s", "EseNodeDown"),
                Check("60s", "EseNodeDown"),  # gone since 45 s: pending
                Check("90s", "EseNodeDown", (Fired({"nodename": "ese-node-2"}),)),
                Check("165s", "EseNodeDown"),  # reporting again: resolved
            ),
        )
    )

    def memory(used: str, limit: str) -> tuple[tuple[str, str], ...]:
        return (
            (sel("redis_memory_used_bytes", **exporter), used),
            (sel("redis_memory_max_bytes", **exporter), limit),
        )

    out += [
        Scenario(
            "EseStoreNearlyFull: Redis at 87.5 % of maxmemory from 30 s on",
            memory(f"134217728 134217728 {MAXMEMORY * 7 // 8}x6", f"{MAXMEMORY}x8"),
            (
                Check("75s", "EseStoreNearlyFull"),  # over since 30 s: pending
                Check("90s", "EseStoreNearlyFull", (Fired(exporter, "87.5%"),)),
            ),
        ),
        Scenario(
            "EseStoreNearlyFull: Redis at 75 % of maxmemory stays quiet",
            memory(f"{MAXMEMORY * 3 // 4}x8", f"{MAXMEMORY}x8"),
            (Check("105s", "EseStoreNearlyFull"),),
        ),
        Scenario(
            "EseStoreNearlyFull: maxmemory 0 (no limit) is not a full store",
            memory(f"{MAXMEMORY}x8", "0x8"),
            (Check("105s", "EseStoreNearlyFull"),),
        ),
    ]

    refused = sel("ese_store_full_total", **_shard_labels(first))
    out += [
        Scenario(
            f"EseStoreFull: {first.name} refuses writes from 60 s to 90 s",
            ((refused, "0x3 5 10 15 15x5"),),
            (
                Check("45s", "EseStoreFull"),
                # The first refusal is in the 60 s sample: firing at once, no `for`.
                Check("60s", "EseStoreFull", (Fired({"shard": first.name, "role": first.role}),)),
                Check("165s", "EseStoreFull"),  # none refused for over a minute
            ),
        ),
    ]

    server = {**lb, "server": first.name}
    lb_series = [
        (sel("haproxy_server_status", **server, state="UP"), "1 1 0 0 0 0 0 1 1"),
        # HAProxy moves a killed shard from DOWN to MAINT once its name stops resolving.
        (sel("haproxy_server_status", **server, state="DOWN"), "0 0 1 1 0 0 0 0 0"),
        (sel("haproxy_server_status", **server, state="MAINT"), "0 0 0 0 1 1 1 0 0"),
    ]
    if ingest2 is not None:
        lb_series.append(
            (sel("haproxy_server_status", **lb, server=ingest2.name, state="UP"), "1x8")
        )
    out.append(
        Scenario(
            f"EseLoadBalancerServerDown: {first.name} DOWN then MAINT from 30 s to 90 s",
            tuple(lb_series),
            (
                Check("45s", "EseLoadBalancerServerDown"),
                Check(
                    "60s",
                    "EseLoadBalancerServerDown",
                    (Fired({**server, "shard": first.name}),),
                ),
                Check("120s", "EseLoadBalancerServerDown"),
            ),
        )
    )

    # The Swarm stack's HAProxy: an empty server-template slot sits in MAINT (quiet), a replica
    # failing its health checks is DOWN (fires) like a compose shard.
    prefix = template_prefix(topo)
    empty, failing = {**lb, "server": f"{prefix}3"}, {**lb, "server": f"{prefix}2"}
    out.append(
        Scenario(
            f"EseLoadBalancerServerDown: Swarm slot {prefix}3 empty (MAINT), {prefix}2 DOWN",
            (
                (sel("haproxy_server_status", **empty, state="UP"), "0x8"),
                (sel("haproxy_server_status", **empty, state="MAINT"), "1x8"),
                (sel("haproxy_server_status", **failing, state="UP"), "0x8"),
                (sel("haproxy_server_status", **failing, state="DOWN"), "1x8"),
            ),
            (
                Check(
                    "60s",
                    "EseLoadBalancerServerDown",
                    (Fired({**failing, "shard": f"{prefix}2"}),),
                ),
            ),
        )
    )

    def requests(shard: Shard, status: str, per_step: int, route: str = "/events") -> str:
        labels = {**_shard_labels(shard), "route": route, "method": "POST", "status": status}
        return sel("ese_http_request_duration_seconds_count", **labels)

    error_series = [
        (requests(first, "201", 600), "0+600x16"),
        (requests(first, "503", 12), "0+12x16"),  # 12 of 612: 1.96 %
    ]
    quiet: Shard | None = other
    if quiet is not None:
        error_series += [
            (requests(quiet, "201", 600), "0+600x16"),
            (requests(quiet, "503", 3), "0+3x16"),  # 3 of 603: 0.5 %
            # Failed scrapes are not user requests: they must not count.
            (requests(quiet, "500", 600, "/metrics"), "0+600x16"),
        ]
    pair = {"shard": first.name, "role": first.role}
    out.append(
        Scenario(
            f"EseErrorRateHigh: {first.name} answers 1.96 % with 503"
            + (f", {quiet.name} 0.5 %" if quiet else ""),
            tuple(error_series),
            (
                # Over from 15 s on (the first rate), so firing from 2 min later.
                Check("120s", "EseErrorRateHigh"),
                Check("135s", "EseErrorRateHigh", (Fired(pair, "1.961%"),)),
            ),
        )
    )

    def buckets(shard: Shard, counts: dict[str, str]) -> list[tuple[str, str]]:
        labels = {**_shard_labels(shard), "route": "/event", "method": "POST", "status": "201"}
        name = "ese_http_request_duration_seconds_bucket"
        return [(sel(name, **labels, le=le), values) for le, values in counts.items()]

    slow = buckets(first, {"0.005": "0x30", "0.1": "0x30", "0.25": "0+100x30", "+Inf": "0+100x30"})
    if quiet is not None:
        fast = "0+100x30"
        slow += buckets(quiet, {"0.005": fast, "0.1": fast, "0.25": fast, "+Inf": fast})
    out.append(
        Scenario(
            f"EseLatencyHigh: every request to {first.name} takes 100-250 ms",
            tuple(slow),
            (
                Check("300s", "EseLatencyHigh"),  # slow since 15 s: pending
                # p99 interpolated in the (0.1, 0.25] bucket: 0.1 + 0.99 * 0.15 s.
                Check("315s", "EseLatencyHigh", (Fired(pair, "248.5ms"),)),
            ),
        )
    )

    ingested = sel("ese_events_ingested_total", **_shard_labels(first), type="CLICK_STREAM_EVENT")
    sessions = sel("haproxy_backend_sessions_total", **lb)
    out += [
        Scenario(
            "EseNoEventsIngested: events stop at 120 s while the LB keeps forwarding",
            ((ingested, "0+50x8 400x30"), (sessions, "0+30x39")),
            (
                # The rate reaches 0 at 165 s or 180 s (whether a window's start is
                # included changed in Prometheus 3); either way pending at 420 s, firing at
                # 495 s, and a `for` of 4 or 6 min fails one of the two.
                Check("420s", "EseNoEventsIngested"),
                Check("495s", "EseNoEventsIngested", (Fired({}),)),
            ),
        ),
        Scenario(
            "EseNoEventsIngested: an idle demo (no sessions, no events) stays quiet",
            ((ingested, "400x39"), (sessions, "30x39")),
            (Check("540s", "EseNoEventsIngested"),),
        ),
    ]
    return out + alert_tests_redis.scenarios(topo)


_LABEL = re.compile(r"\{\{ \$labels\.(\w+) \}\}")
_VALUE = re.compile(r"\{\{ \$value \| \w+ \}\}")


def expand(template: str, labels: dict[str, str], value: str) -> str:
    """An annotation as Prometheus renders it for these labels and this value text."""
    text = _LABEL.sub(lambda m: labels[m.group(1)], template)
    if _VALUE.search(text):
        if not value:
            raise ValueError(f"the expected value text is missing for: {template}")
        text = _VALUE.sub(lambda _: value, text)
    if "{{" in text:
        raise ValueError(f"template not covered by the test expectations: {template}")
    return text


def uncovered(rule_list: Iterable[Rule], tests: Iterable[Scenario]) -> list[str]:
    """Rules without a case where they fire or without one where they must not."""
    checks = [c for s in tests for c in s.checks]
    fires = {c.alert for c in checks if c.fired}
    quiet = {c.alert for c in checks if not c.fired}
    return [r.alert for r in rule_list if r.alert not in fires or r.alert not in quiet]


def _expected(rule: Rule, fired: Fired) -> dict[str, object]:
    labels = {**fired.labels, "severity": rule.severity, **rule.labels}
    return {
        "exp_labels": labels,
        "exp_annotations": {
            "summary": expand(rule.summary, labels, fired.value),
            "description": expand(rule.description, labels, fired.value),
        },
    }


def tests_file(topo: Topology) -> str:
    """The `promtool test rules` file; ValueError when a rule has no firing or quiet case."""
    by_name = {r.alert: r for r in rules(topo)}
    tests = scenarios(topo)
    missing = uncovered(by_name.values(), tests)
    if missing:
        raise ValueError(f"alert rules without a firing and a quiet test: {', '.join(missing)}")
    doc = {
        "rule_files": [RULES_NAME],
        "evaluation_interval": STEP,
        "tests": [
            {
                "name": s.name,
                "interval": STEP,
                "input_series": [{"series": sel, "values": v} for sel, v in s.series],
                "alert_rule_test": [
                    {
                        "eval_time": c.at,
                        "alertname": c.alert,
                        "exp_alerts": [_expected(by_name[c.alert], f) for f in c.fired],
                    }
                    for c in s.checks
                ],
            }
            for s in tests
        ],
    }
    header = f"{HEADER_NOTE}\nRun: promtool test rules prometheus/{TESTS_FILE}"
    return dump_yaml(doc, header)
