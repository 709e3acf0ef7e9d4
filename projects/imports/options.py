"""Import options, validated once when the job is created (pure module)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from projects.core.exceptions import ValidationFailed

SPLIT_CHOICES = ("none", "paragraph")
LABELS_AS_CHOICES = ("annotations", "predictions")
DEFAULT_PAYLOAD_FIELDS = ["response", "response_a", "response_b"]


@dataclass
class ImportOptions:
    text_field: str = "text"  # the key (or CSV column) holding the article text
    split: str = "none"  # "none": one task per article; "paragraph": one task per paragraph
    skill: str = ""  # a required skill for every task...
    skill_field: str = ""  # ...or the key/column holding each row's required skill
    gold_field: str = "gold"  # the key/column holding a gold answer (marks the task gold)
    payload_fields: list[str] = field(default_factory=lambda: list(DEFAULT_PAYLOAD_FIELDS))
    labels_as: str = "annotations"  # doccano labels become annotations (by the importer) or predictions
    model_version: str = "import"  # model version for predictions that name none
    all_or_nothing: bool = False
    batch_size: int = 2000

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> ImportOptions:
        """Validate a dict of options (from JSON or form fields); unknown keys are an error."""
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)}
        errors: dict[str, str] = {}
        for key in set(raw) - known:
            errors[key] = "unknown option"
        out = cls()
        for key in ("text_field", "skill", "skill_field", "gold_field", "model_version"):
            if key in raw:
                value = raw[key]
                if not isinstance(value, str) or len(value) > 200:
                    errors[key] = "must be a string of at most 200 characters"
                else:
                    setattr(out, key, value.strip())
        if not out.text_field:
            errors["text_field"] = "must not be empty"
        if not out.model_version:
            out.model_version = "import"
        if len(out.skill) > 64:
            errors["skill"] = "must be at most 64 characters"
        if "split" in raw:
            if raw["split"] not in SPLIT_CHOICES:
                errors["split"] = f"must be one of {', '.join(SPLIT_CHOICES)}"
            else:
                out.split = raw["split"]
        if "labels_as" in raw:
            if raw["labels_as"] not in LABELS_AS_CHOICES:
                errors["labels_as"] = f"must be one of {', '.join(LABELS_AS_CHOICES)}"
            else:
                out.labels_as = raw["labels_as"]
        if "payload_fields" in raw:
            value = raw["payload_fields"]
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 100 for v in value):
                errors["payload_fields"] = "must be a list of key names"
            elif len(value) > 50:
                errors["payload_fields"] = "at most 50 keys"
            else:
                out.payload_fields = value
        if "all_or_nothing" in raw:
            value = raw["all_or_nothing"]
            if isinstance(value, str):
                value = {"true": True, "1": True, "on": True, "false": False, "0": False, "off": False, "": False}.get(
                    value.lower(), value
                )
            if not isinstance(value, bool):
                errors["all_or_nothing"] = "must be true or false"
            else:
                out.all_or_nothing = value
        if "batch_size" in raw:
            try:
                value = int(raw["batch_size"])
            except (TypeError, ValueError):
                value = 0
            if not 1 <= value <= 10000:
                errors["batch_size"] = "must be an integer from 1 to 10000"
            else:
                out.batch_size = value
        if out.skill and out.skill_field:
            errors["skill"] = "give either skill or skill_field, not both"
        if errors:
            first = next(iter(sorted(errors.items())))
            raise ValidationFailed(f"Invalid import option {first[0]}: {first[1]}.", fields=errors)
        return out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
