"""Shared fixtures: role personas in one project (healthchecks' alice/bob/charlie idea)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from projects.core.models import Role
from tests import factories


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Login-failure counters (and anything else cached) never leak from one test to the next."""
    from django.core.cache import cache

    from projects.core import ratelimit

    cache.clear()
    ratelimit.forget_token_clearances()  # the per-process memory of addresses under the token limit
    yield


class _CacheDown:
    """A cache every call of which fails, as Django's Redis cache does while Redis is down."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ConnectionError("cache down")

        return fail


@pytest.fixture
def cache_down():
    return _CacheDown()


@pytest.fixture
def project(db):
    return factories.ProjectFactory()


def _member(project, role: str, username: str):
    user = factories.UserFactory(username=username)
    factories.MembershipFactory(project=project, user=user, role=role)
    return user


@pytest.fixture
def admin_user(project):
    return _member(project, Role.ADMIN, "ada")


@pytest.fixture
def manager(project):
    return _member(project, Role.MANAGER, "manny")


@pytest.fixture
def reviewer(project):
    return _member(project, Role.REVIEWER, "rita")


@pytest.fixture
def annotator(project):
    return _member(project, Role.ANNOTATOR, "anna")


@pytest.fixture
def outsider(db):
    """A user with a project of their own, and no membership in ``project``."""
    user = factories.UserFactory(username="olga")
    factories.MembershipFactory(user=user, role=Role.ADMIN)
    return user


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def client_for(api):
    def login(user) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return login
