import json

import pytest
from django.test import Client

from projects.prelabel import services
from projects.prelabel.models import Labeler, PrelabelChunk, PrelabelRun, RunStatus

pytestmark = pytest.mark.django_db

RULES = {"rules": [{"field": "topic", "value": "business", "keywords": ["bank"]}]}


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role, status", [("annotator", 403), ("reviewer", 403), ("outsider", 404), ("manager", 200)])
def test_page_is_for_managers(request, project, role, status):
    response = browser(request.getfixturevalue(role)).get(f"/projects/{project.pk}/prelabel/")
    assert response.status_code == status


def test_start_from_the_form_then_cancel(project, manager, tasks):
    client = browser(manager)
    response = client.post(
        f"/projects/{project.pk}/prelabel/start/",
        {"labeler": "rules", "config": json.dumps(RULES), "unlabeled": "1", "id_from": str(tasks[1].pk)},
    )
    run = PrelabelRun.objects.get()
    assert response.status_code == 302 and response.url == f"/projects/{project.pk}/prelabel/runs/{run.pk}/"
    assert run.task_filter == {"unlabeled": True, "id_from": tasks[1].pk}
    page = client.get(response.url)
    assert b"Cancel" in page.content and b"<progress" in page.content
    client.post(f"/projects/{project.pk}/prelabel/runs/{run.pk}/cancel/")
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED


def test_bad_json_config_is_a_message_not_a_crash(project, manager):
    client = browser(manager)
    response = client.post(f"/projects/{project.pk}/prelabel/start/", {"labeler": "rules", "config": "{"})
    assert response.status_code == 302 and not PrelabelRun.objects.exists()
    page = client.get(f"/projects/{project.pk}/prelabel/")
    assert b"not valid JSON" in page.content


def test_errors_are_listed_and_escaped(project, manager, tasks):
    run, _ = services.prelabel_run_start(project=project, actor=manager, labeler="rules", config=RULES)
    services.prelabel_run_plan(run_id=run.pk)
    PrelabelChunk.objects.filter(run=run).update(errors=[{"task_id": tasks[0].pk, "message": "<script>x()</script>"}])
    page = browser(manager).get(f"/projects/{project.pk}/prelabel/runs/{run.pk}/")
    assert b"&lt;script&gt;x()&lt;/script&gt;" in page.content and b"<script>x()" not in page.content


def test_only_admins_add_labelers_from_the_page(project, manager, prelabel_admin):
    body = {"name": "kw", "kind": "rules", "config": json.dumps(RULES)}
    assert browser(manager).post(f"/projects/{project.pk}/prelabel/labelers/", body).status_code == 403
    browser(prelabel_admin).post(f"/projects/{project.pk}/prelabel/labelers/", body)
    assert Labeler.objects.get().name == "kw"
    browser(prelabel_admin).post(f"/projects/{project.pk}/prelabel/labelers/", {**body, "name": "bad name!"})
    assert Labeler.objects.count() == 1


def test_other_projects_runs_are_404(project, manager, outsider):
    run, _ = services.prelabel_run_start(project=project, actor=manager, labeler="rules", config=RULES)
    assert browser(outsider).get(f"/projects/{project.pk}/prelabel/runs/{run.pk}/").status_code == 404
