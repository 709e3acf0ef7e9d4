"""Failed sign-ins and invalid API tokens are limited per username and per client address."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from projects.core.services import token_create
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    settings.LOGIN_FAILURES_PER_IP = 5
    settings.TOKEN_FAILURES_PER_IP = 4
    return settings


def _login(client: Client, username: str, password: str, ip: str = "203.0.113.9"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_web_login_locks_a_username_after_repeated_failures(limits):
    user = factories.UserFactory(username="victim")
    client = Client()
    for _ in range(3):
        assert _login(client, "victim", "wrong").status_code == 200  # the form again, with an error
    blocked = _login(client, "victim", "pass-word-123")  # even the right password is not checked now
    assert blocked.status_code == 429
    assert "Too many failed sign-ins" in blocked.content.decode()
    assert int(blocked["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session
    # From another address the username is still locked: the limit protects the account.
    assert _login(Client(), "victim", "pass-word-123", ip="198.51.100.7").status_code == 429
    assert user.is_active


def test_web_login_locks_an_address_spraying_many_usernames(limits):
    factories.UserFactory(username="someone")
    client = Client()
    for i in range(5):
        _login(client, f"guess{i}", "wrong")
    assert _login(client, "someone", "pass-word-123").status_code == 429
    # Another address is not affected.
    response = _login(Client(), "someone", "pass-word-123", ip="198.51.100.7")
    assert response.status_code == 302


def test_successful_login_resets_the_username_counter(limits):
    factories.UserFactory(username="forgetful")
    client = Client()
    for _ in range(2):
        _login(client, "forgetful", "wrong")
    assert _login(client, "forgetful", "pass-word-123").status_code == 302
    client.logout()
    for _ in range(2):
        _login(client, "forgetful", "wrong")
    assert _login(client, "forgetful", "pass-word-123").status_code == 302


def test_admin_login_shares_the_limit(limits):
    """The admin site signs in through the same backend, so it cannot be used to bypass the limit."""
    factories.UserFactory(username="boss", is_staff=True, is_superuser=True)
    client = Client()
    for _ in range(3):
        client.post("/admin/login/", {"username": "boss", "password": "wrong"}, REMOTE_ADDR="203.0.113.9")
    client.post("/admin/login/?next=/admin/", {"username": "boss", "password": "pass-word-123"})
    assert "_auth_user_id" not in client.session


def test_invalid_api_tokens_are_limited_per_address(limits):
    user = factories.UserFactory()
    _, key = token_create(user=user)
    attacker = APIClient(REMOTE_ADDR="203.0.113.9")
    for i in range(4):
        attacker.credentials(HTTP_AUTHORIZATION=f"Token {i:040d}")
        assert attacker.get("/api/v1/me/").status_code == 401
    attacker.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = attacker.get("/api/v1/me/")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    # A well-behaved client elsewhere keeps working.
    good = APIClient(REMOTE_ADDR="198.51.100.7")
    good.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert good.get("/api/v1/me/").status_code == 200


def test_forwarded_for_is_ignored_unless_behind_our_proxy(limits):
    """An attacker cannot dodge the address limit by making up X-Forwarded-For headers."""
    factories.UserFactory(username="target")
    client = Client()
    for i in range(5):
        client.post(
            "/login/",
            {"username": f"x{i}", "password": "wrong"},
            REMOTE_ADDR="203.0.113.9",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{i}",
        )
    assert _login(client, "target", "pass-word-123").status_code == 429


def test_an_address_under_the_token_limit_is_asked_for_once_a_second(limits, monkeypatch):
    """Valid token requests do not each pay a cache round trip; a failure makes the next one check."""
    from projects.core import ratelimit

    user = factories.UserFactory()
    _, key = token_create(user=user)
    asked = []
    real = ratelimit.failures
    monkeypatch.setattr(ratelimit, "failures", lambda scope, ident: asked.append(scope) or real(scope, ident))
    clock = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: clock[0])
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    for _ in range(3):
        assert client.get("/api/v1/me/").status_code == 200
    assert asked == ["token-ip"]
    clock[0] += ratelimit.TOKEN_CLEAR_SECONDS
    assert client.get("/api/v1/me/").status_code == 200
    assert asked == ["token-ip"] * 2
    # An invalid token from the address: the very next request asks again.
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert client.get("/api/v1/me/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/me/").status_code == 200
    assert asked == ["token-ip"] * 3


def test_a_block_counted_elsewhere_applies_within_the_clear_interval(limits, monkeypatch):
    """Failures another process counted (straight into the shared counter) block this process's
    requests from that address once its memory of the address lapses, and not before."""
    from projects.core import ratelimit

    user = factories.UserFactory()
    _, key = token_create(user=user)
    clock = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: clock[0])
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/me/").status_code == 200
    for _ in range(4):
        ratelimit.record_failure("token-ip", "203.0.113.9")  # as another worker process does
    assert client.get("/api/v1/me/").status_code == 200  # remembered as clear: the documented delay
    clock[0] += ratelimit.TOKEN_CLEAR_SECONDS
    assert client.get("/api/v1/me/").status_code == 429
    clock[0] += 10 * ratelimit.TOKEN_CLEAR_SECONDS
    assert client.get("/api/v1/me/").status_code == 429  # a blocked address is never remembered as clear


def test_an_attacker_who_succeeded_once_is_still_stopped_at_the_limit(limits):
    from projects.core import ratelimit

    user = factories.UserFactory()
    _, key = token_create(user=user)
    attacker = APIClient(REMOTE_ADDR="203.0.113.9")
    attacker.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert attacker.get("/api/v1/me/").status_code == 200
    for i in range(4):
        attacker.credentials(HTTP_AUTHORIZATION=f"Token {i:040d}")
        assert attacker.get("/api/v1/me/").status_code == 401
    attacker.credentials(HTTP_AUTHORIZATION=f"Token {i:040d}")
    assert attacker.get("/api/v1/me/").status_code == 429
    assert ratelimit.failures("token-ip", "203.0.113.9") == 4
