"""Disagreement listing and adjudication (pick or merge), and the reviewed-label selector."""

import pytest

from projects.annotations.models import LabelSource, ReviewState, TaskLabel
from projects.annotations.reviews import disagreeing_fields
from projects.annotations.selectors import reviewed_label_for_tasks
from projects.core.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def test_disagreeing_fields_is_exact_per_field():
    a = {"topic": "business", "entities": [{"start": 0, "end": 5, "label": "PERSON", "text": "Elena"}]}
    b = {"topic": "business", "entities": [{"start": 0, "end": 5, "label": "ORG", "text": "Elena"}]}
    c = {"topic": "business"}
    assert disagreeing_fields([a, a]) == []
    assert disagreeing_fields([a, b]) == ["entities"]
    assert disagreeing_fields([a, c]) == ["entities"]
    assert disagreeing_fields([a]) == []


@pytest.fixture
def split_task(project):
    project.overlap = 2
    project.save()
    task = factories.TaskFactory(article__project=project)
    one = factories.AnnotationFactory(task=task, result={"topic": "business"}, user__username="ann1")
    two = factories.AnnotationFactory(task=task, result={"topic": "politics"}, user__username="ann2")
    return task, one, two


def test_disagreements_are_listed_for_reviewers(client_for, project, reviewer, split_task):
    task, one, two = split_task
    agreed = factories.TaskFactory(article__project=project)
    factories.AnnotationFactory(task=agreed, result={"topic": "business"})
    factories.AnnotationFactory(task=agreed, result={"topic": "business"})
    body = client_for(reviewer).get(f"/api/v1/projects/{project.pk}/adjudication/").json()
    assert [row["task_id"] for row in body["results"]] == [task.pk]
    row = body["results"][0]
    assert row["fields"] == ["topic"] and {a["id"] for a in row["annotations"]} == {one.pk, two.pk}
    assert body["next_after"] is None


def test_only_submitted_unrejected_annotations_of_the_project_count(client_for, project, reviewer, split_task):
    task, one, two = split_task
    url = f"/api/v1/projects/{project.pk}/adjudication/"
    # A third, agreeing draft and another project's disagreeing task change nothing.
    factories.AnnotationFactory(task=task, result={"topic": "business"}, status="draft", user__username="ann3")
    elsewhere = factories.TaskFactory()
    factories.AnnotationFactory(task=elsewhere, result={"topic": "business"})
    factories.AnnotationFactory(task=elsewhere, result={"topic": "politics"})
    assert [row["task_id"] for row in client_for(reviewer).get(url).json()["results"]] == [task.pk]
    # With one of the two rejected, a single comparable annotation is left: nothing to adjudicate.
    two.review_state = ReviewState.REJECTED
    two.save()
    assert client_for(reviewer).get(url).json()["results"] == []


def test_disagreement_list_pages_with_after(client_for, project, reviewer):
    tasks = []
    for _ in range(3):
        task = factories.TaskFactory(article__project=project)
        factories.AnnotationFactory(task=task, result={"topic": "business"})
        factories.AnnotationFactory(task=task, result={"topic": "politics"})
        tasks.append(task.pk)
    client = client_for(reviewer)
    first = client.get(f"/api/v1/projects/{project.pk}/adjudication/?limit=2").json()
    assert [r["task_id"] for r in first["results"]] == tasks[:2]
    second = client.get(f"/api/v1/projects/{project.pk}/adjudication/?limit=2&after={first['next_after']}").json()
    assert [r["task_id"] for r in second["results"]] == tasks[2:] and second["next_after"] is None


def test_adjudicate_by_pick(client_for, project, reviewer, split_task):
    task, one, two = split_task
    response = client_for(reviewer).post(f"/api/v1/tasks/{task.pk}/adjudicate/", {"pick": two.pk}, format="json")
    assert response.status_code == 200
    assert response.json()["label"]["result"] == {"topic": "politics"}
    label = TaskLabel.objects.get(task=task)
    assert label.source == LabelSource.PICK and label.annotation == two and label.decided_by == reviewer
    assert reviewed_label_for_tasks([task.pk]) == {task.pk: {"topic": "politics"}}
    assert AuditEvent.objects.filter(action="task.adjudicate", actor=reviewer).exists()
    # Adjudicated tasks leave the list unless asked for.
    client = client_for(reviewer)
    assert client.get(f"/api/v1/projects/{project.pk}/adjudication/").json()["results"] == []
    again = client.get(f"/api/v1/projects/{project.pk}/adjudication/?include_adjudicated=1").json()["results"]
    assert again[0]["label"] == {"topic": "politics"}


def test_adjudicate_by_merged_result_is_validated(client_for, project, reviewer, split_task):
    task, _, _ = split_task
    client = client_for(reviewer)
    bad = client.post(f"/api/v1/tasks/{task.pk}/adjudicate/", {"result": {"topic": "cats"}}, format="json")
    assert bad.status_code == 400 and "result" in bad.json()["error"]["fields"]
    assert not TaskLabel.objects.exists()
    merged = {"topic": "technology", "entities": [{"start": 31, "end": 35, "label": "LOC"}]}
    ok = client.post(f"/api/v1/tasks/{task.pk}/adjudicate/", {"result": merged}, format="json")
    assert ok.status_code == 200
    label = TaskLabel.objects.get(task=task)
    assert label.source == LabelSource.MERGE and label.annotation is None
    assert label.result["entities"][0]["text"] == "Lyon"


def test_adjudicate_needs_exactly_one_of_pick_or_result(client_for, project, reviewer, split_task):
    task, one, _ = split_task
    client = client_for(reviewer)
    assert client.post(f"/api/v1/tasks/{task.pk}/adjudicate/", {}, format="json").status_code == 400
    both = {"pick": one.pk, "result": {"topic": "business"}}
    assert client.post(f"/api/v1/tasks/{task.pk}/adjudicate/", both, format="json").status_code == 400
    stranger = factories.AnnotationFactory(project=project)
    assert client.post(f"/api/v1/tasks/{task.pk}/adjudicate/", {"pick": stranger.pk}, format="json").status_code == 400
    assert not TaskLabel.objects.exists()


def test_adjudication_roles(client_for, project, annotator, outsider, split_task):
    task, one, _ = split_task
    assert (
        client_for(annotator).post(f"/api/v1/tasks/{task.pk}/adjudicate/", {"pick": one.pk}, format="json").status_code
        == 403
    )
    assert client_for(annotator).get(f"/api/v1/projects/{project.pk}/adjudication/").status_code == 403
    assert (
        client_for(outsider).post(f"/api/v1/tasks/{task.pk}/adjudicate/", {"pick": one.pk}, format="json").status_code
        == 404
    )
    assert client_for(outsider).get(f"/api/v1/tasks/{task.pk}/adjudicate/").status_code == 404
    assert client_for(outsider).get(f"/api/v1/projects/{project.pk}/adjudication/").status_code == 404
    # A reviewer who annotated the task does not judge it.
    assert (
        client_for(one.user).post(f"/api/v1/tasks/{task.pk}/adjudicate/", {"pick": one.pk}, format="json").status_code
        == 404
    )
    factories.MembershipFactory(project=project, user=one.user, role="reviewer")
    response = client_for(one.user).post(f"/api/v1/tasks/{task.pk}/adjudicate/", {"pick": one.pk}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "own_task"
    assert not TaskLabel.objects.exists()


def test_reviewed_label_prefers_adjudication_then_the_latest_review(project, reviewer):
    task = factories.TaskFactory(article__project=project)
    fixed = factories.AnnotationFactory(
        task=task, result={"topic": "business"}, review_state=ReviewState.FIXED, reviewed_result={"topic": "politics"}
    )
    unreviewed = factories.TaskFactory(article__project=project)
    factories.AnnotationFactory(task=unreviewed)
    accepted_task = factories.TaskFactory(article__project=project)
    factories.AnnotationFactory(task=accepted_task, result={"topic": "technology"}, review_state=ReviewState.ACCEPTED)
    labels = reviewed_label_for_tasks([task.pk, unreviewed.pk, accepted_task.pk])
    assert labels == {task.pk: {"topic": "politics"}, accepted_task.pk: {"topic": "technology"}}
    TaskLabel.objects.create(task=task, project=project, result={"topic": "business"}, source="merge", annotation=fixed)
    assert reviewed_label_for_tasks([task.pk])[task.pk] == {"topic": "business"}
