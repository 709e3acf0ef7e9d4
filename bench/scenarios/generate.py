"""Synthetic article generation: articles/s and MB/s of JSONL (the data the other scenarios use)."""

from __future__ import annotations

import json

from bench.util import median, timed
from projects.documents.synthetic import articles


def run(options) -> list[dict]:
    n = options.n or 20_000
    times, size = [], 0
    for _ in range(options.repeat):
        seconds, size = timed(lambda: sum(len(json.dumps(a)) + 1 for a in articles(n)))
        times.append(seconds)
    t = median(times)
    return [{"articles": n, "mb": round(size / 1e6, 1), "seconds_median": round(t, 3), "articles_per_s": round(n / t)}]
