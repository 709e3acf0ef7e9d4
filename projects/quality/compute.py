"""Turn a project's annotations into the stored quality figures (no ORM here).

``services.quality_recompute`` streams annotation rows grouped by task into ``Accumulator.add_task``
and calls ``finish()``; the result holds the snapshot's JSON figures, one row per annotator,
each task's agreement and the consensus labels per field. Everything is kept compact (labels,
counts, floats), so memory grows with the number of annotations, not with their text.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from projects.core.schema import PAIRWISE_CHOICES
from projects.quality import figures
from projects.quality.consensus import dawid_skene_fit, majority_vote
from projects.quality.metrics.agreement import (
    PAIRWISE_SCALE,
    alpha_from_counts,
    cohen_kappa,
    fleiss_kappa_from_counts,
    numeric_agreement,
    observed_agreement,
    pairable,
    value_counts,
)
from projects.quality.metrics.gold import gold_score
from projects.quality.metrics.spans import SpanTally, as_spans, f1_of_counts
from projects.quality.metrics.stats import bootstrap_ci
from projects.quality.metrics.text import mean_pairwise_similarity

MIN_PAIR_ITEMS = 5  # a pair of annotators needs this many shared items for its Cohen's kappa
LOW_CONFIDENCE = 0.7


@dataclass
class Row:
    """One submitted annotation."""

    user_id: int
    result: dict
    lead_time: float = 0.0
    submitted_at: datetime | None = None
    prediction_id: int | None = None


@dataclass
class TaskInfo:
    is_gold: bool = False
    gold_answer: dict | None = None
    required_skill: str = ""


@dataclass
class Result:
    figures: dict
    annotators: list[dict]
    task_agreement: dict[int, float | None]
    consensus: dict[str, dict[int, tuple[Any, float, int]]]  # field → task → (label, confidence, votes)


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _ci(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [round(interval[0], 4), round(interval[1], 4)]


def categorical_label(f: dict, value: Any) -> Hashable | None:
    if value is None or value == "" or value == [] or value == {}:
        return None
    if f["type"] == "pairwise":
        return value.get("choice") if isinstance(value, dict) else None
    return tuple(value) if isinstance(value, list) else value


@dataclass
class _FieldAcc:
    spec: dict
    units: list[list] = field(default_factory=list)  # per task: labels (categorical / pairwise)
    task_ids: list[int] = field(default_factory=list)
    criteria: dict[str, list[list[int]]] = field(default_factory=lambda: defaultdict(list))
    pairs: dict[tuple[int, int], tuple[list, list]] = field(default_factory=lambda: defaultdict(lambda: ([], [])))
    spans: SpanTally = field(default_factory=SpanTally)
    text_scores: list[float] = field(default_factory=list)
    triples: list[tuple[int, int, Hashable]] = field(default_factory=list)


class Accumulator:
    def __init__(
        self,
        *,
        schema: dict,
        overlap: int,
        skills: dict[int, dict[str, str]],
        usernames: dict[int, str],
        consensus_method: str = "dawid_skene",
        bootstrap_samples: int = 200,
        seed: int = 0,
    ) -> None:
        self.fields = list(schema.get("fields", []))
        self.overlap = overlap
        self.skills = skills
        self.usernames = usernames
        self.method = consensus_method
        self.n_boot = bootstrap_samples
        self.seed = seed
        self.acc = {f["name"]: _FieldAcc(f) for f in self.fields}
        self.task_agreement: dict[int, float | None] = {}
        self.tasks_seen = 0
        self.annotations = 0
        self.per_day: Counter[str] = Counter()
        self.completed_per_day: Counter[str] = Counter()
        self.user_days: dict[int, Counter[str]] = defaultdict(Counter)
        self.lead_times: dict[int, list[float]] = defaultdict(list)
        self.gold: list[tuple[int, str, str, dict[str, float]]] = []  # user, domain, level, field scores

    # --- per task ---------------------------------------------------------------------------
    def add_task(self, task_id: int, info: TaskInfo, rows: list[Row]) -> None:
        self.tasks_seen += 1
        self.annotations += len(rows)
        stamps = sorted(r.submitted_at for r in rows if r.submitted_at)
        for r in rows:
            if r.submitted_at:
                day = r.submitted_at.date().isoformat()
                self.per_day[day] += 1
                self.user_days[r.user_id][day] += 1
            self.lead_times[r.user_id].append(r.lead_time)
        if len(stamps) >= self.overlap:
            self.completed_per_day[stamps[self.overlap - 1].date().isoformat()] += 1
        if info.is_gold and info.gold_answer:
            self._add_gold(info, rows)
        scores = [s for f in self.fields if (s := self._add_field(task_id, f, rows)) is not None]
        self.task_agreement[task_id] = sum(scores) / len(scores) if scores else None

    def _add_gold(self, info: TaskInfo, rows: list[Row]) -> None:
        domain = info.required_skill
        for r in rows:
            level = self.skills.get(r.user_id, {}).get(domain, "none") if domain else "any"
            scores = {
                f["name"]: score
                for f in self.fields
                if (score := gold_score(f, r.result.get(f["name"]), info.gold_answer.get(f["name"]))) is not None
            }
            if scores:
                self.gold.append((r.user_id, domain, level, scores))

    def _add_field(self, task_id: int, f: dict, rows: list[Row]) -> float | None:
        acc = self.acc[f["name"]]
        name, ftype = f["name"], f["type"]
        if ftype in ("choice", "pairwise"):
            given = [(r.user_id, lab) for r in rows if (lab := categorical_label(f, r.result.get(name))) is not None]
            if not given:
                return None
            acc.units.append([lab for _, lab in given])
            acc.task_ids.append(task_id)
            acc.triples += [(task_id, u, lab) for u, lab in given]
            for i, (u, a) in enumerate(given):
                for v, b in given[i + 1 :]:
                    key, (x, y) = ((u, v), (a, b)) if u < v else ((v, u), (b, a))
                    acc.pairs[key][0].append(x)
                    acc.pairs[key][1].append(y)
            return observed_agreement([lab for _, lab in given])
        if ftype == "rating":
            lo, hi = f.get("scale", [1, 5])
            per_task = []
            for criterion in f.get("criteria", []):
                scores = [v.get(criterion) for r in rows if isinstance(v := r.result.get(name), dict)]
                scores = [s for s in scores if s is not None]
                if scores:
                    acc.criteria[criterion].append(scores)
                if (a := numeric_agreement(scores, hi - lo)) is not None:
                    per_task.append(a)
            return sum(per_task) / len(per_task) if per_task else None
        if ftype == "spans":
            spans = [as_spans(r.result.get(name)) for r in rows]
            f1s = []
            for i, a in enumerate(spans):
                for b in spans[i + 1 :]:
                    f1 = f1_of_counts(acc.spans.add(a, b)["overlap"])
                    f1s.append(1.0 if f1 is None else f1)  # neither marked a span: they agree
            return sum(f1s) / len(f1s) if f1s else None
        if ftype == "text":
            score = mean_pairwise_similarity([r.result.get(name) for r in rows if r.result.get(name) is not None])
            if score is not None:
                acc.text_scores.append(score)
            return score
        return None

    # --- figures ----------------------------------------------------------------------------
    def _alpha(self, units: list[list], level: str, domain: list | None, seed: int, *, ci: bool = True) -> dict:
        counts, values = value_counts(units, domain)
        counts = pairable(counts)
        alpha = alpha_from_counts(counts, values, level)
        interval = None
        n = len(counts)
        if ci and alpha is not None and self.n_boot and n >= 2:
            # Resampling multiplicities as weights: no copy of the count matrix per draw.
            interval = bootstrap_ci(
                lambda idx: alpha_from_counts(counts, values, level, weights=np.bincount(idx, minlength=n)),
                n,
                n_boot=self.n_boot,
                seed=seed,
            )
        return {"alpha": _r(alpha), "alpha_ci": _ci(interval), "level": level, "units": int(n), "counts": counts}

    def _field_figures(self, index: int, f: dict, consensus: dict) -> dict:
        acc = self.acc[f["name"]]
        out: dict[str, Any] = {"name": f["name"], "type": f["type"], "title": f.get("title", f["name"])}
        seed = self.seed * 1000 + index
        if f["type"] in ("choice", "pairwise"):
            if f["type"] == "pairwise":
                mapped = [[PAIRWISE_SCALE[v] for v in u] for u in acc.units]
                main = self._alpha(mapped, "interval", [-1, 0, 1], seed)
                nominal = self._alpha(acc.units, "nominal", list(PAIRWISE_CHOICES), seed, ci=False)
                out["alpha_nominal"] = nominal["alpha"]
            else:
                domain = None if f.get("multiple") else list(f.get("options", []))
                main = self._alpha(acc.units, "nominal", domain, seed)
            counts = main.pop("counts")
            kappas = {
                pair: k
                for pair, (a, b) in acc.pairs.items()
                if len(a) >= MIN_PAIR_ITEMS and (k := cohen_kappa(a, b)) is not None
            }
            observed = [a for u in acc.units if (a := observed_agreement(u)) is not None]
            out.update(main)
            out.update(
                fleiss_kappa=_r(fleiss_kappa_from_counts(counts)) if len(counts) else None,
                cohen_kappa_mean=_r(statistics.fmean(kappas.values())) if kappas else None,
                cohen_pairs=len(kappas),
                observed_agreement=_r(statistics.fmean(observed)) if observed else None,
                value=main["alpha"],
                measure="Krippendorff's alpha" + (" (preference scale)" if f["type"] == "pairwise" else ""),
            )
            if f["name"] in consensus:
                out["consensus"] = consensus[f["name"]]
        elif f["type"] == "rating":
            lo, hi = f.get("scale", [1, 5])
            criteria = []
            for j, criterion in enumerate(f.get("criteria", [])):
                units = acc.criteria.get(criterion, [])
                ordinal = self._alpha(units, "ordinal", list(range(lo, hi + 1)), seed + j * 7)
                interval = self._alpha(units, "interval", list(range(lo, hi + 1)), 0, ci=False)
                ordinal.pop("counts")
                criteria.append(
                    {"criterion": criterion, **ordinal, "alpha_interval": interval["alpha"], "level": "ordinal"}
                )
            alphas = [c["alpha"] for c in criteria if c["alpha"] is not None]
            out.update(
                criteria=criteria,
                value=_r(statistics.fmean(alphas)) if alphas else None,
                measure="Krippendorff's alpha (ordinal), mean over criteria",
            )
        elif f["type"] == "spans":
            out.update(
                f1_exact=_r(acc.spans.micro_f1("exact")),
                f1_overlap=_r(acc.spans.micro_f1("overlap")),
                per_label={
                    label: {"exact": _r(acc.spans.f1("exact").get(label)), "overlap": _r(f1)}
                    for label, f1 in acc.spans.f1("overlap").items()
                },
                comparisons=acc.spans.comparisons,
                units=acc.spans.comparisons,
                value=_r(acc.spans.micro_f1("overlap")),
                measure="span F1 (overlap match)",
            )
        elif f["type"] == "text":
            scores = acc.text_scores
            out.update(
                edit_similarity=_r(statistics.fmean(scores)) if scores else None,
                units=len(scores),
                value=_r(statistics.fmean(scores)) if scores else None,
                measure="normalized edit similarity",
            )
        return out

    def _consensus(self) -> tuple[dict, dict, dict]:
        """Per consensus field: stored labels, a summary, and (primary field) annotator figures."""
        stored: dict[str, dict[int, tuple[Any, float, int]]] = {}
        summary: dict[str, dict] = {}
        per_user: dict[str, dict[int, float]] = {"agreement": {}, "estimated_accuracy": {}}
        primary = next((f["name"] for f in self.fields if f["type"] == "choice"), None)
        for f in self.fields:
            if f["type"] not in ("choice", "pairwise"):
                continue
            acc = self.acc[f["name"]]
            votes = {t: len(u) for t, u in zip(acc.task_ids, acc.units, strict=True)}
            mv = majority_vote(dict(zip(acc.task_ids, acc.units, strict=True)))
            if f["type"] == "pairwise":
                classes = list(PAIRWISE_CHOICES)
            else:
                classes = None if f.get("multiple") else list(f.get("options", []))
            fit = dawid_skene_fit(acc.triples, classes=classes)
            ds = fit.consensus()
            chosen = ds if self.method == "dawid_skene" else mv
            stored[f["name"]] = {t: (c.label, c.confidence, votes[t]) for t, c in chosen.items()}
            confidences = [c.confidence for c in chosen.values()]
            summary[f["name"]] = {
                "method": self.method,
                "tasks": len(chosen),
                "mean_confidence": _r(statistics.fmean(confidences)) if confidences else None,
                "low_confidence_tasks": sum(c < LOW_CONFIDENCE for c in confidences),
                "majority_equals_dawid_skene": (
                    _r(sum(mv[t].label == ds[t].label for t in mv) / len(mv)) if mv else None
                ),
            }
            if f["name"] == primary:
                agree: dict[int, list[int]] = defaultdict(lambda: [0, 0])
                for t, u, lab in acc.triples:
                    if votes[t] >= 2:
                        agree[u][0] += lab == chosen[t].label
                        agree[u][1] += 1
                per_user["agreement"] = {u: a / n for u, (a, n) in agree.items() if n}
                per_user["estimated_accuracy"] = fit.annotator_accuracy()
        return stored, summary, per_user

    def finish(self) -> Result:
        stored, consensus_summary, per_user_consensus = self._consensus()
        field_figures = [self._field_figures(i, f, consensus_summary) for i, f in enumerate(self.fields)]
        gold_summary, gold_per_user = figures.gold_figures(self.gold, self.usernames)
        lead = figures.lead_time_figures(self.lead_times, self.usernames)
        lead_by_user = {row["user_id"]: row["median"] for row in lead["per_annotator"]}
        annotators = []
        for user in sorted(set(self.lead_times) | set(gold_per_user)):
            gold = gold_per_user.get(user, {})
            annotators.append(
                {
                    "user_id": user,
                    "submitted": len(self.lead_times.get(user, [])),
                    "median_lead_time": lead_by_user.get(user),
                    "agreement": _r(per_user_consensus["agreement"].get(user)),
                    "estimated_accuracy": _r(per_user_consensus["estimated_accuracy"].get(user)),
                    "gold_answers": gold.get("answers", 0),
                    "gold_accuracy": gold.get("accuracy"),
                    "gold_low": gold.get("low"),
                    "gold_high": gold.get("high"),
                    "details": {
                        "gold_per_field": gold.get("per_field", {}),
                        "gold_per_skill": gold.get("per_skill", []),
                        "skills": self.skills.get(user, {}),
                    },
                }
            )
        values = [v for v in self.task_agreement.values() if v is not None]
        result_figures = {
            "counts": {
                "tasks_with_annotations": self.tasks_seen,
                "annotations": self.annotations,
                "annotators": len(self.lead_times),
                "gold_answers": len(self.gold),
            },
            "task_agreement_mean": _r(statistics.fmean(values)) if values else None,
            "fields": field_figures,
            "gold": gold_summary,
            "progress": figures.progress_figures(self.per_day, self.completed_per_day),
            "throughput": figures.throughput_figures(self.user_days, self.usernames),
            "lead_time": lead,
            "prelabel": [],  # filled by the service from projects.prelabel.selectors.prediction_acceptance
        }
        return Result(result_figures, annotators, self.task_agreement, stored)
