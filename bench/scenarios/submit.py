"""Submit throughput on PostgreSQL behind gunicorn: annotations/s with 4 clients, p99 at 32.

Same set-up as ``next_task`` (``DATABASE_URL=postgres://...``, ``--n`` tasks, ``--workers`` and
``--threads`` for gunicorn, ``--seconds`` per run). Each client loops next-task then submit of one
choice + 3 spans. Reported: stored annotations per second of wall time (the whole loop, so it
includes the next-task calls), the submit-only rate (submits / time spent in submit calls, per
client, summed), and submit latency p50/p99. Medians over ``--repeat`` runs.
"""

from __future__ import annotations

from bench.load import cost_figures
from bench.scenarios.next_task import django_ready, load_options, measured_run, shape
from bench.util import median, percentile

# One choice and three spans over the bench article text (checked against it by the server).
RESULT = {
    "result": {
        "topic": "business",
        "entities": [
            {"start": 0, "end": 15, "label": "PERSON"},
            {"start": 36, "end": 43, "label": "ORG"},
            {"start": 63, "end": 67, "label": "LOC"},
        ],
    }
}


def run(options) -> list[dict]:
    if not django_ready():
        return [{"skipped": "needs DATABASE_URL=postgres://... (the scenario fills that database)"}]
    opts = load_options(options, (4, 32))
    figures = []
    for clients in opts["annotators"]:
        runs = [measured_run(opts, clients, RESULT) for _ in range(options.repeat)]
        figures.append(
            {
                "tasks": opts["n"],
                "clients": clients,
                "gunicorn": shape(opts),
                **({"think_ms": opts["think_ms"]} if opts["think_ms"] else {}),
                "annotations_per_s": round(median([len(r["submit_ms"]) / r["wall_s"] for r in runs]), 1),
                "submit_only_per_s": round(
                    median([clients * 1000 / median(r["submit_ms"]) for r in runs if r["submit_ms"]]), 1
                ),
                "submit_p50_ms": round(median([median(r["submit_ms"]) for r in runs]), 1),
                "submit_p99_ms": round(median([percentile(r["submit_ms"], 99) for r in runs]), 1),
                "next_p50_ms": round(median([median(r["next_ms"]) for r in runs]), 1),
                "submitted": int(median([len(r["submit_ms"]) for r in runs])),
                **cost_figures(runs, clients),
                "errors": max(r["errors"] for r in runs),
                "db_duplicates": max(r["db_duplicates"] for r in runs),
            }
        )
    return figures
