"""haproxy/swarm/haproxy.cfg: the load balancer of the Swarm stack.

The ingest replicas are not known when the file is rendered: `server-template` keeps one slot
per possible replica and Docker's DNS (`tasks.<ingest service>`) fills them at run time.
"""

from __future__ import annotations

from ese.render.haproxy_cfg import frontends
from ese.topology import Topology

# Re-resolve every second and drop a vanished replica one second later: a scaled-down task
# leaves the rotation within ~2 s, far inside its stop_grace_period (see swarm_stack.py).
DNS_HOLD = "1s"
# Health checks: a replica that stops accepting (SIGTERM) is marked DOWN within 2 s. No
# `on-marked-down shutdown-sessions`: that would cut the requests it is still draining.
CHECK = "check inter 1s fall 2 rise 2"
# `init-addr none`: an empty slot starts in maintenance instead of failing the start.
RESOLVE = "resolvers docker resolve-prefer ipv4 init-addr none"


def template_prefix(topo: Topology) -> str:
    """Name prefix of the server slots (`ingest1`, `ingest2`, ... on the stats page)."""
    return "ingest"


def config(topo: Topology) -> str:
    """The full HAProxy configuration for the Swarm stack."""
    lb, sw = topo.balancer, topo.swarm
    port = topo.ingest_shards[0].port
    intro = (
        f"# Swarm stack `{sw.stack}`, load balancer `{lb.name}`: {lb.balance} over the replicas "
        f"of\n# `{sw.ingest_service}` (up to {sw.max_ingest_replicas}), found through "
        f"tasks.{sw.ingest_service};\n# stats at {lb.stats_path}; Prometheus exporter on "
        f":{lb.exporter_port}/metrics."
    )
    return (
        frontends(topo, intro, DNS_HOLD)
        + f"""
backend ingest
    balance {lb.balance}
    option httpchk GET /
    http-check expect status 200
    # A replica stopping between DNS updates refuses or drops a connection: the request is
    # re-sent to another replica. Safe for POSTs here: events carry ids, a repeat is stored once.
    option http-buffer-request
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
    default-server {CHECK} {RESOLVE}
    server-template {template_prefix(topo)} {sw.max_ingest_replicas} \
tasks.{sw.ingest_service}:{port}
"""
    )
