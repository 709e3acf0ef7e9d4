"""The label schema: its validation, and validation of annotation results against it.

A schema is ``{"fields": [...]}``; an annotation result maps field names to values:

=========  ==============================================  ==========================================
type       schema keys                                      result value
=========  ==============================================  ==========================================
choice     options (list), multiple (bool)                  "opt"  or  ["opt", ...] when multiple
spans      labels (list)                                    [{"start", "end", "label", "text"}, ...]
text       prefill ("payload.<key>", optional)              "free text"
rating     criteria (list), scale ([min, max])              {"criterion": int, ...}
pairwise   between (two "payload.<key>" paths)              {"choice": "a"|"b"|"tie"|"both_bad",
                                                             "reason": "optional text"}
=========  ==============================================  ==========================================

Every field may also carry ``title``, ``description`` and ``required`` (default false).
Span offsets are Python string indices (Unicode code points) into the task text; ``text`` is
the covered substring, kept as a check. Pure module: no ORM, so it is tested without a database.
"""

from __future__ import annotations

import re
from typing import Any

from projects.core.exceptions import ValidationFailed

FIELD_TYPES = ("choice", "spans", "text", "rating", "pairwise")
PAIRWISE_CHOICES = ("a", "b", "tie", "both_bad")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
PATH_RE = re.compile(r"^payload\.[A-Za-z0-9_\-.]{1,200}$")
MAX_OPTIONS = 500
MAX_TEXT_LENGTH = 200_000
MAX_SPANS = 10_000


class SchemaError(ValidationFailed):
    code = "invalid_schema"


class ResultError(ValidationFailed):
    code = "invalid_result"


def _str_list(value: Any, where: str, errors: dict[str, str], *, minimum: int = 1) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        errors[where] = "must be a list of non-empty strings"
        return []
    if len(value) < minimum:
        errors[where] = f"needs at least {minimum} item(s)"
    elif len(value) > MAX_OPTIONS:
        errors[where] = f"has more than {MAX_OPTIONS} items"
    elif len(set(value)) != len(value):
        errors[where] = "contains duplicates"
    return value


def validate_schema(schema: Any) -> dict:
    """Return the normalized schema or raise ``SchemaError`` naming each bad key."""
    errors: dict[str, str] = {}
    if not isinstance(schema, dict) or not isinstance(schema.get("fields"), list):
        raise SchemaError(
            'The label schema must be an object with a "fields" list.', fields={"fields": "required list"}
        )
    unknown_top = set(schema) - {"fields"}
    if unknown_top:
        errors["schema"] = f"unknown keys: {', '.join(sorted(unknown_top))}"
    fields: list[dict] = []
    seen: set[str] = set()
    for i, field in enumerate(schema["fields"]):
        where = f"fields[{i}]"
        if not isinstance(field, dict):
            errors[where] = "must be an object"
            continue
        name = field.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            errors[f"{where}.name"] = "must be a name of letters, digits, _ or - (max 64), starting with a letter"
            continue
        where = f"fields[{i}] ({name})"
        if name in seen:
            errors[where] = f"duplicate field name {name!r}"
        seen.add(name)
        ftype = field.get("type")
        if ftype not in FIELD_TYPES:
            errors[f"{where}.type"] = f"must be one of {', '.join(FIELD_TYPES)}"
            continue
        out: dict[str, Any] = {"name": name, "type": ftype, "required": bool(field.get("required", False))}
        for key in ("title", "description"):
            if key in field:
                if not isinstance(field[key], str) or len(field[key]) > 2000:
                    errors[f"{where}.{key}"] = "must be a string of at most 2000 characters"
                else:
                    out[key] = field[key]
        if ftype == "choice":
            out["options"] = _str_list(field.get("options"), f"{where}.options", errors, minimum=2)
            out["multiple"] = bool(field.get("multiple", False))
        elif ftype == "spans":
            out["labels"] = _str_list(field.get("labels"), f"{where}.labels", errors)
        elif ftype == "text":
            prefill = field.get("prefill")
            if prefill is not None:
                if not isinstance(prefill, str) or not PATH_RE.match(prefill):
                    errors[f"{where}.prefill"] = 'must be a path like "payload.response"'
                else:
                    out["prefill"] = prefill
        elif ftype == "rating":
            out["criteria"] = _str_list(field.get("criteria"), f"{where}.criteria", errors)
            scale = field.get("scale", [1, 5])
            if (
                not isinstance(scale, list)
                or len(scale) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in scale)
                or not scale[0] < scale[1]
                or scale[1] - scale[0] > 100
            ):
                errors[f"{where}.scale"] = "must be [min, max] integers with min < max (at most 100 steps)"
            else:
                out["scale"] = scale
        elif ftype == "pairwise":
            between = field.get("between")
            if (
                not isinstance(between, list)
                or len(between) != 2
                or not all(isinstance(p, str) and PATH_RE.match(p) for p in between)
            ):
                errors[f"{where}.between"] = 'must be two paths like ["payload.response_a", "payload.response_b"]'
            else:
                out["between"] = between
        extra = (
            set(field)
            - set(out)
            - {
                "name",
                "type",
                "required",
                "multiple",
                "scale",
                "prefill",
                "between",
                "options",
                "labels",
                "criteria",
                "title",
                "description",
                "hotkeys",
                "colors",
            }
        )
        if extra:
            errors[f"{where}"] = f"unknown keys: {', '.join(sorted(extra))}"
        for key in ("hotkeys", "colors"):
            if key in field:
                if not isinstance(field[key], dict) or not all(
                    isinstance(k, str) and isinstance(v, str) and len(v) <= 32 for k, v in field[key].items()
                ):
                    errors[f"{where}.{key}"] = "must map option or label names to short strings"
                else:
                    out[key] = field[key]
        fields.append(out)
    if errors:
        first = next(iter(errors.items()))
        raise SchemaError(f"Invalid label schema: {first[0]} {first[1]}.", fields=errors)
    return {"fields": fields}


def resolve_path(payload: dict | None, path: str) -> Any:
    """Resolve ``payload.a.b`` against a task payload; ``None`` when any step is missing."""
    value: Any = payload or {}
    for part in path.split(".")[1:]:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _check_spans(value: Any, field: dict, text: str | None, where: str, errors: dict[str, str]) -> list[dict]:
    if not isinstance(value, list):
        errors[where] = "must be a list of spans"
        return []
    if len(value) > MAX_SPANS:
        errors[where] = f"has more than {MAX_SPANS} spans"
        return []
    labels = set(field["labels"])
    out: list[dict] = []
    seen: set[tuple] = set()
    text_length = len(text) if text is not None else 0
    # The loop runs once per span of every submitted or predicted result: error paths build
    # their messages, the common path only tests.
    for j, span in enumerate(value):
        if not isinstance(span, dict):
            errors[f"{where}[{j}]"] = "must be an object with start, end and label"
            continue
        start, end, label = span.get("start"), span.get("end"), span.get("label")
        if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
            errors[f"{where}[{j}]"] = "start and end must be integers"
            continue
        if not isinstance(label, str) or label not in labels:
            errors[f"{where}[{j}]"] = f"label {label!r} is not one of {', '.join(field['labels'])}"
            continue
        if not 0 <= start < end:
            errors[f"{where}[{j}]"] = f"needs 0 <= start < end, got start={start}, end={end}"
            continue
        if text is not None:
            if end > text_length:
                errors[f"{where}[{j}]"] = f"end={end} is past the end of the text ({text_length} characters)"
                continue
            covered = text[start:end]
            if "text" in span and span["text"] != covered:
                errors[f"{where}[{j}]"] = (
                    f"text {span['text']!r} does not match the text at [{start}, {end}) ({covered!r})"
                )
                continue
        else:
            covered = span.get("text", "")
        key = (start, end, label)
        if key in seen:
            errors[f"{where}[{j}]"] = f"duplicate span [{start}, {end}) {label}"
            continue
        seen.add(key)
        out.append({"start": start, "end": end, "label": label, "text": covered})
    out.sort(key=_span_order)
    return out


def _span_order(span: dict) -> tuple:
    return span["start"], span["end"], span["label"]


def validate_result(
    schema: dict, result: Any, *, text: str | None, payload: dict | None = None, draft: bool = False
) -> dict:
    """Return the normalized result or raise ``ResultError`` with a message per field.

    ``text`` is the task text (span offsets are checked against it; ``None`` skips that check).
    A draft may leave required fields empty.
    """
    if not isinstance(result, dict):
        raise ResultError("The result must be an object mapping field names to values.")
    fields = {f["name"]: f for f in schema.get("fields", [])}
    errors: dict[str, str] = {}
    for name in result:
        if name not in fields:
            errors[str(name)[:64]] = "is not a field of this project's schema"
    out: dict[str, Any] = {}
    for name, field in fields.items():
        value = result.get(name)
        empty = value is None or value == [] or value == {} or value == ""
        if empty:
            if field.get("required") and not draft:
                errors[name] = "is required"
            continue
        ftype = field["type"]
        if ftype == "choice":
            options = field["options"]
            if field.get("multiple"):
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    errors[name] = "must be a list of options"
                elif bad := [v for v in value if v not in options]:
                    errors[name] = f"{bad[0]!r} is not one of {', '.join(options)}"
                elif len(set(value)) != len(value):
                    errors[name] = "lists an option twice"
                else:
                    out[name] = [o for o in options if o in value]  # schema order, predictable
            elif not isinstance(value, str) or value not in options:
                errors[name] = f"must be one of {', '.join(options)}"
            else:
                out[name] = value
        elif ftype == "spans":
            out[name] = _check_spans(value, field, text, name, errors)
        elif ftype == "text":
            if not isinstance(value, str):
                errors[name] = "must be a string"
            elif len(value) > MAX_TEXT_LENGTH:
                errors[name] = f"is longer than {MAX_TEXT_LENGTH} characters"
            else:
                out[name] = value
        elif ftype == "rating":
            lo, hi = field["scale"]
            if not isinstance(value, dict):
                errors[name] = "must map each criterion to a score"
                continue
            scores = {}
            for criterion, score in value.items():
                if criterion not in field["criteria"]:
                    errors[name] = f"{criterion!r} is not one of {', '.join(field['criteria'])}"
                elif not isinstance(score, int) or isinstance(score, bool) or not lo <= score <= hi:
                    errors[name] = f"score for {criterion!r} must be an integer from {lo} to {hi}"
                else:
                    scores[criterion] = score
            if field.get("required") and not draft and name not in errors:
                missing = [c for c in field["criteria"] if c not in scores]
                if missing:
                    errors[name] = f"needs a score for {', '.join(missing)}"
            out[name] = {c: scores[c] for c in field["criteria"] if c in scores}
        elif ftype == "pairwise":
            if not isinstance(value, dict) or value.get("choice") not in PAIRWISE_CHOICES:
                errors[name] = f'must be {{"choice": one of {", ".join(PAIRWISE_CHOICES)}, "reason": "..."}}'
                continue
            reason = value.get("reason", "")
            if not isinstance(reason, str) or len(reason) > MAX_TEXT_LENGTH:
                errors[name] = "reason must be a string"
                continue
            extra = set(value) - {"choice", "reason"}
            if extra:
                errors[name] = f"unknown keys: {', '.join(sorted(map(str, extra)))}"
                continue
            out[name] = {"choice": value["choice"], "reason": reason} if reason else {"choice": value["choice"]}
    if errors:
        first = next(iter(errors.items()))
        raise ResultError(f"Invalid result: {first[0]} {first[1]}.", fields=errors)
    return out


DEMO_SCHEMA: dict = {
    "fields": [
        {
            "name": "topic",
            "type": "choice",
            "options": ["politics", "business", "technology", "science", "health", "sports"],
            "required": True,
        },
        {"name": "tags", "type": "choice", "options": ["breaking", "opinion", "analysis"], "multiple": True},
        {"name": "entities", "type": "spans", "labels": ["PERSON", "ORG", "LOC"]},
        {"name": "answer", "type": "text", "prefill": "payload.response", "title": "Correct the model's summary"},
        {"name": "quality", "type": "rating", "criteria": ["relevance", "coherence", "safety"], "scale": [1, 5]},
        {"name": "better", "type": "pairwise", "between": ["payload.response_a", "payload.response_b"]},
    ]
}
