"""The task manager's skill filter lists the skills a project's tasks require (a loose index
scan: one index probe per distinct value)."""

from __future__ import annotations

import pytest

from projects.assignment.models import Task
from projects.assignment.selectors import required_skills
from tests import factories

pytestmark = pytest.mark.django_db


def test_distinct_sorted_without_empty_and_only_this_project(project):
    for skill in ["medicine", "", "finance", "medicine", "law", "", "finance", "Zoology", "ünicode"]:
        factories.TaskFactory(article__project=project, required_skill=skill)
    factories.TaskFactory(required_skill="astronomy")  # another project
    found = required_skills(project_id=project.pk)
    assert set(found) == {"medicine", "finance", "law", "Zoology", "ünicode"} and len(found) == 5
    # In the database's order (its collation), as the ORM's ORDER BY gives it.
    ordered = list(
        Task.objects.filter(project=project)
        .exclude(required_skill="")
        .order_by("required_skill")
        .values_list("required_skill", flat=True)
        .distinct()
    )
    assert found == ordered


def test_limit_and_empty_project(project):
    for n in range(5):
        factories.TaskFactory(article__project=project, required_skill=f"s{n}")
    assert required_skills(project_id=project.pk, limit=3) == ["s0", "s1", "s2"]
    assert required_skills(project_id=factories.ProjectFactory().pk) == []


def test_task_manager_page_offers_them(client, project, manager):
    factories.TaskFactory(article__project=project, required_skill="medicine")
    client.force_login(manager)
    page = client.get(f"/projects/{project.pk}/tasks/")
    assert list(page.context["skills"]) == ["medicine"]
