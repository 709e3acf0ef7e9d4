"""Consensus labels from several annotators: majority vote and Dawid–Skene.

Pure module (no ORM): items, annotators and labels are any hashable values (task ids, user ids,
option strings; a multi-choice answer as a tuple). Both functions return
``{item: Consensus(label, confidence)}``; ``Consensus`` is a named tuple, so ``label, conf = r``
works as well as ``r.label``.

- ``majority_vote``: the most frequent label; confidence is its share of the votes. Ties are
  broken deterministically by the label's sort order (``repr`` for mixed types), so reruns agree.
- ``dawid_skene``: EM over one confusion matrix per annotator (Dawid & Skene 1979), initialised
  from the majority-vote shares; confidence is the posterior probability of the chosen label.
  A small Dirichlet smoothing keeps unseen (true, given) pairs from becoming impossible.

This is the stable API used by the export's consolidated mode; the selector
``projects.quality.selectors.consensus_for_tasks`` feeds it from a project's annotations.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np


class Consensus(NamedTuple):
    label: Any
    confidence: float


def _sort_key(label: Any) -> tuple[str, str]:
    return (type(label).__name__, repr(label))


def majority_vote(labels_by_item: Mapping[Hashable, Iterable[Hashable]]) -> dict[Hashable, Consensus]:
    """``{item: [label, ...]}`` → ``{item: Consensus(most frequent label, its share)}``.

    Items without any label are left out.
    """
    out: dict[Hashable, Consensus] = {}
    for item, labels in labels_by_item.items():
        counts = Counter(labels)
        total = sum(counts.values())
        if not total:
            continue
        label, votes = min(counts.items(), key=lambda kv: (-kv[1], _sort_key(kv[0])))
        out[item] = Consensus(label, votes / total)
    return out


@dataclass
class DawidSkeneFit:
    """Everything the EM found: per-item posteriors, per-annotator confusion matrices, priors."""

    items: list[Hashable]
    annotators: list[Hashable]
    classes: list[Hashable]
    posteriors: np.ndarray  # (items, classes)
    confusion: np.ndarray  # (annotators, true class, given label), rows sum to 1
    priors: np.ndarray  # (classes,)
    iterations: int
    converged: bool

    def consensus(self) -> dict[Hashable, Consensus]:
        if not self.items:
            return {}
        best = self.posteriors.argmax(axis=1)
        return {
            item: Consensus(self.classes[k], float(self.posteriors[i, k]))
            for i, (item, k) in enumerate(zip(self.items, best, strict=True))
        }

    def annotator_accuracy(self) -> dict[Hashable, float]:
        """Each annotator's estimated accuracy: the prior-weighted diagonal of their confusion matrix."""
        diag = np.einsum("jkk->jk", self.confusion)
        return {a: float(diag[j] @ self.priors) for j, a in enumerate(self.annotators)}


def dawid_skene_fit(
    labels: Iterable[tuple[Hashable, Hashable, Hashable]],
    *,
    classes: Iterable[Hashable] | None = None,
    max_iter: int = 100,
    tol: float = 1e-6,
    smoothing: float = 0.01,
) -> DawidSkeneFit:
    """Fit Dawid–Skene on ``(item, annotator, label)`` triples. See ``dawid_skene``."""
    triples = list(labels)
    seen_classes = {lab for _, _, lab in triples}
    class_list = list(classes) if classes is not None else []
    class_list += sorted(seen_classes - set(class_list), key=_sort_key)
    items = list(dict.fromkeys(t[0] for t in triples))
    annotators = list(dict.fromkeys(t[1] for t in triples))
    n_i, n_j, n_k = len(items), len(annotators), len(class_list)
    if not triples:
        empty = np.zeros((0, n_k))
        return DawidSkeneFit(items, annotators, class_list, empty, np.zeros((0, n_k, n_k)), np.zeros(n_k), 0, True)
    item_ix = {v: i for i, v in enumerate(items)}
    ann_ix = {v: i for i, v in enumerate(annotators)}
    cls_ix = {v: i for i, v in enumerate(class_list)}
    ii = np.fromiter((item_ix[t[0]] for t in triples), dtype=np.int64, count=len(triples))
    jj = np.fromiter((ann_ix[t[1]] for t in triples), dtype=np.int64, count=len(triples))
    ll = np.fromiter((cls_ix[t[2]] for t in triples), dtype=np.int64, count=len(triples))

    # Initialise the posteriors with the vote shares (soft majority vote).
    post = np.bincount(ii * n_k + ll, minlength=n_i * n_k).astype(float).reshape(n_i, n_k)
    post /= post.sum(axis=1, keepdims=True)

    flat = jj * n_k + ll  # (annotator, given label) as one index
    log_lik_prev = -np.inf
    converged = False
    iterations = 0
    confusion = np.full((n_j, n_k, n_k), 1.0 / n_k)
    priors = np.full(n_k, 1.0 / n_k)
    for step in range(1, max_iter + 1):
        iterations = step
        # M-step: class priors and each annotator's confusion matrix from the soft labels.
        priors = (post.sum(axis=0) + smoothing) / (n_i + smoothing * n_k)
        weights = post[ii]  # (observations, true class)
        counts = np.stack(
            [np.bincount(flat, weights=weights[:, k], minlength=n_j * n_k) for k in range(n_k)], axis=1
        ).reshape(n_j, n_k, n_k)  # (annotator, given, true)
        counts = counts.transpose(0, 2, 1) + smoothing  # (annotator, true, given)
        confusion = counts / counts.sum(axis=2, keepdims=True)
        # E-step: posterior over the true class of each item.
        log_conf = np.log(confusion)
        log_post = np.tile(np.log(priors), (n_i, 1))
        for k in range(n_k):
            log_post[:, k] += np.bincount(ii, weights=log_conf[jj, k, ll], minlength=n_i)
        top = log_post.max(axis=1, keepdims=True)
        unnorm = np.exp(log_post - top)
        norm = unnorm.sum(axis=1, keepdims=True)
        post = unnorm / norm
        log_lik = float((np.log(norm) + top).sum())
        if abs(log_lik - log_lik_prev) <= tol * max(1.0, abs(log_lik)):
            converged = True
            break
        log_lik_prev = log_lik
    return DawidSkeneFit(items, annotators, class_list, post, confusion, priors, iterations, converged)


def dawid_skene(
    labels: Iterable[tuple[Hashable, Hashable, Hashable]],
    *,
    classes: Iterable[Hashable] | None = None,
    max_iter: int = 100,
    tol: float = 1e-6,
    smoothing: float = 0.01,
) -> dict[Hashable, Consensus]:
    """``[(item, annotator, label), ...]`` → ``{item: Consensus(label, posterior probability)}``.

    ``classes`` fixes the label set and its order (labels never given still get a prior);
    by default it is every label seen, sorted. Deterministic: no random initialisation.
    """
    return dawid_skene_fit(labels, classes=classes, max_iter=max_iter, tol=tol, smoothing=smoothing).consensus()
