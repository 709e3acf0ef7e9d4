"""Our label schema as the equivalent Label Studio labeling config, and their results back.

=========  ===============================================  =====================================
ours       Label Studio tag (``from_name``)                  result item ``value``
=========  ===============================================  =====================================
choice     ``<Choices name=F choice=single|multiple>``       ``{"choices": [...]}``
spans      ``<Labels name=F>``                               ``{"start", "end", "labels": [L], "text"}``
text       ``<TextArea name=F>``                             ``{"text": ["..."]}``
rating     ``<Rating name="F:criterion" maxRating=...>``     ``{"rating": n}`` (1-based, shifted to our scale)
pairwise   ``<Choices name=F>`` with a, b, tie, both_bad     ``{"choices": ["a"]}``
=========  ===============================================  =====================================

All tags point at ``<Text name="text" value="$text"/>``. The XML is built with ElementTree, so
every attribute value (options and labels are user text) is escaped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from projects.core.schema import PAIRWISE_CHOICES

TEXT_NAME = "text"


class MappingError(ValueError):
    """A result item that does not fit the project's schema."""


def _rating_name(field: str, criterion: str) -> str:
    return f"{field}:{criterion}"


def schema_to_label_config(schema: dict) -> str:
    view = ET.Element("View")
    ET.SubElement(view, "Text", name=TEXT_NAME, value=f"${TEXT_NAME}")
    for field in schema.get("fields", []):
        name, ftype = field["name"], field["type"]
        if field.get("title"):
            ET.SubElement(view, "Header", value=field["title"])
        if ftype == "choice":
            tag = ET.SubElement(
                view, "Choices", name=name, toName=TEXT_NAME, choice="multiple" if field.get("multiple") else "single"
            )
            for option in field["options"]:
                ET.SubElement(tag, "Choice", value=option)
        elif ftype == "spans":
            tag = ET.SubElement(view, "Labels", name=name, toName=TEXT_NAME)
            for label in field["labels"]:
                ET.SubElement(tag, "Label", value=label)
        elif ftype == "text":
            ET.SubElement(view, "TextArea", name=name, toName=TEXT_NAME, maxSubmissions="1", editable="true")
        elif ftype == "rating":
            lo, hi = field.get("scale", [1, 5])
            for criterion in field["criteria"]:
                ET.SubElement(view, "Header", value=criterion)
                ET.SubElement(
                    view, "Rating", name=_rating_name(name, criterion), toName=TEXT_NAME, maxRating=str(hi - lo + 1)
                )
        elif ftype == "pairwise":
            tag = ET.SubElement(view, "Choices", name=name, toName=TEXT_NAME, choice="single")
            for option in PAIRWISE_CHOICES:
                ET.SubElement(tag, "Choice", value=option)
    return ET.tostring(view, encoding="unicode")


def _targets(schema: dict) -> dict[str, tuple[dict, str | None]]:
    """from_name → (field, rating criterion or None)."""
    out: dict[str, tuple[dict, str | None]] = {}
    for field in schema.get("fields", []):
        if field["type"] == "rating":
            for criterion in field["criteria"]:
                out[_rating_name(field["name"], criterion)] = (field, criterion)
        else:
            out[field["name"]] = (field, None)
    return out


def _choices(value: dict) -> list:
    choices = value.get("choices")
    if not isinstance(choices, list) or not choices:
        raise MappingError('a choices item needs "value": {"choices": [...]}')
    return choices


def label_studio_result_to_ours(schema: dict, items: Any) -> dict:
    """Map a Label Studio ``result`` list to our result dict (validated afterwards by the caller)."""
    if not isinstance(items, list):
        raise MappingError('"result" must be a list of items')
    targets = _targets(schema)
    out: dict[str, Any] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            raise MappingError(f"result[{i}] must be an object with a value object")
        from_name = item.get("from_name")
        if from_name not in targets:
            raise MappingError(f"result[{i}]: from_name {from_name!r} is not a field of the label config")
        field, criterion = targets[from_name]
        name, ftype, value = field["name"], field["type"], item["value"]
        if ftype == "choice":
            choices = _choices(value)
            out[name] = choices if field.get("multiple") else choices[0]
        elif ftype == "pairwise":
            out[name] = {"choice": _choices(value)[0]}
        elif ftype == "spans":
            labels = value.get("labels")
            if not isinstance(labels, list) or len(labels) != 1:
                raise MappingError(f"result[{i}]: a labels item needs exactly one label")
            span = {"start": value.get("start"), "end": value.get("end"), "label": labels[0]}
            if "text" in value:
                span["text"] = value["text"]
            out.setdefault(name, []).append(span)
        elif ftype == "text":
            text = value.get("text")
            if isinstance(text, list):
                text = "\n".join(t for t in text if isinstance(t, str))
            if not isinstance(text, str):
                raise MappingError(f'result[{i}]: a textarea item needs "value": {{"text": [...]}}')
            out[name] = text
        elif ftype == "rating":
            rating = value.get("rating")
            if not isinstance(rating, int) or isinstance(rating, bool):
                raise MappingError(f'result[{i}]: a rating item needs "value": {{"rating": n}}')
            lo = field.get("scale", [1, 5])[0]
            out.setdefault(name, {})[criterion] = rating + lo - 1
    return out
