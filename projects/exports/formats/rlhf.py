"""RLHF formats from one annotation record: preference pairs, SFT pairs and reward scores.

The prompt is ``payload.prompt`` when the task has one, else the task text.

- ``preference``: for each pairwise field, ``{"task_id", "prompt", "chosen", "rejected", "field",
  "choice", "reason"}`` where the responses are the payload values the field's ``between`` paths
  name. ``tie`` and ``both_bad`` have no chosen response: they are left out by default; with
  ``ties=include`` they are written with ``chosen``/``rejected`` as response a/b in order and
  ``choice`` saying which case it is, so a trainer can filter on it.
- ``sft``: ``{"task_id", "prompt", "response", "source"}``. The response is, first, a text
  field's value when the annotator changed its prefill (``source: "corrected"``, with
  ``original`` and a unified ``diff``); else the chosen side of a pairwise field
  (``"chosen"``); else a text field's value (``"text"``); tasks with none are skipped.
- ``reward``: ``{"task_id", "prompt", "response", "scores"}`` with ``scores`` mapping each rating
  criterion to its score (``field.criterion`` when the schema has several rating fields); the
  response is ``payload.response`` or the first text field's value.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator

from projects.exports.formats.common import dumpline, payload_value, prompt_of


def _base(record: dict) -> dict:
    row = {"task_id": record["task_id"], "prompt": prompt_of(record)}
    if "annotation" in record:
        row["annotator"] = record["annotation"]["annotator"]
    return row


def write_preference(records: Iterable[dict], ctx) -> Iterator[bytes]:
    fields = ctx.fields_of("pairwise")
    include_ties = ctx.options.ties == "include"
    for record in records:
        label = record.get("label") or {}
        for field in fields:
            value = label.get(field["name"]) or {}
            choice = value.get("choice")
            a, b = (payload_value(record, path) for path in field.get("between", [None, None]))
            if choice == "a":
                chosen, rejected = a, b
            elif choice == "b":
                chosen, rejected = b, a
            elif choice in ("tie", "both_bad") and include_ties:
                chosen, rejected = a, b
            else:
                continue
            ctx.rows += 1
            row = {**_base(record), "chosen": chosen, "rejected": rejected, "field": field["name"]}
            yield dumpline({**row, "choice": choice, "reason": value.get("reason", "")})


def write_sft(records: Iterable[dict], ctx) -> Iterator[bytes]:
    text_fields = ctx.fields_of("text")
    pair_fields = ctx.fields_of("pairwise")
    for record in records:
        label = record.get("label") or {}
        row = None
        for field in text_fields:
            original = payload_value(record, field.get("prefill"))
            value = label.get(field["name"])
            if isinstance(value, str) and isinstance(original, str) and value != original:
                lines = difflib.unified_diff(
                    original.splitlines(), value.splitlines(), "original", "corrected", lineterm=""
                )
                diff = "\n".join(lines) + "\n"
                row = {"response": value, "source": "corrected", "original": original, "diff": diff}
                break
        if row is None:
            for field in pair_fields:
                choice = (label.get(field["name"]) or {}).get("choice")
                if choice in ("a", "b"):
                    path = field["between"][0 if choice == "a" else 1]
                    row = {"response": payload_value(record, path), "source": "chosen"}
                    break
        if row is None:
            for field in text_fields:
                if isinstance(label.get(field["name"]), str):
                    row = {"response": label[field["name"]], "source": "text"}
                    break
        if row is None:
            continue
        ctx.rows += 1
        yield dumpline({**_base(record), **row})


def write_reward(records: Iterable[dict], ctx) -> Iterator[bytes]:
    rating_fields = ctx.fields_of("rating")
    text_fields = ctx.fields_of("text")
    several = len(rating_fields) > 1
    for record in records:
        label = record.get("label") or {}
        scores: dict = {}
        for field in rating_fields:
            for criterion, score in (label.get(field["name"]) or {}).items():
                scores[f"{field['name']}.{criterion}" if several else criterion] = score
        if not scores:
            continue
        response = (record.get("payload") or {}).get("response")
        if response is None and text_fields:
            response = label.get(text_fields[0]["name"])
        ctx.rows += 1
        yield dumpline({**_base(record), "response": response, "scores": scores})
