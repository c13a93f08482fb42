"""haproxy/swarm/haproxy.cfg: the load balancer of the Swarm stack.

The ingest replicas are not known when the file is rendered: `server-template` keeps one slot
per possible replica and Docker's DNS (`tasks.<ingest service>`) fills them at run time.
"""

from __future__ import annotations

from ese.render.common import HEADER_NOTE
from ese.render.haproxy_cfg import _ALLOWED, _FORBIDDEN, DOCKER_DNS
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
    return f"""\
# {HEADER_NOTE}
# Swarm stack `{sw.stack}`, load balancer `{lb.name}`: {lb.balance} over the replicas of
# `{sw.ingest_service}` (up to {sw.max_ingest_replicas}), found through tasks.{sw.ingest_service};
# stats at {lb.stats_path}; Prometheus exporter on :{lb.exporter_port}/metrics.

global
    log stdout format raw local0 info
    maxconn 4096

resolvers docker
    nameserver dns1 {DOCKER_DNS}
    resolve_retries 3
    timeout resolve 1s
    timeout retry 1s
    hold valid {DNS_HOLD}
    hold other {DNS_HOLD}
    hold refused {DNS_HOLD}
    hold nx {DNS_HOLD}
    hold timeout {DNS_HOLD}
    hold obsolete {DNS_HOLD}
    accepted_payload_size 8192

defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect {lb.timeout_connect}
    timeout client {lb.timeout_client}
    timeout server {lb.timeout_server}
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout queue {lb.timeout_connect}

frontend {lb.name}
    bind :{lb.port}
    stats enable
    stats uri {lb.stats_path}
    stats refresh 5s
    stats show-legends
    acl ingest_post method POST
    acl ingest_path path /event /events
    acl root_get method GET HEAD
    acl root_path path /
    acl preflight method OPTIONS
    acl stats_page path_beg {lb.stats_path}
    # Only the ingest routes reach the shards; the read side is the analytics shard's alone.
    http-request deny deny_status 403 content-type application/json string '{_FORBIDDEN}' \
unless {_ALLOWED}
    default_backend ingest

frontend prometheus
    bind :{lb.exporter_port}
    # Scrapes every second would drown the access log.
    http-request set-log-level silent
    http-request use-service prometheus-exporter if {{ path /metrics }}

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
