import pytest

from projects.annotations.models import Annotation
from projects.assignment.models import Task
from tests import factories

pytestmark = pytest.mark.django_db


def test_submit_twice_updates_one_annotation(client_for, project, annotator):
    task = factories.TaskFactory(article__project=project)
    client = client_for(annotator)
    client.post(f"/api/v1/projects/{project.pk}/next-task/")
    url = f"/api/v1/tasks/{task.pk}/annotations/"
    spans = [{"start": 0, "end": 15, "label": "PERSON"}]
    first = client.post(url, {"result": {"topic": "business", "entities": spans}, "lead_time": 3.5}, format="json")
    assert first.status_code == 201
    assert first.json()["result"]["entities"][0]["text"] == "Elena Marchetti"
    second = client.post(url, {"result": {"topic": "politics"}}, format="json")
    assert second.status_code == 200
    assert Annotation.objects.filter(task=task).count() == 1
    task.refresh_from_db()
    assert task.submitted_count == 1 and task.is_complete


def test_invalid_result_is_rejected_and_nothing_stored(client_for, project, annotator):
    task = factories.TaskFactory(article__project=project)
    client = client_for(annotator)
    client.post(f"/api/v1/projects/{project.pk}/next-task/")
    response = client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "cats"}}, format="json")
    assert response.status_code == 400
    assert "topic" in response.json()["error"]["fields"]
    assert not Annotation.objects.exists()
    assert Task.objects.get(pk=task.pk).submitted_count == 0


def test_annotator_cannot_submit_on_a_task_never_given_to_them(client_for, project, annotator):
    task = factories.TaskFactory(article__project=project)
    response = client_for(annotator).post(
        f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "business"}}, format="json"
    )
    assert response.status_code == 404
    assert not Annotation.objects.exists()


def test_draft_autosave_keeps_submitted_result(client_for, project, annotator):
    task = factories.TaskFactory(article__project=project)
    client = client_for(annotator)
    client.post(f"/api/v1/projects/{project.pk}/next-task/")
    client.put(f"/api/v1/tasks/{task.pk}/draft/", {"result": {"topic": "business"}}, format="json")
    assert client.get(f"/api/v1/tasks/{task.pk}/draft/").json()["result"] == {"topic": "business"}
    client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "politics"}}, format="json")
    client.put(f"/api/v1/tasks/{task.pk}/draft/", {"result": {"topic": "technology"}}, format="json")
    annotation = Annotation.objects.get(task=task)
    assert annotation.result == {"topic": "politics"} and annotation.draft == {"topic": "technology"}
