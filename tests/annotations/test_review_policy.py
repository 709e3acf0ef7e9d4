"""Review policy on submit: none / sample N% (deterministic) / all, and resubmission rules."""

import pytest

from projects.annotations.models import Annotation, ReviewState
from projects.annotations.reviews import in_review_sample
from projects.core.models import ReviewPolicy
from tests import factories

pytestmark = pytest.mark.django_db


def submit(client, project, result=None):
    task = client.post(f"/api/v1/projects/{project.pk}/next-task/").json()
    response = client.post(
        f"/api/v1/tasks/{task['id']}/annotations/", {"result": result or {"topic": "business"}}, format="json"
    )
    return response


def test_sample_is_deterministic_and_close_to_the_percentage():
    picks = [in_review_sample(project_id=7, annotation_id=i, percent=30) for i in range(10_000)]
    again = [in_review_sample(project_id=7, annotation_id=i, percent=30) for i in range(10_000)]
    assert picks == again
    assert 2_800 < sum(picks) < 3_200
    assert all(in_review_sample(project_id=1, annotation_id=i, percent=100) for i in range(100))
    assert not any(in_review_sample(project_id=1, annotation_id=i, percent=0) for i in range(100))


@pytest.mark.parametrize(
    ("policy", "expected"), [(ReviewPolicy.NONE, ReviewState.NONE), (ReviewPolicy.ALL, ReviewState.PENDING)]
)
def test_policy_none_and_all(client_for, project, annotator, policy, expected):
    project.review_policy = policy
    project.save()
    factories.TaskFactory(article__project=project)
    response = submit(client_for(annotator), project)
    assert response.status_code == 201
    assert response.json()["review_state"] == expected
    assert Annotation.objects.get().review_state == expected


def test_sample_policy_follows_the_hash_of_each_annotation(client_for, project):
    project.review_policy = ReviewPolicy.SAMPLE
    project.review_sample_percent = 50
    project.save()
    states = {}
    for i in range(12):
        user = factories.UserFactory(username=f"sampler{i}")
        factories.MembershipFactory(project=project, user=user)
        factories.TaskFactory(article__project=project)
        body = submit(client_for(user), project).json()
        states[body["id"]] = body["review_state"]
    for annotation_id, state in states.items():
        wanted = in_review_sample(project_id=project.pk, annotation_id=annotation_id, percent=50)
        assert state == (ReviewState.PENDING if wanted else ReviewState.NONE)
    assert set(states.values()) == {ReviewState.PENDING, ReviewState.NONE}


def test_resubmitting_a_reviewed_annotation_is_a_conflict(client_for, project, annotator, reviewer):
    project.review_policy = ReviewPolicy.ALL
    project.save()
    task = factories.TaskFactory(article__project=project)
    client = client_for(annotator)
    annotation_id = submit(client, project).json()["id"]
    assert (
        client_for(reviewer)
        .post(f"/api/v1/annotations/{annotation_id}/review/", {"verdict": "accept"}, format="json")
        .status_code
        == 201
    )
    again = client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "politics"}}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_reviewed"
    annotation = Annotation.objects.get(pk=annotation_id)
    assert annotation.result == {"topic": "business"} and annotation.review_state == ReviewState.ACCEPTED
