"""Cross-site POSTs riding on a session cookie are refused: every form and every API write.

Both tests walk the URL resolver, so pages and endpoints added later are covered automatically.
"""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import Resolver404, get_resolver, resolve

from tests.api.test_permissions import (
    TABLE,
    _AllApiEndpoints,
    assert_unchanged,
    build_world,
    db_snapshot,
    fill,
)

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
CANDIDATE_VALUES = ("1", "00000000-0000-0000-0000-000000000001", "x")


class _AllRoutes(_AllApiEndpoints):
    def should_include_endpoint(self, path, callback) -> bool:
        return "{format}" not in path and not path.startswith(("/api/", "/static/", "/media/"))

    def get_allowed_methods(self, callback) -> list[str]:
        return ["ANY"]


def page_urls() -> list[str]:
    """One concrete URL per server-rendered route (placeholders filled with a value that resolves)."""
    urls = []
    for path, _regex, _method, _callback in _AllRoutes(patterns=get_resolver().url_patterns)._get_api_endpoints(
        None, ""
    ):
        for value in CANDIDATE_VALUES:
            url = path.replace("{", "").replace("}", "")
            for name in re.findall(r"{(\w+)}", path):
                url = url.replace(name, value, 1)
            url = url if url.startswith("/") else "/" + url
            try:
                resolve(url)
            except Resolver404:
                continue
            urls.append(url)
            break
    return sorted(set(urls))


def test_every_page_refuses_a_post_without_the_csrf_token(admin_user, project):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    urls = page_urls()
    assert "/login/" in urls and "/profile/tokens/" in urls  # the walk sees the forms
    exempt = []
    for url in urls:
        callback = resolve(url).func
        if getattr(callback, "csrf_exempt", False) and not url.startswith("/admin/"):
            exempt.append(url)
            continue
        response = client.post(url, {"name": "x"})
        assert response.status_code == 403, f"POST {url} without a CSRF token: {response.status_code}"
    assert not exempt, f"csrf_exempt pages: {exempt}"


def test_login_form_needs_the_csrf_token():
    client = Client(enforce_csrf_checks=True)
    assert client.post("/login/", {"username": "a", "password": "b"}).status_code == 403


@pytest.mark.parametrize(
    ("method", "template"),
    sorted(k for k in TABLE if k[0] in WRITE_METHODS),
    ids=[f"{m} {p}" for m, p in sorted(k for k in TABLE if k[0] in WRITE_METHODS)],
)
def test_api_writes_with_a_session_need_the_csrf_token(method, template):
    """The session cookie alone must not be enough to write through the API (a cross-site form
    or fetch would carry it); nothing changes in the database."""
    world = build_world()
    admin = world.users["admin"]
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    rule_ = TABLE[(method, template)]
    url = fill(template, rule_, world, admin)
    body = rule_.body(world) if callable(rule_.body) else rule_.body
    before = db_snapshot()
    response = client.generic(method, url, json.dumps(body or {}), content_type="application/json")
    assert response.status_code == 403, f"{method} {url} without CSRF: {response.status_code}"
    assert "CSRF" in response.json()["error"]["message"]
    assert_unchanged(before, db_snapshot(), f"{method} {url} without CSRF")


def test_api_write_with_session_and_csrf_token_works(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    client.get("/profile/")  # sets the csrftoken cookie, as the UI does
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/api/v1/tokens/", json.dumps({"name": "ui"}), content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201


def test_token_auth_needs_no_csrf_token_and_ignores_cookies(admin_user):
    """Scripts with a token are not browsers; a token request cannot be forged cross-site."""
    from projects.core.services import token_create

    _, key = token_create(user=admin_user)
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {key}")
    response = client.post("/api/v1/tokens/", json.dumps({"name": "s"}), content_type="application/json")
    assert response.status_code == 201


def test_the_walk_covers_every_ui_route_declared_in_the_web_views():
    """Every route of ``projects.web.views`` (where the UI's POST forms live) is in the walk above."""
    import pkgutil
    from importlib import import_module

    from projects.web import views

    walked = {resolve(url).url_name for url in page_urls()}
    declared = set()
    for info in pkgutil.iter_modules(views.__path__):
        for pattern in getattr(import_module(f"{views.__name__}.{info.name}"), "urlpatterns", []):
            declared.add(pattern.name)
    assert declared and declared <= walked, f"not walked: {sorted(declared - walked)}"


FORM_RE = re.compile(r"<form\b[^>]*>.*?</form>", re.S | re.I)


def test_every_post_form_in_the_templates_carries_the_token():
    """The other half of the claim: a POST form without ``{% csrf_token %}`` would be refused
    for real users too, so every one must carry it (and nothing posts to another origin)."""
    from pathlib import Path

    import projects

    templates = sorted(Path(projects.__file__).parent.glob("*/templates/**/*.html"))
    forms = 0
    for path in templates:
        for form in FORM_RE.findall(path.read_text()):
            opening = form.split(">", 1)[0].lower()
            if 'method="post"' not in opening and "method='post'" not in opening:
                continue
            forms += 1
            assert "{% csrf_token %}" in form, f"{path.name}: POST form without csrf_token: {opening}>"
            action = re.search(r'action="([^"]*)"', opening)
            assert action is None or not re.match(r"\s*(https?:)?//", action.group(1)), f"{path.name}: {opening}>"
    assert forms >= 20  # the members, tasks, review, prelabel, exports, profile... forms were found
