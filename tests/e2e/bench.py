"""Figures for BENCHMARKS.md, measured on the real stack (not asserted anywhere).

    python -m tests.e2e.bench backend [--runs 3]        # warm `invoke backend`, from nothing
    python -m tests.e2e.bench throughput [--runs 3]     # 4 clients, no delay, through the LB

`backend` removes the demo stack first (`invoke down --volumes`) and times `invoke backend`
until every service is healthy and Grafana is provisioned (images already built).
`throughput` needs a running backend; it runs `invoke frontend --clients 4 --delay-ms 0
--limit 5000` and divides the acknowledged events by the slowest client's run time, both from
the clients' summary lines. Export the image overrides first when using the offline kit.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timezone

from ese.host import sdk
from tests.e2e import containers, harness


def backend(runs: int) -> None:
    took = []
    for n in range(1, runs + 1):
        harness.invoke("down", "--volumes", timeout=300)
        started = time.monotonic()
        harness.invoke("backend", timeout=600)
        took.append(time.monotonic() - started)
        print(f"run {n}: invoke backend {took[-1]:.1f}s", flush=True)
    print(f"warm invoke backend: median {statistics.median(took):.1f}s of {took}")


def throughput(runs: int, clients: int, limit: int) -> None:
    cli = sdk.client()
    rates = []
    for n in range(1, runs + 1):
        since = datetime.now(timezone.utc).replace(microsecond=0)
        with containers.IpWatcher(cli, containers.FRONTEND) as watcher:
            args = ["--clients", str(clients), "--delay-ms", "0", "--limit", str(limit)]
            harness.invoke("frontend", *args, timeout=300)
            found = containers.wait_exited(cli, containers.FRONTEND, 600)
        runs_ = containers.client_runs(found, watcher.ips, since)
        acked = sum(r.count("events_acknowledged") for r in runs_)
        failed = sum(r.count("events_failed") for r in runs_)
        requests = sum(r.count("requests_sent") for r in runs_)
        wall = max(float(r.fields["elapsed_s"]) for r in runs_)
        rates.append(acked / wall)
        print(
            f"run {n}: {acked} events acknowledged ({failed} failed), {requests} requests "
            f"in {wall:.2f}s: {acked / wall:.0f} events/s, {requests / wall:.0f} req/s"
        )
    print(
        f"end-to-end events/s ({clients} clients, no delay): median {statistics.median(rates):.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["backend", "throughput"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--limit", type=int, default=5000)
    args = parser.parse_args()
    if args.what == "backend":
        backend(args.runs)
    else:
        throughput(args.runs, args.clients, args.limit)


if __name__ == "__main__":
    main()
