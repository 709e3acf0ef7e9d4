from projects.core.models import Role
from projects.prelabel.models import PrelabelRun
from tests import factories
from tests.browser.conftest import login, screenshot


def test_manager_starts_a_rules_run_and_sees_its_progress(page):
    manager = factories.UserFactory(username="mona")
    membership = factories.MembershipFactory(user=manager, role=Role.MANAGER, project__name="Prelabel project")
    project = membership.project
    for i in range(3):
        factories.TaskFactory(article__project=project, article__text=f"Quantix and the bank, story {i}.")
    login(page, manager)
    page.goto(f"/projects/{project.pk}/")
    page.get_by_role("link", name="Pre-labeling").click()
    page.get_by_label("Labeler").select_option("rules")
    page.get_by_role("button", name="Start pre-labeling").click()
    page.wait_for_url("**/prelabel/runs/*/")
    run = PrelabelRun.objects.get(project=project)
    assert page.get_by_role("heading", name=f"Run #{run.pk}: rules").is_visible()
    assert page.get_by_label(f"Run {run.pk} progress").is_visible()
    screenshot(page, "prelabel-run")
    page.goto(f"/projects/{project.pk}/prelabel/")
    assert page.locator("#runs tbody tr").count() == 1
    screenshot(page, "prelabel")
    assert page.console_errors == []
