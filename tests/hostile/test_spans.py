"""Span offsets: code points into the task text, across combining marks, emoji and ZWJ
sequences, right-to-left text and CRLF. Wrong offsets and unknown labels are refused."""

from __future__ import annotations

import pytest

from projects.annotations.models import Annotation
from tests.api.test_permissions import assert_unchanged, db_snapshot
from tests.hostile.conftest import UNICODE_TEXT

pytestmark = pytest.mark.django_db

PIECES = [
    "Cafe\u0301",  # e + combining acute: 5 code points, 4 graphemes
    "Zu\u0308rich",
    "\U0001f469\u200d\U0001f4bb",  # woman technologist: 3 code points, 1 grapheme, 5 UTF-16 units
    "\u0645\u062d\u0645\u062f \u0639\u0644\u064a",  # Arabic (RTL)
    "\u05e9\u05dc\u05d5\u05dd\r\n",  # Hebrew + CRLF
    "\U0001f1eb\U0001f1f7",  # flag: two regional indicators
    "\u202eevil\u202c",  # RTL override
    "\ufeffBOM",
    "\u5f20\u4f1f",
]


def span_of(piece: str, label: str = "PERSON") -> dict:
    start = UNICODE_TEXT.index(piece)
    return {"start": start, "end": start + len(piece), "label": label, "text": piece}


def test_unicode_spans_round_trip_exactly_through_the_api(hostile):
    project, task, user, client = hostile
    spans = [span_of(p) for p in PIECES]
    response = client.post(
        f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "science", "entities": spans}}, format="json"
    )
    assert response.status_code == 201, response.content
    stored = Annotation.objects.get(task=task, user=user).result["entities"]
    assert [(s["start"], s["end"], s["text"]) for s in stored] == sorted(
        (s["start"], s["end"], s["text"]) for s in spans
    )
    for span in stored:
        assert UNICODE_TEXT[span["start"] : span["end"]] == span["text"]
    # Read back through the API: same offsets, same text, byte for byte.
    listed = client.get(f"/api/v1/tasks/{task.pk}/annotations/").json()
    assert listed[0]["result"]["entities"] == stored
    assert client.get(f"/api/v1/tasks/{task.pk}/").json()["text"] == UNICODE_TEXT


def test_span_without_text_gets_the_covered_text_filled_in(hostile):
    project, task, user, client = hostile
    span = span_of("\U0001f469\u200d\U0001f4bb")
    del span["text"]
    response = client.post(
        f"/api/v1/tasks/{task.pk}/annotations/", {"result": {"topic": "science", "entities": [span]}}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["result"]["entities"][0]["text"] == "\U0001f469\u200d\U0001f4bb"


def _utf16_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-16-le")) // 2


def test_utf16_offsets_from_a_javascript_client_are_refused(hostile):
    """A client counting UTF-16 units (JavaScript's string.length) is off after an emoji; the
    text check catches it instead of storing a shifted span."""
    project, task, user, client = hostile
    piece = "\u05e9\u05dc\u05d5\u05dd"  # after one emoji: UTF-16 offsets are shifted by 2
    start = UNICODE_TEXT.index(piece)
    wrong = {"start": _utf16_offset(UNICODE_TEXT, start), "end": _utf16_offset(UNICODE_TEXT, start + 2)}
    assert wrong["start"] != start
    before = db_snapshot()
    response = client.post(
        f"/api/v1/tasks/{task.pk}/annotations/",
        {"result": {"topic": "science", "entities": [{**wrong, "label": "PERSON", "text": piece}]}},
        format="json",
    )
    assert response.status_code == 400
    assert "does not match" in response.json()["error"]["message"]
    # Near the end of the text, UTF-16 offsets even run past it: refused as well.
    piece = "\u5f20\u4f1f"
    start = UNICODE_TEXT.index(piece)
    late = {"start": _utf16_offset(UNICODE_TEXT, start), "end": _utf16_offset(UNICODE_TEXT, start + 2)}
    response = client.post(
        f"/api/v1/tasks/{task.pk}/annotations/",
        {"result": {"topic": "science", "entities": [{**late, "label": "PERSON", "text": piece}]}},
        format="json",
    )
    assert response.status_code == 400
    assert_unchanged(before, db_snapshot(), "UTF-16 offsets")


N = len(UNICODE_TEXT)
BAD_SPANS = [
    {"start": -1, "end": 3, "label": "PERSON"},
    {"start": 3, "end": 3, "label": "PERSON"},
    {"start": 5, "end": 2, "label": "PERSON"},
    {"start": 0, "end": N + 1, "label": "PERSON"},
    {"start": N, "end": N + 5, "label": "PERSON"},
    {"start": 0, "end": 2**63, "label": "PERSON"},
    {"start": "0", "end": "4", "label": "PERSON"},
    {"start": 0.0, "end": 4.0, "label": "PERSON"},
    {"start": True, "end": 4, "label": "PERSON"},
    {"start": None, "end": 4, "label": "PERSON"},
    {"start": 0, "end": 4, "label": "person"},  # labels are case-sensitive
    {"start": 0, "end": 4, "label": "WEAPON"},  # not in the schema
    {"start": 0, "end": 4, "label": ["PERSON"]},  # unhashable label once crashed with a 500
    {"start": 0, "end": 4, "label": {"x": 1}},
    {"start": 0, "end": 4},
    {"start": 0, "end": 4, "label": "PERSON", "text": "Caf"},  # wrong covered text
    {"start": 0, "end": 5, "label": "PERSON", "text": "Café"},  # NFC vs the NFD in the text
    "0-4 PERSON",
    [0, 4, "PERSON"],
]


@pytest.mark.parametrize("span", BAD_SPANS, ids=repr)
def test_invalid_spans_are_refused_and_nothing_is_stored(hostile, span):
    project, task, user, client = hostile
    before = db_snapshot()
    for method, endpoint in ((client.post, "annotations"), (client.put, "draft")):
        response = method(
            f"/api/v1/tasks/{task.pk}/{endpoint}/", {"result": {"topic": "science", "entities": [span]}}, format="json"
        )
        assert response.status_code == 400, (endpoint, response.content)
        assert list(response.json()["error"]["fields"]) in (["entities"], ["entities[0]"])
    assert_unchanged(before, db_snapshot(), repr(span))


def test_duplicate_spans_are_refused(hostile):
    project, task, user, client = hostile
    span = span_of("\u5f20\u4f1f")
    response = client.post(
        f"/api/v1/tasks/{task.pk}/annotations/",
        {"result": {"topic": "science", "entities": [span, dict(span)]}},
        format="json",
    )
    assert response.status_code == 400
