"""Quality recompute at scale: N tasks (default 100,000) with overlap 3, every metric, wall time and
peak memory of the recompute process.

Builds its own database: with ``DATABASE_URL`` pointing at PostgreSQL it creates (and drops)
``<name>_bench_quality`` on that server, otherwise a SQLite file in /tmp. Synthetic data is
bulk-inserted (30 annotators, schema: choice, spans, rating with 2 criteria, pairwise; 2% gold
tasks). Each repetition runs the recompute in a fresh child process (so its peak RSS is the
recompute's own) twice: *cold* (no stored consensus rows or task agreement yet: everything is
written) and *warm* (forced again on unchanged data: only the snapshot is written). Reports medians.
``--keep`` keeps the database for another run.
"""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.util import median

SCHEMA = {
    "fields": [
        {"name": "topic", "type": "choice", "options": ["politics", "business", "technology", "science", "health"]},
        {"name": "entities", "type": "spans", "labels": ["PERSON", "ORG", "LOC"]},
        {"name": "quality", "type": "rating", "criteria": ["relevance", "coherence"], "scale": [1, 5]},
        {"name": "better", "type": "pairwise", "between": ["payload.a", "payload.b"]},
    ]
}
TEXT = "Elena Marchetti met Quantix in Lyon on Tuesday to discuss the merger with the board."
SPANS = [(0, 15, "PERSON"), (20, 27, "ORG"), (31, 35, "LOC")]
SQLITE_PATH = Path("/tmp/annotator-bench-quality.sqlite3")
CHILD = "from bench.scenarios.quality_recompute import _child"


def _database_url() -> tuple[str, str | None]:
    """(URL the benchmark uses, the admin URL to create/drop it on PostgreSQL, else None)."""
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith(("postgres://", "postgresql://")):
        head, _, name = base.rpartition("/")
        name = name.split("?")[0] or "annotator"
        return f"{head}/{name}_bench_quality", f"{head}/postgres"
    return f"sqlite:///{SQLITE_PATH}", None


def _reset_database(url: str, admin_url: str | None) -> None:
    if admin_url is None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{SQLITE_PATH}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    name = url.rpartition("/")[2]
    with psycopg.connect(admin_url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def _result(rng: random.Random, truth: str, accuracy: float) -> dict:
    topic = truth if rng.random() < accuracy else rng.choice(SCHEMA["fields"][0]["options"])
    spans = [s for s in SPANS if rng.random() < 0.8 + 0.15 * accuracy]
    return {
        "topic": topic,
        "entities": [{"start": s, "end": e, "label": lab, "text": TEXT[s:e]} for s, e, lab in spans],
        "quality": {"relevance": rng.randint(3, 5), "coherence": rng.randint(2, 5)},
        "better": {"choice": rng.choice(["a", "a", "a", "b", "tie"])},
    }


def _populate(n_tasks: int, overlap: int, seed: int) -> int:
    from django.contrib.auth import get_user_model

    from projects.annotations.models import Annotation, AnnotationStatus
    from projects.assignment.models import Task
    from projects.core.models import AnnotatorProfile, Membership, Project
    from projects.documents.models import Article

    rng = random.Random(seed)
    User = get_user_model()
    project = Project.objects.create(name="bench quality", label_schema=SCHEMA, overlap=overlap)
    users = User.objects.bulk_create([User(username=f"bench-annotator-{i}") for i in range(30)])
    Membership.objects.bulk_create([Membership(project=project, user=u) for u in users])
    levels = ["expert"] * 8 + ["generalist"] * 14 + ["none"] * 8
    AnnotatorProfile.objects.bulk_create(
        [
            AnnotatorProfile(user=u, skills={"medicine": lv} if lv != "none" else {})
            for u, lv in zip(users, levels, strict=True)
        ]
    )
    accuracy = [0.95] * 8 + [0.8] * 14 + [0.5] * 8
    start = datetime(2026, 10, 1, tzinfo=UTC)
    batch = 5000
    for lo in range(0, n_tasks, batch):
        hi = min(n_tasks, lo + batch)
        articles = Article.objects.bulk_create(
            [Article(project=project, external_id=f"b{i}", title=f"Article {i}", text=TEXT) for i in range(lo, hi)]
        )
        truths = [rng.choice(SCHEMA["fields"][0]["options"]) for _ in articles]
        gold = [rng.random() < 0.02 for _ in articles]
        tasks = Task.objects.bulk_create(
            [
                Task(
                    project=project,
                    article=a,
                    is_gold=g,
                    gold_answer=_result(rng, t, 1.0) | {"topic": t} if g else None,
                    required_skill="medicine" if g else "",
                    submitted_count=overlap,
                    is_complete=True,
                )
                for a, t, g in zip(articles, truths, gold, strict=True)
            ]
        )
        annotations = []
        for task, truth in zip(tasks, truths, strict=True):
            for j in rng.sample(range(30), overlap):
                annotations.append(
                    Annotation(
                        project=project,
                        task=task,
                        user=users[j],
                        result=_result(rng, truth, accuracy[j]),
                        status=AnnotationStatus.SUBMITTED,
                        lead_time=rng.lognormvariate(3.5, 0.6),
                        submitted_at=start + timedelta(minutes=rng.randint(0, 60 * 24 * 30)),
                    )
                )
        Annotation.objects.bulk_create(annotations, batch_size=batch)
    return project.pk


def _child(project_id: int, mode: str) -> None:
    """Run in a fresh process: one recompute, then print its own figures."""
    import django

    django.setup()
    from projects.assignment.models import Task
    from projects.quality.models import QualitySnapshot, TaskConsensus
    from projects.quality.services import quality_recompute

    if mode == "cold":
        TaskConsensus.objects.filter(project_id=project_id).delete()
        Task.objects.filter(project_id=project_id).update(agreement=None)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    status = quality_recompute(project_id=project_id, force=True)
    seconds = time.perf_counter() - start
    snapshot = QualitySnapshot.objects.filter(project_id=project_id).latest()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{status} {seconds:.3f} {peak:.1f} {base_rss:.1f} {snapshot.annotation_count}")


def run(options) -> list[dict]:
    n = options.n or 100_000
    overlap = 3
    keep = "--keep" in (getattr(options, "extra", None) or [])
    url, admin_url = _database_url()
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key")}
    env.pop("REDIS_URL", None)  # the recompute runs in-process; no broker needed
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "SECRET_KEY")})
    os.environ.pop("REDIS_URL", None)
    _reset_database(url, admin_url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    project_id = _populate(n, overlap, seed=1)
    load_seconds = time.perf_counter() - start
    from django.db import connections

    connections.close_all()

    figures: dict[str, list[float]] = {"cold_s": [], "cold_mb": [], "warm_s": [], "warm_mb": [], "base_mb": []}
    annotations = 0
    for _ in range(options.repeat):
        for mode in ("cold", "warm"):
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"from bench.scenarios.quality_recompute import _child; _child({project_id}, {mode!r})",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                cwd=Path(__file__).resolve().parents[2],
            ).stdout.split()
            status, seconds, peak, base, annotations = (
                out[-5],
                float(out[-4]),
                float(out[-3]),
                float(out[-2]),
                int(out[-1]),
            )
            assert status == "computed", status
            figures[f"{mode}_s"].append(seconds)
            figures[f"{mode}_mb"].append(peak)
            figures["base_mb"].append(base)
    if not keep:
        connections.close_all()
        if admin_url is None:
            _reset_database(url, None)
        else:
            _reset_database(url, admin_url)  # recreate empty, then drop
            import psycopg

            with psycopg.connect(admin_url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}"')
    return [
        {
            "database": "postgresql" if admin_url else "sqlite",
            "tasks": n,
            "overlap": overlap,
            "annotations": annotations,
            "repeats": options.repeat,
            "load_seconds": round(load_seconds, 1),
            "cold_recompute_seconds_median": round(median(figures["cold_s"]), 2),
            "cold_peak_rss_mb_median": round(median(figures["cold_mb"]), 1),
            "warm_recompute_seconds_median": round(median(figures["warm_s"]), 2),
            "warm_peak_rss_mb_median": round(median(figures["warm_mb"]), 1),
            "process_baseline_rss_mb": round(median(figures["base_mb"]), 1),
            "annotations_per_second_warm": round(annotations / median(figures["warm_s"])),
        }
    ]
