"""The queue: leases and their expiry, routing (open, skill with each fallback, manual), gold
mixing, escalation, paused members, queue order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from projects.annotations.services import annotation_submit
from projects.assignment import services
from projects.assignment.jobs import leases_expire_job
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.core.models import AuditEvent, Role
from tests import factories

pytestmark = pytest.mark.django_db


def member(project, username: str, skills: dict | None = None, role: str = Role.ANNOTATOR):
    user = factories.UserFactory(username=username)
    factories.MembershipFactory(project=project, user=user, role=role)
    factories.ProfileFactory(user=user, skills=skills or {})
    return user


def task_in(project, **fields) -> Task:
    return factories.TaskFactory(article__project=project, **fields)


def next_id(project, user) -> int | None:
    assignment = services.task_next_for_user(project=project, user=user)
    return assignment.task_id if assignment else None


def submit(task_id: int, user) -> None:
    annotation_submit(task=Task.objects.get(pk=task_id), user=user, result={"topic": "business"})


# --- leases ---------------------------------------------------------------------------------


def test_lease_counts_a_slot_and_submit_releases_it(project):
    a = member(project, "a")
    task = task_in(project)
    assert next_id(project, a) == task.pk
    task.refresh_from_db()
    assert task.leased_count == 1
    submit(task.pk, a)
    task.refresh_from_db()
    assert (task.leased_count, task.submitted_count, task.is_complete) == (0, 1, True)
    assert Assignment.objects.get(task=task, user=a).status == AssignmentStatus.SUBMITTED


def test_expired_lease_returns_task_to_the_queue_lazily(project):
    a, b = member(project, "a"), member(project, "b")
    task = task_in(project)
    assert next_id(project, a) == task.pk
    assert next_id(project, b) is None  # overlap 1: the one slot is leased
    Assignment.objects.filter(user=a).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert next_id(project, b) == task.pk  # the next-task call itself expired a's lease
    assert Assignment.objects.get(user=a).status == AssignmentStatus.EXPIRED
    task.refresh_from_db()
    assert task.leased_count == 1


def test_expiry_job_is_idempotent_and_repairs_counters(project):
    a = member(project, "a")
    task = task_in(project)
    next_id(project, a)
    Assignment.objects.filter(user=a).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert leases_expire_job() == 1
    assert leases_expire_job() == 0
    task.refresh_from_db()
    assert task.leased_count == 0
    assert Assignment.objects.get(user=a).status == AssignmentStatus.EXPIRED


def test_user_with_expired_lease_can_still_submit_while_a_slot_is_free(project):
    a = member(project, "a")
    task = task_in(project)
    next_id(project, a)
    Assignment.objects.filter(user=a).update(expires_at=timezone.now() - timedelta(minutes=1))
    submit(task.pk, a)
    task.refresh_from_db()
    assert (task.leased_count, task.submitted_count) == (0, 1)


def test_beat_schedules_the_expiry_job(settings):
    entries = {e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "assignment.expire_leases" in entries


def test_skip_frees_the_slot_and_leaves_the_users_queue(project):
    a, b = member(project, "a"), member(project, "b")
    task = task_in(project)
    next_id(project, a)
    services.task_skip(task=task, user=a)
    task.refresh_from_db()
    assert (task.leased_count, task.skipped_count) == (0, 1)
    assert next_id(project, a) is None
    assert next_id(project, b) == task.pk


def test_overlap_three_gives_three_distinct_users_then_stops(project):
    project.overlap = 3
    project.save()
    users = [member(project, f"u{i}") for i in range(4)]
    task = task_in(project)
    assert [next_id(project, u) for u in users] == [task.pk] * 3 + [None]


def test_paused_member_gets_no_task(project):
    a = member(project, "a")
    task_in(project)
    a.memberships.update(queue_paused=True)
    assert next_id(project, a) is None


def test_priority_then_uncertainty_then_id(project):
    a = member(project, "a")
    low = task_in(project, priority=0, uncertainty=0.01)
    sure = task_in(project, priority=5, uncertainty=0.9)
    unsure = task_in(project, priority=5, uncertainty=0.1)
    no_prediction = task_in(project, priority=5)
    project.queue_order = "uncertainty"
    project.save()
    order = []
    for _ in range(4):
        tid = next_id(project, a)
        order.append(tid)
        submit(tid, a)
    assert order == [unsure.pk, sure.pk, no_prediction.pk, low.pk]


# --- skill routing --------------------------------------------------------------------------


@pytest.fixture
def skill_project(project):
    project.assignment_policy = "skill"
    project.overlap = 2
    project.save()
    return project


def test_expert_receives_skill_tasks_before_general_ones(skill_project):
    expert = member(skill_project, "exp", {"medicine": "expert"})
    general = task_in(skill_project, priority=10)
    medical = task_in(skill_project, required_skill="medicine")
    assert next_id(skill_project, expert) == medical.pk
    submit(medical.pk, expert)
    assert next_id(skill_project, expert) == general.pk


@pytest.mark.parametrize(
    ("fallback", "age_minutes", "generalist_gets_it"),
    [
        ("never", 10_000, False),
        ("immediate", 0, True),
        ("after_wait", 5, False),
        ("after_wait", 61, True),
    ],
)
def test_generalist_fallback(skill_project, fallback, age_minutes, generalist_gets_it):
    skill_project.skill_fallback = fallback
    skill_project.skill_fallback_minutes = 60
    skill_project.save()
    generalist = member(skill_project, "gen", {"finance": "generalist"})
    novice = member(skill_project, "nov", {"finance": "none"})
    task = task_in(skill_project, required_skill="finance")
    Task.objects.filter(pk=task.pk).update(created_at=timezone.now() - timedelta(minutes=age_minutes))
    assert next_id(skill_project, generalist) == (task.pk if generalist_gets_it else None)
    assert next_id(skill_project, novice) is None  # level "none" never gets it


def test_open_policy_ignores_required_skill(project):
    anyone = member(project, "any")
    task = task_in(project, required_skill="coding")
    assert next_id(project, anyone) == task.pk


# --- manual assignment ----------------------------------------------------------------------


def test_manual_policy_serves_only_assigned_tasks(project, client_for, manager):
    project.assignment_policy = "manual"
    project.save()
    a, b = member(project, "a"), member(project, "b")
    tasks = [task_in(project) for _ in range(4)]
    assert next_id(project, a) is None
    ids = [t.pk for t in tasks]
    response = client_for(manager).post(
        f"/api/v1/projects/{project.pk}/tasks/assign/",
        {"usernames": ["a"], "ranges": [[ids[1], ids[2]]]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["changed"] == 2
    assert next_id(project, b) is None
    got = next_id(project, a)
    assert got == ids[1]
    submit(got, a)
    assert next_id(project, a) == ids[2]
    event = AuditEvent.objects.get(action="tasks.assign")
    assert event.actor == manager and event.data["usernames"] == ["a"] and event.data["count"] == 2


def test_assigned_tasks_come_first_in_open_projects(project):
    a = member(project, "a")
    first = task_in(project, priority=10)
    mine = task_in(project)
    Assignment.objects.create(project=project, task=mine, user=a, status=AssignmentStatus.ASSIGNED)
    assert next_id(project, a) == mine.pk
    assert first.pk != mine.pk


def test_assign_rejects_non_members(project, client_for, manager, outsider):
    task = task_in(project)
    response = client_for(manager).post(
        f"/api/v1/projects/{project.pk}/tasks/assign/",
        {"usernames": [outsider.username], "task_ids": [task.pk]},
        format="json",
    )
    assert response.status_code == 400
    assert "olga" in response.json()["error"]["message"]
    assert not Assignment.objects.exists()


# --- gold -----------------------------------------------------------------------------------


def test_gold_tasks_are_mixed_in_at_the_ratio(project):
    project.gold_ratio = 0.2
    project.overlap = 1
    project.save()
    a = member(project, "a")
    gold_ids = {task_in(project, is_gold=True, gold_answer={"topic": "politics"}).pk for _ in range(60)}
    for _ in range(240):
        task_in(project)
    served = []
    for _ in range(200):
        tid = next_id(project, a)
        served.append(tid)
        submit(tid, a)
    share = sum(t in gold_ids for t in served) / len(served)
    assert 0.12 <= share <= 0.28, share
    assert len(set(served)) == len(served)


def test_gold_tasks_are_served_to_every_annotator_whatever_the_overlap(project):
    project.gold_ratio = 1.0
    project.save()
    users = [member(project, f"g{i}") for i in range(3)]
    gold = task_in(project, is_gold=True)
    assert [next_id(project, u) for u in users] == [gold.pk] * 3


def test_annotator_payload_has_no_gold_field(project, client_for):
    project.gold_ratio = 1.0
    project.save()
    a = member(project, "a")
    task_in(project, is_gold=True, gold_answer={"topic": "politics"})
    body = client_for(a).post(f"/api/v1/projects/{project.pk}/next-task/").json()
    assert "gold" not in str(sorted(body)) and "politics" not in str(body)


# --- escalation -----------------------------------------------------------------------------


def test_escalation_leaves_queue_and_routes_to_experts(project, client_for, manager):
    project.overlap = 1
    project.save()
    a = member(project, "a")
    generalist = member(project, "gen", {"medicine": "generalist"})
    expert = member(project, "doc", {"medicine": "expert"})
    task = task_in(project)
    assert next_id(project, a) == task.pk
    response = client_for(a).post(
        f"/api/v1/tasks/{task.pk}/escalate/", {"domain": "medicine", "reason": "dosage question"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["flag_domain"] == "medicine"
    task.refresh_from_db()
    assert task.is_flagged and task.leased_count == 0 and task.flag_reason == "dosage question"
    assert Assignment.objects.get(task=task, user=a).status == AssignmentStatus.ESCALATED
    assert next_id(project, a) is None
    assert next_id(project, generalist) is None
    assert next_id(project, expert) == task.pk
    rows = client_for(manager).get(f"/api/v1/projects/{project.pk}/tasks/?is_flagged=true").json()["results"]
    assert [(r["id"], r["flag_domain"]) for r in rows] == [(task.pk, "medicine")]
    assert AuditEvent.objects.filter(action="task.escalate", actor=a).exists()


def test_unsafe_escalation_defaults_to_safety_domain(project, client_for):
    a = member(project, "a")
    task = task_in(project)
    next_id(project, a)
    response = client_for(a).post(f"/api/v1/tasks/{task.pk}/escalate/", {"unsafe": True}, format="json")
    assert response.json() == {"id": task.pk, "is_flagged": True, "flag_domain": "safety", "flag_unsafe": True}


def test_escalate_needs_a_domain_and_task_access(project, client_for, outsider):
    a = member(project, "a")
    task = task_in(project)
    next_id(project, a)
    assert client_for(a).post(f"/api/v1/tasks/{task.pk}/escalate/", {}, format="json").status_code == 400
    assert client_for(outsider).post(f"/api/v1/tasks/{task.pk}/escalate/", {"domain": "x"}).status_code == 404
    other = member(project, "b")
    assert client_for(other).post(f"/api/v1/tasks/{task.pk}/escalate/", {"domain": "x"}).status_code == 404
    assert not Task.objects.get(pk=task.pk).is_flagged
