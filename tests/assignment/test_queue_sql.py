"""The queue's hand-written SQL against the queue rules written out in Python.

A seeded mix of tasks (priorities, uncertainty, required skills, gold, flags, full and partly
filled slots, old and new) and of the user's own assignments (leased, submitted, skipped,
escalated, expired, assigned); for every policy, fallback and queue order, each pass's SQL must
return exactly the tasks the rules allow, in queue order. Runs on PostgreSQL (with the statements
prepared, as the API runs them) and SQLite.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from annotator.db import hot_cursor
from projects.assignment import selectors, strategies
from projects.assignment.models import Assignment, AssignmentStatus, Task
from projects.core.models import Project
from tests import factories

pytestmark = pytest.mark.django_db

SKILLS = {"medicine": "expert", "finance": "generalist", "law": "none"}
OVERLAP = 2


@pytest.fixture
def world(project):
    rng = random.Random(7)
    user = factories.UserFactory(username="q")
    factories.MembershipFactory(project=project, user=user)
    now = timezone.now()
    statuses = [None] * 6 + [s.value for s in AssignmentStatus]
    for _ in range(80):
        submitted = rng.choice([0, 0, 0, 1, 2])
        leased = rng.choice([0, 0, 1]) if submitted < OVERLAP else 0
        task = factories.TaskFactory(
            article__project=project,
            priority=rng.choice([0, 0, 1, 3]),
            uncertainty=rng.choice([None, round(rng.random(), 3), 0.5]),
            required_skill=rng.choice(["", "", "medicine", "finance", "law"]),
            is_gold=rng.random() < 0.15,
            submitted_count=submitted,
            leased_count=leased,
            is_complete=submitted >= OVERLAP,
        )
        if rng.random() < 0.2:
            Task.objects.filter(pk=task.pk).update(is_flagged=True, flag_domain=rng.choice(["medicine", "finance"]))
        age = rng.choice([5, 120])
        Task.objects.filter(pk=task.pk).update(created_at=now - timedelta(minutes=age))
        status = rng.choice(statuses)
        if status is not None:
            Assignment.objects.create(project=project, task=task, user=user, status=status)
    # Another user's work must not affect this user's queue beyond the counters.
    other = factories.UserFactory(username="other")
    for task in Task.objects.filter(project=project)[:10]:
        Assignment.objects.create(project=project, task=task, user=other, status=AssignmentStatus.SKIPPED)
    return project, user, now


def _ordered(tasks: list[Task], project: Project) -> list[int]:
    if project.queue_order == "uncertainty":
        key = lambda t: (-t.priority, t.uncertainty is None, t.uncertainty or 0, t.pk)  # noqa: E731
    else:
        key = lambda t: (-t.priority, t.pk)  # noqa: E731
    return [t.pk for t in sorted(tasks, key=key)]


def _expected(project: Project, user, kind: str, now) -> list[int]:
    """The rules of ``task_next_for_user``'s passes, one task at a time."""
    done = set(
        Assignment.objects.filter(user=user, status__in=selectors.DONE_FOR_USER).values_list("task_id", flat=True)
    )
    assigned = set(
        Assignment.objects.filter(user=user, status=AssignmentStatus.ASSIGNED).values_list("task_id", flat=True)
    )
    routing = strategies.skill_routing(
        skills=SKILLS, fallback=project.skill_fallback, fallback_minutes=project.skill_fallback_minutes, now=now
    )
    experts = set(routing.expert_domains)

    def routed(t: Task) -> bool:
        if project.assignment_policy != "skill":
            return True
        return strategies.may_receive(routing, required_skill=t.required_skill, created_at=t.created_at)

    def free(t: Task) -> bool:
        return not t.is_complete and t.submitted_count < project.overlap - t.leased_count

    tasks = [t for t in Task.objects.filter(project=project) if t.pk not in done]
    if kind == "assigned":
        tasks = [t for t in tasks if free(t) and t.pk in assigned]
    elif kind == "gold":
        tasks = [t for t in tasks if t.is_gold and not t.is_flagged and routed(t)]
        return [t.pk for t in sorted(tasks, key=lambda t: (-t.priority, t.pk))]
    elif kind == "flagged":
        tasks = [t for t in tasks if free(t) and t.is_flagged and t.flag_domain in experts]
    elif kind == "expert":
        tasks = [t for t in tasks if free(t) and not t.is_flagged and not t.is_gold and t.required_skill in experts]
    else:
        tasks = [t for t in tasks if free(t) and not t.is_flagged and not t.is_gold and routed(t)]
    return _ordered(tasks, project)


def _candidates(project: Project, user, kind: str, now) -> selectors.Candidates:
    if kind == "assigned":
        ids = list(
            Assignment.objects.filter(user=user, status=AssignmentStatus.ASSIGNED).values_list("task_id", flat=True)
        )
        return selectors.assigned_candidates(project=project, user_id=user.pk, task_ids=ids)
    if kind == "gold":
        return selectors.gold_candidates(project=project, user_id=user.pk, skills=SKILLS, now=now)
    if kind == "flagged":
        return selectors.flagged_candidates(project=project, user_id=user.pk, skills=SKILLS)
    if kind == "expert":
        return selectors.expert_candidates(project=project, user_id=user.pk, skills=SKILLS)
    return selectors.general_candidates(project=project, user_id=user.pk, skills=SKILLS, now=now)


@pytest.mark.parametrize("order", ["priority", "uncertainty"])
@pytest.mark.parametrize(
    ("policy", "fallback"), [("open", "never"), ("skill", "never"), ("skill", "immediate"), ("skill", "after_wait")]
)
@pytest.mark.parametrize("kind", ["general", "expert", "flagged", "gold", "assigned"])
def test_each_pass_returns_what_the_rules_allow_in_queue_order(world, order, policy, fallback, kind):
    project, user, now = world
    Project.objects.filter(pk=project.pk).update(
        assignment_policy=policy, skill_fallback=fallback, skill_fallback_minutes=60, queue_order=order, overlap=OVERLAP
    )
    project.refresh_from_db()
    expected = _expected(project, user, kind, now)
    candidates = _candidates(project, user, kind, now)
    assert selectors.candidate_ids(candidates, 1000) == expected
    for _ in range(3):  # PostgreSQL prepares it on a repeat: the prepared statement agrees too
        with hot_cursor() as cursor:
            cursor.execute(candidates.select("LIMIT 1000"), candidates.params)
            assert [row[0] for row in cursor.fetchall()] == expected


def test_the_fixture_covers_every_case(world):
    """Guard against a reseeded fixture that no longer exercises the rules."""
    project, user, now = world
    tasks = Task.objects.filter(project=project)
    assert tasks.filter(is_gold=True).exists() and tasks.filter(is_flagged=True).exists()
    assert tasks.filter(is_complete=True).exists() and tasks.filter(leased_count=1).exists()
    assert {"", "medicine", "finance", "law"} <= set(tasks.values_list("required_skill", flat=True))
    assert set(Assignment.objects.filter(user=user).values_list("status", flat=True)) == set(AssignmentStatus.values)
    for kind in ("general", "expert", "flagged", "gold", "assigned"):
        assert _expected(project, user, kind, now), kind
