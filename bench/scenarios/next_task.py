"""Next-task latency on PostgreSQL behind gunicorn: p50/p99 at 1 and 32 annotators, duplicates.

Needs ``DATABASE_URL=postgres://...`` (a database this scenario may fill; it keeps one project of
``--n`` tasks, default 100,000, and resets it between runs). Starts ``gunicorn annotator.wsgi`` on a
loopback port (``--workers``/``--threads``/``--worker-class`` after the scenario name), then every
simulated annotator loops: ``POST next-task`` (timed) then submits the task, at overlap 1, so a task
handed to two annotators would be a duplicate. ``--annotators 1,8,16,32`` sets the client counts,
``--seconds`` the length of a run, ``--client-threads`` how the clients run (``bench/load.py``, which
also reports the CPU per request by process and the closed-loop bound). Figures are medians over
``--repeat`` runs.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.load import cost_figures, run_load
from bench.util import Gunicorn, median, percentile

ROOT = Path(__file__).resolve().parents[2]
PROJECT_NAME = "bench-queue"
TEXT = (
    "Elena Marchetti, chief economist at Quantix, told reporters in Lyon on Tuesday that the central "
    "bank would hold rates steady while inflation eased. Analysts at Borealis Capital expected two cuts "
    "next year. Markets in Paris and Milan rose after the statement. "
) * 2


def option(options, name: str, default: int) -> int:
    extra = list(getattr(options, "extra", []) or [])
    flag = f"--{name}"
    if flag in extra:
        return int(extra[extra.index(flag) + 1])
    return default


def django_ready() -> bool:
    import django
    from django.conf import settings

    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
    django.setup()
    return settings.IS_POSTGRES


def prepare(n_tasks: int, n_users: int, overlap: int = 1) -> tuple[int, list[str]]:
    """The bench project with ``n_tasks`` fresh tasks and ``n_users`` annotators; returns (id, token keys)."""
    from django.core.management import call_command
    from django.db import connection, transaction

    from projects.assignment.models import Task
    from projects.core.models import ApiToken, Membership, Project, Role
    from projects.core.services import project_create, token_create
    from projects.documents.models import Article
    from tests.factories import SIMPLE_SCHEMA, UserFactory

    call_command("migrate", verbosity=0)
    owner = UserFactory(username="bench-owner")
    project = Project.objects.filter(name=PROJECT_NAME).first()
    if project is None:
        project = project_create(actor=owner, name=PROJECT_NAME, label_schema=dict(SIMPLE_SCHEMA))
    Project.objects.filter(pk=project.pk).update(overlap=overlap, gold_ratio=0, assignment_policy="open")
    have = Task.objects.filter(project=project).count()
    if have != n_tasks:
        Article.objects.filter(project=project).delete()
        for start in range(0, n_tasks, 5000):
            batch = range(start, min(n_tasks, start + 5000))
            with transaction.atomic():
                articles = Article.objects.bulk_create(
                    [Article(project=project, external_id=f"b{i}", title=f"Article {i}", text=TEXT) for i in batch]
                )
                Task.objects.bulk_create(
                    [Task(project=project, article=a, priority=(i % 7)) for i, a in zip(batch, articles, strict=True)]
                )
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) documents_article")  # the rebuilt project's old rows
    with connection.cursor() as cursor:
        # Reset the queue: no assignments or annotations, counters at zero.
        cursor.execute("DELETE FROM annotations_annotation WHERE project_id = %s", [project.pk])
        cursor.execute("DELETE FROM assignment_assignment WHERE project_id = %s", [project.pk])
        cursor.execute(
            "UPDATE assignment_task SET submitted_count = 0, leased_count = 0, skipped_count = 0, is_complete = false "
            "WHERE project_id = %s "
            "AND (submitted_count <> 0 OR leased_count <> 0 OR skipped_count <> 0 OR is_complete)",
            [project.pk],
        )
        # Every run starts from the same state: the rows the last run, this reset or a rebuild
        # (another --n) left dead are cleared. The database may run without autovacuum, and dead
        # rows slow the queue's scans and the planner's estimates more with every run.
        cursor.execute("VACUUM (ANALYZE) assignment_task, assignment_assignment, annotations_annotation")
    keys = []
    for i in range(n_users):
        user = UserFactory(username=f"bench-annotator-{i}")
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": Role.ANNOTATOR})
        ApiToken.objects.filter(user=user).delete()
        keys.append(token_create(user=user, name="bench")[1])
    return project.pk, keys


class Server(Gunicorn):
    """gunicorn serving annotator.wsgi on a loopback port, for the duration of a ``with``."""

    def __init__(self, workers: int, threads: int, worker_class: str = "gthread") -> None:
        super().__init__(workers=workers, threads=threads, worker_class=worker_class, env={"DB_CONN_MAX_AGE": "600"})


def load_options(options, annotators: tuple[int, ...]) -> dict:
    """The gunicorn and load options shared by ``next_task`` and ``submit``."""
    extra = list(getattr(options, "extra", []) or [])
    sweep = extra[extra.index("--annotators") + 1] if "--annotators" in extra else ",".join(map(str, annotators))
    worker_class = extra[extra.index("--worker-class") + 1] if "--worker-class" in extra else "gthread"
    return {
        "n": options.n or 100_000,
        "seconds": option(options, "seconds", 10),
        "workers": option(options, "workers", 4),
        "threads": option(options, "threads", 4),
        "worker_class": worker_class,
        "annotators": [int(a) for a in sweep.split(",")],
        "client_threads": option(options, "client-threads", 0),
        "think_ms": option(options, "think-ms", 0),
    }


def measured_run(opts: dict, clients: int, result: dict) -> dict:
    """One run: a reset project, a fresh gunicorn, ``clients`` annotators for ``opts["seconds"]``."""
    project_id, keys = prepare(opts["n"], clients)
    with Server(opts["workers"], opts["threads"], opts["worker_class"]) as server:
        load = run_load(
            port=server.port,
            keys=keys,
            project_id=project_id,
            seconds=opts["seconds"],
            result=result,
            server_pgid=server.proc.pid,
            client_threads=opts["client_threads"],
            think_ms=opts["think_ms"],
        )
    load["db_duplicates"] = db_duplicates(project_id)
    return load


def shape(opts: dict) -> str:
    if opts["worker_class"] == "gthread":
        return f"{opts['workers']}x{opts['threads']}"
    return f"{opts['worker_class']} {opts['workers']}"


def db_duplicates(project_id: int) -> int:
    """Tasks with more submitted annotations than the overlap (1), counted in the database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT task_id FROM annotations_annotation WHERE project_id = %s "
            "AND status = 'submitted' GROUP BY task_id HAVING count(*) > 1) d",
            [project_id],
        )
        return cursor.fetchone()[0]


SIMPLE_RESULT = {"result": {"topic": "business"}}


def run(options) -> list[dict]:
    if not django_ready():
        return [{"skipped": "needs DATABASE_URL=postgres://... (the scenario fills that database)"}]
    opts = load_options(options, (1, 32))
    figures = []
    for concurrency in opts["annotators"]:
        runs = [measured_run(opts, concurrency, SIMPLE_RESULT) for _ in range(options.repeat)]
        figures.append(
            {
                "tasks": opts["n"],
                "annotators": concurrency,
                "gunicorn": shape(opts),
                **({"think_ms": opts["think_ms"]} if opts["think_ms"] else {}),
                "next_p50_ms": round(median([median(r["next_ms"]) for r in runs]), 1),
                "next_p99_ms": round(median([percentile(r["next_ms"], 99) for r in runs]), 1),
                "next_per_s": round(median([len(r["next_ms"]) / r["wall_s"] for r in runs])),
                "calls": int(median([len(r["next_ms"]) for r in runs])),
                **cost_figures(runs, concurrency),
                "duplicates": max(r["duplicates"] for r in runs),
                "db_duplicates": max(r["db_duplicates"] for r in runs),
                "errors": max(r["errors"] for r in runs),
                "first_error": next((r["first_error"] for r in runs if r["first_error"]), ""),
            }
        )
    return figures
