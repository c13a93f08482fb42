"""Figures for BENCHMARKS.md "Docker Swarm", measured with the real tasks (nothing asserted).

    . artifacts/offline.env   # when using the offline image kit
    flock /tmp/ese-docker.lock python -m benchmarks.swarm_bench [--clients 4] [--limit 3000]

From no swarm: `invoke swarm.up --build` (cold: swarm init, secrets, every service created),
`invoke swarm.up` again (warm: nothing changed), then for 1, 2 and 4 ingest replicas
`invoke swarm.scale --ingest N` (its line says when HAProxy and Prometheus had the new
replicas) and `invoke frontend --clients C --delay-ms 0 --limit L` through the load balancer
(events/s = acknowledged events / the slowest client's run time, from the clients' summaries).
Ends with `invoke down --volumes` and `invoke swarm.down --volumes --leave`.
"""

from __future__ import annotations

import argparse
import re
import time

from tests.e2e import bench, harness


def timed(*args: str) -> tuple[float, str]:
    started = time.monotonic()
    proc = harness.invoke(*args, timeout=900)
    return time.monotonic() - started, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--limit", type=int, default=3000)
    args = parser.parse_args()
    lines = []
    try:
        cold, _ = timed("swarm.up", "--build", "--replicas", "1")
        warm, _ = timed("swarm.up")
        lines += [
            f"swarm.up cold (swarm init, build cached): {cold:.1f}s",
            f"swarm.up warm: {warm:.1f}s",
        ]
        for n in (1, 2, 4):
            took, out = timed("swarm.scale", "--ingest", str(n))
            found = re.search(r"in HAProxy after ([0-9.]+)s, in Prometheus after ([0-9.]+)s", out)
            lines.append(f"scale to {n}: {took:.1f}s; " + (found.group(0) if found else "?"))
            time.sleep(3)
            print(f"--- {n} replicas ---", flush=True)
            bench.throughput(1, args.clients, args.limit)
    finally:
        harness.invoke("down", "--volumes", timeout=300, check=False)
        harness.invoke("swarm.down", "--volumes", "--leave", timeout=300, check=False)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
