"""Production settings refuse unsafe configurations: no key, a known key, deploy-check warnings."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SECRET_KEY", "DEBUG", "DJANGO_"))}
    base.pop("DATABASE_URL", None)
    base.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "annotator.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_refuses_to_start_without_secret_key_when_debug_is_off():
    result = run_manage("check", DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_empty_secret_key_file_is_refused(tmp_path):
    empty = tmp_path / "key"
    empty.write_text("\n")
    result = run_manage("check", DEBUG="false", SECRET_KEY_FILE=str(empty))
    assert result.returncode != 0 and "SECRET_KEY is required" in result.stderr


def test_no_secret_key_is_hard_coded_in_the_source():
    """No literal SECRET_KEY value ships in the code (test settings are the one exception)."""
    literal = re.compile(r"""SECRET_KEY\s*=\s*[rbf]?["']|env_str\(\s*["']SECRET_KEY["']\s*,""")
    offenders = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in [*ROOT.joinpath("annotator").rglob("*.py"), *ROOT.joinpath("projects").rglob("*.py")]
        for line in path.read_text().splitlines()
        if literal.search(line)
    ]
    assert not offenders


def test_debug_key_is_random_per_process():
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    keys = {run_manage("shell", "-c", code, DEBUG="true").stdout.strip() for _ in range(2)}
    assert len(keys) == 2 and all(len(k) >= 50 for k in keys)


@pytest.mark.slow
def test_check_deploy_is_clean_with_production_settings():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="annotator.example.com",
        SESSION_COOKIE_SECURE="true",
        CSRF_COOKIE_SECURE="true",
        SECURE_SSL_REDIRECT="true",
        SECURE_HSTS_SECONDS="31536000",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_flags_an_insecure_production_config():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50)
    )
    assert result.returncode != 0
    assert "security.W004" in result.stderr  # no HSTS: the check does catch a missing hardening
