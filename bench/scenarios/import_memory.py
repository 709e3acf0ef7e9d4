"""Peak memory of the import's parsing side by file size: does any per-row state grow with the file?

``python -m bench import_memory [--sizes 10000,100000,1000000] [--repeat 1]``. For each size it writes
a JSONL file of short articles (every 1,000th row repeats the id of an early row, so duplicates lie
far apart) and, in a fresh process per run, reads the whole file through
``services._parse_batches`` (read, parse, map, duplicate check: everything the import worker keeps
between batches except the batch being written), dropping each batch as it arrives. It reports
that process's peak RSS (VmHWM) above its RSS before parsing (``growth_mb``), the CPU microseconds
per row, and the duplicates found, once with ``SeenIds`` (``seen="sqlite"``) and once with the
Python set of id hashes it replaced (``seen="set"``), as a comparison. No database is touched, so
millions of rows take seconds and the figures do not depend on the load.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.util import median

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import json, os, resource, sys, time
from types import SimpleNamespace
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")
import django
django.setup()
from projects.imports import services
from projects.imports.options import ImportOptions

class SetIds:
    # The structure SeenIds replaced: a set of hash(external_id), one entry per row.
    def __init__(self):
        self.keys = set()
    def add(self, external_id):
        key = hash(external_id)
        if key in self.keys:
            return False
        self.keys.add(key)
        return True
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        pass

def status(name):
    for line in open("/proc/self/status"):
        if line.startswith(name + ":"):
            return int(line.split()[1]) / 1024

path, seen = sys.argv[1], sys.argv[2]
if seen == "set":
    services.SeenIds = SetIds
job = SimpleNamespace(pk=0, format="jsonl", compression="", file_name="m.jsonl")
options = ImportOptions()
schema = {"fields": [{"name": "t", "type": "text"}]}
before = status("VmRSS")
cpu = time.process_time()
rows = errors = 0
for package in services._parse_batches(job, path, options, schema, resume_at=0):
    rows += len(package.rows)
    errors += len(package.errors)
cpu = time.process_time() - cpu
print(json.dumps({"before_mb": before, "peak_mb": status("VmHWM"), "cpu_s": cpu, "rows": rows, "errors": errors}))
"""


def _arg(extra: list[str], name: str, default: str) -> str:
    return extra[extra.index(name) + 1] if name in extra else default


def _write(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            ident = i // 1000 if i % 1000 == 999 else i  # a repeat of an early row's id
            fh.write(json.dumps({"id": f"m{ident:09d}", "title": f"Article {i}", "text": f"Short text {i}."}))
            fh.write("\n")


def run(options) -> list[dict]:
    sizes = [int(s) for s in _arg(options.extra, "--sizes", "10000,100000,1000000").split(",")]
    env = {
        **os.environ,
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-secret-key-not-for-production-0123456789"),
        "DATABASE_URL": "sqlite:///:memory:",
    }
    env.pop("REDIS_URL", None)
    tmp = Path(tempfile.mkdtemp(prefix="bench-import-memory-"))
    results = []
    try:
        for n in sizes:
            data = tmp / f"m-{n}.jsonl"
            _write(data, n)
            for seen in ("sqlite", "set"):
                runs = []
                for _ in range(options.repeat):
                    out = subprocess.run(
                        [sys.executable, "-c", CHILD, str(data), seen],
                        cwd=ROOT,
                        env=env,
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                results.append(
                    {
                        "rows": n,
                        "seen": seen,
                        "mb": round(data.stat().st_size / 1e6, 1),
                        "growth_mb": round(median([r["peak_mb"] - r["before_mb"] for r in runs]), 1),
                        "peak_mb": round(median([r["peak_mb"] for r in runs]), 1),
                        "cpu_us_per_row": round(median([r["cpu_s"] for r in runs]) * 1e6 / n, 2),
                        "duplicates": runs[0]["errors"],
                    }
                )
            data.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results
