"""Export options from query parameters (or a POST body), validated into one frozen value.

Malformed values raise ``ValidationFailed`` naming the parameter, rendered as a 400 with the
standard error body. ``as_dict()`` is the canonical form stored on snapshots and hashed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from projects.core.exceptions import ValidationFailed

STATUSES = ("submitted", "reviewed", "accepted")
MODES = ("consolidated", "raw")
GOLD = ("include", "exclude", "only")
TIES = ("exclude", "include")
CONSENSUS = ("majority", "dawid_skene")
MAX_ANNOTATORS = 200


@dataclass(frozen=True)
class ExportOptions:
    format: str = "jsonl"
    mode: str = "consolidated"
    status: str = "submitted"
    annotators: tuple[str, ...] = ()
    skill: str | None = None
    since: str | None = None  # ISO datetime, inclusive, on the annotation's submitted_at
    until: str | None = None  # ISO datetime, exclusive
    gold: str = "include"
    min_agreement: float | None = None
    ties: str = "exclude"  # preference format: tie / both_bad rows
    consensus: str = "majority"  # consolidated mode without a reviewed label: majority or dawid_skene

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["annotators"] = list(self.annotators)
        return data

    def filters_dict(self) -> dict[str, Any]:
        data = self.as_dict()
        data.pop("format")
        data.pop("mode")
        return data

    def params_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()

    @property
    def since_dt(self) -> datetime | None:
        return datetime.fromisoformat(self.since) if self.since else None

    @property
    def until_dt(self) -> datetime | None:
        return datetime.fromisoformat(self.until) if self.until else None


def _choice(params, name: str, allowed: tuple[str, ...], default: str, errors: dict) -> str:
    value = str(params.get(name) or default).strip().lower()
    if value not in allowed:
        errors[name] = f"must be one of {', '.join(allowed)} (got {value!r})"
        return default
    return value


def _when(params, name: str, errors: dict, *, end: bool = False) -> str | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    raw = str(raw).strip()
    try:
        day = parse_date(raw) if len(raw) == 10 else None
        if day is not None:
            # A bare date as ``until`` means "through that day".
            parsed = datetime.combine(day, time.min) + (timedelta(days=1) if end else timedelta(0))
        else:
            parsed = parse_datetime(raw)
    except ValueError:
        parsed = None
    if parsed is None:
        errors[name] = f"must be an ISO 8601 date or datetime such as 2026-01-31 (got {raw!r})"
        return None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed.astimezone(UTC).isoformat()


def _as_bool_gold(value: str) -> str:
    return {
        "true": "include",
        "1": "include",
        "yes": "include",
        "false": "exclude",
        "0": "exclude",
        "no": "exclude",
    }.get(value, value)


def parse_options(params, *, formats: tuple[str, ...]) -> ExportOptions:
    """Validate query parameters (a QueryDict or a plain dict) into ``ExportOptions``."""
    errors: dict[str, str] = {}
    fmt = _choice(params, "format", formats, "jsonl", errors)
    mode = _choice(params, "mode", MODES, "consolidated", errors)
    status = _choice(params, "status", STATUSES, "submitted", errors)
    gold_raw = _as_bool_gold(str(params.get("gold") or "include").strip().lower())
    gold = _choice({"gold": gold_raw}, "gold", GOLD, "include", errors)
    ties = _choice(params, "ties", TIES, "exclude", errors)
    consensus = _choice(params, "consensus", CONSENSUS, "majority", errors)

    raw_annotators = params.getlist("annotator") if hasattr(params, "getlist") else params.get("annotator") or []
    if isinstance(raw_annotators, str):
        raw_annotators = [raw_annotators]
    annotators = sorted({name.strip() for value in raw_annotators for name in str(value).split(",") if name.strip()})
    if len(annotators) > MAX_ANNOTATORS:
        errors["annotator"] = f"at most {MAX_ANNOTATORS} annotators"

    skill = str(params.get("skill") or "").strip() or None
    if skill is not None and len(skill) > 64:
        errors["skill"] = "must be at most 64 characters"

    since = _when(params, "since", errors)
    until = _when(params, "until", errors, end=True)
    if since and until and since >= until:
        errors["until"] = "must be later than since"

    min_agreement = None
    raw = params.get("min_agreement")
    if raw not in (None, ""):
        try:
            min_agreement = float(raw)
            if not 0.0 <= min_agreement <= 1.0:
                raise ValueError
        except (TypeError, ValueError):
            errors["min_agreement"] = f"must be a number between 0 and 1 (got {raw!r})"
            min_agreement = None

    if errors:
        first = next(iter(errors))
        raise ValidationFailed(f"Invalid export parameter {first}: {errors[first]}.", fields=errors)
    return ExportOptions(
        format=fmt,
        mode=mode,
        status=status,
        annotators=tuple(annotators),
        skill=skill,
        since=since,
        until=until,
        gold=gold,
        min_agreement=min_agreement,
        ties=ties,
        consensus=consensus,
    )


def parse_after(raw: Any) -> int:
    """The ``after`` task id of a resumed download (0 when absent)."""
    if raw in (None, ""):
        return 0
    try:
        value = int(str(raw))
    except ValueError:
        value = -1
    if value < 0:
        raise ValidationFailed(
            f"Invalid export parameter after: must be a task id (a non-negative integer), got {raw!r}.",
            fields={"after": "must be a non-negative integer"},
        )
    return value
