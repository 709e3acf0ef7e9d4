import xml.etree.ElementTree as ET

import pytest

from projects.core.schema import DEMO_SCHEMA, validate_result
from projects.prelabel.lsconfig import MappingError, label_studio_result_to_ours, schema_to_label_config


def test_demo_schema_renders_the_equivalent_label_config():
    root = ET.fromstring(schema_to_label_config(DEMO_SCHEMA))
    assert root.tag == "View"
    text = root.find("Text")
    assert text.attrib == {"name": "text", "value": "$text"}
    topic = root.find("Choices[@name='topic']")
    assert topic.attrib["choice"] == "single" and topic.attrib["toName"] == "text"
    assert [c.attrib["value"] for c in topic] == DEMO_SCHEMA["fields"][0]["options"]
    assert root.find("Choices[@name='tags']").attrib["choice"] == "multiple"
    assert [label.attrib["value"] for label in root.find("Labels[@name='entities']")] == ["PERSON", "ORG", "LOC"]
    assert root.find("TextArea[@name='answer']") is not None
    assert root.find("Rating[@name='quality:relevance']").attrib["maxRating"] == "5"
    assert [c.attrib["value"] for c in root.find("Choices[@name='better']")] == ["a", "b", "tie", "both_bad"]


def test_attribute_values_are_escaped():
    schema = {"fields": [{"name": "x", "type": "choice", "options": ['a"b', "<c/> & d"]}]}
    xml = schema_to_label_config(schema)
    assert "<c/>" not in xml and "&lt;c/&gt; &amp; d" in xml and "a&quot;b" in xml
    assert [c.attrib["value"] for c in ET.fromstring(xml).find("Choices")] == ['a"b', "<c/> & d"]


def test_their_result_items_map_back_to_our_fields():
    text = "Chen Wei joined Quantix."
    items = [
        {"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": ["business"]}},
        {"from_name": "tags", "to_name": "text", "type": "choices", "value": {"choices": ["analysis", "breaking"]}},
        {
            "from_name": "entities",
            "to_name": "text",
            "type": "labels",
            "value": {"start": 0, "end": 8, "labels": ["PERSON"], "text": "Chen Wei"},
        },
        {
            "from_name": "entities",
            "to_name": "text",
            "type": "labels",
            "value": {"start": 16, "end": 23, "labels": ["ORG"]},
        },
        {"from_name": "answer", "to_name": "text", "type": "textarea", "value": {"text": ["A summary."]}},
        {"from_name": "quality:coherence", "to_name": "text", "type": "rating", "value": {"rating": 4}},
        {"from_name": "better", "to_name": "text", "type": "choices", "value": {"choices": ["tie"]}},
    ]
    result = label_studio_result_to_ours(DEMO_SCHEMA, items)
    normalized = validate_result(DEMO_SCHEMA, result, text=text, draft=True)
    assert normalized["topic"] == "business"
    assert normalized["tags"] == ["breaking", "analysis"]
    assert [s["text"] for s in normalized["entities"]] == ["Chen Wei", "Quantix"]
    assert normalized["answer"] == "A summary." and normalized["quality"] == {"coherence": 4}
    assert normalized["better"] == {"choice": "tie"}


def test_rating_scale_is_shifted_to_ours():
    schema = {"fields": [{"name": "q", "type": "rating", "criteria": ["c"], "scale": [0, 4]}]}
    assert ET.fromstring(schema_to_label_config(schema)).find("Rating").attrib["maxRating"] == "5"
    assert label_studio_result_to_ours(schema, [{"from_name": "q:c", "value": {"rating": 1}}]) == {"q": {"c": 0}}


@pytest.mark.parametrize(
    "items",
    [
        "nope",
        [{"from_name": "topic"}],
        [{"from_name": "ghost", "value": {}}],
        [{"from_name": "topic", "value": {"choices": []}}],
        [{"from_name": "entities", "value": {"start": 0, "end": 1, "labels": ["A", "B"]}}],
        [{"from_name": "quality:safety", "value": {"rating": "5"}}],
    ],
)
def test_malformed_items_raise(items):
    with pytest.raises(MappingError):
        label_studio_result_to_ours(DEMO_SCHEMA, items)
