"""Gold alerts (and queue pausing), and the quality API: figures, lists, settings, permissions."""

from __future__ import annotations

import pytest

from projects.core.models import AuditEvent, Membership, Role
from projects.quality import services
from projects.quality.models import GoldAlert, QualitySettings, QualitySnapshot
from tests import factories


def _settings(project, **values):
    QualitySettings.objects.update_or_create(project=project, defaults=values)


def test_alert_when_gold_accuracy_drops_below_threshold(world):
    project, cy = world["project"], world["users"]["cy"]
    _settings(project, gold_threshold=0.7, gold_min_answers=2)
    services.quality_recompute(project_id=project.pk)
    alert = GoldAlert.objects.get(project=project)
    assert (alert.user, alert.accuracy, alert.gold_answers, alert.paused_queue) == (cy, pytest.approx(0.2), 2, False)
    assert not Membership.objects.get(project=project, user=cy).queue_paused
    assert AuditEvent.objects.filter(project=project, action="quality.gold_alert").count() == 1
    # A second run does not raise a second alert while this one is open.
    services.quality_recompute(project_id=project.pk, force=True)
    assert GoldAlert.objects.filter(project=project).count() == 1


def test_no_alert_before_enough_gold_answers(world):
    _settings(world["project"], gold_threshold=0.7, gold_min_answers=3)
    services.quality_recompute(project_id=world["project"].pk)
    assert not GoldAlert.objects.exists()


def test_alert_pauses_the_queue_when_the_project_asks(world):
    project, cy = world["project"], world["users"]["cy"]
    _settings(project, gold_threshold=0.7, gold_min_answers=2, pause_on_alert=True)
    services.quality_recompute(project_id=project.pk)
    alert = GoldAlert.objects.get(project=project)
    assert alert.paused_queue
    assert Membership.objects.get(project=project, user=cy).queue_paused
    assert not Membership.objects.get(project=project, user=world["users"]["ann"]).queue_paused


def test_resolving_an_alert_can_resume_the_queue_and_a_new_alert_may_follow(world):
    project, cy = world["project"], world["users"]["cy"]
    _settings(project, gold_threshold=0.7, gold_min_answers=2, pause_on_alert=True)
    services.quality_recompute(project_id=project.pk)
    manager = factories.UserFactory(username="boss")
    alert = services.gold_alert_resolve(alert=GoldAlert.objects.get(), actor=manager, resume_queue=True)
    assert alert.resolved_at is not None and alert.resolved_by == manager
    assert not Membership.objects.get(project=project, user=cy).queue_paused
    services.quality_recompute(project_id=project.pk, force=True)
    assert GoldAlert.objects.filter(project=project, resolved_at__isnull=True).count() == 1


# --- API -----------------------------------------------------------------------------------------


@pytest.fixture
def staff(world):
    project = world["project"]
    people = {}
    for role in (Role.ADMIN, Role.MANAGER, Role.REVIEWER):
        user = factories.UserFactory(username=f"q-{role}")
        factories.MembershipFactory(project=project, user=user, role=role)
        people[role] = user
    people[Role.ANNOTATOR] = world["users"]["ann"]
    return people


def url(world, rest=""):
    return f"/api/v1/projects/{world['project'].pk}/quality/{rest}"


def test_overview_before_and_after_the_first_recompute(world, staff, client_for):
    client = client_for(staff[Role.REVIEWER])
    body = client.get(url(world)).json()
    assert body["figures"] is None and body["stale"] is True and body["snapshot"] is None
    services.quality_recompute(project_id=world["project"].pk)
    body = client.get(url(world)).json()
    assert body["stale"] is False
    assert body["snapshot"] == QualitySnapshot.objects.get().pk
    assert {f["name"] for f in body["figures"]["fields"]} == {"topic", "entities", "answer", "quality", "better"}
    assert body["settings"]["gold_threshold"] == 0.7


@pytest.mark.parametrize(
    ("role", "status"), [(Role.ADMIN, 200), (Role.MANAGER, 200), (Role.REVIEWER, 200), (Role.ANNOTATOR, 403)]
)
def test_who_may_read_the_figures(world, staff, client_for, role, status):
    for rest in ("", "annotators/", "alerts/", "adjudication/", "settings/"):
        assert client_for(staff[role]).get(url(world, rest)).status_code == status


def test_outsider_gets_404(world, outsider, client_for):
    response = client_for(outsider).get(url(world))
    assert response.status_code == 404 and set(response.json()) == {"error"}


def test_annotator_rows_and_adjudication_order(world, staff, client_for):
    services.quality_recompute(project_id=world["project"].pk)
    client = client_for(staff[Role.MANAGER])
    rows = client.get(url(world, "annotators/")).json()["results"]
    assert [r["username"] for r in rows] == ["ann", "ben", "cy"]
    assert rows[2]["gold_accuracy"] == pytest.approx(0.2)
    adjudication = client.get(url(world, "adjudication/?field=topic")).json()["results"]
    confidences = [r["confidence"] for r in adjudication]
    assert confidences == sorted(confidences) and len(adjudication) == 6
    assert {"task", "label", "votes", "task_agreement"} <= set(adjudication[0])
    below = client.get(url(world, "adjudication/?max_confidence=0.0001")).json()["results"]
    assert all(r["confidence"] < 0.0001 for r in below)
    assert client.get(url(world, "adjudication/?max_confidence=abc")).status_code == 400


def test_settings_patch_by_manager_and_validation(world, staff, client_for):
    manager = client_for(staff[Role.MANAGER])
    response = manager.patch(url(world, "settings/"), {"gold_threshold": 0.9, "pause_on_alert": True}, format="json")
    assert response.status_code == 200 and response.json()["gold_threshold"] == 0.9
    assert QualitySettings.objects.get(project=world["project"]).pause_on_alert
    bad = manager.patch(url(world, "settings/"), {"gold_threshold": 1.5}, format="json")
    assert bad.status_code == 400 and "gold_threshold" in bad.json()["error"]["fields"]
    bad = manager.patch(url(world, "settings/"), {"consensus_method": "vote"}, format="json")
    assert bad.status_code == 400
    assert client_for(staff[Role.REVIEWER]).patch(url(world, "settings/"), {"gold_threshold": 0.1}).status_code == 403


def test_recompute_endpoint_queues_a_forced_recompute(world, staff, client_for, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(staff[Role.MANAGER]).post(url(world, "recompute/"))
    assert response.status_code == 202 and response.json() == {"status": "queued"}
    assert QualitySnapshot.objects.filter(project=world["project"]).count() == 1
    assert client_for(staff[Role.REVIEWER]).post(url(world, "recompute/")).status_code == 403


def test_alerts_list_and_resolve(world, staff, client_for):
    _settings(world["project"], gold_threshold=0.7, gold_min_answers=2, pause_on_alert=True)
    services.quality_recompute(project_id=world["project"].pk)
    client = client_for(staff[Role.MANAGER])
    alerts = client.get(url(world, "alerts/?open=true")).json()["results"]
    assert [a["username"] for a in alerts] == ["cy"] and alerts[0]["paused_queue"] is True
    alert_id = alerts[0]["id"]
    assert client_for(staff[Role.REVIEWER]).post(url(world, f"alerts/{alert_id}/resolve/")).status_code == 403
    response = client.post(url(world, f"alerts/{alert_id}/resolve/"), {"resume_queue": True}, format="json")
    assert response.status_code == 200 and response.json()["resolved_at"]
    assert client.get(url(world, "alerts/?open=true")).json()["results"] == []
    assert client.post(url(world, "alerts/999999/resolve/")).status_code == 404


def test_alert_of_another_project_is_not_found(world, staff, client_for):
    other = factories.ProjectFactory()
    alert = GoldAlert.objects.create(
        project=other, user=world["users"]["cy"], accuracy=0.1, threshold=0.7, gold_answers=5
    )
    response = client_for(staff[Role.MANAGER]).post(url(world, f"alerts/{alert.pk}/resolve/"))
    assert response.status_code == 404
    assert GoldAlert.objects.get(pk=alert.pk).resolved_at is None
