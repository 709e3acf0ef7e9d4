"""Every main page loads under the Content Security Policy with no violation, no console error,
and no request leaving our origin (no CDN): pages, the API docs and the admin."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from projects.core.models import Role
from tests import factories
from tests.browser.conftest import login

PAGES = [
    # (path, a selector that shows the page really rendered)
    ("/", "main"),
    ("/profile/", "main"),
    ("/projects/{project}/", "main"),
    ("/api/v1/docs/", ".swagger-ui .info"),
    ("/api/v1/redoc/", "redoc h1, .api-content h1"),
    ("/admin/", "#content"),
    ("/admin/projects/project/", "#changelist"),
    ("/admin/projects/project/{project}/change/", "#project_form"),
]


# Redoc's bundle hard-codes its vendor logo from a CDN (and hides it when it fails to load). The
# docs policy blocks it, which is the point: no request leaves our origin. That one is expected.
EXPECTED_BLOCKS = ("https://cdn.redoc.ly/redoc/logo-mini.svg",)


@pytest.fixture
def watched(page, live_server):
    """The page, recording CSP violations, console errors and requests to other origins."""
    page.problems = []
    origin = urlsplit(live_server.url).netloc
    page.on("console", lambda msg: msg.type == "error" and page.problems.append(f"console: {msg.text}"))
    page.on(
        "request",
        lambda req: (
            urlsplit(req.url).scheme in ("http", "https")
            and urlsplit(req.url).netloc != origin
            and page.problems.append(f"external request: {req.url}")
        ),
    )
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    return page


def test_main_pages_load_without_csp_violations(watched):
    page = watched
    user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    project = factories.ProjectFactory(name="CSP project")
    factories.MembershipFactory(project=project, user=user, role=Role.ADMIN)
    login(page, user)
    failures = {}
    for path, selector in PAGES:
        url = path.format(project=project.pk)
        page.problems.clear()
        response = page.goto(url)
        assert response.status == 200, url
        assert "default-src 'self'" in response.headers["content-security-policy"], url
        page.wait_for_selector(selector, timeout=15_000)
        page.wait_for_load_state("networkidle")
        problems = [p for p in page.problems + page.console_errors if not any(b in p for b in EXPECTED_BLOCKS)]
        if problems:
            failures[url] = problems
    assert not failures, failures


def test_login_page_has_no_csp_violations(watched):
    page = watched
    page.goto("/login/")
    page.fill("#id_username", "nobody")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("alert").is_visible()
    assert page.problems == [] and page.console_errors == []


def test_injected_inline_script_is_blocked_by_the_policy(watched):
    """The policy really bites: a script element injected into a page does not run."""
    page = watched
    page.goto("/login/")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.pwned = 1';"
        " document.body.appendChild(s); }"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.pwned") is None
    assert any("CSP violation: script-src" in p for p in page.problems)
