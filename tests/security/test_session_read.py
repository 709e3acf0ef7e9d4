"""The session engine (``annotator.sessions``) and the backend's ``get_user`` read with one
prepared statement each, and decide exactly as Django's database sessions and ``ModelBackend`` do."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotator.db import MAX_ID
from annotator.sessions import SessionStore
from projects.core.ratelimit import RateLimitedModelBackend
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_engine_is_ours():
    assert settings.SESSION_ENGINE == "annotator.sessions"


def test_reads_what_djangos_store_reads_in_one_statement():
    store = SessionStore()
    store.update({"a": 1, "text": "Ünïcode <b>", "nested": {"x": [1, 2]}})
    store.create()
    with CaptureQueriesContext(connection) as queries:
        mine = SessionStore(store.session_key).load()
    assert len(queries) == 1
    expected = {"a": 1, "text": "Ünïcode <b>", "nested": {"x": [1, 2]}}
    assert mine == DjangoSessionStore(store.session_key).load() == expected
    row = SessionStore(store.session_key)._get_session_from_db()
    assert row.session_key == store.session_key
    assert row.expire_date == Session.objects.get(pk=store.session_key).expire_date


def test_expired_missing_and_odd_keys_read_as_empty():
    store = SessionStore()
    store["a"] = 1
    store.create()
    Session.objects.filter(pk=store.session_key).update(expire_date=timezone.now() - timedelta(seconds=1))
    expired = SessionStore(store.session_key)
    assert expired.load() == {} and expired.session_key is None
    for key in ("x" * 40, "nope-but-long-enough", "'; DROP TABLE django_session; --"):
        missing = SessionStore(key)
        assert missing.load() == {}
    assert Session.objects.count() == 1


def test_signed_in_pages_still_work_and_signing_out_ends_the_session():
    user = factories.UserFactory(username="sam", password="pass-word-123")
    client = Client()
    assert client.post("/login/", {"username": "sam", "password": "pass-word-123"}).status_code == 302
    assert client.get("/").status_code == 200
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert SessionStore(key).load()["_auth_user_id"] == str(user.pk)
    client.post("/logout/")
    assert SessionStore(key).load() == {}


def test_get_user_as_model_backend():
    user = factories.UserFactory(username="una")
    ours, django = RateLimitedModelBackend(), ModelBackend()
    with CaptureQueriesContext(connection) as queries:
        loaded = ours.get_user(user.pk)
    assert len(queries) == 1
    fields = [f.attname for f in type(user)._meta.concrete_fields]
    expected = django.get_user(user.pk)
    assert [getattr(loaded, f) for f in fields] == [getattr(expected, f) for f in fields]
    assert [type(getattr(loaded, f)) for f in fields] == [type(getattr(expected, f)) for f in fields]
    assert loaded.get_session_auth_hash() == expected.get_session_auth_hash()
    for bad in (user.pk + 1000, "abc", None, 0, -1, MAX_ID + 1, str(user.pk) + "x"):
        assert ours.get_user(bad) is None
    assert ours.get_user(str(user.pk)).pk == user.pk
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert ours.get_user(user.pk) is None and django.get_user(user.pk) is None


def test_a_password_change_elsewhere_signs_the_browser_out():
    """The session's auth hash is checked against the password the statement read."""
    user = factories.UserFactory(username="pat", password="pass-word-123")
    client = Client()
    client.post("/login/", {"username": "pat", "password": "pass-word-123"})
    assert client.get("/").status_code == 200
    user.set_password("another-pass-456")
    user.save()
    assert client.get("/").status_code == 302  # back to the sign-in page
