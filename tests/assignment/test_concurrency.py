"""Must show: 50 annotators hammer next-task and submit on PostgreSQL at overlap 3 until the
project is done; every task ends with exactly 3 annotations from 3 distinct users, none lost,
no lease left dangling.

Real threads, each with its own database connection, through the HTTP API views. Each annotator
works as a script would: it stops when the queue says it is done (404 with ``held_by_others`` 0)
and asks again while other annotators hold the last slots (one of them may skip and free one).
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count
from rest_framework.test import APIClient

from projects.annotations.models import Annotation
from projects.assignment.models import Assignment, AssignmentStatus, Task
from tests import factories

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL (SKIP LOCKED and real concurrent writers)"),
]

ANNOTATORS = 50
TASKS = 60
OVERLAP = 3
MAX_WAITS = 1500  # 30 s of asking again


def annotate_until_done(user, project_id: int, outcome: dict, barrier: threading.Barrier) -> None:
    client = APIClient()
    client.force_authenticate(user)
    rng = random.Random(user.pk)
    created = skipped = waits = 0
    errors: list[str] = []
    try:
        barrier.wait()
        while True:
            response = client.post(f"/api/v1/projects/{project_id}/next-task/")
            if response.status_code == 404:
                error = response.json()["error"]
                if not error["held_by_others"] and not error["opens_later"]:
                    break  # done: nothing left that could come to this annotator
                # Others hold the remaining slots; one may skip and free it. Ask again, as the
                # 404's message says.
                waits += 1
                if waits > MAX_WAITS:
                    errors.append(f"still told to ask again after {MAX_WAITS} tries")
                    break
                time.sleep(0.02)
                continue
            if response.status_code != 200:
                errors.append(f"next-task {response.status_code} {response.content[:200]!r}")
                break
            task_id = response.json()["id"]
            if rng.random() < 0.05:  # now and then someone passes; the slot must go to another
                skip = client.post(f"/api/v1/tasks/{task_id}/skip/")
                skipped += skip.status_code == 200
                continue
            result = {
                "topic": rng.choice(["politics", "business"]),
                "entities": [{"start": 0, "end": 5, "label": "PERSON"}],
            }
            submit = client.post(f"/api/v1/tasks/{task_id}/annotations/", {"result": result}, format="json")
            if submit.status_code != 201:
                errors.append(f"submit {submit.status_code} {submit.content[:200]!r}")
                break
            created += 1
    finally:
        outcome[user.username] = {"created": created, "skipped": skipped, "waits": waits, "errors": errors}
        connection.close()


@pytest.mark.slow
def test_fifty_annotators_overlap_three(transactional_db):
    project = factories.ProjectFactory(overlap=OVERLAP)
    users = []
    for i in range(ANNOTATORS):
        user = factories.UserFactory(username=f"hammer{i}")
        factories.MembershipFactory(project=project, user=user)
        users.append(user)
    for _ in range(TASKS):
        factories.TaskFactory(article__project=project, article__text="Alice went to Paris with Bob.")

    outcome: dict = {}
    barrier = threading.Barrier(ANNOTATORS)
    threads = [threading.Thread(target=annotate_until_done, args=(u, project.pk, outcome, barrier)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)

    errors = [e for o in outcome.values() for e in o["errors"]]
    assert not errors, errors[:5]
    created = sum(o["created"] for o in outcome.values())
    annotations = Annotation.objects.filter(project=project, status="submitted")
    assert created == annotations.count() == TASKS * OVERLAP  # none lost, none extra
    per_task = annotations.values("task").annotate(n=Count("pk"), users=Count("user", distinct=True))
    assert len(per_task) == TASKS
    assert all(row["n"] == OVERLAP and row["users"] == OVERLAP for row in per_task)
    tasks = Task.objects.filter(project=project)
    assert all(t.is_complete and t.submitted_count == OVERLAP and t.leased_count == 0 for t in tasks)
    assert not Assignment.objects.filter(project=project, status=AssignmentStatus.LEASED).exists()
    assert Assignment.objects.filter(project=project, status=AssignmentStatus.SUBMITTED).count() == TASKS * OVERLAP
    # Many annotators really worked at once (not one thread doing everything).
    assert sum(1 for o in outcome.values() if o["created"]) >= ANNOTATORS // 2
