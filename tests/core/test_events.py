import pytest

from projects.core import events
from tests import factories


@pytest.fixture
def received():
    seen: list[tuple] = []

    def handler(name, project_id, data):
        seen.append((name, project_id, data))

    events.subscribe(handler)
    yield seen
    events._handlers.remove(handler)


@pytest.mark.django_db
def test_submit_emits_after_commit(client_for, project, annotator, received, django_capture_on_commit_callbacks):
    task = factories.TaskFactory(article__project=project)
    client = client_for(annotator)
    client.post(f"/api/v1/projects/{project.pk}/next-task/")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "business"}}, format="json")
    assert [name for name, _, _ in received] == ["task.completed", "annotation.submitted"]
    assert received[1][2]["task_id"] == task.pk


@pytest.mark.django_db
def test_rejected_submit_emits_nothing(client_for, project, annotator, received, django_capture_on_commit_callbacks):
    task = factories.TaskFactory(article__project=project)
    client = client_for(annotator)
    client.post(f"/api/v1/projects/{project.pk}/next-task/")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "nope"}}, format="json")
    assert received == []
