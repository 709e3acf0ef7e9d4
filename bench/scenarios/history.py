"""Per-request cost for an annotator with a long history against a new one, on a large project.

Needs ``DATABASE_URL=postgres://...`` (the ``next_task`` bench database: one project of ``--n``
tasks, default 100,000, reset first). Two annotators of the project: ``new`` has done nothing,
``veteran`` has ``--history`` submitted tasks (default 20,000; assignments and annotations,
bulk-inserted, then the tables analyzed as autovacuum would after such a change). In-process
(Django's test client, the whole middleware stack, token or session auth), each of the
annotator-facing requests below runs ``--repeat`` times for each of them (default 5);
the figures are medians: the PostgreSQL backend's CPU per request (``/proc/<pid>/schedstat``),
the Python CPU per request and the statements. ``db_ratio`` is veteran / new: a request whose
cost grows with the user's history stands out, one that grows with the project's size costs
as much for both. ``--retrain-every N`` gives the project a trained-model labeler that retrains
every N submissions, so each submit runs the retraining check (``projects.prelabel.training``).
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
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from projects.annotations.models import Annotation
    from projects.assignment.models import Assignment, Task
    from projects.core.models import Membership, Role
    from projects.core.services import token_create
    from tests.factories import UserFactory

    history = option(options, "history", 20_000)
    n = options.n or 100_000
    repeat = options.repeat if options.repeat and options.repeat != 3 else 5
    project_id, _ = prepare(n, 1)
    from projects.prelabel.models import Labeler

    Labeler.objects.filter(project_id=project_id).delete()
    if retrain_every := option(options, "retrain-every", 0):
        Labeler.objects.create(
            project_id=project_id, name="bench-retrain", kind="sklearn", config={"retrain_every": retrain_every}
        )
    users = {}
    for name in ("new", "veteran"):
        user = UserFactory(username=f"bench-history-{name}")
        Membership.objects.get_or_create(project_id=project_id, user=user, defaults={"role": Role.ANNOTATOR})
        users[name] = user
    now = timezone.now()
    done = list(Task.objects.filter(project_id=project_id).order_by("-id").values_list("id", flat=True)[:history])
    veteran = users["veteran"]
    with transaction.atomic():
        Assignment.objects.bulk_create(
            [Assignment(project_id=project_id, task_id=t, user=veteran, status="submitted") for t in done],
            batch_size=5000,
        )
        Annotation.objects.bulk_create(
            [
                Annotation(
                    project_id=project_id,
                    task_id=t,
                    user=veteran,
                    status="submitted",
                    result=RESULT["result"],
                    submitted_at=now,
                    guideline_version=1,
                )
                for t in done
            ],
            batch_size=5000,
        )
        Task.objects.filter(id__in=done).update(submitted_count=1, is_complete=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE assignment_assignment, annotations_annotation, assignment_task")

    backend: Path | None = None

    def db_cpu_ms() -> float:
        nonlocal backend
        if backend is None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend = Path(f"/proc/{cursor.fetchone()[0]}/schedstat")
        return int(backend.read_text().split()[0]) / 1e6

    def timed(call) -> tuple[float, float, int, int]:
        db0, cpu0 = db_cpu_ms(), time.process_time()
        with CaptureQueriesContext(connection) as queries:
            response = call()
        return db_cpu_ms() - db0, (time.process_time() - cpu0) * 1000, len(queries), response.status_code

    def annotator_figures(user) -> dict[str, list]:
        api = Client(HTTP_AUTHORIZATION=f"Token {token_create(user=user, name='bench')[1]}")
        web = Client()
        web.force_login(user)
        task_id = api.post(f"/api/v1/projects/{project_id}/next-task/").json()["id"]
        draft = json.dumps({"draft": RESULT["result"]})
        requests = {
            "next-task, held": lambda: api.post(f"/api/v1/projects/{project_id}/next-task/"),
            "task detail": lambda: api.get(f"/api/v1/tasks/{task_id}/"),
            "draft": lambda: api.post(f"/api/v1/tasks/{task_id}/draft/", draft, "application/json"),
            "my-annotations": lambda: api.get(f"/api/v1/projects/{project_id}/my-annotations/"),
            "project detail": lambda: api.get(f"/api/v1/projects/{project_id}/"),
            "home page": lambda: web.get("/"),
            "project page": lambda: web.get(f"/projects/{project_id}/"),
            "labeling page": lambda: web.get(f"/tasks/{task_id}/label/"),
            "my submissions page": lambda: web.get(f"/projects/{project_id}/my-submissions/"),
        }
        runs = {}
        for name, call in requests.items():
            call()  # warm: caches, prepared statements
            runs[name] = [timed(call) for _ in range(repeat)]
        runs["next-task, claim"], runs["submit"] = [], []
        for _ in range(repeat):
            runs["next-task, claim"].append(timed(lambda: api.post(f"/api/v1/projects/{project_id}/next-task/")))
            leased = Assignment.objects.filter(user=user, status="leased").values_list("task_id", flat=True).first()
            body = json.dumps(RESULT)
            runs["submit"].append(
                timed(lambda: api.post(f"/api/v1/tasks/{leased}/annotations/", body, "application/json"))  # noqa: B023
            )
        return runs

    figures: dict[str, dict[str, list]] = {}
    for who, user in users.items():
        for name, runs in annotator_figures(user).items():
            figures.setdefault(name, {})[who] = runs

    out = []
    for name, by_who in figures.items():
        row = {"request": name, "tasks": n, "history": history}
        for who, runs in by_who.items():
            row[f"{who}_db_ms"] = round(median([r[0] for r in runs]), 2)
            row[f"{who}_py_ms"] = round(median([r[1] for r in runs]), 2)
            row[f"{who}_statements"] = int(median([r[2] for r in runs]))
            row[f"{who}_status"] = runs[-1][3]
        row["db_ratio"] = round(row["veteran_db_ms"] / max(row["new_db_ms"], 0.01), 1)
        out.append(row)
    return out
