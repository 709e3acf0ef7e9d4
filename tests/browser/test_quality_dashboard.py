"""The quality dashboard renders its charts in a real browser, under the CSP, with no errors."""

from __future__ import annotations

from projects.core.models import Role
from projects.quality import services
from tests import factories
from tests.browser.conftest import login, screenshot
from tests.quality.conftest import build_world

CHARTS = (
    "chart-progress",
    "chart-throughput",
    "chart-lead-time",
    "chart-agreement",
    "chart-gold-annotators",
    "chart-gold-skills",
    "chart-prelabel",
)


def test_manager_sees_every_chart_and_table(page):
    world = build_world()
    services.quality_settings_update(project=world["project"], actor=None, gold_threshold=0.7, gold_min_answers=2)
    services.quality_recompute(project_id=world["project"].pk)
    manager = factories.UserFactory(username="mona")
    factories.MembershipFactory(project=world["project"], user=manager, role=Role.MANAGER)
    problems = []
    # The browser's own favicon probe 404s on every page; anything else is a real problem.
    page.on(
        "console",
        lambda msg: (
            msg.type == "error"
            and not msg.location.get("url", "").endswith("/favicon.ico")
            and problems.append(msg.text)
        ),
    )
    login(page, manager)
    page.goto(f"/projects/{world['project'].pk}/")
    page.get_by_role("link", name="Quality").click()
    page.wait_for_selector("#chart-gold-skills svg")
    for chart in CHARTS:
        assert page.locator(f"#{chart} svg").count() == 1, chart
    # Specialists and generalists side by side: one bar per skill level with data.
    assert page.locator("#chart-gold-skills svg rect[height]").count() >= 3
    assert page.locator("#chart-agreement svg text").filter(has_text="topic").count() == 1
    assert page.locator("#alerts").get_by_role("cell", name="cy", exact=True).is_visible()
    assert page.locator("#annotator-table tbody tr").count() == 3
    screenshot(page, "quality_dashboard")
    assert page.console_errors == [] and problems == []


def test_annotator_is_refused(page):
    world = build_world()
    login(page, world["users"]["ann"])
    response = page.goto(f"/projects/{world['project'].pk}/quality/")
    assert response.status == 403
