"""Property-based tests for ``projects.core.schema`` (pure: no database).

- ``validate_schema`` and ``validate_result`` raise nothing but ``SchemaError``/``ResultError`` on
  arbitrary JSON, and what they accept is a fixed point (validating it again changes nothing);
- spans generated on random Unicode text (any code points but lone surrogates, plus combining
  marks, ZWJ emoji, RTL and CRLF) round-trip exactly, through JSON too.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projects.core.schema import DEMO_SCHEMA, ResultError, SchemaError, validate_result, validate_schema

# Arbitrary-JSON generation is slow on a shared CI machine; 100 examples per run (each CI run and
# developer run draws new ones) found the unhashable-label crash within the first run.
PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPAN_SETTINGS = settings(max_examples=300, deadline=None)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
names = st.sampled_from(["topic", "tags", "entities", "answer", "quality", "better", "x", "fields", ""])
keys = names | st.text(max_size=8)

# Values shaped like the real thing, so generation reaches deep into the validators.
span_like = st.fixed_dictionaries(
    {},
    optional={
        "start": st.integers(-3, 60) | json_values,
        "end": st.integers(-3, 60) | json_values,
        "label": st.sampled_from(["PERSON", "ORG", "LOC", "person"]) | json_values,
        "text": st.text(max_size=6) | json_values,
    },
)
field_value = st.one_of(
    json_values,
    st.sampled_from(["politics", "business", "science", "breaking"]),
    st.lists(st.sampled_from(["breaking", "opinion", "analysis", "x"]), max_size=4),
    st.lists(span_like, max_size=4),
    st.dictionaries(st.sampled_from(["relevance", "coherence", "safety", "x"]), st.integers(-1, 7) | json_values),
    st.fixed_dictionaries({"choice": st.sampled_from(["a", "b", "tie", "both_bad", "c"]) | json_values}),
)
results = st.dictionaries(keys, field_value, max_size=6) | json_values

field_like = st.fixed_dictionaries(
    {"name": names | json_values, "type": st.sampled_from(["choice", "spans", "text", "rating", "pairwise", "x"])},
    optional={
        "options": st.lists(st.text(max_size=5), max_size=4) | json_values,
        "labels": st.lists(st.text(max_size=5), max_size=4) | json_values,
        "multiple": json_values,
        "required": json_values,
        "criteria": st.lists(st.text(max_size=5), max_size=3) | json_values,
        "scale": st.lists(st.integers(-3, 200), max_size=3) | json_values,
        "prefill": st.sampled_from(["payload.response", "payload.", "x"]) | json_values,
        "between": st.lists(st.sampled_from(["payload.a", "payload.b", "nope"]), max_size=3) | json_values,
        "title": json_values,
        "hotkeys": json_values,
        "colors": st.dictionaries(st.text(max_size=4), st.text(max_size=40)) | json_values,
        "extra": json_values,
    },
)
schemas = st.fixed_dictionaries({"fields": st.lists(field_like, max_size=5)}) | json_values


@PROPERTY_SETTINGS
@given(schemas)
def test_validate_schema_only_raises_schema_error(schema):
    try:
        normalized = validate_schema(schema)
    except SchemaError:
        return
    assert validate_schema(normalized) == normalized
    json.dumps(normalized)


@PROPERTY_SETTINGS
@given(results, st.text(max_size=60), st.booleans())
def test_validate_result_only_raises_result_error(result, text, draft):
    schema = validate_schema(DEMO_SCHEMA)
    payload = {"response": "r", "response_a": "a", "response_b": "b"}
    try:
        normalized = validate_result(schema, result, text=text, payload=payload, draft=draft)
    except ResultError:
        return
    assert validate_result(schema, normalized, text=text, payload=payload, draft=draft) == normalized
    json.dumps(normalized)


@PROPERTY_SETTINGS
@given(schemas, results)
def test_any_accepted_schema_validates_results_without_crashing(schema, result):
    try:
        normalized = validate_schema(schema)
    except SchemaError:
        return
    try:
        validate_result(normalized, result, text="some text", payload={})
    except ResultError:
        pass


# --- span round trip on random Unicode ---------------------------------------------------------

TRICKY = [
    "e\u0301",
    "\U0001f469\u200d\U0001f4bb",
    "\U0001f1eb\U0001f1f7",
    "\u0645\u062d\u0645\u062f",
    "\u05e9\u05dc\u05d5\u05dd",
    "\r\n",
    "\u202e",
    "\ufeff",
    "\u0000",
    "\U0010ffff",
]
unicode_text = (
    st.lists(
        st.text(st.characters(exclude_categories=["Cs"]), min_size=0, max_size=8) | st.sampled_from(TRICKY),
        min_size=1,
        max_size=20,
    )
    .map("".join)
    .filter(bool)
)


@st.composite
def text_and_spans(draw):
    text = draw(unicode_text)
    count = draw(st.integers(0, 6))
    spans = []
    for _ in range(count):
        start = draw(st.integers(0, len(text) - 1))
        end = draw(st.integers(start + 1, len(text)))
        spans.append({"start": start, "end": end, "label": draw(st.sampled_from(["PERSON", "ORG", "LOC"]))})
    unique = {(s["start"], s["end"], s["label"]): s for s in spans}
    return text, list(unique.values())


@SPAN_SETTINGS
@given(text_and_spans(), st.booleans())
def test_valid_spans_round_trip_exactly(case, with_text):
    text, spans = case
    schema = validate_schema({"fields": [{"name": "entities", "type": "spans", "labels": ["PERSON", "ORG", "LOC"]}]})
    sent = [{**s, "text": text[s["start"] : s["end"]]} if with_text else s for s in spans]
    result = validate_result(schema, {"entities": sent}, text=text)
    stored = json.loads(json.dumps(result))  # what the database and the API hand back
    got = stored.get("entities", [])
    assert sorted((s["start"], s["end"], s["label"]) for s in got) == sorted(
        (s["start"], s["end"], s["label"]) for s in spans
    )
    for span in got:
        assert span["text"] == text[span["start"] : span["end"]]
    assert validate_result(schema, stored, text=text) == result


@SPAN_SETTINGS
@given(text_and_spans(), st.integers(1, 3))
def test_shifted_spans_are_caught_by_the_text_check(case, shift):
    """A span whose text was taken at other offsets (e.g. UTF-16 or byte counts) is refused."""
    text, spans = case
    schema = validate_schema({"fields": [{"name": "entities", "type": "spans", "labels": ["PERSON", "ORG", "LOC"]}]})
    for span in spans:
        claimed = text[span["start"] : span["end"]]
        moved = {**span, "start": span["start"] + shift, "end": span["end"] + shift, "text": claimed}
        if text[moved["start"] : moved["end"]] == claimed and moved["end"] <= len(text):
            continue  # a repeated substring: the shifted span is genuinely the same text
        try:
            validate_result(schema, {"entities": [moved]}, text=text)
        except ResultError:
            continue
        raise AssertionError(f"shifted span accepted: {moved} on {text!r}")
