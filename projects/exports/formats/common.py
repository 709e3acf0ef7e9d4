"""Helpers shared by writers: fast, stable JSON and payload paths."""

from __future__ import annotations

from typing import Any

import orjson

# Keys sorted: PostgreSQL's jsonb reorders object keys and SQLite keeps them as written, so only
# sorted keys give the same bytes on both (and across a dump and restore).
_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON with sorted keys."""
    return orjson.dumps(value, option=_OPTS)


def dumpline(value: Any) -> bytes:
    return orjson.dumps(value, option=_OPTS | orjson.OPT_APPEND_NEWLINE)


def dump_record(record: dict) -> bytes:
    """A record with ``task_id`` first (for people reading the file and resuming it), then sorted keys."""
    rest = orjson.dumps({k: v for k, v in record.items() if k != "task_id"}, option=_OPTS)
    return b'{"task_id":%d,' % record["task_id"] + rest[1:]


def payload_value(record: dict, path: str | None) -> Any:
    """The value at ``payload.a.b`` in the task payload, or None."""
    if not path:
        return None
    value: Any = record.get("payload") or {}
    for part in path.split(".")[1:]:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def prompt_of(record: dict) -> str:
    """The prompt of an RLHF task: ``payload.prompt`` when present, else the task text."""
    prompt = (record.get("payload") or {}).get("prompt")
    return prompt if isinstance(prompt, str) else record["text"]
