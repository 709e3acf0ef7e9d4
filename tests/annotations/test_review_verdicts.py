"""Reviewer queue and verdicts: accept, reject → resubmit → pending, fix (valid / invalid), roles."""

import pytest

from projects.annotations.models import Annotation, Review, ReviewState
from projects.core.models import AuditEvent, ReviewPolicy, Role
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewed_project(project):
    project.review_policy = ReviewPolicy.ALL
    project.save()
    return project


def submitted(project, annotator, result=None):
    """A task leased and submitted by the annotator through the API (so the policy applies)."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(annotator)
    task = factories.TaskFactory(article__project=project)
    client.post(f"/api/v1/projects/{project.pk}/next-task/")
    response = client.post(
        f"/api/v1/tasks/{task.pk}/annotations/", {"result": result or {"topic": "business"}}, format="json"
    )
    assert response.status_code == 201, response.json()
    return Annotation.objects.get(pk=response.json()["id"])


def review_url(annotation):
    return f"/api/v1/annotations/{annotation.pk}/review/"


def test_next_gives_the_pending_annotation_with_text_and_result(client_for, reviewed_project, annotator, reviewer):
    annotation = submitted(reviewed_project, annotator)
    response = client_for(reviewer).post(f"/api/v1/projects/{reviewed_project.pk}/review/next/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == annotation.pk
    assert body["text"] == annotation.task.text
    assert body["result"] == {"topic": "business"} and body["username"] == annotator.username
    # The claim holds: asking again gives the same one, another reviewer gets nothing.
    assert (
        client_for(reviewer).post(f"/api/v1/projects/{reviewed_project.pk}/review/next/").json()["id"] == annotation.pk
    )
    other = factories.UserFactory(username="rolf")
    factories.MembershipFactory(project=reviewed_project, user=other, role=Role.REVIEWER)
    assert client_for(other).post(f"/api/v1/projects/{reviewed_project.pk}/review/next/").status_code == 404


def test_reviewer_is_never_handed_their_own_annotation(client_for, reviewed_project, reviewer):
    submitted(reviewed_project, reviewer)
    assert client_for(reviewer).post(f"/api/v1/projects/{reviewed_project.pk}/review/next/").status_code == 404
    assert client_for(reviewer).get(f"/api/v1/projects/{reviewed_project.pk}/review/queue/").json()["count"] == 0


def test_accept(client_for, reviewed_project, annotator, reviewer):
    annotation = submitted(reviewed_project, annotator)
    response = client_for(reviewer).post(review_url(annotation), {"verdict": "accept"}, format="json")
    assert response.status_code == 201
    annotation.refresh_from_db()
    assert annotation.review_state == ReviewState.ACCEPTED
    assert annotation.reviewed_result == {"topic": "business"}
    event = AuditEvent.objects.get(action="review.accept")
    assert event.actor == reviewer and event.data["annotation_id"] == annotation.pk


def test_reject_then_resubmit_goes_back_to_pending(client_for, reviewed_project, annotator, reviewer):
    annotation = submitted(reviewed_project, annotator)
    assert client_for(reviewer).post(review_url(annotation), {"verdict": "reject"}, format="json").status_code == 400
    response = client_for(reviewer).post(
        review_url(annotation), {"verdict": "reject", "comment": "Quantix is an ORG"}, format="json"
    )
    assert response.status_code == 201
    annotation.refresh_from_db()
    assert annotation.review_state == ReviewState.REJECTED and annotation.reviewed_result is None
    # Back to the annotator: listed for them with the comment, and not in the reviewer queue.
    annotator_client = client_for(annotator)
    returned = annotator_client.get(f"/api/v1/projects/{reviewed_project.pk}/review/returned/").json()
    assert [row["id"] for row in returned["results"]] == [annotation.pk]
    assert returned["results"][0]["last_review"]["comment"] == "Quantix is an ORG"
    assert annotator_client.get(f"/api/v1/annotations/{annotation.pk}/reviews/").json()[0]["verdict"] == "reject"
    assert client_for(reviewer).post(f"/api/v1/projects/{reviewed_project.pk}/review/next/").status_code == 404
    # While it waits for the annotator, reviewing it again is a conflict.
    assert client_for(reviewer).post(review_url(annotation), {"verdict": "accept"}, format="json").status_code == 409
    # The annotator fixes and resubmits: the same annotation, pending again, back in the queue.
    fixed = {"topic": "business", "entities": [{"start": 20, "end": 27, "label": "ORG"}]}
    again = annotator_client.post(f"/api/v1/tasks/{annotation.task_id}/annotations/", {"result": fixed}, format="json")
    assert again.status_code == 200
    annotation.refresh_from_db()
    assert annotation.review_state == ReviewState.PENDING
    assert annotation.result["entities"][0]["text"] == "Quantix"
    assert Annotation.objects.count() == 1
    assert annotator_client.get(f"/api/v1/projects/{reviewed_project.pk}/review/returned/").json()["count"] == 0
    assert (
        client_for(reviewer).post(f"/api/v1/projects/{reviewed_project.pk}/review/next/").json()["id"] == annotation.pk
    )


def test_fix_stores_the_corrected_result_as_the_reviewed_label(client_for, reviewed_project, annotator, reviewer):
    annotation = submitted(reviewed_project, annotator)
    corrected = {"topic": "technology", "entities": [{"start": 0, "end": 15, "label": "PERSON"}]}
    response = client_for(reviewer).post(
        review_url(annotation), {"verdict": "fix", "corrected_result": corrected, "comment": "topic"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["review_state"] == "fixed"
    assert body["reviewed_result"]["entities"][0]["text"] == "Elena Marchetti"
    assert body["result"] == {"topic": "business"}  # the annotator's own result is kept
    review = Review.objects.get(annotation=annotation)
    assert review.corrected_result == body["reviewed_result"]
    listing = client_for(reviewer).get(f"/api/v1/tasks/{annotation.task_id}/annotations/").json()
    assert listing[0]["reviewed_result"]["topic"] == "technology"


@pytest.mark.parametrize(
    "corrected",
    [
        {"topic": "cats"},
        {"entities": [{"start": 0, "end": 999, "label": "PERSON"}]},
        {"nope": 1},
        None,
        "not an object",
    ],
)
def test_fix_with_an_invalid_corrected_result_changes_nothing(
    client_for, reviewed_project, annotator, reviewer, corrected
):
    annotation = submitted(reviewed_project, annotator)
    response = client_for(reviewer).post(
        review_url(annotation), {"verdict": "fix", "corrected_result": corrected}, format="json"
    )
    assert response.status_code == 400
    assert "corrected_result" in response.json()["error"]["fields"]
    annotation.refresh_from_db()
    assert annotation.review_state == ReviewState.PENDING and annotation.reviewed_result is None
    assert not Review.objects.exists() and not AuditEvent.objects.filter(action__startswith="review.").exists()


def test_reviewer_cannot_review_their_own(client_for, reviewed_project, reviewer):
    annotation = submitted(reviewed_project, reviewer)
    response = client_for(reviewer).post(review_url(annotation), {"verdict": "accept"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "own_annotation"
    annotation.refresh_from_db()
    assert annotation.review_state == ReviewState.PENDING


def test_admin_cannot_review_their_own_either(client_for, reviewed_project, admin_user):
    annotation = submitted(reviewed_project, admin_user)
    assert client_for(admin_user).post(review_url(annotation), {"verdict": "accept"}, format="json").status_code == 403


def test_annotator_cannot_review(client_for, reviewed_project, annotator):
    other = factories.UserFactory(username="otto")
    factories.MembershipFactory(project=reviewed_project, user=other)
    annotation = submitted(reviewed_project, other)
    client = client_for(annotator)
    assert client.post(review_url(annotation), {"verdict": "accept"}, format="json").status_code == 403
    assert client.get(review_url(annotation)).status_code == 403
    assert client.post(f"/api/v1/projects/{reviewed_project.pk}/review/next/").status_code == 403
    assert client.get(f"/api/v1/projects/{reviewed_project.pk}/review/queue/").status_code == 403
    assert client.get(f"/api/v1/annotations/{annotation.pk}/reviews/").status_code == 404  # not theirs
    annotation.refresh_from_db()
    assert annotation.review_state == ReviewState.PENDING


def test_outsider_gets_404(client_for, reviewed_project, annotator, outsider):
    annotation = submitted(reviewed_project, annotator)
    client = client_for(outsider)
    assert client.post(review_url(annotation), {"verdict": "accept"}, format="json").status_code == 404
    assert client.get(review_url(annotation)).status_code == 404
    assert client.get(f"/api/v1/annotations/{annotation.pk}/reviews/").status_code == 404
    assert client.post(f"/api/v1/projects/{reviewed_project.pk}/review/next/").status_code == 404
    assert client.get(f"/api/v1/projects/{reviewed_project.pk}/review/returned/").status_code == 404
    assert not Review.objects.exists()


def test_anonymous_is_refused(api, reviewed_project, annotator):
    annotation = submitted(reviewed_project, annotator)
    assert api.post(review_url(annotation), {"verdict": "accept"}, format="json").status_code in (401, 403)
    assert not Review.objects.exists()


def test_history_lists_every_verdict_and_emits_events(
    client_for, reviewed_project, annotator, reviewer, django_capture_on_commit_callbacks
):
    from projects.core import events

    seen = []
    handler = lambda name, project_id, data: seen.append((name, data["verdict"]))  # noqa: E731
    events.subscribe(handler)
    try:
        annotation = submitted(reviewed_project, annotator)
        client = client_for(reviewer)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(review_url(annotation), {"verdict": "reject", "comment": "<b>redo</b>"}, format="json")
        client_for(annotator).post(
            f"/api/v1/tasks/{annotation.task_id}/annotations/", {"result": {"topic": "politics"}}, format="json"
        )
        with django_capture_on_commit_callbacks(execute=True):
            client.post(review_url(annotation), {"verdict": "accept"}, format="json")
    finally:
        events._handlers.remove(handler)
    history = client.get(f"/api/v1/annotations/{annotation.pk}/reviews/").json()
    assert [r["verdict"] for r in history] == ["reject", "accept"]
    assert history[0]["comment"] == "<b>redo</b>" and history[0]["reviewer_username"] == reviewer.username
    assert seen == [("annotation.reviewed", "reject"), ("annotation.reviewed", "accept")]


def test_an_expired_claim_passes_to_the_next_reviewer(client_for, reviewed_project, annotator, reviewer):
    from datetime import timedelta

    from django.utils import timezone

    from projects.annotations.models import ReviewClaim

    first = submitted(reviewed_project, annotator)
    second = submitted(reviewed_project, annotator)
    other = factories.UserFactory(username="rolf")
    factories.MembershipFactory(project=reviewed_project, user=other, role=Role.REVIEWER)
    url = f"/api/v1/projects/{reviewed_project.pk}/review/next/"
    assert client_for(reviewer).post(url).json()["id"] == first.pk
    assert client_for(other).post(url).json()["id"] == second.pk  # the first is claimed
    ReviewClaim.objects.filter(annotation=first).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client_for(other).post(review_url(second), {"verdict": "accept"}, format="json").status_code == 201
    taken = client_for(other).post(url)
    assert taken.status_code == 200 and taken.json()["id"] == first.pk  # the expired claim, renewed for rolf
    claim = ReviewClaim.objects.get(annotation=first)
    assert claim.reviewer == other and claim.expires_at > timezone.now()
    assert ReviewClaim.objects.count() == 1  # the verdict on the second dropped its claim
    assert client_for(reviewer).post(url).status_code == 404
