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
        # Redis or with a full Redis answers 503s: say each once.
        "inhibit_rules": [
            {
                "source_matchers": ['alertname="EseShardDown"'],
                "target_matchers": ['alertname=~"EseLoadBalancerServerDown|EseErrorRateHigh"'],
                "equal": ["shard"],
            },
            {
                "source_matchers": ['alertname=~"EseRedisDown|EseStoreFull"'],
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
