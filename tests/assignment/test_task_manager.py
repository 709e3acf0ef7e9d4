"""Task manager API: filters, search, ordering (incl. malicious keys), pagination without
per-row queries, bulk actions and who may use them; progress."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from projects.annotations.models import Annotation
from projects.assignment import services
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.core.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def url(project, suffix: str = "") -> str:
    return f"/api/v1/projects/{project.pk}/tasks/{suffix}"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def task_in(project, title: str = "Plain title", text: str = "Some text.", **fields) -> Task:
    return factories.TaskFactory(article__project=project, article__title=title, article__text=text, **fields)


@pytest.fixture
def mgr(client_for, manager):
    return client_for(manager)


def test_filters(project, mgr, annotator):
    gold = task_in(project, is_gold=True)
    skill = task_in(project, required_skill="coding", agreement=0.2)
    flagged = task_in(project, is_flagged=True, flag_domain="law", agreement=0.9)
    predicted = task_in(project)
    factories.PredictionFactory(task=predicted, project=project)
    done = task_in(project, is_complete=True, submitted_count=1)
    leased = services.task_next_for_user(project=project, user=annotator).task_id
    assert ids(mgr.get(url(project), {"is_gold": "true"})) == [gold.pk]
    assert ids(mgr.get(url(project), {"required_skill": "coding"})) == [skill.pk]
    assert ids(mgr.get(url(project), {"is_flagged": "true"})) == [flagged.pk]
    assert ids(mgr.get(url(project), {"has_prediction": "true"})) == [predicted.pk]
    assert predicted.pk not in ids(mgr.get(url(project), {"has_prediction": "false"}))
    assert ids(mgr.get(url(project), {"agreement_below": "0.5"})) == [skill.pk]
    assert ids(mgr.get(url(project), {"status": "completed"})) == [done.pk]
    assert ids(mgr.get(url(project), {"status": "in_progress"})) == [leased]
    assert leased not in ids(mgr.get(url(project), {"status": "open"}))
    assert ids(mgr.get(url(project), {"annotator": annotator.username})) == [leased]
    rows = mgr.get(url(project), {"annotator": annotator.username}).json()["results"]
    assert rows[0]["annotators"] == [{"username": annotator.username, "status": "leased"}]
    assert rows[0]["status"] == "in_progress" and "gold_answer" not in rows[0]


def test_bad_filter_value_is_400(project, mgr):
    response = mgr.get(url(project), {"status": "bogus"})
    assert response.status_code == 400 and "status" in response.json()["error"]["fields"]


def test_search_matches_title_and_text(project, mgr):
    hit_title = task_in(project, title="Central bank raises rates")
    hit_text = task_in(project, text="The central bank of Chile surprised markets.")
    task_in(project, title="Football", text="A late goal won it.")
    assert sorted(ids(mgr.get(url(project), {"search": "bank"}))) == sorted([hit_title.pk, hit_text.pk])
    assert ids(mgr.get(url(project), {"search": "zeppelin"})) == []


@pytest.mark.parametrize(
    "key",
    ["article__text", "-article__title", "project__name", "assignments__user__password", "gold_answer", "id,password"],
)
def test_ordering_rejects_keys_outside_the_whitelist(project, mgr, key):
    task_in(project)
    response = mgr.get(url(project), {"ordering": key})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["ordering"].startswith("allowed:")


def test_ordering_and_pagination(project, mgr):
    tasks = [task_in(project, priority=p) for p in (1, 3, 2)]
    assert ids(mgr.get(url(project), {"ordering": "-priority"})) == [tasks[1].pk, tasks[2].pk, tasks[0].pk]
    page = mgr.get(url(project), {"ordering": "priority", "page_size": 2}).json()
    assert page["count"] == 3 and [r["id"] for r in page["results"]] == [tasks[0].pk, tasks[2].pk]


def test_list_makes_no_per_row_queries(project, mgr, annotator):
    for _ in range(3):
        task_in(project)
    with CaptureQueriesContext(connection) as few:
        assert mgr.get(url(project)).status_code == 200
    for _ in range(20):
        t = task_in(project)
        Assignment.objects.create(project=project, task=t, user=annotator, status=AssignmentStatus.ASSIGNED)
    with CaptureQueriesContext(connection) as many:
        assert len(ids(mgr.get(url(project)))) == 23
    assert len(many) == len(few)


@pytest.mark.parametrize(("role", "status"), [("annotator", 403), ("reviewer", 403), ("outsider", 404)])
def test_task_manager_is_for_managers(project, client_for, request, role, status):
    user = request.getfixturevalue(role)
    task = task_in(project)
    client = client_for(user)
    assert client.get(url(project)).status_code == status
    bulk = {"action": "set_priority", "priority": 9, "task_ids": [task.pk]}
    assert client.post(url(project, "bulk/"), bulk, format="json").status_code == status
    assign = {"usernames": [user.username], "task_ids": [task.pk]}
    assert client.post(url(project, "assign/"), assign, format="json").status_code == status
    assert client.get(f"/api/v1/projects/{project.pk}/progress/").status_code == status
    assert Task.objects.get(pk=task.pk).priority == 0 and not Assignment.objects.exists()


def test_anonymous_gets_401_or_403(project, api):
    assert api.get(url(project)).status_code in (401, 403)


def test_bulk_actions(project, mgr, manager, annotator):
    a, b, c = (task_in(project) for _ in range(3))
    post = lambda body: mgr.post(url(project, "bulk/"), body, format="json")  # noqa: E731
    assert post({"action": "set_priority", "priority": 7, "task_ids": [a.pk, b.pk]}).json()["changed"] == 2
    assert post({"action": "require_skill", "skill": "law", "filter": {"priority": "x"}}).status_code == 400
    assert post({"action": "require_skill", "skill": "law", "ranges": [[b.pk, c.pk]]}).json()["matched"] == 2
    assert post({"action": "mark_gold", "filter": {"required_skill": "law"}}).json()["changed"] == 2
    assert post({"action": "unmark_gold", "task_ids": [c.pk]}).json()["changed"] == 1
    assert post({"action": "assign", "usernames": [annotator.username], "task_ids": [a.pk]}).json()["changed"] == 1
    assert post({"action": "unassign", "task_ids": [a.pk]}).json()["changed"] == 1
    values = {t.pk: (t.priority, t.required_skill, t.is_gold) for t in Task.objects.all()}
    assert values == {a.pk: (7, "", False), b.pk: (7, "law", True), c.pk: (0, "law", False)}
    assert AuditEvent.objects.filter(actor=manager, action__startswith="tasks.").count() == 6


def test_bulk_delete_needs_confirmation(project, mgr, annotator):
    a, b = task_in(project), task_in(project)
    factories.AnnotationFactory(task=a, project=project, user=annotator)
    body = {"action": "delete", "task_ids": [a.pk]}
    response = mgr.post(url(project, "bulk/"), body, format="json")
    assert response.status_code == 400 and "confirm" in response.json()["error"]["fields"]
    assert mgr.post(url(project, "bulk/"), {**body, "confirm": True}, format="json").json()["changed"] == 1
    assert list(Task.objects.values_list("pk", flat=True)) == [b.pk]
    assert not Annotation.objects.exists()


def test_bulk_cannot_touch_another_projects_tasks(project, mgr):
    foreign = factories.TaskFactory()
    response = mgr.post(url(project, "bulk/"), {"action": "mark_gold", "task_ids": [foreign.pk]}, format="json")
    assert response.status_code == 400
    ranges = {"action": "mark_gold", "ranges": [[1, foreign.pk + 10]]}
    assert mgr.post(url(project, "bulk/"), ranges, format="json").json()["matched"] == 0
    assert not Task.objects.get(pk=foreign.pk).is_gold


def test_bulk_needs_exactly_one_selection(project, mgr):
    t = task_in(project)
    body = {"action": "mark_gold", "task_ids": [t.pk], "filter": {}}
    assert mgr.post(url(project, "bulk/"), body, format="json").status_code == 400
    assert mgr.post(url(project, "bulk/"), {"action": "mark_gold"}, format="json").status_code == 400
    assert mgr.post(url(project, "bulk/"), {"action": "explode", "task_ids": [t.pk]}, format="json").status_code == 400


def test_progress(project, mgr, annotator, reviewer):
    project.overlap = 1
    project.save()
    done = task_in(project, required_skill="law")
    task_in(project, required_skill="law")
    task_in(project)
    factories.AnnotationFactory(task=done, project=project, user=annotator, lead_time=30, review_state="pending")
    Task.objects.filter(pk=done.pk).update(is_complete=True, submitted_count=1)
    services.task_next_for_user(project=project, user=annotator)
    body = mgr.get(f"/api/v1/projects/{project.pk}/progress/").json()
    p = body["project"]
    assert (p["tasks"], p["completed"], p["remaining"], p["in_progress"]) == (3, 1, 2, 1)
    assert (p["review_backlog"], p["median_seconds"], p["live_leases"]) == (1, 30.0, 1)
    anna = next(r for r in body["annotators"] if r["username"] == annotator.username)
    assert (anna["done"], anna["in_progress"], anna["review_backlog"], anna["median_seconds"]) == (1, 1, 1, 30.0)
    law = next(r for r in body["skills"] if r["skill"] == "law")
    assert (law["tasks"], law["completed"], law["remaining"], law["annotations"]) == (2, 1, 1, 1)
    assert p["flagged"] == 0 and law["median_seconds"] == 30.0


def test_progress_totals_are_the_skills_sums(project, mgr, annotator, reviewer):
    tasks = [task_in(project, required_skill=skill) for skill in ("law", "law", "", "medicine", "")]
    Task.objects.filter(pk__in=[tasks[0].pk, tasks[2].pk]).update(is_flagged=True)
    Task.objects.filter(pk=tasks[3].pk).update(is_complete=True, submitted_count=2)
    Task.objects.filter(pk=tasks[1].pk).update(submitted_count=1)
    factories.AnnotationFactory(task=tasks[3], project=project, user=annotator, lead_time=30)
    factories.AnnotationFactory(task=tasks[3], project=project, user=reviewer, lead_time=50)
    body = mgr.get(f"/api/v1/projects/{project.pk}/progress/").json()
    p = body["project"]
    assert (p["tasks"], p["completed"], p["in_progress"], p["flagged"], p["remaining"]) == (5, 1, 1, 2, 4)
    assert (p["annotations"], p["median_seconds"]) == (2, 40.0)
    skills = {r["skill"]: (r["tasks"], r["completed"], r["in_progress"], r["median_seconds"]) for r in body["skills"]}
    assert skills == {"": (2, 0, 0, None), "law": (2, 0, 1, None), "medicine": (1, 1, 0, 40.0)}
    assert "flagged" not in body["skills"][0]
