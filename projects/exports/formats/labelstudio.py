"""Label Studio JSON tasks: ``[{"id", "data": {"text", ...}, "annotations": [{"result": [...]}]}]``.

Each schema field maps to a result item with ``from_name`` = the field name, ``to_name`` = "text":

- choice → ``type: choices``, ``value: {"choices": [...]}``
- spans → one ``type: labels`` item per span, ``value: {"start", "end", "text", "labels": [label]}``
- text → ``type: textarea``, ``value: {"text": [text]}``
- rating → one ``type: rating`` item per criterion, ``from_name`` = ``field.criterion``
- pairwise → ``type: pairwise``, ``value: {"selected": "left" | "right"}``; tie / both_bad become
  ``type: choices`` on ``field`` with that word.

``data`` holds the text, the article's external id and the task payload's keys. In consolidated
mode the annotations are each annotator's effective result and the consolidated label is added as
a prediction with ``model_version: "consolidated"`` and its confidence as ``score``.
``completed_by`` is ``{"username": ...}`` (Label Studio's converter accepts an id or an object).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from projects.exports.formats.common import dumps
from projects.exports.selectors import effective_result


def ls_result(result: dict, schema: dict) -> list[dict]:
    items: list[dict[str, Any]] = []

    def item(name: str, kind: str, value: dict, n: int = 0) -> None:
        items.append(
            {
                "id": f"{name}-{n}",
                "from_name": name,
                "to_name": "text",
                "type": kind,
                "value": value,
                "origin": "manual",
            }
        )

    for field in schema.get("fields", []):
        name, kind = field["name"], field["type"]
        value = result.get(name)
        if value is None:
            continue
        if kind == "choice":
            item(name, "choices", {"choices": value if isinstance(value, list) else [value]})
        elif kind == "spans":
            for n, span in enumerate(sorted(value, key=lambda s: (s["start"], s["end"], s["label"]))):
                span_value = {"start": span["start"], "end": span["end"], "text": span.get("text", "")}
                item(name, "labels", {**span_value, "labels": [span["label"]]}, n)
        elif kind == "text":
            item(name, "textarea", {"text": [value]})
        elif kind == "rating":
            for criterion in field.get("criteria", []):
                if value.get(criterion) is not None:
                    item(f"{name}.{criterion}", "rating", {"rating": value[criterion]})
        elif kind == "pairwise":
            choice = value.get("choice")
            if choice in ("a", "b"):
                item(name, "pairwise", {"selected": "left" if choice == "a" else "right"})
            elif choice:
                item(name, "choices", {"choices": [choice]})
    return items


def ls_task(record: dict, schema: dict) -> dict:
    payload = record.get("payload") or {}
    data = {**{k: v for k, v in payload.items() if k != "text"}, "text": record["text"]}
    data["external_id"] = record["article"]["external_id"]
    annotations = []
    for ann in record["annotations"]:
        annotations.append(
            {
                "id": ann["id"],
                "completed_by": {"username": ann["annotator"]},
                "result": ls_result(effective_result(ann), schema),
                "was_cancelled": False,
                "ground_truth": bool(record["is_gold"]),
                "created_at": ann["submitted_at"],
                "lead_time": ann["lead_time"],
                "review_state": ann["review_state"],
            }
        )
    task = {"id": record["task_id"], "data": data, "annotations": annotations, "predictions": []}
    if "annotation" not in record and record.get("label"):
        task["predictions"].append(
            {
                "model_version": "consolidated",
                "score": record.get("confidence"),
                "result": ls_result(record["label"], schema),
            }
        )
    task["meta"] = {"label_source": record.get("label_source"), "is_gold": record["is_gold"]}
    return task


def write_label_studio(records: Iterable[dict], ctx) -> Iterator[bytes]:
    yield b"["
    for record in records:
        ctx.rows += 1
        yield (b",\n" if ctx.rows > 1 else b"\n") + dumps(ls_task(record, ctx.schema))
    yield b"\n]\n"
