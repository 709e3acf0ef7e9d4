"""A project with every field type, a member holding a task, and helpers to send raw bodies."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from projects.assignment.services import task_next_for_user
from projects.core.models import Role
from projects.core.schema import DEMO_SCHEMA
from tests import factories

UNICODE_TEXT = (
    "Cafe\u0301 in Zu\u0308rich \u2014 "  # combining marks
    "\U0001f469\u200d\U0001f4bb Dr. \u0645\u062d\u0645\u062f \u0639\u0644\u064a said: "  # ZWJ emoji, RTL
    "\u05e9\u05dc\u05d5\u05dd\r\n"  # Hebrew, CRLF
    "\U0001f1eb\U0001f1f7 flag, \u202eevil\u202c override, \ufeffBOM, tab\tend. Kim \u5f20\u4f1f."
)


@pytest.fixture
def hostile(db):
    project = factories.ProjectFactory(label_schema=DEMO_SCHEMA)
    user = factories.UserFactory(username="hana")
    factories.MembershipFactory(project=project, user=user, role=Role.ADMIN)
    factories.TaskFactory(
        article=factories.ArticleFactory(project=project, text=UNICODE_TEXT),
        payload={"response": "r", "response_a": "a", "response_b": "b"},
    )
    task = task_next_for_user(project=project, user=user).task
    client = APIClient()
    client.force_authenticate(user)
    return project, task, user, client
