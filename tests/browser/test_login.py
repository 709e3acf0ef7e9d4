from tests import factories
from tests.browser.conftest import login, screenshot


def test_member_logs_in_and_sees_project(page):
    user = factories.UserFactory(username="bea")
    factories.MembershipFactory(user=user, project__name="Browser project")
    login(page, user)
    assert page.get_by_role("link", name="Browser project").is_visible()
    screenshot(page, "home")
    assert page.console_errors == []


def test_wrong_password_shows_an_error(page):
    user = factories.UserFactory(username="bea")
    page.goto("/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "nope")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").is_visible()
