"""Hostile articles, labels, options, hotkeys, payloads, guidelines and comments render as text
in the labeling page; nothing executes and javascript: links are stripped from the guidelines."""

from __future__ import annotations

from projects.annotations.models import Comment
from projects.core.models import Role
from tests import factories
from tests.browser.conftest import login, screenshot

SCRIPT = "<script>window.__pwned = 1</script>"
IMG = '<img src=x onerror="window.__pwned = 2">'
SVG = "<svg onload=window.__pwned=3>"
HOSTILE_SCHEMA = {
    "fields": [
        {
            "name": "topic",
            "type": "choice",
            "title": SCRIPT,
            "description": IMG,
            "options": [SCRIPT, IMG],
            "hotkeys": {SCRIPT: "<b>"},
        },
        {"name": "entities", "type": "spans", "labels": [IMG, SVG], "colors": {IMG: "red;}</style><script>"}},
        {"name": "answer", "type": "text", "prefill": "payload.response"},
        {"name": "better", "type": "pairwise", "between": ["payload.a", "payload.b"]},
    ]
}
GUIDELINES = f"""# Rules {SCRIPT}

[click me](javascript:window.__pwned=4) and <a href="javascript:window.__pwned=5">raw link</a>
{IMG}
<iframe src="javascript:window.__pwned=6"></iframe>
[fine link](https://example.com/rules)
"""


def test_nothing_user_supplied_executes(page):
    annotator = factories.UserFactory(username="anna")
    reviewer = factories.UserFactory(username="rita")
    project = factories.ProjectFactory(name=f"Project {SCRIPT}", label_schema=HOSTILE_SCHEMA, guidelines=GUIDELINES)
    factories.MembershipFactory(project=project, user=annotator, role=Role.ANNOTATOR)
    factories.MembershipFactory(project=project, user=reviewer, role=Role.REVIEWER)
    text = f"Before {SCRIPT} middle {IMG} after </pre></div> {SVG} <a href='javascript:window.__pwned=7'>x</a>"
    task = factories.TaskFactory(
        article__project=project,
        article__title=f"Title {IMG}",
        article__text=text,
        article__source=SCRIPT,
        payload={"response": f"Summary {SCRIPT}", "a": IMG, "b": SVG},
    )
    factories.PredictionFactory(task=task, result={"topic": IMG}, model_version=f"model {SCRIPT}")
    Comment.objects.create(task=task, user=reviewer, text=f"Look {IMG} {SCRIPT}")
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page, annotator)
    page.goto(f"/projects/{project.pk}/label/")
    page.wait_for_url("**/label/?queue=1")
    page.locator("#guidelines summary").click()
    page.wait_for_selector("#comment-list li")
    page.wait_for_timeout(300)  # give any injected handler (img onerror) the chance to run
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    # Shown literally, as text.
    assert page.locator("#doc").text_content() == text
    assert page.locator(".doc-title").text_content() == f"Title {IMG}"
    assert page.locator("#comment-list li p").text_content() == f"Look {IMG} {SCRIPT}"
    assert page.get_by_role("button", name=IMG).count() == 1
    assert page.locator("#field-topic h2").text_content().startswith(SCRIPT)
    # No element came from user text: no scripts but the JSON data, no frames, no event handlers.
    assert page.locator('main script:not([type="application/json"]), main svg, main iframe').count() == 0
    assert page.locator(".doc img, .fields-col img, #wide-fields img, #comments img").count() == 0
    handlers = page.evaluate(
        "[...document.querySelectorAll('*')]"
        ".flatMap(e => [...e.attributes].filter(a => a.name.startsWith('on')).map(a => a.name))"
    )
    assert handlers == []
    # Guideline links: javascript: removed, https kept.
    hrefs = page.eval_on_selector_all("#guidelines a", "els => els.map(e => e.getAttribute('href'))")
    assert "https://example.com/rules" in hrefs
    assert not any(h and h.strip().lower().startswith("javascript") for h in hrefs)
    page.locator("#guidelines a", has_text="click me").click()
    assert page.evaluate("window.__pwned") is None
    # Label a span and comment with hostile text; still inert.
    page.locator("#comment-text").fill(f"Reply {IMG}")
    page.get_by_role("button", name="Post comment").click()
    page.locator("#comment-list li").nth(1).wait_for()
    screenshot(page, "labeling-xss")
    assert page.evaluate("window.__pwned") is None
    assert dialogs == [] and page.console_errors == []
    # The guidelines and version pages escape too.
    page.goto(f"/projects/{project.pk}/guidelines/")
    assert page.evaluate("window.__pwned") is None
    hrefs = page.eval_on_selector_all("main a", "els => els.map(e => e.getAttribute('href') || '')")
    assert not any(h.strip().lower().startswith("javascript") for h in hrefs)
    page.goto(f"/projects/{project.pk}/my-submissions/")
    page.goto(f"/projects/{project.pk}/")
    assert page.evaluate("window.__pwned") is None and dialogs == []
