"""Backup and restore as docs/operations.md describes it: pg_dump a filled database, pg_restore it
into a fresh one, and check every table's rows and the export endpoint's bytes are identical."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from django.conf import settings
from django.db import connection, connections
from rest_framework.test import APIClient

from projects.assignment.services import task_next_for_user
from tests.api.test_permissions import build_world

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL (pg_dump/pg_restore); SQLite: see docs"),
    pytest.mark.skipif(not shutil.which("pg_dump"), reason="needs the pg_dump and pg_restore client programs"),
]


def _pg_env() -> dict[str, str]:
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        PGHOST=str(db.get("HOST") or "127.0.0.1"),
        PGPORT=str(db.get("PORT") or 5432),
        PGUSER=str(db.get("USER") or "postgres"),
    )
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return env


def _run(*args: str) -> str:
    result = subprocess.run(args, env=_pg_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"
    return result.stdout


def _rows(dbname: str) -> dict[str, str]:
    """Every table's rows, in primary-key order, as psql prints them: a deterministic dump."""
    tables = _run(
        "psql",
        "-d",
        dbname,
        "-At",
        "-c",
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
    ).split()
    return {table: _run("psql", "-d", dbname, "-At", "-c", f'SELECT * FROM "{table}" ORDER BY 1') for table in tables}


def _export(project_id: int, user) -> bytes:
    client = APIClient()
    client.force_authenticate(user)
    chunks = []
    for fmt, mode in (("jsonl", "raw"), ("jsonl", "consolidated"), ("csv", "raw")):
        response = client.get(f"/api/v1/projects/{project_id}/export/", {"format": fmt, "mode": mode})
        assert response.status_code == 200, response.content
        chunks.append(b"".join(response.streaming_content))
    return b"\n--\n".join(chunks)


def _fill() -> tuple:
    world = build_world()
    annotator = world.users["annotator"]
    client = APIClient()
    client.force_authenticate(annotator)
    text = world.task.text
    response = client.post(
        f"/api/v1/tasks/{world.task.pk}/annotations/",
        {"result": {"topic": "business", "entities": [{"start": 0, "end": 4, "label": "ORG", "text": text[:4]}]}},
        format="json",
    )
    assert response.status_code == 201
    for role in ("reviewer", "manager"):
        assignment = task_next_for_user(project=world.project, user=world.users[role])
        reply = APIClient()
        reply.force_authenticate(world.users[role])
        reply.post(f"/api/v1/tasks/{assignment.task_id}/annotations/", {"result": {"topic": "science"}}, format="json")
    return world.project, world.users["admin"]


def test_pg_dump_and_restore_give_identical_rows_and_export_bytes(transactional_db, tmp_path):
    project, admin = _fill()
    source = connection.settings_dict["NAME"]
    restored = f"{source}_restored"
    dump = tmp_path / "annotator.dump"
    export_before = _export(project.pk, admin)
    assert b"business" in export_before

    _run("pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={dump}", source)
    _run("dropdb", "--if-exists", restored)
    _run("createdb", restored)
    try:
        _run("pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={restored}", str(dump))
        assert _rows(restored) == _rows(source)

        # Same code, pointed at the restored database: the export must be byte for byte the same.
        connections["default"].close()
        connection.settings_dict["NAME"] = restored
        try:
            export_after = _export(project.pk, admin)
        finally:
            connections["default"].close()
            connection.settings_dict["NAME"] = source
        assert export_after == export_before
    finally:
        connections["default"].close()
        _run("dropdb", "--if-exists", restored)
