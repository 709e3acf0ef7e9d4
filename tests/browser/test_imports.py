import json

from projects.core.models import Role
from projects.documents.models import Article
from tests import factories
from tests.browser.conftest import login, screenshot


def test_manager_uploads_a_file_and_sees_counts_and_row_errors(page, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    manager = factories.UserFactory(username="mona")
    project = factories.MembershipFactory(user=manager, role=Role.MANAGER, project__name="Import project").project
    rows = [{"id": "a1", "text": "Quantix opened in Lyon."}, {"id": "a2", "text": 42}, {"id": "a3", "text": "<b>x</b>"}]
    data = tmp_path / "news.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    login(page, manager)
    page.goto(f"/projects/{project.pk}/")
    page.get_by_role("link", name="Import").click()
    page.set_input_files("#file", str(data))
    page.get_by_role("button", name="Import").click()
    page.locator('#job [data-field="status"]', has_text="succeeded").wait_for()
    assert page.locator('#job [data-field="rows_created"]').text_content() == "2"
    assert page.locator('#job [data-field="rows_failed"]').text_content() == "1"
    assert "text must be a string" in page.locator("#errors tbody").text_content()
    assert page.get_by_role("link", name="Download the error report (CSV)").is_visible()
    assert set(Article.objects.filter(project=project).values_list("external_id", flat=True)) == {"a1", "a3"}
    screenshot(page, "imports")
    assert page.console_errors == []


def test_bad_file_shows_the_message(page, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    manager = factories.UserFactory(username="mona")
    project = factories.MembershipFactory(user=manager, role=Role.MANAGER).project
    data = tmp_path / "news.csv"
    data.write_bytes("id,text\n1,caf\u00e9\n".encode("latin-1"))
    login(page, manager)
    page.goto(f"/projects/{project.pk}/import/")
    page.set_input_files("#file", str(data))
    page.get_by_role("button", name="Import").click()
    page.locator("#upload-status", has_text="not valid UTF-8").wait_for()
    assert not Article.objects.exists()
