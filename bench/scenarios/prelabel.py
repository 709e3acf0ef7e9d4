"""Pre-label N articles (20,000) with the rules labeler and the trained model: tasks/s on 1 and 2 workers.

With REDIS_URL and PostgreSQL it starts real Celery workers (``celery -A annotator worker -c 1``
then ``-c 2``) on a queue of its own and measures, per labeler and worker count:
``tasks_per_s`` (tasks / time from the first chunk to the last, i.e. prediction + storage) and
``start_to_done_s`` (from the start call to the run being finished, including planning and
queueing). Without them it says so and measures in-process (one process, no broker).
Every figure is the median over ``--repeat`` runs. Uses the database in DATABASE_URL (migrated
first) and deletes its project at the end.
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


def _group_cpu_seconds(pgid: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state (field 3); pgrp is field 5, utime 14, stime 15 (1-based).
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


class Workers:
    def __init__(self, concurrency: int) -> None:
        from django.conf import settings

        env = {
            **os.environ,
            "PRELABEL_QUEUE": QUEUE,
            "SECRET_KEY": settings.SECRET_KEY,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "DJANGO_SETTINGS_MODULE": "annotator.settings",
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


def _one_run(project, user, labeler: str, config, *, in_process: bool, task_filter="all", pool=None) -> dict:
    from django.db import transaction

    from projects.prelabel import services
    from projects.prelabel.models import Prediction, PrelabelRun, RunStatus

    version = services._model_version(
        project=project,
        kind=labeler,
        name=labeler,
        config=services.labeler_class(labeler).validate_config(config or {}, project.label_schema),
    )
    Prediction.objects.filter(project=project, model_version=version).delete()
    load = os.getloadavg()[0]
    cpu_before = pool.cpu_seconds() if pool is not None else time.process_time()
    start = time.perf_counter()
    if in_process:
        queued: list = []
        original = services._enqueue
        services._enqueue = lambda job, *args: queued.append((job, args))
        try:
            run, _ = services.prelabel_run_start(
                project=project, actor=user, labeler=labeler, config=config, task_filter=task_filter
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
                project=project, actor=user, labeler=labeler, config=config, task_filter=task_filter
            )
        while PrelabelRun.objects.filter(pk=run.pk, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists():
            time.sleep(0.1)
    elapsed = time.perf_counter() - start
    cpu = (pool.cpu_seconds() if pool is not None else time.process_time()) - cpu_before
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED, (run.status, run.message)
    predicting = (run.finished_at - run.started_at).total_seconds() if run.started_at else elapsed
    return {
        "elapsed": elapsed,
        "predicting": predicting,
        "cpu": cpu,
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
                        _one_run(project, user, labeler, config, in_process=not use_workers, pool=pool)
                        for _ in range(options.repeat)
                    ]
                    predicting = median([r["predicting"] for r in results])
                    elapsed = median([r["elapsed"] for r in results])
                    out.append(
                        {
                            "mode": mode,
                            "labeler": labeler,
                            "model_version": results[0]["version"],
                            "workers": workers,
                            "tasks": n,
                            "failed": results[0]["failed"],
                            "tasks_per_s": round(n / predicting),
                            "start_to_done_s": round(elapsed, 2),
                            "end_to_end_tasks_per_s": round(n / elapsed),
                            # Worker CPU time (Python side; PostgreSQL's share is not in it): what one
                            # core would do undisturbed. The machine is shared, so wall-clock rates vary.
                            "tasks_per_worker_cpu_s": round(n / median([r["cpu"] for r in results])),
                            "load_avg_1m": round(median([r["load"] for r in results]), 1),
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
