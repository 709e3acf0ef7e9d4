"""The server's floor: gunicorn and Django answering a request that does no work, at 1 and 32 clients.

Each client is a thread of this process with one kept-alive connection, asking ``GET`` for a path
that no view answers (``/api/v1/no-such-path/``: gunicorn's HTTP handling, Django's request,
middleware, URL resolution and its 404 page, and nothing else) in a closed loop, as the
``next_task`` scenario's annotators do. No database statement runs, so it needs no database.
Reported per client count (medians over ``--repeat`` runs of ``--seconds``, default 8): requests
per second, CPU ms per request of gunicorn's processes and of this client, latency p50 / p99 and
the mean.

It bounds what any endpoint can do in that loop on this machine: ``next_task``'s 32 clients can
not see a lower mean than 32 × (this CPU + the endpoint's own) / cores, nor a tighter tail than
this scenario's at the same client count. Options: ``--annotators`` (client counts, default
1,32), ``--workers`` / ``--threads`` (gunicorn, 4×4).
"""

from __future__ import annotations

import http.client
import os
import threading
import time

from bench.scenarios.next_task import option
from bench.util import Gunicorn, group_cpu_s, median, percentile

PATH = "/api/v1/no-such-path/"


def one_run(port: int, server_pid: int, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    statuses: set[int] = set()
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", PATH)  # warm-up: the connection and the worker's first request
        conn.getresponse().read()
        mine, seen = [], set()
        start.wait()
        while time.perf_counter() < stop_at[0]:
            t0 = time.perf_counter()
            conn.request("GET", PATH)
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - t0) * 1000)
            seen.add(response.status)
        conn.close()
        with lock:
            latencies.extend(mine)
            statuses.update(seen)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    server0, client0 = group_cpu_s(server_pid), time.process_time()
    stop_at[0] = time.perf_counter() + seconds
    wall0 = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - wall0
    n = len(latencies)
    return {
        "req_per_s": n / wall,
        "cpu_ms_server": (group_cpu_s(server_pid) - server0) / n * 1000,
        "cpu_ms_client": (time.process_time() - client0) / n * 1000,
        "p50_ms": median(latencies),
        "p99_ms": percentile(latencies, 99),
        "mean_ms": sum(latencies) / n,
        "statuses": sorted(statuses),
    }


def run(options) -> list[dict]:
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
    extra = list(getattr(options, "extra", []) or [])
    sweep = extra[extra.index("--annotators") + 1] if "--annotators" in extra else "1,32"
    workers, threads = option(options, "workers", 4), option(options, "threads", 4)
    seconds = option(options, "seconds", 8)
    figures = []
    for clients in [int(c) for c in sweep.split(",")]:
        runs = []
        for _ in range(options.repeat):
            with Gunicorn(workers=workers, threads=threads) as server:
                runs.append(one_run(server.port, server.proc.pid, clients, seconds))
        figures.append(
            {
                "clients": clients,
                "gunicorn": f"{workers}x{threads}",
                "path": PATH,
                "statuses": sorted({s for r in runs for s in r["statuses"]}),
                **{
                    key: round(median([r[key] for r in runs]), 2 if key.startswith("cpu") else 1)
                    for key in ("req_per_s", "cpu_ms_server", "cpu_ms_client", "p50_ms", "p99_ms", "mean_ms")
                },
                "cores": os.cpu_count(),
            }
        )
    return figures
