"""`invoke status` for the replicated store, from Prometheus' answer as it gives it."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from ese.swarm import store_status
from ese.topology import load


def _answer(*series: tuple[dict[str, str], float]) -> str:
    result = [{"metric": m, "value": [1733400000.0, str(v)]} for m, v in series]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})


def _info(name: str, role: str) -> tuple[dict[str, str], float]:
    labels = {"__name__": "redis_instance_info", "job": "redis", "instance": name}
    return {**labels, "redis": name, "role": role}, 1


def test_the_master_its_replicas_lag_and_what_each_sentinel_names() -> None:
    lag = {"__name__": "redis_connected_slave_lag_seconds", "job": "redis", "instance": "redis-3"}
    sentinel = {
        "__name__": "redis_sentinel_master_ok_slaves",
        "job": "redis-sentinel",
        "instance": "sentinel-1",
        "master_address": "redis-3:6379",
    }
    text = _answer(
        _info("redis-1", "slave"),
        _info("redis-2", "slave"),
        _info("redis-3", "master"),  # after a failover
        ({**lag, "slave_ip": "redis-1"}, 0),
        ({**lag, "slave_ip": "redis-2"}, 3),
        (sentinel, 2),
        # compose's one Redis has no `redis` label: not part of the replicated store
        ({"__name__": "redis_instance_info", "job": "redis", "role": "master"}, 1),
    )
    nodes = {"redis-1": "ese-node-2", "redis-2": "ese-node-3", "redis-3": "ese-node-1"}
    assert store_status.lines(text, nodes) == [
        "  master: redis-3 (on ese-node-1)",
        "  replica redis-1 (on ese-node-2): last acknowledged 0 s ago",
        "  replica redis-2 (on ese-node-3): last acknowledged 3 s ago",
        "  sentinel-1 names redis-3:6379 the master, 2 healthy replicas",
    ]


def test_a_replica_the_master_does_not_list_is_not_connected() -> None:
    text = _answer(_info("redis-1", "master"), _info("redis-2", "slave"))
    assert store_status.lines(text, {}) == [
        "  master: redis-1",
        "  replica redis-2: not connected",
    ]
    assert store_status.lines(_answer(), {}) == [
        "  no replicated Redis reported yet (Prometheus scrapes every second)"
    ]


def test_each_redis_is_found_on_the_node_of_its_running_task() -> None:
    nodes = [SimpleNamespace(id="a", attrs={"Description": {"Hostname": "ese-node-2"}})]

    def tasks(filters: Any) -> list[dict[str, Any]]:
        return [{"NodeID": "a"}] if filters["service"] == "ese_redis-1" else []

    cli = SimpleNamespace(
        nodes=SimpleNamespace(list=lambda: nodes), api=SimpleNamespace(tasks=tasks)
    )
    assert store_status.task_nodes(cli, "ese", ("redis-1", "redis-2")) == {"redis-1": "ese-node-2"}


def test_the_query_asks_prometheus_for_the_store_series() -> None:
    url = store_status.query_url(load())
    assert url.startswith("http://127.0.0.1:9090/api/v1/query?query=")
    assert "redis_instance_info" in url and "redis-sentinel" in url
