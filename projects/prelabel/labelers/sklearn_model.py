"""A model trained on the project's own submitted annotations (scikit-learn).

- choice fields: TF-IDF features and a logistic regression (one-vs-rest for ``multiple``); the
  score is the predicted class probability and the margin the gap between the two best classes.
- span fields: a dictionary tagger learned from annotated spans (each surface form with its most
  frequent label), matched as whole words with Aho-Corasick, longest leftmost first.

Artefacts are written with joblib under ``MEDIA_ROOT/prelabel/`` and listed in ``TrainedModel``
with their SHA-256. Only files we trained are loaded: the path comes from that row, must lie in
our folder, and its checksum is verified before ``joblib.load`` (a pickle runs code when loaded,
so an uploaded or swapped file must never reach it).
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import ahocorasick
import joblib
import numpy as np
from django.conf import settings
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from projects.core.schema import MAX_SPANS
from projects.prelabel.labelers.base import (
    BaseLabeler,
    LabelerConfigError,
    LabelerError,
    LabelerOutput,
    LabelerUnavailable,
    TaskInput,
    register,
    require_dict,
)
from projects.prelabel.models import TrainedModel

ARTEFACT_FORMAT = 1
MAX_FEATURES = 50_000
MIN_SPAN_LENGTH = 2


class ModelIntegrityError(LabelerUnavailable):
    """The artefact is missing, outside our folder, or its checksum does not match."""


def models_root() -> Path:
    return (Path(settings.MEDIA_ROOT) / "prelabel").resolve()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- training (pure: examples in, artefact out) ---------------------------------------------


def train_artefact(schema: dict, examples: list[tuple[str, dict]]) -> tuple[dict, dict]:
    """Train on (task text, submitted result) pairs. Returns (artefact, info)."""
    fields = schema.get("fields", [])
    texts = [text for text, _ in examples]
    info: dict[str, Any] = {"examples": len(examples), "fields": {}}
    artefact: dict[str, Any] = {"format": ARTEFACT_FORMAT, "vectorizer": None, "choice": {}, "spans": {}}
    choice_fields = [f for f in fields if f["type"] == "choice"]
    if choice_fields and texts:
        vectorizer = TfidfVectorizer(sublinear_tf=True, max_features=MAX_FEATURES, dtype=np.float32)
        matrix = vectorizer.fit_transform(texts)
        for field in choice_fields:
            name = field["name"]
            rows = [i for i, (_, result) in enumerate(examples) if result.get(name) not in (None, "", [])]
            if field.get("multiple"):
                targets = [examples[i][1][name] for i in rows]
                binarizer = MultiLabelBinarizer(classes=field["options"])
                y = binarizer.fit_transform(targets)
                present = y.sum(axis=0)
                if len(rows) < 2 or not ((present > 0) & (present < len(rows))).any():
                    info["fields"][name] = {"skipped": "needs examples with and without some option"}
                    continue
                keep = [j for j, n in enumerate(present) if 0 < n < len(rows)]
                clf = OneVsRestClassifier(LogisticRegression(max_iter=1000)).fit(matrix[rows], y[:, keep])
                classes = [field["options"][j] for j in keep]
                artefact["choice"][name] = {"clf": clf, "classes": classes, "multiple": True}
            else:
                targets = [examples[i][1][name] for i in rows]
                counts = Counter(targets)
                if len(counts) < 2:
                    info["fields"][name] = {"skipped": "needs examples of at least two options"}
                    continue
                clf = LogisticRegression(max_iter=1000).fit(matrix[rows], targets)
                artefact["choice"][name] = {"clf": clf, "classes": list(clf.classes_), "multiple": False}
            info["fields"][name] = {"examples": len(rows), "classes": artefact["choice"][name]["classes"]}
        if artefact["choice"]:
            artefact["vectorizer"] = vectorizer
    for field in fields:
        if field["type"] != "spans":
            continue
        name = field["name"]
        labels: dict[str, Counter] = {}
        for _, result in examples:
            for span in result.get(name) or []:
                surface = (span.get("text") or "").strip()
                if len(surface) >= MIN_SPAN_LENGTH and surface == span.get("text"):
                    labels.setdefault(surface, Counter())[span["label"]] += 1
        entries = {}
        for surface, counter in labels.items():
            label, hits = counter.most_common(1)[0]
            entries[surface] = (label, hits / sum(counter.values()))
        if entries:
            artefact["spans"][name] = {"entries": entries}
            info["fields"][name] = {"entries": len(entries)}
        else:
            info["fields"][name] = {"skipped": "no annotated spans"}
    if not artefact["choice"] and not artefact["spans"]:
        raise LabelerConfigError(
            "Not enough submitted annotations to train on: choice fields need two options seen, span fields "
            "need annotated spans.",
            code="not_enough_data",
        )
    return artefact, info


def save_artefact(artefact: dict, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    joblib.dump(artefact, tmp, compress=3)
    tmp.replace(path)
    return sha256_of(path)


_cache: dict[tuple[str, str], dict] = {}
_cache_lock = threading.Lock()


def load_artefact(relative_path: str, sha256: str) -> dict:
    """Load an artefact we trained, after checking where it is and its checksum."""
    root = models_root()
    path = (Path(settings.MEDIA_ROOT) / relative_path).resolve()
    if not path.is_relative_to(root) or path.suffix != ".joblib":
        raise ModelIntegrityError(f"Refusing to load {relative_path!r}: not a model file this server trained.")
    key = (str(path), sha256)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    if not path.is_file():
        raise ModelIntegrityError(f"The model file {relative_path!r} is missing; train the model again.")
    if sha256_of(path) != sha256:
        raise ModelIntegrityError(f"The model file {relative_path!r} does not match its recorded checksum.")
    artefact = joblib.load(path)
    if not isinstance(artefact, dict) or artefact.get("format") != ARTEFACT_FORMAT:
        raise ModelIntegrityError("The model file has an unknown format; train the model again.")
    with _cache_lock:
        if len(_cache) >= 4:
            _cache.pop(next(iter(_cache)))
        _cache[key] = artefact
    return artefact


# --- prediction -----------------------------------------------------------------------------


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


@register
class SklearnLabeler(BaseLabeler):
    kind = "sklearn"

    @classmethod
    def validate_config(cls, config: Any, schema: dict) -> dict:
        config = require_dict(config or {}, "config")
        extra = set(config) - {"version", "retrain_every"}
        if extra:
            raise LabelerConfigError(f"Unknown config keys: {', '.join(sorted(extra))}.", fields={"config": "unknown"})
        out: dict[str, Any] = {}
        for key, lo, hi in (("version", 1, 10**9), ("retrain_every", 0, 10**6)):
            if key in config and config[key] is not None:
                value = config[key]
                if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                    raise LabelerConfigError(
                        f"config.{key} must be an integer from {lo}.", fields={f"config.{key}": "bad"}
                    )
                out[key] = value
        return out

    @staticmethod
    def _row(context) -> TrainedModel | None:
        version = int(context.model_version.removeprefix("sklearn-"))
        return TrainedModel.objects.filter(project_id=context.project_id, version=version).first()

    @classmethod
    def cache_token(cls, context) -> str | None:
        row = cls._row(context)
        return None if row is None else f"{row.path}:{row.sha256}"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        # The path and checksum come from our own TrainedModel row, never from the config.
        row = self._row(self.context)
        if row is None:
            raise LabelerUnavailable(f"No trained model {self.context.model_version} in this project.")
        self.artefact = load_artefact(row.path, row.sha256)
        self.automata: dict[str, ahocorasick.Automaton] = {}
        for name, spec in self.artefact["spans"].items():
            automaton = ahocorasick.Automaton()
            for surface, (label, share) in spec["entries"].items():
                automaton.add_word(surface, (len(surface), label, share))
            automaton.make_automaton()
            self.automata[name] = automaton

    def _spans(self, name: str, text: str) -> tuple[list[dict], list[float]]:
        found = []
        for end_index, (length, label, share) in self.automata[name].iter(text):
            start, end = end_index - length + 1, end_index + 1
            if (start > 0 and _is_word(text[start - 1])) or (end < len(text) and _is_word(text[end])):
                continue
            found.append((start, end, label, share))
        found.sort(key=lambda s: (s[0], -(s[1] - s[0])))
        spans, shares, last_end = [], [], -1
        for start, end, label, share in found:
            if start >= last_end:
                spans.append({"start": start, "end": end, "label": label, "text": text[start:end]})
                shares.append(share)
                last_end = end
            if len(spans) >= MAX_SPANS:
                break
        return spans, shares

    def predict(self, tasks: list[TaskInput]) -> list[LabelerOutput | LabelerError]:
        results: list[dict] = [{} for _ in tasks]
        scores: list[list[float]] = [[] for _ in tasks]
        margins: list[list[float]] = [[] for _ in tasks]
        if self.artefact["choice"]:
            matrix = self.artefact["vectorizer"].transform([t.text for t in tasks])
            for name, spec in self.artefact["choice"].items():
                proba = np.asarray(spec["clf"].predict_proba(matrix), dtype=np.float64)
                classes = spec["classes"]
                if spec["multiple"]:
                    chosen = proba >= 0.5
                    confidence = np.maximum(proba, 1 - proba).mean(axis=1)
                    margin = np.abs(2 * proba - 1).min(axis=1)
                    for i in range(len(tasks)):
                        picked = [classes[j] for j in np.flatnonzero(chosen[i])]
                        if picked:
                            results[i][name] = picked
                        scores[i].append(float(confidence[i]))
                        margins[i].append(float(margin[i]))
                else:
                    best_index = proba.argmax(axis=1)
                    top = np.sort(proba, axis=1)
                    best = top[:, -1]
                    second = top[:, -2] if proba.shape[1] > 1 else np.zeros(len(tasks))
                    for i in range(len(tasks)):
                        results[i][name] = str(classes[best_index[i]])
                        scores[i].append(float(best[i]))
                        margins[i].append(float(best[i] - second[i]))
        for name in self.automata:
            for i, task in enumerate(tasks):
                spans, shares = self._spans(name, task.text)
                results[i][name] = spans
                if shares:
                    scores[i].append(sum(shares) / len(shares))
        return [
            LabelerOutput(
                task.id,
                results[i],
                sum(scores[i]) / len(scores[i]) if scores[i] else None,
                min(margins[i]) if margins[i] else None,
            )
            for i, task in enumerate(tasks)
        ]
