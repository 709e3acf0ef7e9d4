import pytest

from projects.annotations.models import AnnotationStatus
from tests import factories

pytestmark = pytest.mark.django_db


def test_lists_only_my_submitted_annotations_newest_first(client_for, project, annotator, reviewer):
    mine = [factories.AnnotationFactory(task__article__project=project, user=annotator) for _ in range(3)]
    factories.AnnotationFactory(task__article__project=project, user=annotator, status=AnnotationStatus.DRAFT)
    factories.AnnotationFactory(task__article__project=project, user=reviewer)
    factories.AnnotationFactory(user=annotator)  # another project
    body = client_for(annotator).get(f"/api/v1/projects/{project.pk}/my-annotations/?page_size=2").json()
    assert body["count"] == 3
    assert [row["id"] for row in body["results"]] == [mine[2].pk, mine[1].pk]
    assert body["results"][0]["label_url"] == f"/tasks/{mine[2].task_id}/label/"
    assert body["results"][0]["article_title"] == mine[2].task.article.title
    assert body["next"]


def test_outsider_gets_404(client_for, project, outsider):
    assert client_for(outsider).get(f"/api/v1/projects/{project.pk}/my-annotations/").status_code == 404


def test_annotator_can_reopen_and_edit_an_earlier_submission(client_for, project, annotator):
    client = client_for(annotator)
    task = factories.TaskFactory(article__project=project)
    client.post(f"/api/v1/projects/{project.pk}/next-task/")
    client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "business"}}, format="json")
    listed = client.get(f"/api/v1/projects/{project.pk}/my-annotations/").json()["results"]
    assert client.get(f"/api/v1/tasks/{listed[0]['task']}/").status_code == 200
    again = client.post(f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "politics"}}, format="json")
    assert again.status_code == 200 and again.json()["result"] == {"topic": "politics"}
