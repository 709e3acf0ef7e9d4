"""One parsed row -> the article, task and label values to store (pure module: no ORM).

Known keys: ``external_id``/``id``, ``title``/``headline``, the text (``text`` or the
``text_field`` option; ``content``/``body`` also work), ``source``, ``url``/``link``,
``published_at``/``published``/``date``, ``domain``, ``meta`` (an object), ``payload`` (an
object) plus the ``payload_fields`` keys, the skill and gold keys, ``priority``. Every other key
goes to ``meta``. A row without an id gets ``sha256:<hash of title and text>`` so the same file
imported twice matches the same articles.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from projects.core.exceptions import ValidationFailed
from projects.core.schema import validate_result
from projects.imports.errors import RowError
from projects.imports.foreign import doccano_result, labelstudio_result
from projects.imports.options import ImportOptions

MAX_TEXT_CHARS = 5_000_000
LIMITS = {"external_id": 255, "title": 1000, "source": 255, "url": 2000, "domain": 64}
ID_KEYS = ("external_id", "id")
TITLE_KEYS = ("title", "headline")
URL_KEYS = ("url", "link")
DATE_KEYS = ("published_at", "published", "date")
TEXT_ALIASES = ("text", "content", "body")
RESERVED = {"meta", "payload", "priority", "required_skill", "source", "domain"}
# Task.priority is a 32-bit integer column: a value beyond it is this row's error, never the batch's.
PRIORITY_MIN, PRIORITY_MAX = -(2**31), 2**31 - 1


@dataclass(slots=True)
class ArticleRow:
    external_id: str
    text: str
    title: str = ""
    source: str = ""
    url: str = ""
    published_at: datetime | None = None
    domain: str = ""
    meta: dict = field(default_factory=dict)
    payload: dict = field(default_factory=dict)
    skill: str = ""
    priority: int = 0
    gold: dict | None = None
    predictions: list[tuple[str, dict, float | None]] = field(default_factory=list)
    annotations: list[tuple[str, dict]] = field(default_factory=list)  # (completed_by email or "", result)

    @property
    def has_labels(self) -> bool:
        return bool(self.predictions or self.annotations)


def content_id(title: str, text: str) -> str:
    """A stable id from the normalized title and text (NFC, whitespace collapsed)."""
    norm = " ".join(unicodedata.normalize("NFC", f"{title}\n{text}").split())
    return "sha256:" + hashlib.sha256(norm.encode()).hexdigest()


def _string(data: dict, key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RowError(f"{key} must be a string, got {type(value).__name__}")
    value = str(value).strip()
    limit = LIMITS.get(key)
    if limit and len(value) > limit:
        raise RowError(f"{key} is longer than {limit} characters")
    if "\x00" in value:
        raise RowError(f"{key} contains a NUL character")
    return value


def _first(data: dict, keys: tuple[str, ...]) -> tuple[str | None, Any]:
    for key in keys:
        if key in data:
            return key, data[key]
    return None, None


def parse_date(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise RowError(f"published date must be an ISO 8601 string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RowError(f"published date {value[:40]!r} is not an ISO 8601 date (2025-01-31 or 2025-01-31T12:00Z)")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json_object(key: str, value: Any) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise RowError(f"{key} must be a JSON object") from None
    if not isinstance(value, dict):
        raise RowError(f"{key} must be an object")
    return value


def _validated(schema: dict, result: dict, *, text: str, payload: dict, what: str) -> dict:
    try:
        return validate_result(schema, result, text=text, payload=payload)
    except ValidationFailed as exc:
        raise RowError(f"{what}: {exc.message}") from None


def map_row(data: dict, *, fmt: str, options: ImportOptions, schema: dict, default_title: str = "") -> ArticleRow:
    """Map one parsed row to an ``ArticleRow``; raise ``RowError`` with a message naming the key."""
    extras: dict[str, Any] = {}
    if fmt == "labelstudio":
        task = data
        data = task.get("data")
        if not isinstance(data, dict):
            raise RowError('a Label Studio task needs a "data" object')
        if "id" not in data and "external_id" not in data and task.get("id") is not None:
            data = {**data, "id": task["id"]}
        if isinstance(task.get("meta"), dict):
            extras = dict(task["meta"])
    used: set[str] = set()

    text_key = options.text_field
    if text_key not in data and text_key == "text":
        text_key = next((k for k in TEXT_ALIASES if k in data), text_key)
    text = data.get(text_key)
    used.add(text_key)
    if text is None:
        raise RowError(f"no {options.text_field!r} field")
    if not isinstance(text, str):
        raise RowError(f"{text_key} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise RowError(f"{text_key} is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise RowError(f"{text_key} is longer than {MAX_TEXT_CHARS} characters")
    if "\x00" in text:
        raise RowError(f"{text_key} contains a NUL character")

    key, value = _first(data, TITLE_KEYS)
    used.add(key)
    title = _string(data, "title", value) or default_title[: LIMITS["title"]]
    key, value = _first(data, ID_KEYS)
    used.add(key)
    external_id = _string(data, "external_id", value) or content_id(title, text)
    key, value = _first(data, URL_KEYS)
    used.add(key)
    url = _string(data, "url", value)
    if url and not url.lower().startswith(("http://", "https://")):
        raise RowError(f"url {url[:80]!r} is not an http(s) URL")
    key, value = _first(data, DATE_KEYS)
    used.add(key)
    published_at = parse_date(value)
    row = ArticleRow(
        external_id=external_id,
        text=text,
        title=title,
        source=_string(data, "source", data.get("source")),
        url=url,
        published_at=published_at,
        domain=_string(data, "domain", data.get("domain")),
    )
    if "meta" in data:
        extras.update(_json_object("meta", data["meta"]))
    if "payload" in data:
        row.payload.update(_json_object("payload", data["payload"]))
    for name in options.payload_fields:
        if name in data:
            row.payload[name] = data[name]
            used.add(name)
    skill_key = options.skill_field or "required_skill"
    row.skill = options.skill or _string(data, "skill", data.get(skill_key))[:64]
    used.add(skill_key)
    if "priority" in data:
        try:
            row.priority = int(data["priority"])
        except (TypeError, ValueError):
            raise RowError("priority must be an integer") from None
        if not PRIORITY_MIN <= row.priority <= PRIORITY_MAX:
            raise RowError(f"priority must be from {PRIORITY_MIN} to {PRIORITY_MAX}")
    split = options.split != "none"
    gold = data.get(options.gold_field)
    used.add(options.gold_field)
    if gold not in (None, ""):
        if split:
            raise RowError("gold answers need one task per article (split is on)")
        row.gold = _validated(schema, _json_object("gold", gold), text=text, payload=row.payload, what="gold")

    if fmt == "labelstudio":
        _labelstudio_labels(task, row, options=options, schema=schema, split=split)
    elif fmt == "doccano":
        key, label = _first(data, ("label", "labels"))
        used.add(key)
        if label:
            if split:
                raise RowError("labels need one task per article (split is on)")
            result = _validated(
                schema, doccano_result(label, schema), text=text, payload=row.payload, what="doccano label"
            )
            if options.labels_as == "predictions":
                row.predictions.append((options.model_version, result, None))
            else:
                row.annotations.append(("", result))

    for key, value in data.items():
        if key not in used and key not in RESERVED:
            extras[key] = value
    row.meta = extras
    return row


def _labelstudio_labels(task: dict, row: ArticleRow, *, options: ImportOptions, schema: dict, split: bool) -> None:
    predictions = task.get("predictions") or []
    annotations = task.get("annotations") or task.get("completions") or []
    if not isinstance(predictions, list) or not isinstance(annotations, list):
        raise RowError("predictions and annotations must be lists")
    if (predictions or annotations) and split:
        raise RowError("labels need one task per article (split is on)")
    for i, prediction in enumerate(predictions):
        if not isinstance(prediction, dict):
            raise RowError(f"predictions[{i}] must be an object")
        result = _validated(
            schema,
            labelstudio_result(prediction.get("result", []), schema),
            text=row.text,
            payload=row.payload,
            what=f"predictions[{i}]",
        )
        version = str(prediction.get("model_version") or options.model_version)[:200]
        score = prediction.get("score")
        row.predictions.append((version, result, float(score) if isinstance(score, int | float) else None))
    for i, annotation in enumerate(annotations):
        if not isinstance(annotation, dict):
            raise RowError(f"annotations[{i}] must be an object")
        if annotation.get("was_cancelled"):
            continue
        result = _validated(
            schema,
            labelstudio_result(annotation.get("result", []), schema),
            text=row.text,
            payload=row.payload,
            what=f"annotations[{i}]",
        )
        who = annotation.get("completed_by")
        email = who.get("email", "") if isinstance(who, dict) else (who if isinstance(who, str) else "")
        row.annotations.append((str(email), result))


BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")


def paragraphs(text: str) -> list[tuple[int, int]]:
    """[start, end) of each paragraph (blocks separated by blank lines), whitespace trimmed."""
    out: list[tuple[int, int]] = []
    bounds = [0]
    for match in BLANK_LINE.finditer(text):
        bounds += [match.start(), match.end()]
    bounds.append(len(text))
    for start, end in zip(bounds[::2], bounds[1::2], strict=True):
        chunk = text[start:end]
        stripped = chunk.strip()
        if stripped:
            start += len(chunk) - len(chunk.lstrip())
            out.append((start, start + len(stripped)))
    return out
