"""Label Studio labeling configs (as found in its templates) become our schema."""

import pytest

from projects.core.exceptions import ValidationFailed
from projects.core.labelconfig import labelconfig_to_schema

NER = """<View>
  <Labels name="label" toName="text">
    <Label value="PER" background="red" hotkey="p"/>
    <Label value="ORG" background="darkorange"/>
    <Label value="LOC" background="#FFA39E"/>
    <Label value="MISC" background="#D4380D" hotkey="ctrl+m"/>
  </Labels>
  <Text name="text" value="$text"/>
</View>"""

CLASSIFICATION = """<View>
  <Text name="text" value="$text"/>
  <View style="box-shadow: 2px 2px 5px #999; padding: 20px; margin-top: 2em; border-radius: 5px;">
    <Header value="Choose text sentiment"/>
    <Choices name="sentiment" toName="text" choice="single" showInLine="true" required="true">
      <Choice value="Positive"/>
      <Choice value="Negative"/>
      <Choice value="Neutral" alias="neu"/>
    </Choices>
    <Choices name="flags" toName="text" choice="multiple">
      <Choice value="Spam"/><Choice value="Toxic"/><Choice value="Off topic"/>
    </Choices>
  </View>
</View>"""

LLM_EVAL = """<View>
  <Header value="Prompt"/>
  <Text name="prompt" value="$prompt"/>
  <Text name="answer1" value="$response_a"/>
  <Text name="answer2" value="$response_b"/>
  <Pairwise name="comparison" toName="answer1,answer2" selectionStyle="background-color: #27ae60"/>
  <Header value="Fix the response"/>
  <TextArea name="corrected response" toName="prompt" value="$response" rows="4" editable="true"/>
  <Rating name="relevance" toName="prompt" maxRating="5" icon="star"/>
  <Rating name="coherence" toName="prompt" maxRating="5"/>
  <Rating name="overall" toName="prompt" maxRating="10"/>
  <Taxonomy name="taxonomy" toName="prompt"><Choice value="A"/><Choice value="B"/></Taxonomy>
</View>"""


def test_ner_config_becomes_a_spans_field_with_colours_and_hotkeys():
    out = labelconfig_to_schema(NER)
    [field] = out.schema["fields"]
    assert field["name"] == "label" and field["type"] == "spans"
    assert field["labels"] == ["PER", "ORG", "LOC", "MISC"]
    assert field["colors"] == {"PER": "#ff0000", "ORG": "#ff8c00", "LOC": "#ffa39e", "MISC": "#d4380d"}
    assert field["hotkeys"] == {"PER": "p"}
    assert any("ctrl+m" in w for w in out.warnings)


def test_classification_config_keeps_single_multiple_required_title_and_alias():
    fields = labelconfig_to_schema(CLASSIFICATION).schema["fields"]
    assert fields[0] == {
        "name": "sentiment",
        "type": "choice",
        "required": True,
        "title": "Choose text sentiment",
        "options": ["Positive", "Negative", "neu"],
        "multiple": False,
    }
    assert fields[1]["multiple"] is True and fields[1]["options"] == ["Spam", "Toxic", "Off topic"]


def test_llm_evaluation_config_maps_pairwise_textarea_and_grouped_ratings():
    out = labelconfig_to_schema(LLM_EVAL)
    by_type = {}
    for f in out.schema["fields"]:
        by_type.setdefault(f["type"], []).append(f)
    assert by_type["pairwise"][0]["between"] == ["payload.response_a", "payload.response_b"]
    text = by_type["text"][0]
    assert text["name"] == "corrected_response" and text["prefill"] == "payload.response"
    assert text["title"] == "Fix the response"
    ratings = {f["name"]: f for f in by_type["rating"]}
    assert ratings["rating_5"]["criteria"] == ["relevance", "coherence"] and ratings["rating_5"]["scale"] == [1, 5]
    assert ratings["rating_10"]["criteria"] == ["overall"] and ratings["rating_10"]["scale"] == [1, 10]
    assert any("Taxonomy" in w for w in out.warnings)


def test_names_are_made_valid_and_unique():
    xml = """<View><Text name="t" value="$text"/>
      <Choices name="1st choice" toName="t"><Choice value="a"/><Choice value="b"/></Choices>
      <Choices name="1st choice" toName="t"><Choice value="c"/><Choice value="d"/></Choices></View>"""
    names = [f["name"] for f in labelconfig_to_schema(xml).schema["fields"]]
    assert names == ["f_1st_choice", "f_1st_choice_2"]


@pytest.mark.parametrize(
    "xml, fragment",
    [
        ("<View><Text name='t' value='$text'/></View>", "no supported control"),
        ("<View><Choices name='x'>", "not valid XML"),
        (
            '<?xml version="1.0"?><!DOCTYPE v [<!ENTITY e "boom">]><View><Header value="&e;"/></View>',
            "DTD or entities",
        ),
        (
            '<!DOCTYPE v [<!ENTITY x SYSTEM "file:///etc/passwd">]><View>&x;</View>',
            "DTD or entities",
        ),
        ("<View>" + "<Header value='x'/>" * 100_000 + "</View>", "larger than 1 MB"),
    ],
)
def test_bad_configs_are_refused(xml, fragment):
    with pytest.raises(ValidationFailed) as exc:
        labelconfig_to_schema(xml)
    assert fragment in exc.value.message


def test_pairwise_without_text_variables_is_left_out_with_a_warning():
    xml = """<View><Pairwise name="p" toName="a,b"/>
      <Choices name="c" toName="a"><Choice value="x"/><Choice value="y"/></Choices></View>"""
    out = labelconfig_to_schema(xml)
    assert [f["type"] for f in out.schema["fields"]] == ["choice"]
    assert any("Pairwise" in w for w in out.warnings)
