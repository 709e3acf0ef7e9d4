"""Soak: gunicorn on PostgreSQL, 100 simulated annotators plus a manager exporting, then invariants.

``DATABASE_URL=postgres://... python -m bench soak --n 20000 --seconds 60 --users 100``
(``--workers``/``--threads`` size gunicorn). Every annotator loops over next-task, a draft save,
then submit (1 in 10 skips instead, 1 in 20 abandons: takes a task and walks away, so its lease
stays live); a manager streams the export every few seconds. Reports requests/s, p50/p99 per
endpoint and errors, then checks the database: no duplicate annotation per (task, user), no task
with more submitted annotations than the overlap, every task's ``submitted_count`` equal to the
real count, every leased assignment held by exactly one user and none past its expiry left
counted as live, and every 201 the clients saw present in the database (nothing lost).
Import under load and Celery workers are not exercised here yet.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import defaultdict

from bench.scenarios.next_task import Server, django_ready, option, prepare
from bench.util import median, percentile

RESULT = json.dumps({"result": {"topic": "business"}})
DRAFT = json.dumps({"result": {"topic": "politics"}})


def _call(conn, method: str, path: str, headers: dict, body: str = "") -> tuple[int, bytes, float]:
    t0 = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, data, (time.perf_counter() - t0) * 1000


def annotator(port: int, key: str, project_id: int, until: float, seed: int, out: dict) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
    times, errors, submitted = defaultdict(list), [], []
    while time.perf_counter() < until:
        status, data, ms = _call(conn, "POST", f"/api/v1/projects/{project_id}/next-task/", headers)
        times["next-task"].append(ms)
        if status == 404:
            break
        if status != 200:
            errors.append(f"next-task {status}")
            continue
        task_id = json.loads(data)["id"]
        roll = rng.random()
        if roll < 0.05:  # abandon: keep the lease and leave
            break
        status, _, ms = _call(conn, "PUT", f"/api/v1/tasks/{task_id}/draft/", headers, DRAFT)
        times["draft"].append(ms)
        if status != 200:
            errors.append(f"draft {status}")
        if roll < 0.15:
            status, _, ms = _call(conn, "POST", f"/api/v1/tasks/{task_id}/skip/", headers)
            times["skip"].append(ms)
            if status != 200:
                errors.append(f"skip {status}")
            continue
        status, data, ms = _call(conn, "POST", f"/api/v1/tasks/{task_id}/annotations/", headers, RESULT)
        times["submit"].append(ms)
        if status in (200, 201):
            submitted.append(json.loads(data)["id"])
        else:
            errors.append(f"submit {status}: {data[:120]!r}")
    out.update(times=times, errors=errors, submitted=submitted)


def manager(port: int, key: str, project_id: int, until: float, out: dict) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Token {key}"}
    times, errors = defaultdict(list), []
    while time.perf_counter() < until:
        status, _, ms = _call(conn, "GET", f"/api/v1/projects/{project_id}/export/?format=jsonl&mode=raw", headers)
        times["export"].append(ms)
        if status != 200:
            errors.append(f"export {status}")
        time.sleep(3)
    out.update(times=times, errors=errors, submitted=[])


def invariants(project_id: int, seen_ids: list[int]) -> dict:
    from django.db import connection

    checks = {
        "duplicate_annotations": "SELECT count(*) FROM (SELECT 1 FROM annotations_annotation WHERE project_id = %s "
        "GROUP BY task_id, user_id HAVING count(*) > 1) d",
        "over_overlap": "SELECT count(*) FROM (SELECT a.task_id FROM annotations_annotation a JOIN projects_project p "
        "ON p.id = a.project_id WHERE a.project_id = %s AND a.status = 'submitted' GROUP BY a.task_id, p.overlap "
        "HAVING count(*) > p.overlap) d",
        "counter_mismatches": "SELECT count(*) FROM assignment_task t WHERE t.project_id = %s AND t.submitted_count <> "
        "(SELECT count(*) FROM annotations_annotation a WHERE a.task_id = t.id AND a.status = 'submitted')",
        "double_leases": "SELECT count(*) FROM (SELECT task_id, user_id FROM assignment_assignment "
        "WHERE project_id = %s AND status = 'leased' GROUP BY task_id, user_id HAVING count(*) > 1) d",
    }
    found = {}
    with connection.cursor() as cursor:
        for name, sql in checks.items():
            cursor.execute(sql, [project_id])
            found[name] = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM annotations_annotation WHERE id = ANY(%s) AND status = 'submitted'", [seen_ids]
        )
        found["lost_annotations"] = len(set(seen_ids)) - cursor.fetchone()[0]
    return found


def run(options) -> list[dict]:
    if not django_ready():
        return [{"skipped": "needs DATABASE_URL=postgres://... (the scenario fills that database)"}]
    from projects.core.models import Membership, Role
    from projects.core.services import token_create
    from tests.factories import UserFactory

    n = options.n or 20_000
    seconds, users = option(options, "seconds", 60), option(options, "users", 100)
    workers, threads = option(options, "workers", 4), option(options, "threads", 8)
    project_id, keys = prepare(n, users)
    boss = UserFactory(username="bench-manager")
    Membership.objects.update_or_create(project_id=project_id, user=boss, defaults={"role": Role.MANAGER})
    manager_key = token_create(user=boss, name="bench")[1]
    outs = [{} for _ in range(users + 1)]
    with Server(workers, threads) as server:
        until = time.perf_counter() + seconds
        threads_ = [
            threading.Thread(target=annotator, args=(server.port, key, project_id, until, i, outs[i]))
            for i, key in enumerate(keys)
        ]
        threads_.append(threading.Thread(target=manager, args=(server.port, manager_key, project_id, until, outs[-1])))
        start = time.perf_counter()
        for t in threads_:
            t.start()
        for t in threads_:
            t.join()
        wall = time.perf_counter() - start
    times = defaultdict(list)
    for out in outs:
        for name, values in out.get("times", {}).items():
            times[name] += values
    errors = [e for out in outs for e in out.get("errors", [])]
    seen = [i for out in outs for i in out.get("submitted", [])]
    figures = {
        "tasks": n,
        "annotators": users,
        "gunicorn": f"{workers}x{threads}",
        "seconds": round(wall, 1),
        "requests_per_s": round(sum(len(v) for v in times.values()) / wall, 1),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        **{
            f"{name}_p50_p99_ms": [round(median(v), 1), round(percentile(v, 99), 1), len(v)]
            for name, v in sorted(times.items())
        },
        **invariants(project_id, seen),
    }
    return [figures]
