"""Soak: 100 annotators, an importing admin and an exporting manager on gunicorn + Celery, then invariants.

``DATABASE_URL=postgres://... REDIS_URL=redis://... python -m bench soak --n 20000 --seconds 60 --users 100``
(``--workers``/``--threads`` size gunicorn, ``--lease-minutes`` the project's lease, default 1, so
abandoned leases expire during the run). Every annotator loops over next-task, a draft save,
then submit (1 in 10 skips instead, 1 in 20 abandons: takes a task and walks away, so its lease
stays live until it expires). An admin imports 200 new articles every few seconds through the API
and waits for each job; a manager streams the export every few seconds and builds a snapshot
export now and then, checking its download against its sha256. With ``REDIS_URL`` the jobs run on
a real Celery worker with beat (lease expiry every minute); without it, in gunicorn (eager).
Reports requests/s, p50/p99 per endpoint and errors, then checks the database: no duplicate
annotation per (task, user), no task with more submitted annotations than the overlap, every
task's ``submitted_count`` and ``leased_count`` equal to the real counts, every 201 the clients
saw present (nothing lost), every import job finished with its articles stored once with one task
each, every snapshot done with a matching checksum, and no expired lease left counted as live
once the beat job (``leases_expire``) has run.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict

from bench.scenarios.next_task import PROJECT_NAME, Server, django_ready, option, prepare
from bench.util import ROOT, median, percentile

IMPORT_ROWS = 200
IMPORT_PREFIX = "soak-"

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


def _wait_job(conn, path: str, headers: dict, until: float) -> dict:
    """Poll a job until it leaves queued/running (or the deadline passes)."""
    while True:
        status, data, _ = _call(conn, "GET", path, headers)
        job = json.loads(data) if status == 200 else {"status": f"http {status}"}
        if job.get("status") not in ("queued", "running") or time.perf_counter() > until:
            return job
        time.sleep(0.5)


def manager(port: int, key: str, project_id: int, until: float, out: dict) -> None:
    """Streams the export every few seconds; every third round builds a snapshot and checks it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
    times, errors, snapshots = defaultdict(list), [], []
    rounds = 0
    while time.perf_counter() < until:
        status, _, ms = _call(conn, "GET", f"/api/v1/projects/{project_id}/export/?format=jsonl&mode=raw", headers)
        times["export"].append(ms)
        if status != 200:
            errors.append(f"export {status}")
        rounds += 1
        if rounds % 3 == 1:
            t0 = time.perf_counter()
            status, data, ms = _call(conn, "POST", f"/api/v1/projects/{project_id}/exports/", headers, "{}")
            times["snapshot-start"].append(ms)
            if status != 202:
                errors.append(f"snapshot {status}")
                continue
            job = _wait_job(
                conn, f"/api/v1/projects/{project_id}/exports/{json.loads(data)['id']}/", headers, until + 120
            )
            times["snapshot-job"].append((time.perf_counter() - t0) * 1000)
            snapshots.append(job["id"] if "id" in job else None)
            if job.get("status") != "done":
                errors.append(f"snapshot job {job.get('status')}")
                continue
            status, body, ms = _call(conn, "GET", job["download_url"], headers)
            times["snapshot-download"].append(ms)
            if status != 200 or hashlib.sha256(body).hexdigest() != job["sha256"]:
                errors.append(f"snapshot download {status}, checksum mismatch")
        time.sleep(3)
    out.update(times=times, errors=errors, submitted=[], snapshots=snapshots)


def admin(port: int, key: str, project_id: int, until: float, out: dict) -> None:
    """Imports IMPORT_ROWS new articles, waits for the job, again, until the time is up."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
    times, errors, imports = defaultdict(list), [], []
    batch = 0
    while time.perf_counter() < until:
        articles = [
            {
                "id": f"{IMPORT_PREFIX}{batch}-{i}",
                "title": f"Imported {batch}/{i}",
                "text": f"Soak article {batch} {i}.",
            }
            for i in range(IMPORT_ROWS)
        ]
        t0 = time.perf_counter()
        status, data, ms = _call(
            conn, "POST", f"/api/v1/projects/{project_id}/imports/", headers, json.dumps({"articles": articles})
        )
        times["import-start"].append(ms)
        if status != 202:
            errors.append(f"import {status}: {data[:120]!r}")
            time.sleep(3)
            continue
        job = _wait_job(conn, f"/api/v1/projects/{project_id}/imports/{json.loads(data)['id']}/", headers, until + 120)
        times["import-job"].append((time.perf_counter() - t0) * 1000)
        imports.append(job.get("id"))
        if job.get("status") != "succeeded" or job.get("rows_created") != IMPORT_ROWS:
            errors.append(f"import job {job.get('status')} created {job.get('rows_created')}")
        batch += 1
        time.sleep(2)
    out.update(times=times, errors=errors, submitted=[], imports=imports)


def invariants(project_id: int, seen_ids: list[int], import_ids: list[int], snapshot_ids: list) -> dict:
    from django.db import connection
    from django.utils import timezone

    from projects.assignment.services import leases_expire
    from projects.core.models import Project
    from projects.exports.models import ExportJob
    from projects.imports.models import ImportJob

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
        "imported_articles_without_one_task": "SELECT count(*) FROM documents_article d WHERE d.project_id = %s "
        f"AND d.external_id LIKE '{IMPORT_PREFIX}%%' "
        "AND (SELECT count(*) FROM assignment_task t WHERE t.article_id = d.id) <> 1",
    }
    expired_live = (
        "SELECT count(*) FROM assignment_assignment WHERE project_id = %s AND status = 'leased' AND expires_at <= %s"
    )
    leased_mismatch = (
        "SELECT count(*) FROM assignment_task t WHERE t.project_id = %s AND t.leased_count <> "
        "(SELECT count(*) FROM assignment_assignment a WHERE a.task_id = t.id AND a.status = 'leased')"
    )
    found = {}
    with connection.cursor() as cursor:
        for name, sql in checks.items():
            cursor.execute(sql, [project_id])
            found[name] = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM annotations_annotation WHERE id = ANY(%s) AND status = 'submitted'", [seen_ids]
        )
        found["lost_annotations"] = len(set(seen_ids)) - cursor.fetchone()[0]
        now = timezone.now()
        cursor.execute(expired_live, [project_id, now])
        found["expired_leases_awaiting_beat"] = cursor.fetchone()[0]  # beat runs every 60 s: some may wait
        found["leases_returned_by_sweep"] = leases_expire(project=Project.objects.get(pk=project_id), now=now)
        cursor.execute(expired_live, [project_id, now])
        found["dangling_leases"] = cursor.fetchone()[0]
        cursor.execute(leased_mismatch, [project_id])
        found["leased_count_mismatches"] = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM documents_article WHERE project_id = %s AND external_id LIKE %s",
            [project_id, f"{IMPORT_PREFIX}%"],
        )
        stored = cursor.fetchone()[0]
    jobs = ImportJob.objects.filter(pk__in=[i for i in import_ids if i])
    found["import_jobs"] = jobs.count()
    found["import_jobs_not_succeeded"] = jobs.exclude(status="succeeded").count()
    found["imported_articles_missing_or_extra"] = sum(jobs.values_list("rows_created", flat=True)) - stored
    snapshots = ExportJob.objects.filter(pk__in=[i for i in snapshot_ids if i])
    found["snapshots"] = snapshots.count()
    found["snapshots_not_done"] = snapshots.exclude(status="done").count() + (len(snapshot_ids) - snapshots.count())
    return found


class Worker:
    """``celery worker -B`` (jobs and beat) against the same database and Redis, when REDIS_URL is set."""

    def __init__(self, concurrency: int) -> None:
        self.proc = None
        if not os.environ.get("REDIS_URL"):
            return
        self.schedule = tempfile.mkdtemp(prefix="soak-beat-")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "annotator", "worker", "-B", "-s", f"{self.schedule}/beat"]
            + ["-c", str(concurrency), "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "annotator.settings"},
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)


def run(options) -> list[dict]:
    if not django_ready():
        return [{"skipped": "needs DATABASE_URL=postgres://... (the scenario fills that database)"}]
    from django.db import ProgrammingError

    from projects.core.models import Membership, Project, Role
    from projects.core.services import token_create
    from projects.documents.models import Article
    from tests.factories import UserFactory

    n = options.n or 20_000
    seconds, users = option(options, "seconds", 60), option(options, "users", 100)
    workers, threads = option(options, "workers", 4), option(options, "threads", 8)
    celery_concurrency = option(options, "celery", 2)
    try:  # articles imported by the last run would make prepare() rebuild the whole project
        Article.objects.filter(project__name=PROJECT_NAME, external_id__startswith=IMPORT_PREFIX).delete()
    except ProgrammingError:
        pass  # not migrated yet: prepare() migrates
    project_id, keys = prepare(n, users)
    Project.objects.filter(pk=project_id).update(lease_minutes=option(options, "lease-minutes", 1))
    staff = {}
    for name, role in (("bench-manager", Role.MANAGER), ("bench-admin", Role.ADMIN)):
        person = UserFactory(username=name)
        Membership.objects.update_or_create(project_id=project_id, user=person, defaults={"role": role})
        staff[name] = token_create(user=person, name="bench")[1]
    outs = [{} for _ in range(users + 2)]
    worker = Worker(celery_concurrency)
    try:
        with Server(workers, threads) as server:
            until = time.perf_counter() + seconds
            threads_ = [
                threading.Thread(target=annotator, args=(server.port, key, project_id, until, i, outs[i]))
                for i, key in enumerate(keys)
            ]
            threads_.append(
                threading.Thread(
                    target=manager, args=(server.port, staff["bench-manager"], project_id, until, outs[-2])
                )
            )
            threads_.append(
                threading.Thread(target=admin, args=(server.port, staff["bench-admin"], project_id, until, outs[-1]))
            )
            start = time.perf_counter()
            for t in threads_:
                t.start()
            for t in threads_:
                t.join()
            wall = time.perf_counter() - start
    finally:
        worker.stop()
    times = defaultdict(list)
    for out in outs:
        for name, values in out.get("times", {}).items():
            times[name] += values
    errors = [e for out in outs for e in out.get("errors", [])]
    seen = [i for out in outs for i in out.get("submitted", [])]
    requests = sum(len(v) for name, v in times.items() if not name.endswith("-job"))
    figures = {
        "tasks": n,
        "annotators": users,
        "gunicorn": f"{workers}x{threads}",
        "celery": f"worker -c {celery_concurrency} + beat" if worker.proc else "eager (in gunicorn)",
        "seconds": round(wall, 1),
        "requests_per_s": round(requests / wall, 1),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        **{
            f"{name}_p50_p99_ms": [round(median(v), 1), round(percentile(v, 99), 1), len(v)]
            for name, v in sorted(times.items())
        },
        **invariants(project_id, seen, outs[-1].get("imports", []), outs[-2].get("snapshots", [])),
        "load_average": os.getloadavg(),
    }
    return [figures]
