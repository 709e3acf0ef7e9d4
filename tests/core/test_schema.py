import pytest

from projects.core.schema import DEMO_SCHEMA, ResultError, SchemaError, validate_result, validate_schema

TEXT = "Chen Wei joined Helios Bank in Osaka. 👩‍💻 café"


def test_demo_schema_is_valid_and_normalized():
    schema = validate_schema(DEMO_SCHEMA)
    assert [f["type"] for f in schema["fields"]] == ["choice", "choice", "spans", "text", "rating", "pairwise"]
    assert schema["fields"][0]["required"] is True
    assert schema["fields"][1]["multiple"] is True


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({}, "fields"),
        ({"fields": [{"name": "x", "type": "nope"}]}, "fields[0] (x).type"),
        ({"fields": [{"name": "x", "type": "choice", "options": ["a"]}]}, "fields[0] (x).options"),
        ({"fields": [{"name": "x", "type": "choice", "options": ["a", "a"]}]}, "fields[0] (x).options"),
        ({"fields": [{"name": "1x", "type": "text"}]}, "fields[0].name"),
        ({"fields": [{"name": "x", "type": "rating", "criteria": ["c"], "scale": [5, 1]}]}, "fields[0] (x).scale"),
        ({"fields": [{"name": "x", "type": "pairwise", "between": ["payload.a"]}]}, "fields[0] (x).between"),
        ({"fields": [{"name": "x", "type": "text", "prefill": "../etc"}]}, "fields[0] (x).prefill"),
        ({"fields": [{"name": "x", "type": "spans", "labels": ["A"]}, {"name": "x", "type": "text"}]}, "fields[1] (x)"),
    ],
)
def test_bad_schema_names_the_key(schema, where):
    with pytest.raises(SchemaError) as err:
        validate_schema(schema)
    assert where in err.value.fields


def test_result_round_trip_with_every_type():
    schema = validate_schema(DEMO_SCHEMA)
    result = {
        "topic": "business",
        "tags": ["opinion", "breaking"],
        "entities": [
            {"start": 16, "end": 27, "label": "ORG"},
            {"start": 0, "end": 8, "label": "PERSON", "text": "Chen Wei"},
        ],
        "answer": "fixed",
        "quality": {"safety": 5, "relevance": 3},
        "better": {"choice": "tie", "reason": "same"},
    }
    out = validate_result(schema, result, text=TEXT)
    assert out["tags"] == ["breaking", "opinion"]  # schema order
    assert out["entities"][0] == {"start": 0, "end": 8, "label": "PERSON", "text": "Chen Wei"}
    assert out["entities"][1]["text"] == "Helios Bank"
    assert out["quality"] == {"relevance": 3, "safety": 5}


def test_span_offsets_are_code_points():
    schema = {"fields": [{"name": "e", "type": "spans", "labels": ["X"]}]}
    start = TEXT.index("👩")
    out = validate_result(schema, {"e": [{"start": start, "end": start + 3, "label": "X"}]}, text=TEXT)
    assert out["e"][0]["text"] == "👩‍💻"  # three code points, five UTF-16 units


@pytest.mark.parametrize(
    ("result", "field"),
    [
        ({"topic": "sports-ish"}, "topic"),
        ({"nope": 1}, "nope"),
        ({"entities": [{"start": 5, "end": 2, "label": "ORG"}]}, "entities[0]"),
        ({"entities": [{"start": 0, "end": 999, "label": "ORG"}]}, "entities[0]"),
        ({"entities": [{"start": 0, "end": 4, "label": "DOG"}]}, "entities[0]"),
        ({"entities": [{"start": 0, "end": 4, "label": "ORG", "text": "Wei "}]}, "entities[0]"),
        ({"entities": [{"start": "0", "end": 4, "label": "ORG"}]}, "entities[0]"),
        ({"quality": {"relevance": 9}}, "quality"),
        ({"quality": {"relevance": True}}, "quality"),
        ({"better": {"choice": "c"}}, "better"),
        ({"answer": 5}, "answer"),
        ({"tags": "opinion"}, "tags"),
    ],
)
def test_bad_result_names_the_field(result, field):
    schema = validate_schema(DEMO_SCHEMA)
    with pytest.raises(ResultError) as err:
        validate_result(schema, {"topic": "business", **result}, text=TEXT)
    assert field in err.value.fields


def test_required_field_is_optional_in_a_draft():
    schema = validate_schema(DEMO_SCHEMA)
    with pytest.raises(ResultError):
        validate_result(schema, {}, text=TEXT)
    assert validate_result(schema, {}, text=TEXT, draft=True) == {}
