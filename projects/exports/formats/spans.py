"""Span formats: CoNLL (IOB2) and spaCy JSONL.

Tokenizer (CoNLL): a token is a maximal run of non-whitespace characters (``re.finditer(r"\\S+")``)
of the task text; punctuation stays attached to its word. A token takes the label of the first
span (by start) that overlaps it: ``B-LABEL`` on the first overlapping token of that span,
``I-LABEL`` on the next ones, ``O`` elsewhere. With several span fields, each gets a tag column
(schema order). Each task starts with a comment line ``# task_id = N`` and ends with a blank line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from projects.exports.formats.common import dumpline

TOKEN_RE = re.compile(r"\S+")


def tokenize(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in TOKEN_RE.finditer(text)]


def iob2(tokens: list[tuple[int, int, str]], spans: list[dict]) -> list[str]:
    tags = ["O"] * len(tokens)
    owner: list[int | None] = [None] * len(tokens)
    ordered = sorted(spans or [], key=lambda s: (s["start"], s["end"], s["label"]))
    for n, span in enumerate(ordered):
        for i, (start, end, _) in enumerate(tokens):
            if owner[i] is None and start < span["end"] and end > span["start"]:
                owner[i] = n
    for i, n in enumerate(owner):
        if n is not None:
            prefix = "I" if i > 0 and owner[i - 1] == n else "B"
            tags[i] = f"{prefix}-{ordered[n]['label']}"
    return tags


def write_conll(records: Iterable[dict], ctx) -> Iterator[bytes]:
    fields = ctx.fields_of("spans")
    for record in records:
        ctx.rows += 1
        tokens = tokenize(record["text"])
        label = record.get("label") or {}
        columns = [iob2(tokens, label.get(f["name"]) or []) for f in fields]
        lines = [f"# task_id = {record['task_id']}"]
        if "annotation" in record:
            lines.append(f"# annotator = {record['annotation']['annotator']}")
        for i, (_, _, token) in enumerate(tokens):
            lines.append("\t".join([token, *(col[i] for col in columns)]))
        yield ("\n".join(lines) + "\n\n").encode()


def write_spacy(records: Iterable[dict], ctx) -> Iterator[bytes]:
    """``{"text", "entities": [[start, end, label], ...], "cats": {option: 0/1}, "meta"}`` per line,
    the JSONL that spaCy projects convert to DocBin. Entities come from every span field; ``cats``
    from every choice field's options."""
    span_fields = ctx.fields_of("spans")
    choice_fields = ctx.fields_of("choice")
    for record in records:
        ctx.rows += 1
        label = record.get("label") or {}
        entities = sorted((s["start"], s["end"], s["label"]) for f in span_fields for s in (label.get(f["name"]) or []))
        cats: dict[str, float] = {}
        for field in choice_fields:
            chosen = label.get(field["name"])
            chosen = set(chosen) if isinstance(chosen, list) else {chosen}
            for option in field.get("options", []):
                cats[option] = 1.0 if option in chosen else 0.0
        meta = {"task_id": record["task_id"], "external_id": record["article"]["external_id"]}
        if "annotation" in record:
            meta["annotator"] = record["annotation"]["annotator"]
        yield dumpline({"text": record["text"], "entities": [list(e) for e in entities], "cats": cats, "meta": meta})
