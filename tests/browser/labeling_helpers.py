"""Helpers shared by the labeling browser tests: a project with every field type, mouse
selection of an exact substring, and UTF-16 arithmetic."""

from __future__ import annotations

from projects.core.models import Role
from tests import factories

EVERY_FIELD_SCHEMA = {
    "fields": [
        {"name": "topic", "type": "choice", "options": ["politics", "business", "technology"], "required": True},
        {"name": "tags", "type": "choice", "options": ["breaking", "opinion", "analysis"], "multiple": True},
        {"name": "entities", "type": "spans", "labels": ["PERSON", "ORG", "LOC"]},
        {"name": "answer", "type": "text", "prefill": "payload.response", "title": "Correct the summary"},
        {"name": "quality", "type": "rating", "criteria": ["relevance", "coherence", "safety"], "scale": [1, 5]},
        {"name": "better", "type": "pairwise", "between": ["payload.response_a", "payload.response_b"]},
    ]
}
PAYLOAD = {
    "response": "Summary: Elena met Quantix.",
    "response_a": "Elena Marchetti meets Quantix in Lyon",
    "response_b": "A meeting happened",
}

# Finds the first and last grapheme of the UTF-16 range [a, b) in #doc and returns points just
# inside their logical start and end edges (the right edge comes first in right-to-left text).
EDGE_POINTS_JS = """([a, b]) => {
  const doc = document.getElementById("doc");
  const text = doc.textContent;
  const seg = new Intl.Segmenter(undefined, {granularity: "grapheme"}).segment(text);
  const first = seg.containing(a), last = seg.containing(b - 1);
  function locate(u) {
    const walker = document.createTreeWalker(doc, NodeFilter.SHOW_TEXT);
    let pos = 0, node;
    while ((node = walker.nextNode())) {
      if (u < pos + node.length) return [node, u - pos];
      pos += node.length;
    }
    throw new Error("offset out of range " + u);
  }
  function rect(g) {
    const [n, o] = locate(g.index);
    const r = document.createRange();
    r.setStart(n, o);
    r.setEnd(n, o + g.segment.length);
    return r.getClientRects()[0];
  }
  const rtl = (s) => /[\\u0590-\\u08FF]/.test(s);
  const r1 = rect(first), r2 = rect(last);
  const x1 = rtl(first.segment) ? r1.right - 2 : r1.left + 2;
  const x2 = rtl(last.segment) ? r2.left + 2 : r2.right - 2;
  return {x1, y1: r1.top + r1.height / 2, x2, y2: r2.top + r2.height / 2};
}"""


def u16(text: str, index: int) -> int:
    """The UTF-16 offset of a code-point offset."""
    return len(text[:index].encode("utf-16-le")) // 2


def select_with_mouse(page, text: str, start: int, end: int) -> None:
    """Drag the mouse over text[start:end] (code points) in the labeling page's article."""
    page.locator("#doc").scroll_into_view_if_needed()
    p = page.evaluate(EDGE_POINTS_JS, [u16(text, start), u16(text, end)])
    page.mouse.move(p["x1"], p["y1"])
    page.mouse.down()
    page.mouse.move((p["x1"] + p["x2"]) / 2, (p["y1"] + p["y2"]) / 2, steps=3)
    page.mouse.move(p["x2"], p["y2"], steps=3)
    page.mouse.up()


def labeling_project(*, text: str, title: str = "Article", schema: dict | None = None, payload: dict | None = None):
    annotator = factories.UserFactory(username="anna")
    project = factories.ProjectFactory(
        label_schema=schema or EVERY_FIELD_SCHEMA, guidelines="# Rules\n\nLabel **every** person."
    )
    factories.MembershipFactory(project=project, user=annotator, role=Role.ANNOTATOR)
    task = factories.TaskFactory(
        article__project=project, article__text=text, article__title=title, payload=payload or PAYLOAD
    )
    return project, task, annotator
