"""haproxy/haproxy.cfg: the load balancer in front of the ingest shards."""

from __future__ import annotations

from ese.render.common import HEADER_NOTE
from ese.topology import Topology

# Docker's embedded DNS. Resolving at run time lets HAProxy start before the shards exist and
# follow a shard whose container is replaced (new IP) without a reload.
DOCKER_DNS = "127.0.0.11:53"

# The backend of the ingest shards; its name is the `proxy` label of HAProxy's metrics.
BACKEND = "ingest"

# `none` last: a shard that does not resolve yet starts disabled instead of stopping HAProxy.
_RESOLVE = "resolvers docker resolve-prefer ipv4 init-addr last,libc,none"

# What the load balancer forwards (ACL terms, OR-ed); everything else gets 403 here.
_ALLOWED = " || ".join(
    (
        "ingest_post ingest_path",
        "root_get root_path",
        "preflight ingest_path",  # CORS preflight of the ingest routes
        "preflight root_path",
        "stats_page",
    )
)

# The allowed origins of the click-through page, given to the shards and to HAProxy alike.
CORS_VAR = "ESE_CORS_ORIGINS"

_FORBIDDEN = (
    '{"message": "route not served by the load balancer", '
    '"errors": ["only POST /event, POST /events, GET / and OPTIONS are forwarded"]}'
)


_NO_SHARD = (
    '{"message": "no ingest shard is up", '
    '"errors": ["the load balancer has no healthy shard to forward to; run invoke status"]}'
)


def frontends(topo: Topology, intro: str, dns_hold: str) -> str:
    """Everything but the backend: global, Docker's resolver, defaults and both frontends.

    The compose and the Swarm configs share it; they differ in `dns_hold` and the backend.
    """
    lb = topo.balancer
    return f"""\
# {HEADER_NOTE}
{intro}

global
    log stdout format raw local0 info
    maxconn 4096

resolvers docker
    nameserver dns1 {DOCKER_DNS}
    resolve_retries 3
    timeout resolve 1s
    timeout retry 1s
    hold valid {dns_hold}
    hold other {dns_hold}
    hold refused {dns_hold}
    hold nx {dns_hold}
    hold timeout {dns_hold}
    hold obsolete {dns_hold}
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
    # CORS on HAProxy's own answers (the 503 while no shard is up, the 403 below), so a page
    # can read them: the origin is echoed when ESE_CORS_ORIGINS (space-separated, as the
    # shards read it too) lists it, or * for *. The shards' answers keep their own header.
    acl cors_listed req.hdr(origin) -m str "${{{CORS_VAR}[*]}}"
    acl cors_any env({CORS_VAR}) -m str *
    http-request set-var(txn.cors_origin) req.hdr(origin) if cors_listed
    http-request set-var(txn.cors_origin) str(*) if cors_any {{ req.hdr(origin) -m found }}
    # While no shard is up HAProxy answers the page's preflight itself: the POST after it then
    # meets the readable 503, not a failed preflight the page could only call a network error.
    http-request return status 204 hdr Access-Control-Allow-Methods "POST, OPTIONS" \
hdr Access-Control-Allow-Headers "authorization, content-type" \
if preflight ingest_path {{ var(txn.cors_origin) -m found }} {{ nbsrv({BACKEND}) eq 0 }}
    # Only the ingest routes reach the shards; the read side is the analytics shard's alone.
    http-request deny deny_status 403 content-type application/json string '{_FORBIDDEN}' \
unless {_ALLOWED}
    http-error status 503 content-type application/json string '{_NO_SHARD}'
    http-after-response add-header Vary Origin \
if {{ var(txn.cors_origin) -m found }} !{{ res.hdr(access-control-allow-origin) -m found }}
    http-after-response set-header Access-Control-Allow-Origin "%[var(txn.cors_origin)]" \
if {{ var(txn.cors_origin) -m found }} !{{ res.hdr(access-control-allow-origin) -m found }}
    default_backend {BACKEND}

frontend prometheus
    bind :{lb.exporter_port}
    # Scrapes every second would drown the access log.
    http-request set-log-level silent
    http-request use-service prometheus-exporter if {{ path /metrics }}
"""


def config(topo: Topology) -> str:
    """The full HAProxy configuration."""
    lb = topo.balancer
    servers = "\n".join(f"    server {s.name} {s.name}:{s.port}" for s in topo.ingest_shards)
    intro = (
        f"# Load balancer `{lb.name}`: {lb.balance} over the ingest shards; stats at "
        f"{lb.stats_path};\n# Prometheus exporter on :{lb.exporter_port}/metrics."
    )
    return (
        frontends(topo, intro, "10s")
        + f"""
backend {BACKEND}
    balance {lb.balance}
    option httpchk GET /
    http-check expect status 200
    default-server check inter 2s fall 2 rise 2 {_RESOLVE}
{servers}
"""
    )
