import pytest
from django.test import Client

from projects.annotations.models import AnnotationStatus
from projects.assignment.models import Assignment, Task
from projects.core import selectors
from projects.core.models import GuidelineVersion, Role
from projects.core.services import project_update
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def web():
    def login(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return login


def test_start_labeling_leases_a_task_and_opens_it(web, project, annotator):
    task = factories.TaskFactory(article__project=project)
    response = web(annotator).get(f"/projects/{project.pk}/label/")
    assert response.status_code == 302 and response["Location"] == f"/tasks/{task.pk}/label/?queue=1"
    assert Assignment.objects.filter(task=task, user=annotator, status="leased").exists()
    page = web(annotator).get(response["Location"])
    assert page.status_code == 200
    assert b'id="label-data"' in page.content


def test_empty_queue_says_all_done(web, project, annotator):
    response = web(annotator).get(f"/projects/{project.pk}/label/")
    assert response.status_code == 200 and b"No more tasks for you" in response.content


def test_annotator_cannot_open_a_task_never_given_to_them(web, project, annotator, outsider):
    task = factories.TaskFactory(article__project=project)
    assert web(annotator).get(f"/tasks/{task.pk}/label/").status_code == 404
    assert web(outsider).get(f"/tasks/{task.pk}/label/").status_code == 404
    assert web(outsider).get(f"/projects/{project.pk}/label/").status_code == 404


def test_page_data_restores_draft_first_then_submission(web, project, annotator):
    task = factories.TaskFactory(article__project=project)
    annotation = factories.AnnotationFactory(task=task, user=annotator, result={"topic": "politics"})
    data = web(annotator).get(f"/tasks/{task.pk}/label/").context["data"]
    assert data["submitted"] == {"topic": "politics"} and data["draft"] is None
    annotation.draft = {"topic": "business"}
    annotation.save()
    data = web(annotator).get(f"/tasks/{task.pk}/label/").context["data"]
    assert data["draft"] == {"topic": "business"}


def test_guidelines_changed_notice(web, project, annotator, manager):
    GuidelineVersion.objects.create(project=project, version=1, text="Old rule.")
    task = factories.TaskFactory(article__project=project)
    factories.AnnotationFactory(task=task, user=annotator, guideline_version=1)
    assert b"guidelines changed" not in web(annotator).get(f"/tasks/{task.pk}/label/").content
    project_update(project=project, actor=manager, guidelines="New rule: label dates.")
    content = web(annotator).get(f"/tasks/{task.pk}/label/").content.decode()
    assert "The guidelines changed since your last task" in content and "v1 → v2" in content
    diff = web(annotator).get(f"/projects/{project.pk}/guidelines/?compare=1").content.decode()
    assert "+ New rule: label dates." in diff and "- Old rule." in diff


def test_manager_edits_guidelines_as_a_new_version_annotator_cannot(web, project, annotator, manager):
    response = web(manager).post(f"/projects/{project.pk}/guidelines/", {"guidelines": "Line 1\r\nLine 2"})
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.guidelines == "Line 1\nLine 2" and project.guidelines_version == 2
    assert web(annotator).get(f"/projects/{project.pk}/guidelines/v2/").status_code == 200
    assert web(annotator).get(f"/projects/{project.pk}/guidelines/v9/").status_code == 404
    assert web(annotator).post(f"/projects/{project.pk}/guidelines/", {"guidelines": "x"}).status_code == 404
    project.refresh_from_db()
    assert project.guidelines_version == 2


def test_my_submissions_lists_only_mine(web, project, annotator, reviewer):
    mine = factories.AnnotationFactory(task__article__project=project, user=annotator)
    factories.AnnotationFactory(task__article__project=project, user=annotator, status=AnnotationStatus.DRAFT)
    other = factories.AnnotationFactory(task__article__project=project, user=reviewer)
    content = web(annotator).get(f"/projects/{project.pk}/my-submissions/").content.decode()
    assert f"/tasks/{mine.task_id}/label/" in content and f"/tasks/{other.task_id}/label/" not in content


def test_progress_counts(web, project, annotator):
    tasks = [factories.TaskFactory(article__project=project) for _ in range(3)]
    factories.AnnotationFactory(task=tasks[0], user=annotator)
    Assignment.objects.create(project=project, task=tasks[0], user=annotator, status="submitted")
    tasks[0].is_complete = True
    tasks[0].save()
    progress = web(annotator).get(f"/tasks/{tasks[0].pk}/label/").context["progress"]
    assert progress == {"mine_done": 1, "mine_left": 2, "project_done": 1, "project_total": 3, "approximate": False}


def test_progress_in_a_large_project_is_shared_and_refreshed(web, project, annotator, monkeypatch):
    from django.core.cache import cache

    monkeypatch.setattr(selectors, "COUNTS_EXACT_BELOW", 3)
    cache.delete(f"labeling-progress:{project.pk}")
    tasks = [factories.TaskFactory(article__project=project) for _ in range(4)]
    factories.AnnotationFactory(task=tasks[0], user=annotator)
    Assignment.objects.create(project=project, task=tasks[0], user=annotator, status="submitted")
    Task.objects.filter(pk=tasks[0].pk).update(is_complete=True)
    page = web(annotator).get(f"/tasks/{tasks[0].pk}/label/")
    assert page.context["progress"] == {
        "mine_done": 1,
        "mine_left": 3,  # the project's open tasks
        "project_done": 1,
        "project_total": 4,
        "approximate": True,
    }
    assert "3 open in the project" in page.content.decode()
    # Another task completes: the project's figures are the shared count until it expires; the
    # user's own "done" is exact at once.
    factories.AnnotationFactory(task=tasks[1], user=annotator)
    Task.objects.filter(pk=tasks[1].pk).update(is_complete=True)
    progress = web(annotator).get(f"/tasks/{tasks[0].pk}/label/").context["progress"]
    assert (progress["mine_done"], progress["project_done"], progress["mine_left"]) == (2, 1, 3)
    cache.delete(f"labeling-progress:{project.pk}")  # as when COUNTS_CACHE_SECONDS have passed
    progress = web(annotator).get(f"/tasks/{tasks[0].pk}/label/").context["progress"]
    assert (progress["mine_done"], progress["project_done"], progress["mine_left"]) == (2, 2, 2)


def test_progress_in_a_small_project_is_never_cached(web, project, annotator):
    tasks = [factories.TaskFactory(article__project=project) for _ in range(2)]
    Assignment.objects.create(project=project, task=tasks[0], user=annotator, status="leased")
    assert web(annotator).get(f"/tasks/{tasks[0].pk}/label/").context["progress"]["project_done"] == 0
    Task.objects.filter(pk=tasks[1].pk).update(is_complete=True)
    progress = web(annotator).get(f"/tasks/{tasks[0].pk}/label/").context["progress"]
    assert (progress["project_done"], progress["mine_left"], progress["approximate"]) == (1, 1, False)


def test_progress_counts_while_the_cache_is_down(web, project, annotator, monkeypatch, cache_down):
    from projects.web.views import labeling

    monkeypatch.setattr(labeling, "cache", cache_down)
    monkeypatch.setattr(selectors, "COUNTS_EXACT_BELOW", 1)
    task = factories.TaskFactory(article__project=project)
    Assignment.objects.create(project=project, task=task, user=annotator, status="leased")
    progress = web(annotator).get(f"/tasks/{task.pk}/label/").context["progress"]
    assert (progress["project_total"], progress["mine_left"]) == (1, 1)


def test_reviewer_may_open_any_task(web, project, reviewer):
    task = factories.TaskFactory(article__project=project)
    assert web(reviewer).get(f"/tasks/{task.pk}/label/").status_code == 200
    assert Role.REVIEWER


def test_task_page_statements_do_not_grow_with_the_users_work(web, project, annotator):
    """The task page reads the session, the user, the task (with its article, project and the
    access check), the user's side of the page (their annotation, done count and latest guideline
    version: one statement), the predictions, the project's two task counts and (a small project)
    the user's exact open count; however many tasks the user has done, and whether or not they
    annotated this one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = web(annotator)
    task = factories.TaskFactory(article__project=project)
    client.get(f"/projects/{project.pk}/label/")
    counts = []
    for done in (0, 3):
        for other in factories.TaskFactory.create_batch(done, article__project=project):
            factories.AnnotationFactory(task=other, user=annotator, guideline_version=1)
        with CaptureQueriesContext(connection) as queries:
            page = client.get(f"/tasks/{task.pk}/label/")
        assert page.status_code == 200 and page.context["progress"]["mine_done"] == done
        counts.append(len(queries))
    factories.AnnotationFactory(task=task, user=annotator, draft={"topic": "business"})
    with CaptureQueriesContext(connection) as queries:
        page = client.get(f"/tasks/{task.pk}/label/")
    assert page.context["data"]["draft"] == {"topic": "business"} and page.context["progress"]["mine_done"] == 4
    counts.append(len(queries))
    assert counts == [8, 8, 8]
