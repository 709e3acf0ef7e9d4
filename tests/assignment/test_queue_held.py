"""An empty queue says whether the user is done or should ask again, and a free task behind a
moment's row lock is still handed out (PostgreSQL's ``SKIP LOCKED`` walks past it)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from projects.assignment import services
from projects.assignment.models import Task
from projects.assignment.services import queue_outlook, task_next_for_user, task_skip
from projects.core.models import AssignmentPolicy, Role
from tests import factories

pytestmark = pytest.mark.django_db


def held(project, user) -> int:
    return queue_outlook(project=project, user=user).held_by_others


def next_task(client, project):
    return client.post(f"/api/v1/projects/{project.pk}/next-task/")


def submit(client, task_id: int):
    body = {"result": {"topic": "politics"}}
    return client.post(f"/api/v1/tasks/{task_id}/annotations/", body, format="json")


@pytest.fixture
def one_slot(project):
    project.overlap = 1
    project.save(update_fields=["overlap"])
    return factories.TaskFactory(article__project=project)


def test_a_slot_leased_by_another_is_ask_again_and_a_submitted_one_is_done(project, one_slot, client_for):
    first = client_for(factories.MembershipFactory(project=project, role=Role.ANNOTATOR).user)
    second_user = factories.MembershipFactory(project=project, role=Role.ANNOTATOR).user
    second = client_for(second_user)
    assert next_task(first, project).json()["id"] == one_slot.pk

    waiting = next_task(second, project)
    assert waiting.status_code == 404
    error = waiting.json()["error"]
    assert error["code"] == "no_task" and error["held_by_others"] == 1
    assert "leased by other annotators" in error["message"]

    assert submit(first, one_slot.pk).status_code == 201
    done = next_task(second, project).json()["error"]
    assert done["message"] == "No more tasks for you in this project."
    assert (done["held_by_others"], done["opens_later"], done["opens_at"]) == (0, 0, None)


def test_a_skipped_slot_goes_to_the_one_who_was_told_to_ask_again(project, one_slot, client_for):
    holder = factories.MembershipFactory(project=project, role=Role.ANNOTATOR).user
    other = factories.MembershipFactory(project=project, role=Role.ANNOTATOR).user
    assert task_next_for_user(project=project, user=holder).task_id == one_slot.pk
    assert task_next_for_user(project=project, user=other) is None
    assert held(project, other) == 1
    task_skip(task=one_slot, user=holder)
    assert task_next_for_user(project=project, user=other).task_id == one_slot.pk
    assert held(project, holder) == 0  # they passed on it for good


def test_held_by_others_follows_the_users_routing(project):
    project.overlap = 1
    project.assignment_policy = AssignmentPolicy.SKILL
    project.skill_fallback = "never"
    project.save()
    medical = factories.TaskFactory(article__project=project, required_skill="medicine")
    expert = factories.MembershipFactory(project=project, role=Role.ANNOTATOR).user
    factories.ProfileFactory(user=expert, skills={"medicine": "expert"})
    generalist = factories.MembershipFactory(project=project, role=Role.ANNOTATOR).user
    other_expert = factories.MembershipFactory(project=project, role=Role.ANNOTATOR).user
    factories.ProfileFactory(user=other_expert, skills={"medicine": "expert"})
    assert task_next_for_user(project=project, user=expert).task_id == medical.pk
    assert held(project, other_expert) == 1
    assert held(project, generalist) == 0  # it would never come to them


def test_in_a_manual_project_the_assigned_task_another_holds_is_ask_again(project, one_slot, manager):
    from projects.assignment.bulk import tasks_assign

    project.assignment_policy = AssignmentPolicy.MANUAL
    project.save(update_fields=["assignment_policy"])
    holder = factories.MembershipFactory(project=project, role=Role.ANNOTATOR).user
    waiter = factories.MembershipFactory(project=project, role=Role.ANNOTATOR).user
    unassigned = factories.MembershipFactory(project=project, role=Role.ANNOTATOR).user
    tasks_assign(project=project, actor=manager, task_ids=[one_slot.pk], users=[holder, waiter])
    assert task_next_for_user(project=project, user=holder).task_id == one_slot.pk
    assert task_next_for_user(project=project, user=waiter) is None
    assert held(project, waiter) == 1
    assert held(project, unassigned) == 0  # manual: nothing comes to them unassigned


@pytest.fixture
def waiting_for_experts(project):
    """A skill-routed project whose generalists get medicine tasks after 60 minutes; one such task
    created now, and a generalist in medicine."""
    project.overlap = 1
    project.assignment_policy = AssignmentPolicy.SKILL
    project.skill_fallback = "after_wait"
    project.skill_fallback_minutes = 60
    project.save()
    task = factories.TaskFactory(article__project=project, required_skill="medicine")
    generalist = factories.MembershipFactory(project=project, role=Role.ANNOTATOR).user
    factories.ProfileFactory(user=generalist, skills={"medicine": "generalist"})
    return task, generalist


def test_a_generalist_is_told_when_a_task_reserved_for_experts_opens(project, waiting_for_experts, client_for):
    task, generalist = waiting_for_experts
    client = client_for(generalist)
    response = next_task(client, project)
    assert response.status_code == 404
    error = response.json()["error"]
    opens_at = Task.objects.get(pk=task.pk).created_at + timedelta(minutes=60)
    assert (error["held_by_others"], error["opens_later"]) == (0, 1)
    assert error["opens_at"] == opens_at.isoformat().replace("+00:00", "Z")
    assert f"opens to you from {opens_at:%Y-%m-%d %H:%M} UTC" in error["message"]

    Task.objects.filter(pk=task.pk).update(created_at=timezone.now() - timedelta(minutes=61))
    assert next_task(client, project).json()["id"] == task.pk  # the wait is over


def test_an_expert_taking_the_reserved_task_leaves_the_generalist_done(project, waiting_for_experts):
    task, generalist = waiting_for_experts
    expert = factories.MembershipFactory(project=project, role=Role.ANNOTATOR).user
    factories.ProfileFactory(user=expert, skills={"medicine": "expert"})
    assert task_next_for_user(project=project, user=expert).task_id == task.pk
    outlook = queue_outlook(project=project, user=generalist)
    assert (outlook.held_by_others, outlook.opens_later) == (0, 1)  # the expert may still skip it
    Task.objects.filter(pk=task.pk).update(submitted_count=1, leased_count=0, is_complete=True)
    assert queue_outlook(project=project, user=generalist).done


def test_without_a_fallback_nothing_opens_later(project, waiting_for_experts):
    _, generalist = waiting_for_experts
    project.skill_fallback = "never"
    project.save(update_fields=["skill_fallback"])
    assert queue_outlook(project=project, user=generalist).done


def test_paused_members_and_outsiders_are_never_told_to_wait(project, one_slot, outsider):
    holder = factories.MembershipFactory(project=project, role=Role.ANNOTATOR).user
    paused = factories.MembershipFactory(project=project, role=Role.ANNOTATOR, queue_paused=True).user
    task_next_for_user(project=project, user=holder)
    assert held(project, paused) == 0
    assert held(project, outsider) == 0


def test_the_done_page_says_ask_again_while_others_hold_the_slot(project, one_slot, client):
    holder = factories.MembershipFactory(project=project, role=Role.ANNOTATOR).user
    waiter = factories.MembershipFactory(project=project, role=Role.ANNOTATOR).user
    task_next_for_user(project=project, user=holder)
    client.force_login(waiter)
    page = client.get(f"/projects/{project.pk}/label/")
    assert page.status_code == 200
    assert b'data-held-by-others="1"' in page.content and b"Nothing free for you right now" in page.content
    Task.objects.filter(pk=one_slot.pk).update(submitted_count=1, leased_count=0, is_complete=True)
    page = client.get(f"/projects/{project.pk}/label/")
    assert b"No more tasks for you" in page.content and b"data-held-by-others" not in page.content


def test_the_done_page_says_when_reserved_tasks_open(project, waiting_for_experts, client):
    _, generalist = waiting_for_experts
    client.force_login(generalist)
    page = client.get(f"/projects/{project.pk}/label/")
    assert b'data-opens-later="1"' in page.content and b"Nothing free for you right now" in page.content


# --- a free task behind a row lock (PostgreSQL) ----------------------------------------------

needs_postgres = pytest.mark.skipif(
    not settings.IS_POSTGRES, reason="needs PostgreSQL (row locks held by another connection)"
)


class RowLock:
    """Another connection holds ``FOR UPDATE`` on a task row, as a submit counting its annotation
    does, until ``release`` is set."""

    def __init__(self, task_id: int) -> None:
        self.locked, self.release, self.released = threading.Event(), threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, args=(task_id,))

    def _hold(self, task_id: int) -> None:
        try:
            with transaction.atomic():
                Task.objects.select_for_update().get(pk=task_id)
                self.locked.set()
                self.release.wait(timeout=30)
            self.released.set()
        finally:
            connections.close_all()

    def __enter__(self) -> RowLock:
        self.thread.start()
        assert self.locked.wait(timeout=30)
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.thread.join(timeout=30)


@pytest.fixture
def lone_task(transactional_db):
    """A project at overlap 1 with one task and one annotator; (project, user, task)."""
    project = factories.ProjectFactory(overlap=1)
    user = factories.MembershipFactory(project=project, role=Role.ANNOTATOR).user
    return project, user, factories.TaskFactory(article__project=project)


@pytest.mark.postgres
@needs_postgres
def test_a_free_task_behind_a_lock_is_leased_once_the_lock_goes(lone_task, monkeypatch):
    project, user, task = lone_task
    pauses = []

    with RowLock(task.pk) as lock:

        def pause(seconds: float) -> None:  # the lock holder commits while the claim pauses
            pauses.append(seconds)
            lock.release.set()
            assert lock.released.wait(timeout=30)

        monkeypatch.setattr(services.time, "sleep", pause)
        assignment = task_next_for_user(project=project, user=user)
    assert assignment is not None and assignment.task_id == task.pk
    assert pauses == [services.LOCKED_PAUSE]


@pytest.mark.postgres
@needs_postgres
def test_a_lock_that_outlasts_the_retries_is_ask_again_not_done(lone_task, monkeypatch):
    project, user, task = lone_task
    pauses = []
    monkeypatch.setattr(services.time, "sleep", pauses.append)
    with RowLock(task.pk):
        assert task_next_for_user(project=project, user=user) is None
        assert held(project, user) == 1
    assert len(pauses) == services.LOCKED_RETRIES
    assert task_next_for_user(project=project, user=user).task_id == task.pk


def test_an_empty_queue_answers_without_pausing(project, annotator, monkeypatch):
    factories.TaskFactory(article__project=project, submitted_count=project.overlap, is_complete=True)
    monkeypatch.setattr(services.time, "sleep", lambda seconds: pytest.fail("paused on an empty queue"))
    assert task_next_for_user(project=project, user=annotator) is None
