import pytest

from projects.annotations.models import Comment
from tests import factories

pytestmark = pytest.mark.django_db


def _leased_task(client, project):
    task = factories.TaskFactory(article__project=project)
    assert client.post(f"/api/v1/projects/{project.pk}/next-task/").status_code == 200
    return task


def test_annotator_comments_on_a_task_they_hold_and_reviewer_sees_it(client_for, project, annotator, reviewer):
    client = client_for(annotator)
    task = _leased_task(client, project)
    url = f"/api/v1/tasks/{task.pk}/comments/"
    created = client.post(url, {"text": "  Is Quantix an ORG here? <script>x</script> "}, format="json")
    assert created.status_code == 201
    assert created.json()["text"] == "Is Quantix an ORG here? <script>x</script>"  # stored as given, escaped on display
    reply = client_for(reviewer).post(url, {"text": "Yes."}, format="json")
    assert reply.status_code == 201
    listed = client.get(url).json()
    assert [c["username"] for c in listed["results"]] == ["anna", "rita"]
    assert listed["count"] == 2


def test_annotator_cannot_see_comments_on_tasks_never_given_to_them(client_for, project, annotator, manager):
    task = factories.TaskFactory(article__project=project)
    client_for(manager).post(f"/api/v1/tasks/{task.pk}/comments/", {"text": "private note"}, format="json")
    response = client_for(annotator).get(f"/api/v1/tasks/{task.pk}/comments/")
    assert response.status_code == 404
    assert (
        client_for(annotator).post(f"/api/v1/tasks/{task.pk}/comments/", {"text": "hi"}, format="json").status_code
        == 404
    )
    assert Comment.objects.count() == 1


def test_outsider_gets_404(client_for, project, outsider):
    task = factories.TaskFactory(article__project=project)
    assert client_for(outsider).get(f"/api/v1/tasks/{task.pk}/comments/").status_code == 404


@pytest.mark.parametrize("text", ["", "   ", "x" * 5001])
def test_empty_or_huge_comment_is_rejected(client_for, project, annotator, text):
    client = client_for(annotator)
    task = _leased_task(client, project)
    response = client.post(f"/api/v1/tasks/{task.pk}/comments/", {"text": text}, format="json")
    assert response.status_code == 400
    assert "text" in response.json()["error"]["fields"]
    assert not Comment.objects.exists()


def test_read_only_token_cannot_comment(api, project, annotator):
    from projects.core.services import token_create

    client = api
    task = factories.TaskFactory(article__project=project)
    factories.AnnotationFactory(task=task, user=annotator)
    _, key = token_create(user=annotator, scope="read")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(f"/api/v1/tasks/{task.pk}/comments/").status_code == 200
    assert client.post(f"/api/v1/tasks/{task.pk}/comments/", {"text": "hi"}, format="json").status_code == 403
