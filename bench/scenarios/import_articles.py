"""Import synthetic articles end to end through the API (gunicorn + token): articles/s and peak RSS.

``python -m bench import_articles --n 20000 [--sizes 2000,20000] [--dbs sqlite,postgres] [--repeat 3]``.
For each database (a fresh SQLite file; PostgreSQL when DATABASE_URL points at one) and size it
migrates, creates a project and a token, starts gunicorn (one sync worker) on a loopback port and,
when REDIS_URL is set, a Celery worker (solo pool); otherwise the job runs eagerly in the web
process. It uploads a JSONL file of ``projects.documents.synthetic.articles`` (the data of
shared/data/gen_articles.py), polls the job until it finishes, and reports the median articles/s
(upload start to job finished) and the peak RSS (VmHWM) of the web worker and of the Celery worker.
Processes are restarted per size, so each peak belongs to one import.

Phases: ``upload_s`` (POST until its 202: the upload streams to disk and is checked),
``queue_s`` (202 until the worker starts the job), and from the worker's log line the job's
``parse_s`` (read, parse and map rows) and ``db_write_s`` (COPY + upsert + commit). Load-independent
figures beside the wall clock: ``job_cpu_s`` (CPU seconds of the process that ran the job, the
Celery worker or the web worker when eager) and on PostgreSQL ``pg_cpu_s`` (CPU seconds of the
job's server backend, found by its ``application_name``), both read from ``/proc`` every 10 ms and
taken at the job's ``finished_at`` (the search catch-up that follows on the same worker and
connection is not counted), each also per 1,000 articles (``*_ms_per_1k``); the load average
before and after; and on PostgreSQL ``raw_copy_s``, a plain ``COPY`` of the same file's lines into
a one-column table taken right after the import, with ``x_raw_copy`` = job run time / raw COPY
time. ``search_catch_up_s`` is the time from the job's end until every imported article has its
full-text document (PostgreSQL).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.util import median

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


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _timestamp(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return _timestamp(end) - _timestamp(start)


WORKER_APP = "bench-import-worker"


class CpuSampler:
    """Samples, every 10 ms, the CPU seconds of the job's process and of its PostgreSQL backend(s)
    (the connections whose ``application_name`` is ``WORKER_APP``), so both can be read as of the
    moment the job finished rather than when the client noticed it."""

    def __init__(self, pid: int, url: str | None) -> None:
        import threading

        self.pid, self.url = pid, url
        self.samples: list[tuple[float, float, float]] = []  # (time, process CPU, backend CPU)
        self._backends: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _backend_pids(self, conn) -> None:
        sql = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
        self._backends |= {row[0] for row in conn.execute(sql, (WORKER_APP,))}

    def _loop(self) -> None:
        conn = None
        if self.url:
            import psycopg

            conn = psycopg.connect(self.url, autocommit=True)
        try:
            tick = 0
            while not self._stop.is_set():
                if conn is not None and tick % 10 == 0:
                    self._backend_pids(conn)
                backend = sum(_cpu_s(p) for p in self._backends) if self._backends else 0.0
                self.samples.append((time.time(), _cpu_s(self.pid), backend))
                tick += 1
                self._stop.wait(0.01)
        finally:
            if conn is not None:
                conn.close()

    def start(self) -> CpuSampler:
        self._thread.start()
        while not self.samples:
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def used(self, until: float) -> tuple[float, float]:
        """(process, backend) CPU seconds from the first sample to the last one taken by ``until``."""
        first = self.samples[0]
        last = max((s for s in self.samples if s[0] <= until), key=lambda s: s[0], default=self.samples[-1])
        return last[1] - first[1], last[2] - first[2]


LOG_LINE = re.compile(r"import (\d+): \d+ rows in [\d.]+s: read\+parse\+map ([\d.]+)s, db write ([\d.]+)s")


def _phases(log: Path, job_id: int) -> tuple[float | None, float | None]:
    for match in LOG_LINE.finditer(log.read_text(errors="replace") if log.exists() else ""):
        if int(match.group(1)) == job_id:
            return float(match.group(2)), float(match.group(3))
    return None, None


def _raw_copy_s(url: str, data: Path) -> float:
    """Seconds for a plain COPY of the file's lines into a fresh one-column table (then dropped)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw_copy")
        conn.execute("CREATE TABLE bench_raw_copy (line text)")
        try:
            start = time.perf_counter()
            with conn.cursor() as cur, open(data, "rb") as fh:
                # CSV with control characters as quote and delimiter: each line lands as it is.
                sql = "COPY bench_raw_copy FROM STDIN (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')"
                with cur.copy(sql) as copy:
                    while chunk := fh.read(1 << 20):
                        copy.write(chunk)
            return time.perf_counter() - start
        finally:
            conn.execute("DROP TABLE IF EXISTS bench_raw_copy")


def _search_catch_up_s(url: str, project_id: str, limit: float = 600) -> float | None:
    import psycopg

    start = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        while time.perf_counter() - start < limit:
            sql = "SELECT count(*) FROM documents_article WHERE project_id = %s AND search_document IS NULL"
            if conn.execute(sql, (int(project_id),)).fetchone()[0] == 0:
                return time.perf_counter() - start
            time.sleep(0.2)
    return None


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
    port = _port()
    log = Path(env["MEDIA_ROOT"]).parent / f"bench-{port}.log"
    postgres = env["DATABASE_URL"].startswith("postgres")
    # The job's connection names itself, so the bench can find its backend's CPU time.
    runner_env = dict(env)
    if postgres:
        sep = "&" if "?" in env["DATABASE_URL"] else "?"
        runner_env["DATABASE_URL"] = f"{env['DATABASE_URL']}{sep}application_name={WORKER_APP}"
    log_fh = open(log, "ab")  # noqa: SIM115 - closed below
    log_start = log.stat().st_size
    web = subprocess.Popen(
        [str(BIN / "gunicorn"), "annotator.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1", "--timeout", "900"],
        cwd=ROOT,
        env=env if env.get("REDIS_URL") else runner_env,
        stdout=subprocess.DEVNULL,
        stderr=log_fh,
    )
    worker = None
    if env.get("REDIS_URL"):
        worker = subprocess.Popen(
            [str(BIN / "celery"), "-A", "annotator", "worker", "--pool", "solo", "-l", "INFO"],
            cwd=ROOT,
            env=runner_env,
            stdout=subprocess.DEVNULL,
            stderr=log_fh,
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
            while worker is not None and b" ready." not in log.read_bytes()[log_start:]:
                time.sleep(0.1)  # the Celery worker is up (its start is not part of the import)
            runner = worker or web
            load_before = os.getloadavg()[0]
            sampler = CpuSampler(runner.pid, env["DATABASE_URL"] if postgres else None).start()
            start = time.perf_counter()
            with open(data, "rb") as fh:
                response = client.post(f"/api/v1/projects/{project_id}/imports/", files={"file": ("a.jsonl", fh)})
            upload_s = time.perf_counter() - start
            assert response.status_code == 202, response.text[:300]
            job = response.json()
            while job["status"] in ("queued", "running"):
                time.sleep(0.02)
                job = client.get(f"/api/v1/projects/{project_id}/imports/{job['id']}/").json()
            seconds = time.perf_counter() - start
            time.sleep(0.05)  # a sample past finished_at
            sampler.stop()
        assert job["status"] == "succeeded" and job["rows_created"] == n, job
        cpu, pg_cpu = sampler.used(_timestamp(job["finished_at"]))
        catch_up = _search_catch_up_s(env["DATABASE_URL"], project_id) if postgres else None
        raw_copy = _raw_copy_s(env["DATABASE_URL"], data) if postgres else None
        parse_s, write_s = _phases(log, job["id"])
        run_s = _seconds(job["started_at"], job["finished_at"])
        return {
            "seconds": seconds,
            "upload_s": upload_s,
            "queue_s": _seconds(job["created_at"], job["started_at"]),
            "run_s": run_s,
            "parse_s": parse_s,
            "db_write_s": write_s,
            "job_cpu_s": cpu,
            "pg_cpu_s": pg_cpu if postgres else None,
            "raw_copy_s": raw_copy,
            "x_raw_copy": run_s / raw_copy if raw_copy and run_s else None,
            "search_catch_up_s": catch_up,
            "load": (load_before, os.getloadavg()[0]),
            "web_peak_mb": _hwm_mb(web.pid),
            "worker_peak_mb": _hwm_mb(worker.pid) if worker else None,
        }
    finally:
        for proc in (web, worker):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
        log_fh.close()


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
            "LOG_LEVEL": "INFO",  # the job's phase timings come from its log line
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
                if "--keep-data" not in options.extra and n >= 100_000:
                    data.unlink()  # the big files are hundreds of MB
                t = median([r["seconds"] for r in runs])

                def med(key: str, digits: int = 2, runs=runs):
                    values = [r[key] for r in runs if r[key] is not None]
                    return round(median(values), digits) if values else None

                results.append(
                    {
                        "db": db,
                        "articles": n,
                        "mb": round(size / 1e6, 1),
                        "celery": "worker" if env.get("REDIS_URL") else "eager",
                        "seconds_median": round(t, 2),
                        "articles_per_s": round(n / t),
                        "upload_s": med("upload_s"),
                        "queue_s": med("queue_s"),
                        "run_s": med("run_s"),
                        "parse_s": med("parse_s"),
                        "db_write_s": med("db_write_s"),
                        "job_cpu_s": med("job_cpu_s"),
                        "job_cpu_ms_per_1k": round(med("job_cpu_s", 4) * 1e6 / n) if med("job_cpu_s") else None,
                        "pg_cpu_s": med("pg_cpu_s"),
                        "pg_cpu_ms_per_1k": round(med("pg_cpu_s", 4) * 1e6 / n) if med("pg_cpu_s") else None,
                        "raw_copy_s": med("raw_copy_s"),
                        "x_raw_copy": med("x_raw_copy"),
                        "search_catch_up_s": med("search_catch_up_s", 1),
                        "load_before_after": [round(x, 2) for x in runs[len(runs) // 2]["load"]],
                        "web_peak_mb": med("web_peak_mb", 1),
                        "worker_peak_mb": med("worker_peak_mb", 1),
                    }
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results
