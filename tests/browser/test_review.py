"""Reviewer in a real browser: keyboard verdicts, escaped text, adjudication pick."""

from projects.annotations.models import Annotation, ReviewState, TaskLabel
from projects.core.models import Role
from tests import factories
from tests.browser.conftest import login, screenshot

EVIL = "<img src=x onerror=alert(1)>"


def _setup():
    project = factories.ProjectFactory(name="Review project")
    reviewer = factories.UserFactory(username="rhea")
    factories.MembershipFactory(project=project, user=reviewer, role=Role.REVIEWER)
    annotator = factories.UserFactory(username="abe")
    factories.MembershipFactory(project=project, user=annotator)
    return project, reviewer, annotator


def _pending(project, annotator, text="Elena Marchetti met Quantix in Lyon on Tuesday."):
    task = factories.TaskFactory(article__project=project, article__text=text, article__title="Story")
    return factories.AnnotationFactory(
        task=task,
        user=annotator,
        result={"topic": "business", "entities": [{"start": 0, "end": 5, "label": "PERSON", "text": text[:5]}]},
        review_state=ReviewState.PENDING,
    )


def test_reviewer_accepts_and_rejects_with_the_keyboard(page):
    project, reviewer, annotator = _setup()
    first = _pending(project, annotator, text=f"{EVIL} and more text")
    second = _pending(project, annotator)
    login(page, reviewer)
    page.goto(f"/projects/{project.pk}/review/")
    page.wait_for_selector("#accept-form")
    assert page.locator("mark.span").first.text_content() == EVIL[:5]
    assert EVIL in page.locator(".article-text").first.text_content()  # shown as text, not markup
    screenshot(page, "review-page")
    page.keyboard.press("a")
    page.wait_for_url(f"**/review/{second.pk}/")
    assert Annotation.objects.get(pk=first.pk).review_state == ReviewState.ACCEPTED
    page.keyboard.press("r")
    page.keyboard.type("Quantix is an ORG")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#nothing-to-review")
    second.refresh_from_db()
    assert second.review_state == ReviewState.REJECTED
    assert second.reviews.get().comment == "Quantix is an ORG"
    assert page.console_errors == []


def test_reviewer_picks_in_adjudication(page):
    project, reviewer, annotator = _setup()
    task = factories.TaskFactory(article__project=project)
    factories.AnnotationFactory(task=task, user=annotator, result={"topic": "business"})
    other = factories.AnnotationFactory(task=task, result={"topic": "politics"})
    login(page, reviewer)
    page.goto(f"/projects/{project.pk}/adjudicate/")
    page.get_by_role("link", name="Adjudicate").first.click()
    page.wait_for_selector(f'[data-annotation="{other.pk}"]')
    screenshot(page, "adjudicate-page")
    page.locator(f'[data-annotation="{other.pk}"] button').click()
    page.wait_for_url(f"**/projects/{project.pk}/adjudicate/")
    assert TaskLabel.objects.get(task=task).annotation_id == other.pk
    assert page.console_errors == []
