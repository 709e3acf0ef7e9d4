"""Import synthetic articles end to end through the API (gunicorn + token): articles/s and peak RSS.

``python -m bench import_articles --n 20000 [--sizes 2000,20000] [--dbs sqlite,postgres] [--repeat 3]``.
For each database (a fresh SQLite file; PostgreSQL when DATABASE_URL points at one) and size it
migrates, creates a project and a token, starts gunicorn (one sync worker) on a loopback port and,
when REDIS_URL is set, a Celery worker (solo pool); otherwise the job runs eagerly in the web
process. It uploads a JSONL file of ``projects.documents.synthetic.articles`` (the data of
shared/data/gen_articles.py), polls the job until it finishes, and reports the median articles/s
(upload start to job finished) and the peak RSS (VmHWM) of the web worker and of the Celery worker.
Processes are restarted per size, so each peak belongs to one import.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.util import free_port, median

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SETUP = """
from django.contrib.auth import get_user_model
from projects.core.services import project_create, token_create
user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True})
project = project_create(actor=user, name="bench import", label_schema={"fields": [{"name": "t", "type": "text"}]})
_, key = token_create(user=user, name="bench")
print(project.pk, key)
"""


def _arg(extra: list[str], name: str, default: str) -> str:
    return extra[extra.index(name) + 1] if name in extra else default


def _hwm_mb(pid: int) -> float:
    """Peak RSS of a process and its children (VmHWM), in MB."""
    peaks = 0.0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks = max(peaks, int(line.split()[1]) / 1024)
        except FileNotFoundError:
            pass
    return round(peaks, 1)


def _children(pid: int) -> list[int]:
    try:
        out = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    kids = [int(k) for k in out]
    return kids + [g for k in kids for g in _children(k)]


def _write_jsonl(path: Path, n: int) -> int:
    from projects.documents.synthetic import articles

    with open(path, "w", encoding="utf-8") as fh:
        for article in articles(n):
            fh.write(json.dumps(article) + "\n")
    return path.stat().st_size


def _one(env: dict, n: int, data: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SETUP], cwd=ROOT, env=env, capture_output=True, text=True
    )
    project_id, key = out.stdout.split()[-2:]
    port = free_port()
    web = subprocess.Popen(
        [str(BIN / "gunicorn"), "annotator.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1", "--timeout", "900"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    if env.get("REDIS_URL"):
        worker = subprocess.Popen(
            [str(BIN / "celery"), "-A", "annotator", "worker", "--pool", "solo", "-l", "WARNING"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Token {key}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=900) as client:
            for _ in range(200):
                try:
                    if client.get("/healthz").status_code < 500:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            start = time.perf_counter()
            with open(data, "rb") as fh:
                response = client.post(f"/api/v1/projects/{project_id}/imports/", files={"file": ("a.jsonl", fh)})
            assert response.status_code == 202, response.text[:300]
            job = response.json()
            while job["status"] in ("queued", "running"):
                time.sleep(0.05)
                job = client.get(f"/api/v1/projects/{project_id}/imports/{job['id']}/").json()
            seconds = time.perf_counter() - start
        assert job["status"] == "succeeded" and job["rows_created"] == n, job
        return {
            "seconds": seconds,
            "web_peak_mb": _hwm_mb(web.pid),
            "worker_peak_mb": _hwm_mb(worker.pid) if worker else None,
        }
    finally:
        for proc in (web, worker):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)


def run(options) -> list[dict]:
    sizes = [int(s) for s in _arg(options.extra, "--sizes", str(options.n or 2000)).split(",")]
    dbs = _arg(options.extra, "--dbs", "sqlite,postgres").split(",")
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        base_env = {
            **os.environ,
            "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-secret-key-not-for-production-0123456789"),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "MEDIA_ROOT": str(tmp / "media"),
            "IMPORT_MAX_UPLOAD_BYTES": str(8 * 1024**3),
            "LOG_LEVEL": "WARNING",
        }
        for db in dbs:
            if db == "postgres":
                url = os.environ.get("DATABASE_URL", "")
                if not url.startswith("postgres"):
                    continue
            else:
                url = f"sqlite:///{tmp / 'bench.sqlite3'}"
            env = {**base_env, "DATABASE_URL": url}
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
            for n in sizes:
                data = tmp / f"articles-{n}.jsonl"
                size = data.stat().st_size if data.exists() else _write_jsonl(data, n)
                runs = [_one(env, n, data) for _ in range(options.repeat)]
                t = median([r["seconds"] for r in runs])
                results.append(
                    {
                        "db": db,
                        "articles": n,
                        "mb": round(size / 1e6, 1),
                        "celery": "worker" if env.get("REDIS_URL") else "eager",
                        "seconds_median": round(t, 2),
                        "articles_per_s": round(n / t),
                        "web_peak_mb": median([r["web_peak_mb"] for r in runs]),
                        "worker_peak_mb": median([r["worker_peak_mb"] for r in runs]) if env.get("REDIS_URL") else None,
                    }
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results
