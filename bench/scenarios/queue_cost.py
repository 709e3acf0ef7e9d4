"""Load-independent cost of the queue: SQL queries and server CPU per next-task and per submit.

Needs ``DATABASE_URL=postgres://...`` (the same bench database as ``next_task``; ``--n`` tasks,
default 10,000). Runs the whole Django stack in-process (WSGI handler, middleware, token auth)
with one annotator looping next-task → submit (one choice + 3 spans), and reports per request the
number of SQL queries and the process CPU time (``time.process_time``, which other processes on
the machine do not inflate the way they inflate wall-clock latency). When the database runs on
this machine, the database server's CPU time per request is reported too (the connection's
backend process, from ``/proc/<pid>/schedstat``). ``--requests`` loops (200).

Counting the queries turns on Django's query log, which costs Python CPU a server does not spend
(more for statements bound on the server, ``annotator.db.hot_cursor``, whose log text is composed
from the values). So every other loop runs without it: ``cpu_ms_p50`` is the CPU of the counted
calls, ``cpu_ms_p50_unlogged`` that of the others.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench.scenarios.next_task import django_ready, option, prepare
from bench.scenarios.submit import RESULT
from bench.util import median


def run(options) -> list[dict]:
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    if not django_ready():
        return [{"skipped": "needs DATABASE_URL=postgres://... (the scenario fills that database)"}]
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    n = options.n or 10_000
    loops = option(options, "requests", 200)
    project_id, (key,) = prepare(n, 1)
    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    body = json.dumps(RESULT)
    costs: dict[str, dict[str, list[float]]] = {
        k: {"q": [], "cpu": [], "unlogged": [], "db": []} for k in ("next_task", "submit")
    }
    backend = None

    def db_cpu_ns() -> int | None:
        """CPU time so far of the database backend serving our connection (None if not local)."""
        nonlocal backend
        if backend is None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend = Path(f"/proc/{cursor.fetchone()[0]}/schedstat")
        try:
            return int(backend.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def call(kind: str, path: str, data: str, counted: bool):
        db0 = db_cpu_ns()
        if counted:
            with CaptureQueriesContext(connection) as queries:
                t0 = time.process_time()
                response = client.post(path, data=data, content_type="application/json")
                cpu = time.process_time() - t0
            costs[kind]["q"].append(len(queries))
            costs[kind]["cpu"].append(cpu * 1000)
        else:
            t0 = time.process_time()
            response = client.post(path, data=data, content_type="application/json")
            costs[kind]["unlogged"].append((time.process_time() - t0) * 1000)
        db1 = db_cpu_ns()
        if db0 is not None and db1 is not None:
            costs[kind]["db"].append((db1 - db0) / 1e6)
        return response

    for i in range(loops):
        counted = i % 2 == 0
        response = call("next_task", f"/api/v1/projects/{project_id}/next-task/", "", counted)
        assert response.status_code == 200, response.content[:300]
        task_id = response.json()["id"]
        response = call("submit", f"/api/v1/tasks/{task_id}/annotations/", body, counted)
        assert response.status_code == 201, response.content[:300]
    warm = slice(loops // 20, None)  # the first calls pay for imports and caches
    return [
        {
            "request": kind,
            "queries": int(median(c["q"][warm])),
            "queries_max": max(c["q"][warm]),
            "cpu_ms_p50": round(median(c["cpu"][warm]), 2),
            "cpu_ms_p50_unlogged": round(median(c["unlogged"][warm]), 2),
            **({"db_cpu_ms_p50": round(median(c["db"][2 * warm.start :]), 2)} if c["db"] else {}),
            "calls": len(c["db"]) - 2 * warm.start,
        }
        for kind, c in costs.items()
    ]
