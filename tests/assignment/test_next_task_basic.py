import pytest

from projects.assignment.models import Assignment, AssignmentStatus
from tests import factories

pytestmark = pytest.mark.django_db


def test_next_task_leases_and_returns_same_task_again(client_for, project, annotator):
    task = factories.TaskFactory(article__project=project)
    client = client_for(annotator)
    first = client.post(f"/api/v1/projects/{project.pk}/next-task/")
    assert first.status_code == 200
    assert first.json()["id"] == task.pk and first.json()["text"] == task.article.text
    assert client.post(f"/api/v1/projects/{project.pk}/next-task/").json()["id"] == task.pk
    assert Assignment.objects.get(task=task, user=annotator).status == AssignmentStatus.LEASED


def test_overlap_one_never_gives_the_same_task_to_two_users(client_for, project, annotator):
    factories.TaskFactory(article__project=project)
    other = factories.UserFactory()
    factories.MembershipFactory(project=project, user=other)
    assert client_for(annotator).post(f"/api/v1/projects/{project.pk}/next-task/").status_code == 200
    response = client_for(other).post(f"/api/v1/projects/{project.pk}/next-task/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "no_task"


def test_outsider_gets_404(client_for, project, outsider):
    factories.TaskFactory(article__project=project)
    response = client_for(outsider).post(f"/api/v1/projects/{project.pk}/next-task/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert not Assignment.objects.exists()
