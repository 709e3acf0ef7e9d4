"""Closed-loop load on the queue over HTTP, and where its CPU goes (the ``next_task`` and ``submit`` scenarios).

Every simulated annotator loops ``POST next-task`` then ``POST`` its annotation over one keep-alive
connection (``http.client``), each call timed. By default all annotators are threads of this
process: the load generator costs about 0.26 ms CPU per request, so its interpreter lock is busy
under 10% of the time at 32 annotators and a response seldom waits for it. ``client_threads=K``
spreads them over client processes of K threads each instead (about 0.37 ms CPU per request at 32
annotators in 8 processes, with no better latency on 2 cores). Each annotator's first loop is a
warm-up (the gunicorn worker's and the PostgreSQL connection's first request), outside the timed
window and the CPU figures.

CPU over the timed window, read from ``/proc`` (so only when gunicorn and PostgreSQL run on this
machine), per request: ``gunicorn`` (the server's process group), ``postgres`` (the backends
connected to the bench database), ``pg_other`` (the postmaster, checkpointer, WAL writer...),
``client`` (the load generator). ``rest_cores`` is what everything else on the machine used
meanwhile, in cores (other work, kernel time no process is charged with).
"""

from __future__ import annotations

import http.client
import json
import math
import multiprocessing
import os
import random
import statistics
import threading
import time

from bench.util import group_cpu_s, machine_busy_s, median, percentile, process_cpu_s, stat_fields

CORES = os.cpu_count() or 1


def annotator_loop(
    port: int, key: str, project_id: int, result: dict, until: float | None, out: dict, think_s: float = 0.0
) -> None:
    """Next task (timed), then submit it; until the deadline (monotonic) or the queue is empty.

    With ``until=None`` one untimed loop (the warm-up). ``think_s``: after each submit the
    annotator pauses a random time (exponential, this mean) before asking for the next task."""
    if not out:
        out.update(next_ms=[], submit_ms=[], tasks=[], errors=0, first_error="", rng=random.Random(key))
        out["conn"] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn, next_ms, submit_ms, tasks = out["conn"], out["next_ms"], out["submit_ms"], out["tasks"]
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
    body = json.dumps(result)
    timed = until is not None
    while not timed or time.monotonic() < until:
        t0 = time.perf_counter()
        conn.request("POST", f"/api/v1/projects/{project_id}/next-task/", body="", headers=headers)
        response = conn.getresponse()
        data = response.read()
        if timed:
            next_ms.append((time.perf_counter() - t0) * 1000)
        if response.status == 404:
            break
        if response.status != 200:
            out["errors"] += 1
            out["first_error"] = out["first_error"] or f"next-task {response.status}: {data[:200]!r}"
            if not timed:
                break
            continue
        task_id = json.loads(data)["id"]
        tasks.append(task_id)
        t1 = time.perf_counter()
        conn.request("POST", f"/api/v1/tasks/{task_id}/annotations/", body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if timed:
            submit_ms.append((time.perf_counter() - t1) * 1000)
        if response.status != 201:
            out["errors"] += 1
            out["first_error"] = out["first_error"] or f"submit {response.status}: {data[:200]!r}"
        if not timed:
            break
        if think_s:
            time.sleep(out["rng"].expovariate(1 / think_s))


def _threads(
    port: int, keys: list[str], outs: list[dict], project_id: int, result: dict, until, think_s: float = 0.0
) -> dict:
    """A thread per annotator until ``until`` (``None``: one warm-up loop); with this process's CPU meanwhile."""
    cpu0, t0 = time.process_time(), time.monotonic()
    threads = [
        threading.Thread(target=annotator_loop, args=(port, key, project_id, result, until, out, think_s))
        for key, out in zip(keys, outs, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "next_ms": [x for o in outs for x in o["next_ms"]],
        "submit_ms": [x for o in outs for x in o["submit_ms"]],
        "tasks": [t for o in outs for t in o["tasks"]],
        "errors": sum(o["errors"] for o in outs),
        "first_error": next((o["first_error"] for o in outs if o["first_error"]), ""),
        "cpu_s": time.process_time() - cpu0,
        "wall_s": time.monotonic() - t0,
    }


def _client_process(queue, ready, go, until, port, keys, project_id, result, think_s) -> None:
    """One client process: warm up, wait for the start, run its annotators, send back the timings."""
    outs = [{} for _ in keys]
    _threads(port, keys, outs, project_id, result, None)
    ready.wait()
    go.wait()
    queue.put(_threads(port, keys, outs, project_id, result, until.value, think_s))


class Usage:
    """CPU seconds of gunicorn, PostgreSQL and the machine between ``start()`` and ``stop()``."""

    def __init__(self, server_pgid: int) -> None:
        self.server_pgid = server_pgid

    def _postgres(self) -> dict[str, dict[int, float]] | None:
        """CPU so far of the bench database's backends and of PostgreSQL's own processes, by pid;
        ``None`` when they are not visible here (PostgreSQL on another machine, or SQLite)."""
        from django.db import connection

        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, datname IS NOT NULL FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND (datname = current_database() OR datname IS NULL)"
            )
            rows = cursor.fetchall()
        out: dict[str, dict[int, float]] = {"postgres": {}, "pg_other": {}}
        for pid, ours in rows:
            fields = stat_fields(pid)
            if fields is None:
                return None
            out["postgres" if ours else "pg_other"][pid] = process_cpu_s(pid) or 0.0
            if not ours:
                postmaster = int(fields[1])  # the parent of PostgreSQL's own processes
        if out["pg_other"]:
            out["pg_other"][postmaster] = process_cpu_s(postmaster) or 0.0
        return out

    def start(self) -> None:
        self.load_before = os.getloadavg()[0]
        self.pg0 = self._postgres()
        self.machine0, self.server0, self.t0 = machine_busy_s(), group_cpu_s(self.server_pgid), time.monotonic()

    def stop(self, client_cpu_s: float) -> dict:
        """Seconds of CPU by part (backends new since the start count from zero; ones gone are lost)."""
        server, machine, wall = group_cpu_s(self.server_pgid), machine_busy_s(), time.monotonic() - self.t0
        pg1 = self._postgres()
        cpu = {"gunicorn": server - self.server0, "client": client_cpu_s}
        if self.pg0 is not None and pg1 is not None:
            for part in ("postgres", "pg_other"):
                cpu[part] = sum(s - self.pg0[part].get(pid, 0.0) for pid, s in pg1[part].items())
        rest = (machine - self.machine0) - sum(cpu.values())
        return {"cpu_s": cpu, "rest_cores": rest / wall, "load_before": self.load_before}


def run_load(
    *,
    port: int,
    keys: list[str],
    project_id: int,
    seconds: float,
    result: dict,
    server_pgid: int,
    client_threads: int = 0,
    think_ms: float = 0.0,
) -> dict:
    """``len(keys)`` annotators for ``seconds``; timings, duplicates and the CPU used, by part.

    ``think_ms``: each annotator's mean pause between a submit and its next next-task (0: none,
    the closed loop that keeps the CPU saturated)."""
    think_s = think_ms / 1000
    usage = Usage(server_pgid)
    procs = 1 if client_threads <= 0 else math.ceil(len(keys) / client_threads)
    if procs == 1:
        outs = [{} for _ in keys]
        _threads(port, keys, outs, project_id, result, None)
        usage.start()
        summaries = [_threads(port, keys, outs, project_id, result, time.monotonic() + seconds, think_s)]
    else:
        ctx = multiprocessing.get_context("spawn")
        queue, ready, go, until = ctx.Queue(), ctx.Barrier(procs + 1), ctx.Event(), ctx.Value("d", 0.0)
        children = [
            ctx.Process(
                target=_client_process, args=(queue, ready, go, until, port, group, project_id, result, think_s)
            )
            for group in (keys[i::procs] for i in range(procs))
        ]
        for child in children:
            child.start()
        ready.wait(timeout=120)
        usage.start()
        until.value = time.monotonic() + seconds
        go.set()
        summaries = [queue.get(timeout=seconds + 120) for _ in children]
        for child in children:
            child.join()
    figures = usage.stop(sum(s["cpu_s"] for s in summaries))
    handed = [t for s in summaries for t in s["tasks"]]
    return {
        **figures,
        "think_ms": think_ms,
        "client_procs": procs,
        "wall_s": max(s["wall_s"] for s in summaries),
        "next_ms": [x for s in summaries for x in s["next_ms"]],
        "submit_ms": [x for s in summaries for x in s["submit_ms"]],
        "handed": handed,
        "errors": sum(s["errors"] for s in summaries),
        "first_error": next((s["first_error"] for s in summaries if s["first_error"]), ""),
        "duplicates": len(handed) - len(set(handed)),
    }


def cost_figures(runs: list[dict], clients: int) -> dict:
    """Medians over runs: requests/s, CPU ms per request by part, and mean latency next to its bound.

    The bound is the mean latency a closed loop of ``clients`` cannot beat on this machine: the
    larger of one request's own server CPU and ``clients x CPU per request / cores`` (Little's
    law with throughput at most cores / CPU per request), less the think time per request (half
    a loop's: a loop is two requests); ``bound_left_ms`` the same with only the cores the rest of
    the machine left (``cores - rest_cores``)."""
    parts = ("gunicorn", "postgres", "pg_other", "client")
    per_run = []
    for r in runs:
        n = len(r["next_ms"]) + len(r["submit_ms"])
        ms = {p: r["cpu_s"][p] * 1000 / n for p in parts if p in r["cpu_s"]}
        total, server = sum(ms.values()), sum(v for p, v in ms.items() if p != "client")
        think = r.get("think_ms", 0.0) / 2
        per_run.append(
            {
                "load_before": r["load_before"],
                "req_per_s": n / r["wall_s"],
                **{f"cpu_ms_{p}": v for p, v in ms.items()},
                "cpu_ms_total": total,
                "rest_cores": r["rest_cores"],
                "mean_ms": statistics.fmean(r["next_ms"] + r["submit_ms"]),
                "p99_ms": percentile(r["next_ms"] + r["submit_ms"], 99),
                "bound_ms": max(server, clients * total / CORES - think),
                "bound_left_ms": max(server, clients * total / max(CORES - r["rest_cores"], 0.1) - think),
            }
        )
    keys = [k for k in per_run[0] if all(k in f for f in per_run)]
    out = {k: round(median([f[k] for f in per_run]), 2) for k in keys}
    if "cpu_ms_pg_other" in out and out["cpu_ms_pg_other"] == 0:
        del out["cpu_ms_pg_other"]
    out["req_per_s"] = round(out["req_per_s"])
    out["mean_over_bound"] = round(median([f["mean_ms"] / f["bound_ms"] for f in per_run]), 2)
    out["client_procs"] = runs[0]["client_procs"]
    out["cores"] = CORES
    return out
