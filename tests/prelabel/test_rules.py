import pytest

from projects.prelabel.labelers import LabelerConfigError, LabelerContext, LabelerError, TaskInput, build_labeler
from projects.prelabel.labelers.rules import RulesLabeler
from tests.factories import SIMPLE_SCHEMA

CONFIG = {
    "rules": [
        {"field": "topic", "value": "business", "keywords": ["bank", "market", "shares"]},
        {"field": "topic", "value": "politics", "keywords": ["senate", "vote"], "patterns": [r"\bbudget\b"]},
        {
            "field": "entities",
            "label": "ORG",
            "gazetteer": ["Quantix", "Helios Bank", "Helios"],
            "case_sensitive": True,
        },
        {"field": "entities", "label": "PERSON", "patterns": [r"\b(?:Dr|Ms)\. [A-Z]\w+"]},
        {"field": "entities", "label": "LOC", "gazetteer": ["zürich", "São Paulo"]},
    ]
}


def labeler(config=CONFIG, schema=SIMPLE_SCHEMA):
    normalized = RulesLabeler.validate_config(config, schema)
    return build_labeler("rules", config=normalized, context=LabelerContext(1, schema, "rules-x"))


def test_keywords_pick_the_option_with_most_hits_with_score_and_margin():
    [out] = labeler().predict([TaskInput(1, "The bank said the market fell; the senate was quiet.")])
    assert out.result["topic"] == "business"
    assert out.score is not None
    assert out.margin == pytest.approx((2 - 1) / 3)


def test_gazetteer_longest_match_wins_and_words_must_be_whole():
    [out] = labeler().predict([TaskInput(1, "Helios Bank and Quantixes and Quantix.")])
    spans = [(s["text"], s["label"]) for s in out.result["entities"]]
    assert spans == [("Helios Bank", "ORG"), ("Quantix", "ORG")]


def test_span_offsets_are_code_points_after_non_ascii_text():
    text = "😀 Café in Zürich met Ms. Okafor near São Paulo"
    [out] = labeler().predict([TaskInput(1, text)])
    for span in out.result["entities"]:
        assert text[span["start"] : span["end"]] == span["text"]
    assert {s["label"] for s in out.result["entities"]} == {"LOC", "PERSON"}
    assert [s["text"] for s in out.result["entities"] if s["label"] == "LOC"] == ["Zürich", "São Paulo"]


def test_no_hit_gives_an_empty_result():
    [out] = labeler().predict([TaskInput(1, "Nothing to see.")])
    assert out.result == {} and out.score is None


@pytest.mark.parametrize(
    "config, key",
    [
        ({"rules": []}, "config.rules"),
        ({"rules": [{"field": "nope", "value": "x", "keywords": ["a"]}]}, "config.rules[0].field"),
        ({"rules": [{"field": "topic", "value": "cats", "keywords": ["a"]}]}, "config.rules[0].value"),
        ({"rules": [{"field": "entities", "label": "ORG"}]}, "config.rules[0]"),
        ({"rules": [{"field": "entities", "label": "ORG", "patterns": ["(unclosed"]}]}, "config.rules[0].patterns"),
        ({"rules": [{"field": "entities", "label": "ORG", "patterns": ["a" * 501]}]}, "config.rules[0].patterns"),
        ({"rules": [{"field": "topic", "value": "business", "keywords": ["a"]}], "evil": 1}, "config"),
    ],
)
def test_bad_configs_are_refused_naming_the_key(config, key):
    with pytest.raises(LabelerConfigError) as exc:
        RulesLabeler.validate_config(config, SIMPLE_SCHEMA)
    assert key in exc.value.fields


def test_a_catastrophic_pattern_fails_its_task_not_the_worker(monkeypatch):
    import projects.prelabel.labelers.rules as rules

    monkeypatch.setattr(rules, "PATTERN_TIMEOUT", 0.05)
    config = {"rules": [{"field": "entities", "label": "ORG", "patterns": [r"(a|aa)+$"]}]}
    evil = "a" * 40 + "b"
    out = labeler(config).predict([TaskInput(1, evil), TaskInput(2, "aaa")])
    assert isinstance(out[0], LabelerError) and "longer than" in out[0].message
    assert out[1].result["entities"][0]["text"] == "aaa"


def test_model_version_is_stable_for_the_same_config():
    a = RulesLabeler.default_model_version(
        name="rules", config=RulesLabeler.validate_config(CONFIG, SIMPLE_SCHEMA), project_id=1
    )
    b = RulesLabeler.default_model_version(
        name="rules", config=RulesLabeler.validate_config(CONFIG, SIMPLE_SCHEMA), project_id=1
    )
    assert a == b and a.startswith("rules-")


def test_many_keywords_count_the_same_as_few():
    filler = [f"word{i}" for i in range(60)]
    few = {"rules": [{"field": "topic", "value": "business", "keywords": ["Bank", "market"]}]}
    many = {"rules": [{"field": "topic", "value": "business", "keywords": ["Bank", "market", *filler]}]}
    text = "The bank, the BANK and banking; market. word7"
    [a] = labeler(few).predict([TaskInput(1, text)])
    [b] = labeler(many).predict([TaskInput(1, text)])
    assert a.result == b.result == {"topic": "business"}
    assert sorted(labeler(few)._word_counts(text, {})) == [(0, 1), (0, 2)]
    assert sorted(labeler(many)._word_counts(text, {})) == [(0, 1), (0, 1), (0, 2)]
