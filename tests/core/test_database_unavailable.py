"""A database that cannot be reached gives a 503 with ``Retry-After``: the API's JSON error body
under ``/api/``, a short page elsewhere, never Django's 500 page. Here the session store stands
for the lost database (every signed-in request reads it first); ``tests/faults/test_database_loss.py``
cuts a real PostgreSQL connection under gunicorn."""

from __future__ import annotations

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import InterfaceError, OperationalError

from annotator.middleware import DATABASE_UNAVAILABLE

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, project, manager, monkeypatch):
    client.force_login(manager)

    def lost(error):
        def load(self):
            raise error

        monkeypatch.setattr(SessionStore, "load", load)

    return lost


@pytest.mark.parametrize("error", [OperationalError("connection refused"), InterfaceError("connection already closed")])
def test_the_api_answers_503_with_its_error_body(signed_in, client, project, error):
    signed_in(error)
    response = client.get(f"/api/v1/projects/{project.pk}/")
    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert response.json() == {"error": {"code": "database_unavailable", "message": DATABASE_UNAVAILABLE, "fields": {}}}


def test_a_page_answers_503_with_a_short_page_and_keeps_the_session_cookie(signed_in, client, settings):
    signed_in(OperationalError("connection refused"))
    response = client.get("/")
    assert response.status_code == 503 and response["Retry-After"] == "10"
    assert response["Content-Type"].startswith("text/html")
    assert b"Temporarily unavailable" in response.content
    assert settings.SESSION_COOKIE_NAME not in response.cookies  # not signed out by the outage


def test_other_errors_are_not_taken_for_an_outage(client, project, manager, monkeypatch):
    client.force_login(manager)

    def broken(self):
        raise RuntimeError("a bug")

    monkeypatch.setattr(SessionStore, "load", broken)
    client.raise_request_exception = False
    assert client.get(f"/api/v1/projects/{project.pk}/").status_code == 500
