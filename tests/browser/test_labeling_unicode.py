"""Span offsets stay exact for every script: emoji, ZWJ sequences, flags, combining marks,
CRLF line ends and right-to-left text. Spans are made with the mouse in Chromium and the stored
offsets must equal Python's indices of the substring (code points), with the covered text."""

from __future__ import annotations

from projects.annotations.models import Annotation
from tests.browser.conftest import login, screenshot
from tests.browser.labeling_helpers import labeling_project, select_with_mouse

SCHEMA = {"fields": [{"name": "entities", "type": "spans", "labels": ["PERSON", "ORG", "LOC", "MISC"]}]}
TEXT = (
    "Family 👩\u200d👩\u200d👧 photo by Zoe\u0308 Ångström 🇫🇷 in Paris.\r\n"
    "Second line 😀😀 with Café and 中文 新闻.\r\n"
    "ذهبت سارة إلى القاهرة يوم الثلاثاء\r\n"
    "שלום עולם from Tel Aviv 🎉"
)
TARGETS = [
    ("👩\u200d👩\u200d👧 photo", "MISC"),
    ("Zoe\u0308 Ångström", "PERSON"),
    ("Paris", "LOC"),
    ("😀😀 with Café", "MISC"),
    ("中文", "MISC"),
    ("القاهرة", "LOC"),
    ("سارة", "PERSON"),
    ("שלום עולם", "MISC"),
    ("Tel Aviv", "LOC"),
]
KEYS = {"PERSON": "1", "ORG": "2", "LOC": "3", "MISC": "4"}


def test_mouse_spans_store_python_code_point_offsets(page):
    project, task, annotator = labeling_project(text=TEXT, schema=SCHEMA, payload={})
    login(page, annotator)
    page.goto(f"/projects/{project.pk}/label/")
    # The DOM keeps the exact text: CRLF is not normalized, nothing is re-encoded.
    assert page.evaluate("document.getElementById('doc').textContent") == TEXT
    assert page.evaluate("document.getElementById('doc').textContent.includes('\\r\\n')")
    for sub, label in TARGETS:
        start = TEXT.index(sub)
        select_with_mouse(page, TEXT, start, start + len(sub))
        page.keyboard.press(KEYS[label])
    screenshot(page, "labeling-unicode")
    with page.expect_response(lambda r: "/annotations/" in r.url) as response:
        page.keyboard.press("Enter")
    assert response.value.status == 201, response.value.text()
    stored = Annotation.objects.get(task=task).result["entities"]
    expected = sorted(
        (
            {"start": TEXT.index(sub), "end": TEXT.index(sub) + len(sub), "label": label, "text": sub}
            for sub, label in TARGETS
        ),
        key=lambda s: (s["start"], s["end"], s["label"]),
    )
    assert stored == expected
    for span in stored:
        assert TEXT[span["start"] : span["end"]] == span["text"]
    # Reopened, the same spans are drawn around the same characters.
    page.wait_for_url(f"**/projects/{project.pk}/label/")
    page.goto(f"/tasks/{task.pk}/label/")
    items = page.locator("#field-entities li .span-text").all_text_contents()
    assert items == [s["text"] for s in expected]
    assert page.console_errors == []


def test_javascript_offset_conversion_matches_python(page):
    project, task, annotator = labeling_project(text=TEXT, schema=SCHEMA, payload={})
    login(page, annotator)
    page.goto(f"/projects/{project.pk}/label/")
    cps = page.evaluate(
        """(subs) => {
          const text = document.getElementById('doc').textContent;
          const off = window.Labeling.Offsets(text);
          return subs.map((s) => {
            const u = text.indexOf(s);
            return [off.toCp(u), off.toCp(u + s.length), off.length];
          });
        }""",
        [sub for sub, _ in TARGETS],
    )
    for (sub, _), (start, end, length) in zip(TARGETS, cps, strict=True):
        assert (start, end) == (TEXT.index(sub), TEXT.index(sub) + len(sub))
        assert length == len(TEXT)
