"""Label Studio and doccano labels converted to this project's result schema (pure module).

Label Studio result items ``{"from_name", "to_name", "type", "value"}`` map to the schema field
of the same name as ``from_name`` (or, when no field has that name, to the only field of the
matching type): ``labels`` -> spans, ``choices`` -> choice, ``textarea`` -> text, ``rating`` ->
rating. doccano's ``label`` is ``[[start, end, label], ...]`` (spans) or ``["category", ...]``
(choice). Item types with no counterpart (relations, regions of other media) are dropped.
"""

from __future__ import annotations

from typing import Any

from projects.imports.errors import RowError

LS_TYPES = {"labels": "spans", "choices": "choice", "textarea": "text", "rating": "rating"}


def _field_for(schema: dict, name: Any, ftype: str) -> dict | None:
    fields = schema.get("fields", [])
    for f in fields:
        if f["name"] == name and f["type"] == ftype:
            return f
    if ftype == "rating":
        for f in fields:
            if f["type"] == "rating" and name in f.get("criteria", []):
                return f
    same_type = [f for f in fields if f["type"] == ftype]
    return same_type[0] if len(same_type) == 1 else None


def labelstudio_result(items: Any, schema: dict) -> dict:
    """A Label Studio ``result`` list as a result dict for ``schema`` (not yet validated)."""
    if not isinstance(items, list):
        raise RowError("a Label Studio result must be a list of items")
    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            raise RowError("each Label Studio result item needs a value object")
        ltype = str(item.get("type", "")).lower()
        ftype = LS_TYPES.get(ltype)
        if ftype is None:
            continue
        value = item["value"]
        from_name = item.get("from_name")
        field = _field_for(schema, from_name, ftype)
        if field is None:
            raise RowError(f"Label Studio {ltype} {from_name!r} matches no {ftype} field of this project")
        name = field["name"]
        if ftype == "spans":
            labels = value.get("labels") or []
            span = {"start": value.get("start"), "end": value.get("end"), "label": labels[0] if labels else None}
            if "text" in value:
                span["text"] = value["text"]
            out.setdefault(name, []).append(span)
        elif ftype == "choice":
            choices = value.get("choices") or []
            out[name] = list(choices) if field.get("multiple") else (choices[0] if choices else None)
        elif ftype == "text":
            text = value.get("text")
            out[name] = "\n".join(map(str, text)) if isinstance(text, list) else text
        elif ftype == "rating":
            criteria = field.get("criteria", [])
            criterion = from_name if from_name in criteria else (criteria[0] if len(criteria) == 1 else None)
            if criterion is None:
                raise RowError(f"Label Studio rating {from_name!r} names no criterion of field {name!r}")
            out.setdefault(name, {})[criterion] = value.get("rating")
    return out


def doccano_result(label: Any, schema: dict) -> dict:
    """doccano's ``label`` value as a result dict for ``schema`` (not yet validated)."""
    if not isinstance(label, list):
        raise RowError("doccano label must be a list")
    if not label:
        return {}
    if all(isinstance(item, list | tuple) for item in label):
        field = _field_for(schema, "label", "spans")
        if field is None:
            raise RowError("doccano span labels need a spans field in this project's schema")
        spans = []
        for item in label:
            if len(item) != 3:
                raise RowError("doccano span labels must be [start, end, label]")
            spans.append({"start": item[0], "end": item[1], "label": item[2]})
        return {field["name"]: spans}
    if all(isinstance(item, str) for item in label):
        field = _field_for(schema, "label", "choice")
        if field is None:
            raise RowError("doccano category labels need a choice field in this project's schema")
        if not field.get("multiple") and len(label) > 1:
            raise RowError(f"doccano gives {len(label)} categories but field {field['name']!r} takes one")
        return {field["name"]: list(label) if field.get("multiple") else label[0]}
    raise RowError("doccano label must be a list of [start, end, label] or a list of category names")
