"""Many reviewers ask for the next annotation at once: each pending annotation is reviewed exactly
once and nobody reviews their own. Real threads with their own connections, through the API, on
PostgreSQL (the test database of SQLite is in memory, where threads cannot share writes)."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count, F
from rest_framework.test import APIClient

from projects.annotations.models import Annotation, Review, ReviewState
from projects.core.models import Role
from tests import factories

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL (SKIP LOCKED and real concurrent writers)"),
]

REVIEWERS = 8
ANNOTATIONS = 40


def review_until_empty(user, project_id: int, outcome: dict, barrier: threading.Barrier) -> None:
    client = APIClient()
    client.force_authenticate(user)
    done, errors = 0, []
    try:
        barrier.wait()
        while True:
            response = client.post(f"/api/v1/projects/{project_id}/review/next/")
            if response.status_code == 404:
                break
            if response.status_code != 200:
                errors.append(f"next {response.status_code} {response.content[:200]!r}")
                break
            annotation_id = response.json()["id"]
            verdict = client.post(f"/api/v1/annotations/{annotation_id}/review/", {"verdict": "accept"}, format="json")
            if verdict.status_code != 201:
                errors.append(f"verdict {verdict.status_code} {verdict.content[:200]!r}")
                break
            done += 1
    finally:
        outcome[user.username] = {"done": done, "errors": errors}
        connection.close()


@pytest.mark.slow
def test_concurrent_reviewers_each_annotation_reviewed_once(transactional_db):
    project = factories.ProjectFactory()
    reviewers = []
    for i in range(REVIEWERS):
        user = factories.UserFactory(username=f"rev{i}")
        factories.MembershipFactory(project=project, user=user, role=Role.REVIEWER)
        reviewers.append(user)
    for i in range(ANNOTATIONS):
        # Some annotations are by the reviewers themselves: they must go to someone else.
        author = reviewers[i % REVIEWERS] if i % 5 == 0 else factories.UserFactory(username=f"author{i}")
        factories.AnnotationFactory(task__article__project=project, user=author, review_state=ReviewState.PENDING)

    outcome: dict = {}
    barrier = threading.Barrier(REVIEWERS)
    threads = [threading.Thread(target=review_until_empty, args=(u, project.pk, outcome, barrier)) for u in reviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)

    errors = [e for o in outcome.values() for e in o["errors"]]
    assert not errors, errors[:5]
    assert sum(o["done"] for o in outcome.values()) == ANNOTATIONS
    assert Review.objects.count() == ANNOTATIONS
    per_annotation = Review.objects.values("annotation").annotate(n=Count("id"))
    assert all(row["n"] == 1 for row in per_annotation)
    assert not Review.objects.filter(reviewer_id=F("annotation__user_id")).exists()
    assert not Annotation.objects.exclude(review_state=ReviewState.ACCEPTED).exists()
