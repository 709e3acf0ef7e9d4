"""Settings come from the environment through typed helpers that reject bad values."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from annotator.env import env_bool, env_int, env_list, env_str

ROOT = Path(__file__).resolve().parents[2]


def test_env_bool_rejects_garbage(monkeypatch):
    monkeypatch.setenv("X_FLAG", "yes")
    assert env_bool("X_FLAG") is True
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env_bool("X_FLAG")


def test_env_int_checks_type_and_minimum(monkeypatch):
    monkeypatch.setenv("X_NUM", "12")
    assert env_int("X_NUM", 1) == 12
    monkeypatch.setenv("X_NUM", "twelve")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("X_NUM", 5, minimum=1)


def test_env_list_and_file_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env_list("X_LIST", []) == ["a", "b", "c"]
    secret = tmp_path / "key"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env_str("X_SECRET") == "s3cret"


def _import_settings(env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "SECRET_KEY_FILE", "DEBUG")}
    return subprocess.run(
        [sys.executable, "-c", "import annotator.settings as s; print(s.DATABASES['default']['ENGINE'])"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_secret_key():
    result = _import_settings({"DEBUG": "false"})
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_default_database_is_sqlite_and_dev_generates_a_key():
    result = _import_settings({"DEBUG": "true", "DATABASE_URL": ""})
    assert result.returncode == 0, result.stderr
    assert "sqlite3" in result.stdout
