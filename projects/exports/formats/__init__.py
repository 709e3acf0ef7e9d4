"""Export formats: one small writer function per format.

A writer takes the task records from ``selectors.export_records`` (in task id order) and a
``FormatContext``, and yields the file as ``bytes`` pieces. It counts what it writes in
``ctx.rows`` and never adds timestamps or anything else that is not in the data, so the same
records always give the same bytes. ``FORMATS`` maps the ``?format=`` name to the writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from projects.exports.filters import ExportOptions
from projects.exports.formats import labelstudio, native, rlhf, spans, tabular


@dataclass
class FormatContext:
    schema: dict
    options: ExportOptions
    rows: int = 0
    tasks: int = 0
    annotations: int = 0
    extra: dict = field(default_factory=dict)

    def fields_of(self, *types: str) -> list[dict]:
        return [f for f in self.schema.get("fields", []) if f["type"] in types]


Writer = Callable[[Iterable[dict], FormatContext], Iterator[bytes]]


@dataclass(frozen=True)
class Format:
    name: str
    writer: Writer
    content_type: str
    extension: str
    description: str


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("jsonl", native.write_jsonl, "application/x-ndjson", "jsonl", "native records, one JSON per line"),
        Format("json", native.write_json, "application/json", "json", "native records in one JSON array"),
        Format("csv", tabular.write_csv, "text/csv; charset=utf-8", "csv", "one row per task, a column per field"),
        Format("conll", spans.write_conll, "text/plain; charset=utf-8", "conll", "IOB2 tags over whitespace tokens"),
        Format("spacy", spans.write_spacy, "application/x-ndjson", "jsonl", "spaCy JSONL: text, entities, cats"),
        Format("label-studio", labelstudio.write_label_studio, "application/json", "json", "Label Studio tasks"),
        Format("hf", native.write_hf, "application/x-ndjson", "jsonl", "flat JSONL for datasets.load_dataset"),
        Format("preference", rlhf.write_preference, "application/x-ndjson", "jsonl", "prompt, chosen, rejected"),
        Format("sft", rlhf.write_sft, "application/x-ndjson", "jsonl", "prompt, corrected or best response"),
        Format("reward", rlhf.write_reward, "application/x-ndjson", "jsonl", "prompt, response, scores"),
    )
}
FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)
