"""Consensus simulation: 30 annotators of known accuracy (experts, average, careless, adversarial)
label synthetic tasks with known truth; majority vote vs Dawid–Skene accuracy, and how well gold
accuracy (and Dawid–Skene without gold) estimates each annotator's true accuracy (MAE).

Options after the scenario name: ``--n`` tasks (default 20,000), ``--repeat`` seeds (medians),
``--classes K`` (default 4), ``--gold-share`` (default 0.05). Overlaps 3 and 5 are both reported.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict

import numpy as np

from bench.util import median
from projects.quality.consensus import dawid_skene_fit, majority_vote

# (kind, how many, accuracy range): the crowd of 30.
CROWD = (
    ("expert", 8, (0.90, 0.97)),
    ("average", 12, (0.65, 0.85)),
    ("careless", 7, (0.30, 0.45)),
    ("adversarial", 3, (0.05, 0.15)),
)


def _extra(options, name: str, default: float) -> float:
    extra = list(getattr(options, "extra", []) or [])
    flag = f"--{name}"
    if flag in extra and extra.index(flag) + 1 < len(extra):
        return float(extra[extra.index(flag) + 1])
    return default


def make_crowd(rng: np.random.Generator) -> list[tuple[str, float]]:
    return [(kind, float(rng.uniform(lo, hi))) for kind, count, (lo, hi) in CROWD for _ in range(count)]


def simulate(n_tasks: int, overlap: int, classes: int, gold_share: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    crowd = make_crowd(rng)
    priors = rng.dirichlet(np.full(classes, 3.0))
    truth = rng.choice(classes, size=n_tasks, p=priors)
    gold = rng.random(n_tasks) < gold_share
    triples = []
    by_item: dict[int, list[int]] = defaultdict(list)
    for task in range(n_tasks):
        for annotator in rng.choice(len(crowd), size=overlap, replace=False):
            kind, accuracy = crowd[annotator]
            t = int(truth[task])
            if rng.random() < accuracy:
                label = t
            elif kind == "adversarial":
                label = (t + 1) % classes  # a consistent wrong answer: the confusion Dawid–Skene can invert
            else:
                label = int((t + rng.integers(1, classes)) % classes)  # any other class
            triples.append((task, int(annotator), label))
            by_item[task].append(label)
    t0 = time.perf_counter()
    mv = majority_vote(by_item)
    mv_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit = dawid_skene_fit(triples, classes=list(range(classes)))
    ds_seconds = time.perf_counter() - t0
    ds = fit.consensus()
    # Gold accuracy per annotator: their answers on gold tasks only, as the app measures it.
    gold_hits: dict[int, list[int]] = defaultdict(list)
    empirical: dict[int, list[int]] = defaultdict(list)
    for task, annotator, label in triples:
        empirical[annotator].append(label == truth[task])
        if gold[task]:
            gold_hits[annotator].append(label == truth[task])
    true_acc = {a: crowd[a][1] for a in range(len(crowd))}
    gold_err = [abs(statistics.fmean(h) - true_acc[a]) for a, h in gold_hits.items() if h]
    ds_est = fit.annotator_accuracy()
    ds_err = [abs(ds_est[a] - true_acc[a]) for a in ds_est]
    non_gold = [t for t in range(n_tasks) if not gold[t]]
    return {
        "mv_accuracy": sum(mv[t].label == truth[t] for t in non_gold) / len(non_gold),
        "ds_accuracy": sum(ds[t].label == truth[t] for t in non_gold) / len(non_gold),
        "gold_mae": statistics.fmean(gold_err),
        "gold_answers_per_annotator": statistics.median(len(h) for h in gold_hits.values()),
        "ds_accuracy_mae": statistics.fmean(ds_err),
        "ds_iterations": fit.iterations,
        "ds_seconds": ds_seconds,
        "mv_seconds": mv_seconds,
    }


def run(options) -> list[dict]:
    n = options.n or 20_000
    classes = int(_extra(options, "classes", 4))
    gold_share = _extra(options, "gold-share", 0.05)
    out = []
    for overlap in (3, 5):
        runs = [simulate(n, overlap, classes, gold_share, seed) for seed in range(options.repeat)]
        pick = {k: median([r[k] for r in runs]) for k in runs[0]}
        out.append(
            {
                "tasks": n,
                "overlap": overlap,
                "classes": classes,
                "annotators": sum(c for _, c, _ in CROWD),
                "crowd": ", ".join(f"{c} {k} ({lo:.2f}-{hi:.2f})" for k, c, (lo, hi) in CROWD),
                "repeats": options.repeat,
                "majority_vote_accuracy": round(pick["mv_accuracy"], 4),
                "dawid_skene_accuracy": round(pick["ds_accuracy"], 4),
                "dawid_skene_gain_points": round(100 * (pick["ds_accuracy"] - pick["mv_accuracy"]), 2),
                "gold_share": gold_share,
                "gold_answers_per_annotator_median": pick["gold_answers_per_annotator"],
                "gold_accuracy_mae": round(pick["gold_mae"], 4),
                "dawid_skene_accuracy_estimate_mae": round(pick["ds_accuracy_mae"], 4),
                "dawid_skene_iterations": pick["ds_iterations"],
                "dawid_skene_seconds": round(pick["ds_seconds"], 3),
                "majority_vote_seconds": round(pick["mv_seconds"], 3),
            }
        )
    return out
