"""The labeling page in headless Chromium: every field type by keyboard and mouse, submit,
reload and find the saved result; drafts survive a reload; double submits make one annotation."""

from __future__ import annotations

from projects.annotations.models import Annotation
from tests import factories
from tests.browser.conftest import login, screenshot
from tests.browser.labeling_helpers import PAYLOAD, labeling_project, select_with_mouse

TEXT = "Elena Marchetti met Quantix in Lyon on Tuesday."


def _find(text: str, sub: str) -> tuple[int, int]:
    start = text.index(sub)
    return start, start + len(sub)


def test_annotator_labels_every_field_type_then_reload_shows_it(page):
    project, task, annotator = labeling_project(text=TEXT)
    login(page, annotator)
    page.goto(f"/projects/{project.pk}/label/")
    page.wait_for_url(f"**/tasks/{task.pk}/label/?queue=1")
    assert page.locator("#doc").text_content() == TEXT
    # choice (single): key 2 picks "business" and moves on to the next field
    page.keyboard.press("2")
    assert page.locator("#field-tags").get_attribute("class").endswith("active")
    # choice (multiple): keys toggle
    page.keyboard.press("1")
    page.keyboard.press("3")
    # spans: mouse selection snapped to words, then a key or a click on the label
    select_with_mouse(page, TEXT, 1, 14)  # "lena Marchett" snaps to "Elena Marchetti"
    page.keyboard.press("1")  # PERSON
    select_with_mouse(page, TEXT, *_find(TEXT, "Lyon"))
    page.get_by_role("button", name="LOC").click()
    select_with_mouse(page, TEXT, *_find(TEXT, "Elena Marchetti met Quantix"))
    page.keyboard.press("2")  # ORG, overlapping PERSON
    select_with_mouse(page, TEXT, *_find(TEXT, "Tuesday"))
    page.keyboard.press("3")
    page.locator("#doc .seg", has_text="Tuesday").click()  # a click on a highlight removes it
    assert page.locator("#field-entities li").count() == 3
    # text: arrow down from the spans field focuses the text box; the diff shows the change
    page.locator("#field-entities h2").click()
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.id") == "f-answer"
    page.keyboard.press("Control+End")
    page.keyboard.type(" Fixed.")
    page.keyboard.press("Escape")
    assert page.locator("#field-answer ins").first.text_content().strip() == "Fixed."
    # rating: one key per criterion, the cursor moves down the criteria
    page.keyboard.press("ArrowDown")
    for key in "435":
        page.keyboard.press(key)
    # pairwise: key 2 = B, then a reason
    page.keyboard.press("2")
    page.fill("#f-better-reason", "more specific")
    page.keyboard.press("Escape")
    screenshot(page, "labeling-every-field")
    with page.expect_response(lambda r: r.url.endswith(f"/tasks/{task.pk}/annotations/")) as response:
        page.keyboard.press("Enter")
    assert response.value.status == 201
    page.wait_for_url(f"**/projects/{project.pk}/label/")
    assert page.get_by_role("heading", name="No more tasks for you").is_visible()

    annotation = Annotation.objects.get(task=task, user=annotator)
    assert annotation.result == {
        "topic": "business",
        "tags": ["breaking", "analysis"],
        "entities": [
            {"start": 0, "end": 15, "label": "PERSON", "text": "Elena Marchetti"},
            {"start": 0, "end": 27, "label": "ORG", "text": "Elena Marchetti met Quantix"},
            {"start": 31, "end": 35, "label": "LOC", "text": "Lyon"},
        ],
        "answer": PAYLOAD["response"] + " Fixed.",
        "quality": {"relevance": 4, "coherence": 3, "safety": 5},
        "better": {"choice": "b", "reason": "more specific"},
    }
    assert annotation.guideline_version == project.guidelines_version
    assert annotation.lead_time > 0

    page.goto(f"/tasks/{task.pk}/label/")
    assert page.locator("#f-topic-1").is_checked()
    assert page.locator("#f-tags-0").is_checked() and page.locator("#f-tags-2").is_checked()
    assert page.locator("#field-entities li").count() == 3
    assert page.input_value("#f-answer") == PAYLOAD["response"] + " Fixed."
    assert page.locator("#f-quality-2-5").is_checked()
    assert page.locator("#f-better-b").is_checked()
    screenshot(page, "labeling-revisit")
    assert page.console_errors == []


def test_draft_survives_a_reload_and_double_submit_makes_one_annotation(page):
    project, task, annotator = labeling_project(text=TEXT)
    factories.TaskFactory(article__project=project)  # a second task, so the queue goes on
    login(page, annotator)
    page.goto(f"/projects/{project.pk}/label/")
    page.wait_for_url("**/label/?queue=1")
    task_id = int(page.url.split("/tasks/")[1].split("/")[0])
    with page.expect_response(lambda r: r.url.endswith(f"/tasks/{task_id}/draft/") and r.request.method == "PUT"):
        page.keyboard.press("3")
    page.reload()
    assert page.locator("#f-topic-2").is_checked()
    assert "draft" in page.locator("#status").text_content()
    posts = []
    page.on("request", lambda r: r.method == "POST" and "/annotations/" in r.url and posts.append(r))
    page.evaluate("document.getElementById('submit-btn').click(); document.getElementById('submit-btn').click()")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: f"/tasks/{task_id}/" not in url)
    assert len(posts) == 1
    assert Annotation.objects.filter(task_id=task_id).count() == 1
    assert page.console_errors == []


def test_prelabels_are_shown_and_accepting_records_the_prediction(page):
    project, task, annotator = labeling_project(text=TEXT)
    prediction = factories.PredictionFactory(
        task=task,
        result={"topic": "technology", "entities": [{"start": 20, "end": 27, "label": "ORG"}]},
        model_version="rules-v2",
    )
    login(page, annotator)
    page.goto(f"/projects/{project.pk}/label/")
    assert page.locator("#prelabel-bar").is_visible()
    assert page.locator("#f-topic-2").is_checked()
    assert page.locator("#field-entities li").count() == 1
    page.keyboard.press("Alt+a")
    page.wait_for_url(f"**/projects/{project.pk}/label/")
    annotation = Annotation.objects.get(task=task)
    assert annotation.prediction_id == prediction.pk
    assert annotation.result["entities"] == [{"start": 20, "end": 27, "label": "ORG", "text": "Quantix"}]
