"""Review on PostgreSQL, in process: next + verdict latency, disagreement scan, reviewed labels.

Needs ``DATABASE_URL=postgres://...`` (a database this scenario may fill; it keeps one project
"bench-review"). ``--n`` tasks (default 20,000) with two annotations each, all pending review; half
the tasks disagree on the topic. Reported (medians over ``--repeat``): p50/p99 of one reviewer's
``review_next_for_reviewer`` + ``review_submit`` (accept) over ``--verdicts`` rounds (default 300),
the disagreement listing rate (tasks scanned per second, pages of 200) and the time of
``reviewed_label_for_tasks`` over every task.
"""

from __future__ import annotations

import time

from bench.scenarios.next_task import TEXT, django_ready, option
from bench.util import median, percentile

PROJECT_NAME = "bench-review"


def prepare(n_tasks: int):
    from django.core.management import call_command
    from django.db import connection, transaction

    from projects.annotations.models import Annotation, Review, TaskLabel
    from projects.assignment.models import Task
    from projects.core.models import Membership, Project, Role
    from projects.core.services import project_create
    from projects.documents.models import Article
    from tests.factories import SIMPLE_SCHEMA, UserFactory

    call_command("migrate", verbosity=0)
    owner = UserFactory(username="bench-review-owner")
    users = [UserFactory(username=f"bench-review-ann{i}") for i in range(2)]
    reviewer = UserFactory(username="bench-reviewer")
    project = Project.objects.filter(name=PROJECT_NAME).first()
    if project is None:
        project = project_create(actor=owner, name=PROJECT_NAME, label_schema=dict(SIMPLE_SCHEMA))
    Project.objects.filter(pk=project.pk).update(overlap=2, review_policy="all")
    for user, role in ((users[0], Role.ANNOTATOR), (users[1], Role.ANNOTATOR), (reviewer, Role.REVIEWER)):
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": role})
    if Task.objects.filter(project=project).count() != n_tasks:
        Article.objects.filter(project=project).delete()
        for start in range(0, n_tasks, 5000):
            batch = range(start, min(n_tasks, start + 5000))
            with transaction.atomic():
                articles = Article.objects.bulk_create(
                    [Article(project=project, external_id=f"r{i}", title=f"Article {i}", text=TEXT) for i in batch]
                )
                Task.objects.bulk_create([Task(project=project, article=a, submitted_count=2) for a in articles])
    Review.objects.filter(annotation__project=project).delete()
    TaskLabel.objects.filter(project=project).delete()
    Annotation.objects.filter(project=project).delete()
    task_ids = list(Task.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    for start in range(0, len(task_ids), 5000):
        rows = []
        for i, task_id in enumerate(task_ids[start : start + 5000], start):
            for k, user in enumerate(users):
                topic = "business" if k == 0 or i % 2 else "politics"
                rows.append(
                    Annotation(
                        project=project,
                        task_id=task_id,
                        user=user,
                        result={"topic": topic},
                        status="submitted",
                        review_state="pending",
                    )
                )
        Annotation.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotations_annotation; ANALYZE assignment_task")
    return project, reviewer, task_ids


def run(options) -> list[dict]:
    if not django_ready():
        return [{"skipped": "needs DATABASE_URL=postgres://... (the scenario fills that database)"}]
    from projects.annotations import reviews, selectors

    n = options.n or 20_000
    rounds = option(options, "verdicts", 300)
    runs = []
    for _ in range(options.repeat):
        project, reviewer, task_ids = prepare(n)
        latencies = []
        for _ in range(rounds):
            start = time.perf_counter()
            annotation = reviews.review_next_for_reviewer(project=project, reviewer=reviewer)
            reviews.review_submit(annotation=annotation, reviewer=reviewer, verdict="accept")
            latencies.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        after, found = 0, 0
        while after is not None:
            rows, after = selectors.tasks_with_disagreement(project=project, after=after, limit=200)
            found += len(rows)
        scan_s = time.perf_counter() - start
        start = time.perf_counter()
        labels = selectors.reviewed_label_for_tasks(task_ids)
        labels_s = time.perf_counter() - start
        runs.append({"lat": latencies, "scan_s": scan_s, "found": found, "labels_s": labels_s, "labels": len(labels)})
    return [
        {
            "tasks": n,
            "annotations": 2 * n,
            "next_plus_verdict_p50_ms": round(median([median(r["lat"]) for r in runs]), 2),
            "next_plus_verdict_p99_ms": round(median([percentile(r["lat"], 99) for r in runs]), 2),
            "disagreement_scan_tasks_per_s": round(median([n / r["scan_s"] for r in runs])),
            "disagreements_found": runs[-1]["found"],
            "reviewed_labels_s": round(median([r["labels_s"] for r in runs]), 3),
            "reviewed_labels": runs[-1]["labels"],
        }
    ]
