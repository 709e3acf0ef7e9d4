"""Pre-label N articles (20,000) with the rules labeler and the trained model: tasks/s on 1 and 2 workers.

With REDIS_URL and PostgreSQL it starts real Celery workers (``celery -A annotator worker -c 1``
then ``-c 2``: one and two worker processes) on a queue of its own and measures, per labeler and
worker count:

- ``tasks_per_s``: tasks / time from the first chunk to the last (prediction + storage);
- ``start_to_done_s``: from the start call to the run being finished, including planning and
  queueing (``end_to_end_tasks_per_s`` is N over it);
- ``worker_cpu_s_per_1000``: user + system CPU seconds of the worker processes per 1,000 tasks.
  It does not depend on what else runs on the machine: under 1.0 means one worker on an idle core
  keeps up 1,000 tasks/s as far as its own work goes;
- ``db_cpu_s_per_1000``: the same for the PostgreSQL backends serving this database (read from
  /proc, so only when PostgreSQL runs on this machine; ``null`` otherwise);
- ``load_avg``: the 1, 5 and 15 minute load averages when the runs started (``uptime``).

Without REDIS_URL or PostgreSQL it says so and measures in-process (one process, no broker).
Every figure is the median over ``--repeat`` runs; ``--chunk-size N`` overrides
PRELABEL_CHUNK_SIZE. Uses the database in DATABASE_URL (migrated first) and deletes its project
at the end. Each run starts from no predictions and no task uncertainty, like a first run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.util import median

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "bench-prelabel"


def _setup_django() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _build(n: int):
    from django.contrib.auth import get_user_model

    from projects.annotations.models import Annotation, AnnotationStatus
    from projects.assignment.models import Task
    from projects.core.models import Project
    from projects.documents.models import Article
    from projects.documents.synthetic import DOMAINS, NAMES, ORGS, PLACES, articles

    schema = {
        "fields": [
            {"name": "topic", "type": "choice", "options": DOMAINS},
            {"name": "entities", "type": "spans", "labels": ["PERSON", "ORG", "LOC"]},
        ]
    }
    project = Project.objects.create(name=f"bench-prelabel-{int(time.time())}", label_schema=schema)
    batch = []
    for a in articles(n):
        batch.append(
            Article(project=project, external_id=a["id"], title=a["title"], text=a["text"], domain=a["domain"])
        )
    Article.objects.bulk_create(batch, batch_size=2000)
    Task.objects.bulk_create(
        (Task(project=project, article_id=pk) for pk in project.articles.order_by("id").values_list("id", flat=True)),
        batch_size=2000,
    )
    # Training data: 600 submitted annotations (topic = the article's domain, entity spans found in the text).
    user, _ = get_user_model().objects.get_or_create(username="bench-prelabel")
    entity = re.compile("|".join(re.escape(x) for x in NAMES + ORGS + PLACES))
    label_of = {**dict.fromkeys(NAMES, "PERSON"), **dict.fromkeys(ORGS, "ORG"), **dict.fromkeys(PLACES, "LOC")}
    annotations = []
    for task in Task.objects.filter(project=project).select_related("article").order_by("id")[:600]:
        text = task.article.text
        spans = [
            {"start": m.start(), "end": m.end(), "label": label_of[m.group()], "text": m.group()}
            for m in entity.finditer(text)
        ]
        annotations.append(
            Annotation(
                project=project,
                task=task,
                user=user,
                status=AnnotationStatus.SUBMITTED,
                result={"topic": task.article.domain, "entities": spans},
            )
        )
    Annotation.objects.bulk_create(annotations)
    rules = {
        "rules": [
            {"field": "topic", "value": "technology", "keywords": ["data", "file", "module"]},
            {"field": "topic", "value": "business", "keywords": ["value", "return", "self"]},
            {"field": "topic", "value": "science", "keywords": ["test", "result"], "patterns": [r"\bnumber\w*"]},
            {"field": "entities", "label": "PERSON", "gazetteer": NAMES, "case_sensitive": True},
            {
                "field": "entities",
                "label": "ORG",
                "gazetteer": ORGS,
                "case_sensitive": True,
                "patterns": [r"\b[A-Z][a-z]+ (?:Labs|Bank|Health|Robotics|Energy)\b"],
            },
            {"field": "entities", "label": "LOC", "gazetteer": PLACES, "case_sensitive": True},
        ]
    }
    return project, user, rules


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        # After the command name: fields[0] is the state (field 3); pgrp is field 5, utime 14, stime 15.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _group_cpu_seconds(pgid: int) -> float:
    total = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(entry.name)) and int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _db_cpu_seconds() -> dict[int, float] | None:
    """CPU seconds of each PostgreSQL backend serving this database (but this connection), by pid.

    ``None`` when the backends are not visible in /proc (PostgreSQL on another machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = [row[0] for row in cursor.fetchall()]
    out = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is None:
            return None
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _db_cpu_delta(before: dict[int, float] | None, after: dict[int, float] | None) -> float | None:
    if before is None or after is None:
        return None
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


class Workers:
    def __init__(self, concurrency: int) -> None:
        from django.conf import settings

        env = {
            **os.environ,
            "PRELABEL_QUEUE": QUEUE,
            "SECRET_KEY": settings.SECRET_KEY,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "DJANGO_SETTINGS_MODULE": "annotator.settings",
            # Keep each worker's database connection for the whole benchmark, so the CPU time of
            # its PostgreSQL backend can be read before and after a run.
            "DB_CONN_MAX_AGE": "3600",
        }
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "annotator",
            "worker",
            "-Q",
            QUEUE,
            "-c",
            str(concurrency),
            "-n",
            f"bench-{os.getpid()}@%h",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        self.log = open(f"/tmp/bench-prelabel-worker-{concurrency}.log", "wb")
        self.process = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def cpu_seconds(self) -> float:
        """User + system CPU time of the worker and its pool processes (its process group)."""
        return _group_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


def _one_run(
    project, user, labeler: str, config, *, in_process: bool, task_filter="all", pool=None, chunk_size=None
) -> dict:
    from django.db import connection, transaction

    from projects.prelabel import services
    from projects.prelabel.models import Prediction, PrelabelRun, RunStatus

    version = services._model_version(
        project=project,
        kind=labeler,
        name=labeler,
        config=services.labeler_class(labeler).validate_config(config or {}, project.label_schema),
    )
    Prediction.objects.filter(project=project, model_version=version).delete()
    project.tasks.update(uncertainty=None)
    load = os.getloadavg()
    measure_db = connection.vendor == "postgresql" and not in_process
    db_before = _db_cpu_seconds() if measure_db else None
    cpu_before = pool.cpu_seconds() if pool is not None else time.process_time()
    start = time.perf_counter()
    if in_process:
        queued: list = []
        original = services._enqueue
        services._enqueue = lambda job, *args: queued.append((job, args))
        try:
            run, _ = services.prelabel_run_start(
                project=project,
                actor=user,
                labeler=labeler,
                config=config,
                task_filter=task_filter,
                chunk_size=chunk_size,
            )
            services.prelabel_run_plan(run_id=run.pk)
            for job, args in queued:
                if job.name == "prelabel.chunk":
                    services.prelabel_chunk_process(chunk_id=args[0])
        finally:
            services._enqueue = original
    else:
        with transaction.atomic():
            run, _ = services.prelabel_run_start(
                project=project,
                actor=user,
                labeler=labeler,
                config=config,
                task_filter=task_filter,
                chunk_size=chunk_size,
            )
        while PrelabelRun.objects.filter(pk=run.pk, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists():
            time.sleep(0.1)
    elapsed = time.perf_counter() - start
    cpu = (pool.cpu_seconds() if pool is not None else time.process_time()) - cpu_before
    db_cpu = _db_cpu_delta(db_before, _db_cpu_seconds()) if measure_db else None
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED, (run.status, run.message)
    predicting = (run.finished_at - run.started_at).total_seconds() if run.started_at else elapsed
    return {
        "elapsed": elapsed,
        "predicting": predicting,
        "cpu": cpu,
        "db_cpu": db_cpu,
        "load": load,
        "done": run.done,
        "failed": run.failed,
        "version": version,
    }


def run(options) -> list[dict]:
    _setup_django()
    from django.conf import settings

    from projects.prelabel import training

    n = options.n or 20_000
    chunk_size = None
    if "--chunk-size" in options.extra:
        chunk_size = int(options.extra[options.extra.index("--chunk-size") + 1])
    chunk_size = chunk_size or settings.PRELABEL_CHUNK_SIZE
    use_workers = bool(settings.REDIS_URL) and settings.IS_POSTGRES
    mode = "celery workers (Redis, PostgreSQL)" if use_workers else "in-process (no REDIS_URL or not PostgreSQL)"
    settings.PRELABEL_QUEUE = QUEUE
    t0 = time.perf_counter()
    project, user, rules = _build(n)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = training.model_train(project=project, actor=user)
    train_s = time.perf_counter() - t0
    out: list[dict] = []
    try:
        for workers in (1, 2) if use_workers else (1,):
            pool = Workers(workers) if use_workers else None
            try:
                # Warm-up: the workers import everything and load the model once.
                for labeler, config in (("rules", rules), ("sklearn", None)):
                    _one_run(
                        project,
                        user,
                        labeler,
                        config,
                        in_process=not use_workers,
                        task_filter={"id_to": project.tasks.order_by("id").values_list("id", flat=True)[9]},
                    )
                for labeler, config in (("rules", rules), ("sklearn", None)):
                    results = [
                        _one_run(
                            project,
                            user,
                            labeler,
                            config,
                            in_process=not use_workers,
                            pool=pool,
                            chunk_size=chunk_size,
                        )
                        for _ in range(options.repeat)
                    ]
                    predicting = median([r["predicting"] for r in results])
                    elapsed = median([r["elapsed"] for r in results])
                    cpu = median([r["cpu"] for r in results])
                    db_cpu = [r["db_cpu"] for r in results if r["db_cpu"] is not None]
                    out.append(
                        {
                            "mode": mode,
                            "labeler": labeler,
                            "model_version": results[0]["version"],
                            "workers": workers,
                            "tasks": n,
                            "failed": results[0]["failed"],
                            "chunk_size": chunk_size,
                            "tasks_per_s": round(n / predicting),
                            "start_to_done_s": round(elapsed, 2),
                            "end_to_end_tasks_per_s": round(n / elapsed),
                            # CPU time does not depend on the machine's load, wall-clock rates do.
                            "worker_cpu_s_per_1000": round(1000 * cpu / n, 3),
                            "tasks_per_worker_cpu_s": round(n / cpu),
                            "db_cpu_s_per_1000": round(1000 * median(db_cpu) / n, 3) if db_cpu else None,
                            "load_avg": [round(x, 1) for x in results[0]["load"]],
                            "repeat": options.repeat,
                        }
                    )
            finally:
                if pool is not None:
                    pool.stop()
        out.append(
            {
                "mode": mode,
                "setup_s": round(build_s, 1),
                "train_s": round(train_s, 1),
                "trained_on": model.annotation_count,
                "model_version": model.model_version,
            }
        )
    finally:
        project.delete()
    return out
