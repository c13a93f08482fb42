"""alertmanager/alertmanager.yml: group Prometheus' alerts and send them where topology.toml says.

By default the one receiver has no endpoint: alerts are grouped and shown (Alertmanager's UI
and API, `invoke status`) but sent nowhere. `[alertmanager] webhook_url` adds a webhook.
"""

from __future__ import annotations

from typing import Any

from ese.render.common import HEADER_NOTE, dump_yaml
from ese.topology import Topology

RECEIVER = "default"
GROUP_BY = ["alertname", "shard"]


def config(topo: Topology) -> str:
    """The Alertmanager configuration."""
    am = topo.alertmanager
    receiver: dict[str, Any] = {"name": RECEIVER}
    if am.webhook_url:
        receiver["webhook_configs"] = [{"url": am.webhook_url, "send_resolved": True}]
    doc = {
        "route": {
            "receiver": RECEIVER,
            "group_by": GROUP_BY,
            # Short waits: a demo drill should see its notification within seconds.
            "group_wait": "10s",
            "group_interval": "1m",
            "repeat_interval": "4h",
        },
        # A shard that is down also fails HAProxy's checks and takes errors, and one without
        # Redis, with a full Redis or refusing appends as not replicated answers 503s: say
        # each once.
        # EseNotReplicated itself is never held back. Not by EseRedisDown: a shard counts a
        # refusal as not replicated only while it reaches Redis (a Redis it cannot reach is
        # EseRedisDown's), so the two say different things. Not by EseRedisFailover either:
        # its `for` already lets a failover's burst of refusals pass, and refusals that go on
        # after a failover (the new master's replicas do not follow it) are the very case to
        # page for, while EseRedisFailover, which has no `shard` label to match on, would hold
        # them back on every shard for 5 min.
        "inhibit_rules": [
            {
                "source_matchers": ['alertname="EseShardDown"'],
                "target_matchers": ['alertname=~"EseLoadBalancerServerDown|EseErrorRateHigh"'],
                "equal": ["shard"],
            },
            {
                "source_matchers": ['alertname=~"EseRedisDown|EseStoreFull|EseNotReplicated"'],
                "target_matchers": ['alertname="EseErrorRateHigh"'],
                "equal": ["shard"],
            },
        ],
        "receivers": [receiver],
    }
    hint = (
        f"{HEADER_NOTE}\n"
        "Notifications: set [alertmanager] webhook_url in topology.toml (README, Alerts)."
    )
    return dump_yaml(doc, hint)
