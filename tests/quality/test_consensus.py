"""Consensus labels: majority vote and Dawid–Skene (pure functions, no database)."""

from __future__ import annotations

import math
import random

import pytest

from projects.quality.consensus import Consensus, dawid_skene, dawid_skene_fit, majority_vote


def test_majority_vote_share_is_confidence():
    out = majority_vote({1: ["a", "a", "b"], 2: ["b"], 3: ["c", "c", "c", "a"]})
    assert out == {1: ("a", pytest.approx(2 / 3)), 2: ("b", 1.0), 3: ("c", 0.75)}
    assert isinstance(out[1], Consensus) and out[1].label == "a"


def test_majority_vote_tie_is_broken_by_label_order_and_is_stable():
    assert majority_vote({1: ["b", "a"]})[1] == ("a", 0.5)
    assert majority_vote({1: ["a", "b"]})[1] == ("a", 0.5)


def test_majority_vote_skips_items_without_labels_and_takes_tuples():
    out = majority_vote({1: [], 2: [("x", "y"), ("x", "y"), ("x",)]})
    assert out == {2: (("x", "y"), pytest.approx(2 / 3))}


def test_dawid_skene_empty_input():
    assert dawid_skene([]) == {}


def test_dawid_skene_unanimous_is_confident():
    triples = [(i, a, "pos" if i % 2 else "neg") for i in range(20) for a in ("u1", "u2", "u3")]
    out = dawid_skene(triples)
    assert all(out[i].label == ("pos" if i % 2 else "neg") for i in range(20))
    assert all(c.confidence > 0.99 for c in out.values())


def _reference_ds(triples, classes, iterations, smoothing):
    """A loop-by-loop Dawid–Skene, written for clarity, to check the vectorised one."""
    items = list(dict.fromkeys(t[0] for t in triples))
    anns = list(dict.fromkeys(t[1] for t in triples))
    K = len(classes)
    post = {i: [0.0] * K for i in items}
    for i, _, lab in triples:
        post[i][classes.index(lab)] += 1
    for i in items:
        s = sum(post[i])
        post[i] = [v / s for v in post[i]]
    for _ in range(iterations):
        priors = [(sum(post[i][k] for i in items) + smoothing) / (len(items) + smoothing * K) for k in range(K)]
        conf = {a: [[smoothing] * K for _ in range(K)] for a in anns}
        for i, a, lab in triples:
            for k in range(K):
                conf[a][k][classes.index(lab)] += post[i][k]
        for a in anns:
            for k in range(K):
                s = sum(conf[a][k])
                conf[a][k] = [v / s for v in conf[a][k]]
        new = {}
        for i in items:
            logs = [math.log(priors[k]) for k in range(K)]
            for i2, a, lab in triples:
                if i2 == i:
                    for k in range(K):
                        logs[k] += math.log(conf[a][k][classes.index(lab)])
            m = max(logs)
            ex = [math.exp(v - m) for v in logs]
            new[i] = [v / sum(ex) for v in ex]
        post = new
    return post


def test_dawid_skene_matches_a_loop_reference_implementation():
    rng = random.Random(7)
    classes = ["a", "b", "c"]
    triples = []
    for item in range(25):
        for ann in range(5):
            if rng.random() < 0.7:
                triples.append((item, ann, rng.choice(classes)))
    fit = dawid_skene_fit(triples, classes=classes, max_iter=4, tol=0.0)
    assert fit.iterations == 4
    ref = _reference_ds(triples, classes, 4, 0.01)
    for idx, item in enumerate(fit.items):
        assert list(fit.posteriors[idx]) == pytest.approx(ref[item], abs=1e-9)


def test_dawid_skene_outvotes_adversarial_annotators_where_majority_fails():
    # Three reliable annotators and two who always give the other label. On items only one
    # reliable annotator saw, majority vote follows the adversarial pair; Dawid–Skene, having
    # learned their confusion matrices on the shared items, inverts them.
    truth = {i: "yes" if i % 3 else "no" for i in range(60)}
    flip = {"yes": "no", "no": "yes"}
    triples = []
    for i, t in truth.items():
        if i < 40:
            triples += [(i, r, t) for r in ("r1", "r2", "r3")]
            triples += [(i, b, flip[t]) for b in ("b1", "b2")]
        else:
            triples += [(i, "r1", t), (i, "b1", flip[t]), (i, "b2", flip[t])]
    mv = majority_vote({i: [lab for it, _, lab in triples if it == i] for i in truth})
    ds = dawid_skene(triples)
    late = range(40, 60)
    assert sum(mv[i].label == truth[i] for i in late) == 0
    assert sum(ds[i].label == truth[i] for i in late) == 20
    assert all(ds[i].confidence > 0.9 for i in late)


def test_dawid_skene_estimates_annotator_accuracy_and_keeps_given_class_order():
    triples = [(i, "good", i % 2) for i in range(40)] + [(i, "good2", i % 2) for i in range(40)]
    triples += [(i, "noisy", (i % 2) if i % 4 else 1 - i % 2) for i in range(40)]
    fit = dawid_skene_fit(triples, classes=[1, 0])
    assert fit.classes == [1, 0]
    acc = fit.annotator_accuracy()
    assert acc["good"] > 0.95 and acc["noisy"] == pytest.approx(0.75, abs=0.05)
    assert fit.converged
