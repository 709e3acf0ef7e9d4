"""The schema editor in Chromium: live validation, preview, Label Studio import, save."""

from __future__ import annotations

from projects.core.models import Project, Role
from tests import factories
from tests.browser.conftest import login, screenshot
from tests.core.test_labelconfig import LLM_EVAL, NER


def test_manager_imports_a_labelstudio_config_previews_and_saves(page):
    manager = factories.UserFactory(username="manny")
    project = factories.ProjectFactory()
    factories.MembershipFactory(project=project, user=manager, role=Role.MANAGER)
    factories.TaskFactory(
        article__project=project,
        article__text="Ada Lovelace wrote to Babbage from London.",
        payload={"response": "Ada wrote.", "response_a": "Letter", "response_b": "Note"},
    )
    login(page, manager)
    page.goto(f"/projects/{project.pk}/")
    page.get_by_role("link", name="Label schema").click()
    page.wait_for_url(f"**/projects/{project.pk}/schema/")
    page.locator("#preview .field").first.wait_for()
    assert page.locator("#preview .field").count() == 2  # topic + entities from the factory schema
    # A broken edit is reported with the field named; the preview keeps the last good form.
    page.fill("#schema-json", '{"fields": [{"name": "x", "type": "choice", "options": ["one"]}]}')
    page.locator("#schema-status.error").wait_for()
    assert "options" in page.locator("#schema-errors").text_content()
    page.locator("#ls-import summary").click()
    page.fill("#ls-config", NER.replace("</View>", "") + LLM_EVAL.replace("<View>", ""))
    page.get_by_role("button", name="Convert").click()
    page.locator("#preview #field-comparison").wait_for()
    assert page.locator("#preview .field").count() == 5  # spans, pairwise, text, two rating groups
    assert page.locator("#preview .response-text").first.text_content() == "Letter"
    assert "Taxonomy" in page.locator("#ls-warnings").text_content()
    # The preview works: select a word and click a label.
    page.locator("#preview .doc").scroll_into_view_if_needed()
    page.locator("#preview .doc").dblclick(position={"x": 20, "y": 15})
    page.locator("#preview .chip", has_text="PER").click()
    assert page.locator("#preview .span-list li").count() == 1
    screenshot(page, "schema-editor")
    page.get_by_role("button", name="Save schema").click()
    page.get_by_text("Label schema saved").wait_for()
    project = Project.objects.get(pk=project.pk)
    assert [f["type"] for f in project.label_schema["fields"]] == ["spans", "pairwise", "text", "rating", "rating"]
    assert project.schema_version == 2
    assert page.console_errors == []
