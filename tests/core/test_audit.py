"""The audit trail: every change of who can do what, and every decision, leaves one event naming
the actor, the project, the action, the target and what changed (old -> new). Each test makes
the change through the API (or the page) and reads the event back through the audit API."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from projects.annotations.models import Annotation
from projects.assignment.models import Task
from projects.core.models import ApiToken, AuditEvent, Membership, ReviewPolicy, Role
from projects.exports import services as export_services
from projects.exports.models import ExportJob, ExportStatus
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_admin(client_for, admin_user):
    return client_for(admin_user)


def event(client, project, action: str) -> dict:
    """The single event with this action, read through the audit API."""
    response = client.get(f"/api/v1/projects/{project.pk}/audit/", {"action": action})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert len(results) == 1, results
    return results[0]


# --- members --------------------------------------------------------------------------------


def test_member_added(as_admin, project, admin_user):
    newcomer = factories.UserFactory(username="nina")
    response = as_admin.post(f"/api/v1/projects/{project.pk}/members/", {"username": "nina", "role": "reviewer"})
    assert response.status_code == 201
    e = event(as_admin, project, "member.add")
    membership = Membership.objects.get(project=project, user=newcomer)
    assert e["actor"] == admin_user.username
    assert (e["target_type"], e["target_id"]) == ("Membership", str(membership.pk))
    assert e["data"] == {"user": "nina", "role": "reviewer"}


def test_member_role_changed_records_old_and_new(as_admin, project, admin_user, annotator):
    membership = Membership.objects.get(project=project, user=annotator)
    response = as_admin.patch(f"/api/v1/projects/{project.pk}/members/{membership.pk}/", {"role": "manager"})
    assert response.status_code == 200
    e = event(as_admin, project, "member.update")
    assert e["actor"] == admin_user.username and e["target_id"] == str(membership.pk)
    assert e["data"] == {"user": "anna", "from": "annotator", "to": "manager"}


def test_member_skills_edited_records_old_and_new_in_the_project(as_admin, project, annotator):
    factories.ProfileFactory(user=annotator, skills={"medicine": "generalist"})
    membership = Membership.objects.get(project=project, user=annotator)
    body = {"skills": {"medicine": "expert", "law": "generalist"}, "languages": ["en"]}
    assert (
        as_admin.patch(f"/api/v1/projects/{project.pk}/members/{membership.pk}/", body, format="json").status_code
        == 200
    )
    e = event(as_admin, project, "profile.update")
    assert e["actor"] == "ada" and e["target_type"] == "AnnotatorProfile"
    assert e["data"]["user"] == "anna"
    assert e["data"]["skills"] == {
        "from": {"medicine": "generalist"},
        "to": {"medicine": "expert", "law": "generalist"},
    }
    assert e["data"]["languages"] == {"from": [], "to": ["en"]}
    # The same values again change nothing and record nothing.
    as_admin.patch(f"/api/v1/projects/{project.pk}/members/{membership.pk}/", body, format="json")
    assert AuditEvent.objects.filter(action="profile.update").count() == 1


def test_queue_pause_is_recorded_by_the_service(as_admin, project, annotator):
    membership = Membership.objects.get(project=project, user=annotator)
    as_admin.patch(f"/api/v1/projects/{project.pk}/members/{membership.pk}/", {"queue_paused": True}, format="json")
    e = event(as_admin, project, "member.queue_paused")
    assert e["data"] == {"user": "anna", "from": False, "to": True}


def test_member_removed(as_admin, project, annotator):
    membership = Membership.objects.get(project=project, user=annotator)
    assert as_admin.delete(f"/api/v1/projects/{project.pk}/members/{membership.pk}/").status_code == 204
    e = event(as_admin, project, "member.remove")
    assert e["actor"] == "ada" and e["target_id"] == str(membership.pk)
    assert e["data"] == {"user": "anna", "role": "annotator"}


def test_a_refused_change_leaves_neither_the_change_nor_an_event(as_admin, project, annotator):
    """Role and skills in one PATCH: the bad skills level rolls back the role change and its event."""
    membership = Membership.objects.get(project=project, user=annotator)
    before = AuditEvent.objects.count()
    response = as_admin.patch(
        f"/api/v1/projects/{project.pk}/members/{membership.pk}/",
        {"role": "reviewer", "skills": {"law": "guru"}},
        format="json",
    )
    assert response.status_code == 400
    membership.refresh_from_db()
    assert membership.role == Role.ANNOTATOR
    assert AuditEvent.objects.count() == before


def test_member_changed_on_the_members_page_is_recorded(client, project, admin_user, annotator):
    membership = Membership.objects.get(project=project, user=annotator)
    client.force_login(admin_user)
    response = client.post(
        f"/projects/{project.pk}/members/{membership.pk}/",
        {"role": "reviewer", "skills": "law=expert", "languages": "de", "queue_paused": "on"},
    )
    assert response.status_code == 302
    actions = set(AuditEvent.objects.filter(project=project, actor=admin_user).values_list("action", flat=True))
    assert actions == {"member.update", "profile.update", "member.queue_paused"}
    skills = AuditEvent.objects.get(action="profile.update").data["skills"]
    assert skills == {"from": {}, "to": {"law": "expert"}}


# --- settings and schema --------------------------------------------------------------------


def test_project_settings_change_records_old_and_new(as_admin, project):
    body = {"overlap": 3, "review_policy": "all", "name": project.name}
    assert as_admin.patch(f"/api/v1/projects/{project.pk}/", body, format="json").status_code == 200
    e = event(as_admin, project, "project.update")
    assert e["target_type"] == "Project" and e["target_id"] == str(project.pk)
    assert e["data"]["diff"] == {"overlap": {"from": 1, "to": 3}, "review_policy": {"from": "none", "to": "all"}}


def test_schema_change_records_versions_and_fields(as_admin, project):
    schema = {"fields": [*project.label_schema["fields"][:1], {"name": "answer", "type": "text"}]}
    assert as_admin.patch(f"/api/v1/projects/{project.pk}/", {"label_schema": schema}, format="json").status_code == 200
    diff = event(as_admin, project, "project.update")["data"]["diff"]
    assert diff["label_schema"] == {"from": 1, "to": 2, "added": ["answer"], "removed": ["entities"]}


# --- tasks ----------------------------------------------------------------------------------


@pytest.fixture
def tasks(project):
    return [factories.TaskFactory(article__project=project) for _ in range(3)]


def test_manual_assign(client_for, manager, annotator, project, tasks):
    ids = [t.pk for t in tasks[:2]]
    response = client_for(manager).post(
        f"/api/v1/projects/{project.pk}/tasks/assign/", {"task_ids": ids, "usernames": ["anna"]}, format="json"
    )
    assert response.status_code == 200
    e = event(client_for(manager), project, "tasks.assign")
    assert e["actor"] == "manny"
    assert sorted(e["data"]["task_ids"]) == ids and e["data"]["usernames"] == ["anna"] and e["data"]["changed"] == 2


@pytest.mark.parametrize(
    ("action", "extra", "expected"),
    [
        ("set_priority", {"priority": 7}, {"from": {"0": 3}, "to": 7, "priority": 7}),
        ("require_skill", {"skill": "law"}, {"from": {"": 3}, "to": "law", "required_skill": "law"}),
        ("mark_gold", {}, {"from": {"False": 3}, "to": True}),
    ],
)
def test_bulk_edits_record_old_and_new(client_for, manager, project, tasks, action, extra, expected):
    body = {"action": action, "task_ids": [t.pk for t in tasks], **extra}
    assert (
        client_for(manager).post(f"/api/v1/projects/{project.pk}/tasks/bulk/", body, format="json").status_code == 200
    )
    data = event(client_for(manager), project, f"tasks.{action}")["data"]
    assert {k: data[k] for k in expected} == expected
    assert data["changed"] == 3


def test_bulk_unassign_and_delete(client_for, manager, annotator, project, tasks):
    client = client_for(manager)
    ids = [t.pk for t in tasks]
    client.post(f"/api/v1/projects/{project.pk}/tasks/assign/", {"task_ids": ids, "usernames": ["anna"]}, format="json")
    client.post(f"/api/v1/projects/{project.pk}/tasks/bulk/", {"action": "unassign", "task_ids": ids}, format="json")
    unassign = event(client, project, "tasks.unassign")
    assert unassign["data"]["changed"] == 3 and unassign["data"]["usernames"] == "all"
    body = {"action": "delete", "task_ids": ids[:1], "confirm": True}
    assert client.post(f"/api/v1/projects/{project.pk}/tasks/bulk/", body, format="json").status_code == 200
    delete = event(client, project, "tasks.delete")
    assert delete["actor"] == "manny" and delete["data"]["task_ids"] == ids[:1] and delete["data"]["changed"] == 1
    assert not Task.objects.filter(pk=ids[0]).exists()


# --- reviews and adjudication ---------------------------------------------------------------


@pytest.fixture
def submitted(project, annotator):
    project.review_policy = ReviewPolicy.ALL
    project.save()
    return factories.AnnotationFactory(
        task__article__project=project, user=annotator, result={"topic": "business"}, review_state="pending"
    )


@pytest.mark.parametrize(
    ("body", "to"),
    [
        ({"verdict": "accept"}, "accepted"),
        ({"verdict": "reject", "comment": "Quantix is an ORG"}, "rejected"),
        ({"verdict": "fix", "corrected_result": {"topic": "technology"}}, "fixed"),
    ],
)
def test_review_verdicts(client_for, reviewer, manager, project, submitted, body, to):
    response = client_for(reviewer).post(f"/api/v1/annotations/{submitted.pk}/review/", body, format="json")
    assert response.status_code == 201, response.json()
    e = event(client_for(manager), project, f"review.{body['verdict']}")
    assert e["actor"] == "rita"
    assert (e["target_type"], e["target_id"]) == ("Annotation", str(submitted.pk))
    assert (e["data"]["annotator"], e["data"]["from"], e["data"]["to"]) == ("anna", "pending", to)
    assert Annotation.objects.get(pk=submitted.pk).review_state == to


def test_adjudication(client_for, reviewer, manager, project):
    task = factories.TaskFactory(article__project=project)
    one = factories.AnnotationFactory(task=task, result={"topic": "business"}, user__username="ann1")
    factories.AnnotationFactory(task=task, result={"topic": "politics"}, user__username="ann2")
    response = client_for(reviewer).post(f"/api/v1/tasks/{task.pk}/adjudicate/", {"pick": one.pk}, format="json")
    assert response.status_code in (200, 201)
    e = event(client_for(manager), project, "task.adjudicate")
    assert e["actor"] == "rita" and e["target_type"] == "TaskLabel"
    assert e["data"] == {"task_id": task.pk, "source": "pick", "annotation_id": one.pk, "replaced": False}


# --- exports, imports, tokens, webhooks -----------------------------------------------------


def test_streamed_export_is_recorded(client_for, manager, project):
    response = client_for(manager).get(f"/api/v1/projects/{project.pk}/export/", {"format": "csv", "mode": "raw"})
    assert response.status_code == 200
    b"".join(response.streaming_content)
    e = event(client_for(manager), project, "export.stream")
    assert e["actor"] == "manny" and e["data"]["format"] == "csv" and e["data"]["mode"] == "raw"


def test_snapshot_start_and_download_are_recorded(client_for, manager, project, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client = client_for(manager)
    job_id = client.post(f"/api/v1/projects/{project.pk}/exports/", {"format": "jsonl"}, format="json").json()["id"]
    start = event(client, project, "export.start")
    assert start["actor"] == "manny" and start["target_id"] == str(job_id) and start["data"]["format"] == "jsonl"
    # Asking for the file before it exists is refused and records nothing.
    assert client.get(f"/api/v1/projects/{project.pk}/exports/{job_id}/download/").status_code == 404
    assert not AuditEvent.objects.filter(action="export.download").exists()
    export_services.export_build(job_id=job_id)
    job = ExportJob.objects.get(pk=job_id)
    assert job.status == ExportStatus.DONE
    assert client.get(f"/api/v1/projects/{project.pk}/exports/{job_id}/download/").status_code == 200
    download = event(client, project, "export.download")
    assert download["target_id"] == str(job_id)
    assert download["data"] == {"file": "data", "format": "jsonl", "sha256": job.sha256}


def test_import_started(client_for, manager, project, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path
    upload = SimpleUploadedFile("batch-<b>.jsonl", b'{"id": "a1", "text": "Hello"}\n')
    with django_capture_on_commit_callbacks(execute=False):
        response = client_for(manager).post(
            f"/api/v1/projects/{project.pk}/imports/", {"file": upload}, format="multipart"
        )
    assert response.status_code == 202, response.json()
    e = event(client_for(manager), project, "import.create")
    assert e["actor"] == "manny" and e["target_id"] == str(response.json()["id"])
    assert e["data"] == {"format": "jsonl", "file": "batch-<b>.jsonl"}


def test_token_created_and_revoked(client_for, annotator):
    client = client_for(annotator)
    token_id = client.post("/api/v1/tokens/", {"name": "laptop", "scope": "read"}, format="json").json()["id"]
    created = AuditEvent.objects.get(action="token.create")
    token = ApiToken.objects.get(pk=token_id)
    assert created.actor == annotator and created.target_id == str(token_id)
    assert created.data == {"name": "laptop", "prefix": token.prefix, "scope": "read", "expires_at": None}
    assert client.delete(f"/api/v1/tokens/{token_id}/").status_code == 204
    revoked = AuditEvent.objects.get(action="token.revoke")
    assert revoked.actor == annotator and revoked.data == {"name": "laptop", "prefix": token.prefix}


def test_webhook_update_records_old_and_new(client_for, manager, project):
    client = client_for(manager)
    body = {"url": "http://8.8.8.8/hook", "events": ["export.ready"]}
    hook_id = client.post(f"/api/v1/projects/{project.pk}/webhooks/", body, format="json").json()["id"]
    assert (
        client.patch(
            f"/api/v1/projects/{project.pk}/webhooks/{hook_id}/", {"url": "http://8.8.4.4/hook"}, format="json"
        ).status_code
        == 200
    )
    e = event(client, project, "webhook.update")
    assert e["data"] == {"url": {"from": "http://8.8.8.8/hook", "to": "http://8.8.4.4/hook"}}


# --- reading the trail ----------------------------------------------------------------------


def test_audit_filters_by_action_family_actor_and_since(as_admin, client_for, project, manager, annotator):
    membership = Membership.objects.get(project=project, user=annotator)
    as_admin.patch(f"/api/v1/projects/{project.pk}/members/{membership.pk}/", {"role": "reviewer"})
    client_for(manager).patch(f"/api/v1/projects/{project.pk}/", {"overlap": 2}, format="json")
    url = f"/api/v1/projects/{project.pk}/audit/"
    assert {e["action"] for e in as_admin.get(url, {"action": "member"}).json()["results"]} == {"member.update"}
    assert [e["action"] for e in as_admin.get(url, {"actor": "manny"}).json()["results"]] == ["project.update"]
    assert as_admin.get(url, {"since": "2999-01-01"}).json()["count"] == 0
    assert as_admin.get(url, {"since": "2000-01-01T00:00:00Z"}).json()["count"] >= 2
    bad = as_admin.get(url, {"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.json()["error"]["fields"]


def test_audit_page_lists_events_escaped_and_filters(client, project, admin_user, annotator, reviewer):
    hostile = '<img src=x onerror="alert(1)">'
    AuditEvent.objects.create(project=project, actor=reviewer, action="review.reject", data={"comment": hostile})
    AuditEvent.objects.create(
        project=project,
        actor=admin_user,
        action="member.update",
        data={"user": "anna", "from": "annotator", "to": "reviewer"},
    )
    client.force_login(admin_user)
    page = client.get(f"/projects/{project.pk}/audit/")
    html = page.content.decode()
    assert page.status_code == 200
    assert hostile not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "annotator → reviewer" in html
    only = client.get(f"/projects/{project.pk}/audit/", {"actor": "rita"}).content.decode()
    assert "<code>review.reject</code>" in only and "<code>member.update</code>" not in only
    assert "since must be" in client.get(f"/projects/{project.pk}/audit/", {"since": "nope"}).content.decode()


def test_audit_page_roles(client, project, manager, reviewer, outsider):
    client.force_login(reviewer)
    assert client.get(f"/projects/{project.pk}/audit/").status_code == 403
    client.force_login(outsider)
    assert client.get(f"/projects/{project.pk}/audit/").status_code == 404
    client.force_login(manager)
    assert client.get(f"/projects/{project.pk}/audit/").status_code == 200


# --- the same events from the pages ---------------------------------------------------------


def test_page_actions_are_recorded_with_their_actor(client, project, manager, reviewer, submitted, tasks, settings):
    """The UI calls the same services: a bulk edit, a review verdict, a snapshot and a token
    made from the pages leave the same events as through the API."""
    client.force_login(manager)
    ids = [str(t.pk) for t in tasks]
    client.post(f"/projects/{project.pk}/tasks/bulk/", {"action": "set_priority", "priority": "5", "task_ids": ids})
    client.post(f"/projects/{project.pk}/exports/snapshot/", {"format": "csv"})
    client.post("/profile/tokens/", {"name": "ci", "scope": "read"})
    client.force_login(reviewer)
    client.post(f"/projects/{project.pk}/review/{submitted.pk}/", {"verdict": "reject", "comment": "Wrong topic"})
    events = {e.action: e for e in AuditEvent.objects.all()}
    assert events["tasks.set_priority"].actor == manager and events["tasks.set_priority"].data["to"] == 5
    assert events["export.start"].actor == manager and events["export.start"].data["format"] == "csv"
    assert events["token.create"].actor == manager and events["token.create"].data["name"] == "ci"
    reject = events["review.reject"]
    assert reject.actor == reviewer and reject.project == project and reject.target_id == str(submitted.pk)
    assert (reject.data["from"], reject.data["to"]) == ("pending", "rejected")
