"""Load-independent cost of the queue: SQL queries and server CPU per next-task and per submit.

Needs ``DATABASE_URL=postgres://...`` (the same bench database as ``next_task``; ``--n`` tasks,
default 10,000). Runs the whole Django stack in-process (WSGI handler, middleware, token auth)
with one annotator looping next-task → submit (one choice + 3 spans), and reports per request the
number of SQL queries and the process CPU time (``time.process_time``, which other processes on
the machine do not inflate the way they inflate wall-clock latency). ``--requests`` loops (200).
"""

from __future__ import annotations

import json
import os
import time

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
    costs: dict[str, dict[str, list[float]]] = {"next_task": {"q": [], "cpu": []}, "submit": {"q": [], "cpu": []}}

    def call(kind: str, path: str, data: str):
        with CaptureQueriesContext(connection) as queries:
            t0 = time.process_time()
            response = client.post(path, data=data, content_type="application/json")
            cpu = time.process_time() - t0
        costs[kind]["q"].append(len(queries))
        costs[kind]["cpu"].append(cpu * 1000)
        return response

    for _ in range(loops):
        response = call("next_task", f"/api/v1/projects/{project_id}/next-task/", "")
        assert response.status_code == 200, response.content[:300]
        task_id = response.json()["id"]
        response = call("submit", f"/api/v1/tasks/{task_id}/annotations/", body)
        assert response.status_code == 201, response.content[:300]
    warm = slice(loops // 10, None)  # the first calls pay for imports and caches
    return [
        {
            "request": kind,
            "queries": int(median(c["q"][warm])),
            "queries_max": max(c["q"][warm]),
            "cpu_ms_p50": round(median(c["cpu"][warm]), 2),
            "calls": len(c["q"][warm]),
        }
        for kind, c in costs.items()
    ]
