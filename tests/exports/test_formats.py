"""Every format against a hand-checked expected file (task and annotation ids substituted)."""

from __future__ import annotations

import os

import pytest

from projects.exports.filters import parse_options
from projects.exports.formats import FORMAT_NAMES
from projects.exports.services import export_stream
from tests.exports.conftest import EXPECTED

pytestmark = pytest.mark.django_db

CASES = [
    ("jsonl", {}, "native.jsonl"),
    ("json", {}, "native.json"),
    ("jsonl", {"mode": "raw"}, "raw.jsonl"),
    ("csv", {}, "consolidated.csv"),
    ("csv", {"mode": "raw"}, "raw.csv"),
    ("conll", {}, "consolidated.conll"),
    ("label-studio", {}, "label-studio.json"),
    ("hf", {}, "hf.jsonl"),
    ("preference", {}, "preference.jsonl"),
    ("preference", {"ties": "include"}, "preference-ties.jsonl"),
    ("sft", {}, "sft.jsonl"),
    ("reward", {}, "reward.jsonl"),
    ("spacy", {}, "spacy.jsonl"),
]


def render(project, fmt: str, params: dict) -> bytes:
    options = parse_options({"format": fmt, **params}, formats=FORMAT_NAMES)
    return b"".join(export_stream(project=project, options=options))


@pytest.mark.parametrize(("fmt", "params", "expected"), CASES, ids=[c[2] for c in CASES])
def test_format_matches_expected_file(dataset, fmt, params, expected):
    got = render(dataset.project, fmt, params)
    if os.environ.get("EXPORT_WRITE_EXPECTED"):  # regenerate, then check the diff by hand
        (EXPECTED / expected).write_bytes(got)
    assert got == dataset.expected(expected)
