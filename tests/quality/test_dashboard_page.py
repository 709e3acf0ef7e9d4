"""The server-rendered dashboard: who sees it, what it shows, escaping, manager actions."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from projects.core.models import Membership, Role
from projects.quality import services
from projects.quality.models import GoldAlert, QualitySettings, QualitySnapshot
from tests import factories


def page(world):
    return f"/projects/{world['project'].pk}/quality/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _member(world, role):
    user = factories.UserFactory(username=f"d-{role}")
    factories.MembershipFactory(project=world["project"], user=user, role=role)
    return user


@pytest.mark.parametrize(("role", "status"), [(Role.REVIEWER, 200), (Role.MANAGER, 200), (Role.ANNOTATOR, 403)])
def test_page_access_by_role(world, role, status):
    assert _client(_member(world, role)).get(page(world)).status_code == status


def test_outsider_gets_404_and_anonymous_is_sent_to_login(world, outsider):
    assert _client(outsider).get(page(world)).status_code == 404
    response = Client().get(page(world))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_before_the_first_recompute(world):
    response = _client(_member(world, Role.MANAGER)).get(page(world))
    assert b"No figures yet" in response.content and b"Recompute now" in response.content


def test_figures_tables_and_chart_data(world):
    services.quality_recompute(project_id=world["project"].pk)
    response = _client(_member(world, Role.REVIEWER)).get(page(world))
    html = response.content.decode()
    assert 'id="field-table"' in html and 'id="annotator-table"' in html and "web/quality.js" in html
    assert "Recompute now" not in html  # reviewers read only
    data = json.loads(html.split('id="quality-data" type="application/json">')[1].split("</script>")[0])
    assert {r["label"] for r in data["agreement"]} == {"topic", "entities", "answer", "quality", "better"}
    assert {(r["domain"], r["level"]) for r in data["gold_skills"]} == {
        ("medicine", "expert"),
        ("medicine", "generalist"),
        ("medicine", "none"),
    }
    assert [(r["label"], r["n"]) for r in data["prelabel"]] == [("rules-v1", 2)]
    assert 0 <= data["prelabel"][0]["value"] <= 1


def test_page_never_computes(world, django_assert_max_num_queries):
    services.quality_recompute(project_id=world["project"].pk)
    client = _client(_member(world, Role.REVIEWER))
    count = QualitySnapshot.objects.count()
    with django_assert_max_num_queries(15):
        client.get(page(world))
    assert QualitySnapshot.objects.count() == count


def test_user_text_is_escaped(world):
    evil = "<script>alert(1)</script>"
    world["users"]["cy"].username = "cy<b>"
    world["users"]["cy"].save()
    factories.PredictionFactory(task=world["tasks"][2], model_version=evil, result={"topic": "politics"})
    services.quality_recompute(project_id=world["project"].pk)
    html = _client(_member(world, Role.MANAGER)).get(page(world)).content.decode()
    assert "cy<b>" not in html and "cy&lt;b&gt;" in html
    assert evil not in html


def test_manager_recompute_and_resolve_from_the_page(world, django_capture_on_commit_callbacks):
    manager = _client(_member(world, Role.MANAGER))
    QualitySettings.objects.create(
        project=world["project"], gold_threshold=0.7, gold_min_answers=2, pause_on_alert=True
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = manager.post(f"{page(world)}recompute/")
    assert response.status_code == 302
    alert = GoldAlert.objects.get()
    html = manager.get(page(world)).content.decode()
    assert 'id="alerts"' in html and "Resolve and resume queue" in html
    response = manager.post(f"{page(world)}alerts/{alert.pk}/resolve/", {"resume_queue": "1"})
    assert response.status_code == 302
    assert not Membership.objects.get(project=world["project"], user=world["users"]["cy"]).queue_paused
    reviewer = _client(_member(world, Role.REVIEWER))
    assert reviewer.post(f"{page(world)}recompute/").status_code == 403
