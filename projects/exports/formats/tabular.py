"""CSV: one row per task (per annotation in raw mode), one column per schema field.

Cell encoding, so a reader can split cells back without guessing:

- choice: the option; several options (``multiple``) joined with ``|`` in schema option order;
- spans: ``start:end:LABEL`` items sorted by (start, end, label), joined with ``|``;
- text: the text as is;
- rating: one column per criterion, named ``field.criterion``;
- pairwise: ``field`` holds a, b, tie or both_bad, ``field.reason`` the reason.

Fixed columns: ``task_id, external_id, text`` first; ``annotator`` after them in raw mode;
``label_source, confidence, is_gold`` last. Cells use the csv module's default dialect (RFC 4180
quoting, ``\\r\\n`` line ends), UTF-8 without BOM.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def columns(ctx) -> list[str]:
    cols = ["task_id", "external_id", "text"]
    if ctx.options.mode == "raw":
        cols.append("annotator")
    for field in ctx.schema.get("fields", []):
        if field["type"] == "rating":
            cols += [f"{field['name']}.{c}" for c in field.get("criteria", [])]
        elif field["type"] == "pairwise":
            cols += [field["name"], f"{field['name']}.reason"]
        else:
            cols.append(field["name"])
    return cols + ["label_source", "confidence", "is_gold"]


def cells(field: dict, value: Any) -> list[Any]:
    kind = field["type"]
    if kind == "rating":
        value = value or {}
        return [value.get(c, "") for c in field.get("criteria", [])]
    if kind == "pairwise":
        value = value or {}
        return [value.get("choice", ""), value.get("reason", "")]
    if value is None:
        return [""]
    if kind == "spans":
        items = sorted((s["start"], s["end"], s["label"]) for s in value)
        return ["|".join(f"{a}:{b}:{label}" for a, b, label in items)]
    if kind == "choice" and isinstance(value, list):
        order = {option: i for i, option in enumerate(field.get("options", []))}
        return ["|".join(sorted(value, key=lambda v: (order.get(v, len(order)), v)))]
    return [value]


def csv_row(record: dict, ctx, fields: list[dict] | None = None, raw: bool | None = None) -> list[Any]:
    row: list[Any] = [record["task_id"], record["article"]["external_id"], record["text"]]
    if ctx.options.mode == "raw" if raw is None else raw:
        row.append(record["annotation"]["annotator"])
    label = record.get("label") or {}
    for field in ctx.schema.get("fields", []) if fields is None else fields:
        row += cells(field, label.get(field["name"]))
    confidence = record.get("confidence")
    row += [record.get("label_source", ""), "" if confidence is None else confidence, int(record["is_gold"])]
    return row


def _quoted(value: Any) -> str:
    """One cell exactly as ``csv.writer`` (default dialect) writes it: None as empty, floats by
    ``repr``, quoted (with ``"`` doubled) when it holds a comma, a quote, CR or LF."""
    kind = value.__class__
    if kind is str:
        text = value
    elif value is None:
        return ""
    elif kind is int or kind is bool:
        return str(value)  # digits, True, False: nothing to quote
    elif kind is float:
        return repr(value)  # digits, ".", "e", "-", "+", inf, nan: nothing to quote
    else:
        text = repr(value) if isinstance(value, float) else str(value)
    if '"' in text:
        return '"' + text.replace('"', '""') + '"'
    if "," in text or "\n" in text or "\r" in text:
        return '"' + text + '"'
    return text


def csv_line(row: list[Any]) -> str:
    """A row as ``csv.writer`` writes it (``\r\n`` line end), several times faster for long texts."""
    if len(row) == 1 and row[0] in ("", None):
        return '""\r\n'  # csv.writer quotes a lone empty cell, so the line is not blank
    return ",".join(map(_quoted, row)) + "\r\n"


def write_csv(records: Iterable[dict], ctx) -> Iterator[bytes]:
    fields, raw = ctx.schema.get("fields", []), ctx.options.mode == "raw"
    lines = [csv_line(columns(ctx))]
    held = 0
    for record in records:
        ctx.rows += 1
        line = csv_line(csv_row(record, ctx, fields, raw))
        lines.append(line)
        held += len(line)
        if held > 65_536:
            yield "".join(lines).encode()
            lines, held = [], 0
    yield "".join(lines).encode()
