"""Native formats: ``jsonl`` / ``json`` (the whole record) and ``hf`` (flat, typed columns)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from projects.exports.formats.common import dump_record


def write_jsonl(records: Iterable[dict], ctx) -> Iterator[bytes]:
    """One record per line: task id, article, text, payload, every annotation with its review,
    and the consolidated label with its source and confidence."""
    for record in records:
        ctx.rows += 1
        yield dump_record(record) + b"\n"


def write_json(records: Iterable[dict], ctx) -> Iterator[bytes]:
    """The same records as one JSON array (one record per line inside it)."""
    yield b"["
    for record in records:
        ctx.rows += 1
        yield (b",\n" if ctx.rows > 1 else b"\n") + dump_record(record)
    yield b"\n]\n"


def hf_row(record: dict, ctx) -> dict:
    row = {
        "task_id": record["task_id"],
        "external_id": record["article"]["external_id"],
        "text": record["text"],
    }
    if "annotation" in record:
        row["annotator"] = record["annotation"]["annotator"]
    label = record.get("label") or {}
    for field in ctx.schema.get("fields", []):
        value = label.get(field["name"])
        if field["type"] == "spans":
            value = [
                {"start": s["start"], "end": s["end"], "label": s["label"], "text": s.get("text", "")}
                for s in value or []
            ]
        elif field["type"] == "choice" and field.get("multiple"):
            value = list(value or [])
        elif field["type"] == "rating":
            value = {c: (value or {}).get(c) for c in field.get("criteria", [])}
        elif field["type"] == "pairwise":
            value = {"choice": (value or {}).get("choice"), "reason": (value or {}).get("reason", "")}
        row[field["name"]] = value
    row["label_source"] = record.get("label_source")
    row["confidence"] = record.get("confidence")
    row["is_gold"] = record["is_gold"]
    return row


def write_hf(records: Iterable[dict], ctx) -> Iterator[bytes]:
    """Flat JSONL whose every row has the same keys and types, so ``datasets.load_dataset("json")``
    infers one schema: spans are lists of {start, end, label, text}, ratings structs per criterion,
    missing values null."""
    for record in records:
        ctx.rows += 1
        yield dump_record(hf_row(record, ctx)) + b"\n"


def dataset_card(*, project, job, ctx) -> str:
    """README.md for a Hugging Face dataset repository (written next to an ``hf`` snapshot)."""
    features = "\n".join(f"- `{f['name']}` ({f['type']})" for f in ctx.schema.get("fields", []))
    filters = "\n".join(f"- {k}: `{v}`" for k, v in sorted(job.filters.items()))
    return (
        "---\n"
        f"pretty_name: {project.name!r}\n"
        "configs:\n- config_name: default\n  data_files: data.jsonl\n"
        "---\n\n"
        f"# {project.name}\n\n{project.description}\n\n"
        f"Exported by Annotator (snapshot {job.pk}, mode `{job.mode}`).\n"
        f"Schema version {job.schema_version}, guidelines version {job.guidelines_version}.\n"
        f"Rows: {job.row_count}. SHA-256 of data.jsonl: `{job.sha256}`.\n\n"
        "## Columns\n- `task_id`, `external_id`, `text`\n"
        f"{features}\n- `label_source` (review, majority, single, annotation), `confidence`, `is_gold`\n\n"
        "## Filters\n"
        f"{filters}\n\n"
        "## Load\n```python\nfrom datasets import load_dataset\n"
        'ds = load_dataset("json", data_files="data.jsonl")\n```\n'
    )
