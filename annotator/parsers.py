"""The API's JSON parser (kept apart from ``annotator.api``, which DRF's settings would import
circularly while loading ``rest_framework.views``)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_JSON_DEPTH = 64


def _json_problem(data: Any) -> str | None:
    """Why parsed JSON is unacceptable (too deep, or strings that are not valid Unicode), or None.

    Iterative, so hostile nesting cannot overflow the stack here either.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth > MAX_JSON_DEPTH:
                return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
            stack.extend((k, depth) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            if depth > MAX_JSON_DEPTH:
                return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "JSON string with an unpaired surrogate escape (not valid Unicode)"
    return None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering 400 (not 500) for bodies that parse into trouble: nesting
    deep enough to exhaust the stack (RecursionError), more than ``MAX_JSON_DEPTH`` levels, lone
    surrogates that no database can store, and NaN/Infinity (not JSON)."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        try:
            data = json.loads(raw.decode(encoding), parse_constant=_refuse_constant)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        problem = _json_problem(data)
        if problem:
            raise ParseError(f"JSON parse error - {problem}")
        return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
