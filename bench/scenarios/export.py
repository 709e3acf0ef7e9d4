"""Export through a real gunicorn server on PostgreSQL: rows/s, MB/s, TTFB, server RSS, vs COPY.

Needs ``DATABASE_URL=postgres://...`` (a database of its own: the scenario creates projects of
``--n`` annotated tasks there, default 20,000 and 200,000, and keeps them for the next run).
For each size and format (jsonl, csv) it streams ``GET /api/v1/projects/{id}/export/`` from one
sync gunicorn worker, sampling the worker's RSS every 10 ms, and runs PostgreSQL's own
``COPY (SELECT <the same rows>) TO STDOUT`` in the same run, alternating with the exports.
Figures are medians over ``--repeat`` runs; ``vs_copy`` is export rows/s divided by COPY rows/s.
"""

from __future__ import annotations

import http.client
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.util import free_port, median

ROOT = Path(__file__).resolve().parents[2]
SIZES = (20_000, 200_000)
SCHEMA = {
    "fields": [
        {"name": "topic", "type": "choice", "options": ["politics", "business", "technology", "health"]},
        {"name": "entities", "type": "spans", "labels": ["PERSON", "ORG", "LOC"]},
    ]
}
COPY_SQL = """
COPY (
  SELECT t.id, ar.external_id, ar.text, t.payload, an.id, u.username, an.result, an.review_state,
         an.lead_time, an.submitted_at
  FROM assignment_task t
  JOIN documents_article ar ON ar.id = t.article_id
  JOIN annotations_annotation an ON an.task_id = t.id AND an.status = 'submitted'
  JOIN auth_user u ON u.id = an.user_id
  WHERE t.project_id = %s ORDER BY t.id, an.id
) TO STDOUT
"""


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _project(n: int):
    """The bench project of ``n`` tasks with one submitted annotation each (built once, then reused)."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from projects.annotations.models import Annotation
    from projects.assignment.models import Task
    from projects.core.models import Membership, Project
    from projects.documents.models import Article
    from projects.documents.synthetic import NAMES, articles

    name = f"bench-export-{n}"
    project = Project.objects.filter(name=name).first()
    if project is not None and Annotation.objects.filter(project=project).count() == n:
        return project
    if project is not None:
        project.delete()
    project = Project.objects.create(name=name, label_schema=SCHEMA)
    users = []
    for i in range(3):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-annotator-{i}")
        Membership.objects.get_or_create(project=project, user=user)
        users.append(user)
    rng = random.Random(11)
    now = timezone.now()
    batch = 5_000
    source = articles(n)
    for start in range(0, n, batch):
        rows = [next(source) for _ in range(min(batch, n - start))]
        arts = Article.objects.bulk_create(
            Article(project=project, external_id=a["id"], title=a["title"], text=a["text"], source=a["source"])
            for a in rows
        )
        tasks = Task.objects.bulk_create(Task(project=project, article=a, is_complete=True) for a in arts)
        annotations = []
        for i, (task, art) in enumerate(zip(tasks, arts, strict=True)):
            spans = []
            for person in NAMES[:3]:
                at = art.text.find(person)
                if at >= 0:
                    spans.append({"start": at, "end": at + len(person), "label": "PERSON", "text": person})
            result = {"topic": rng.choice(SCHEMA["fields"][0]["options"]), "entities": spans}
            annotations.append(
                Annotation(
                    project=project,
                    task=task,
                    user=users[(start + i) % 3],
                    result=result,
                    status="submitted",
                    submitted_at=now,
                    lead_time=rng.uniform(5, 60),
                )
            )
        Annotation.objects.bulk_create(annotations)
    from django.db import connection

    with connection.cursor() as cursor:  # fresh statistics, as autovacuum would leave them
        cursor.execute("ANALYZE")
    return project


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Server:
    """One sync gunicorn worker, as in production (``--workers 1`` so its RSS is the figure)."""

    def __init__(self) -> None:
        self.port = free_port()
        env = {**os.environ, "ALLOWED_HOSTS": "127.0.0.1", "DEBUG": "false"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "annotator.wsgi",
                "-b",
                f"127.0.0.1:{self.port}",
                "-w",
                "1",
                "--timeout",
                "600",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        # The master listens before its worker has booted: wait for the worker process.
        children: list[str] = []
        while not children and time.time() < deadline + 30:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            time.sleep(0.1)
        if not children:
            self.stop()
            raise RuntimeError("gunicorn did not start a worker")
        self.worker = int(children[0])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _fetch(port: int, path: str, token: str, worker: int) -> dict:
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb(worker))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    start = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Token {token}"})
    response = conn.getresponse()
    first = response.read(1)
    ttfb = time.perf_counter() - start
    size = len(first)
    while block := response.read(256 * 1024):
        size += len(block)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    conn.close()
    assert response.status == 200, response.status
    return {"seconds": seconds, "ttfb": ttfb, "bytes": size, "peak_rss": peak[0]}


def _copy(project_id: int) -> dict:
    from django.db import connection

    start = time.perf_counter()
    size = 0
    with connection.cursor() as cursor, cursor.connection.cursor().copy(COPY_SQL, (project_id,)) as copy:
        for block in copy:
            size += len(block)
    return {"seconds": time.perf_counter() - start, "bytes": size}


def run(options) -> list[dict]:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return [{"skipped": "set DATABASE_URL=postgres://... (this scenario measures PostgreSQL COPY too)"}]
    _setup_django()
    from projects.core.models import Membership, Role
    from projects.core.services import token_create

    sizes = (options.n,) if options.n else SIZES
    projects = {n: _project(n) for n in sizes}
    from django.contrib.auth import get_user_model

    admin, _ = get_user_model().objects.get_or_create(username="bench-export-admin")
    for project in projects.values():
        Membership.objects.update_or_create(project=project, user=admin, defaults={"role": Role.ADMIN})
    _, token = token_create(user=admin, name="bench")
    server = Server()
    out = []
    try:
        warm = projects[sizes[0]]
        _fetch(server.port, f"/api/v1/projects/{warm.pk}/export/?format=csv&after={2**62}", token, server.worker)
        for n, project in projects.items():
            for fmt in ("jsonl", "csv"):
                idle = _rss_mb(server.worker)
                # COPY and export alternate, so a burst of load on this shared machine hits both.
                copies, runs = [], []
                for _ in range(options.repeat):
                    copies.append(_copy(project.pk))
                    path = f"/api/v1/projects/{project.pk}/export/?format={fmt}"
                    runs.append(_fetch(server.port, path, token, server.worker))
                copy_s = median([c["seconds"] for c in copies])
                seconds = median([r["seconds"] for r in runs])
                size = runs[0]["bytes"]
                out.append(
                    {
                        "tasks": n,
                        "format": fmt,
                        "seconds": round(seconds, 3),
                        "rows_per_s": round(n / seconds),
                        "mb_per_s": round(size / 1e6 / seconds, 1),
                        "mb": round(size / 1e6, 1),
                        "ttfb_s": round(median([r["ttfb"] for r in runs]), 3),
                        "idle_rss_mb": round(idle, 1),
                        "peak_rss_mb": round(max(r["peak_rss"] for r in runs), 1),
                        "rss_over_idle_mb": round(max(r["peak_rss"] for r in runs) - idle, 1),
                        "copy_seconds": round(copy_s, 3),
                        "copy_rows_per_s": round(n / copy_s),
                        "copy_mb_per_s": round(copies[0]["bytes"] / 1e6 / copy_s, 1),
                        "vs_copy": round(copy_s / seconds, 2),
                    }
                )
    finally:
        server.stop()
    return out
