"""Span F1, edit similarity, Wilson and bootstrap intervals, gold scoring (hand-worked values)."""

from __future__ import annotations

import numpy as np
import pytest

from projects.quality.metrics.agreement import alpha_from_counts, value_counts
from projects.quality.metrics.gold import gold_score
from projects.quality.metrics.spans import SpanTally, pair_f1, span_f1
from projects.quality.metrics.stats import bootstrap_ci, wilson_interval
from projects.quality.metrics.text import edit_similarity, mean_pairwise_similarity

A = [(0, 5, "PER"), (10, 15, "ORG")]
B = [(0, 5, "PER"), (11, 15, "ORG"), (20, 25, "LOC")]


def test_span_f1_exact_and_overlap_per_label():
    assert span_f1(A, B, "exact") == {"LOC": 0.0, "ORG": 0.0, "PER": 1.0}
    assert span_f1(A, B, "overlap") == {"LOC": 0.0, "ORG": 1.0, "PER": 1.0}
    # Micro over labels: exact 2·1/5, overlap 2·2/5.
    assert pair_f1(A, B, "exact") == pytest.approx(0.4)
    assert pair_f1(A, B, "overlap") == pytest.approx(0.8)


def test_span_overlap_matching_is_one_to_one():
    # One long span against two short ones: one match, F1 = 2·1/(1+2).
    assert span_f1([(0, 10, "PER")], [(0, 3, "PER"), (5, 9, "PER")], "overlap") == {"PER": pytest.approx(2 / 3)}
    # Touching is not overlapping (end is exclusive).
    assert span_f1([(0, 5, "PER")], [(5, 9, "PER")], "overlap") == {"PER": 0.0}
    # Same range, different label: no match.
    assert span_f1([(0, 5, "PER")], [(0, 5, "ORG")], "exact") == {"ORG": 0.0, "PER": 0.0}


def test_span_degenerate_cases():
    assert span_f1([], []) == {}
    assert pair_f1([], []) is None  # neither marked anything: nothing to compare
    assert span_f1(A, A, "exact") == {"ORG": 1.0, "PER": 1.0}  # all agree


def test_span_tally_sums_over_comparisons():
    tally = SpanTally()
    tally.add(A, B)  # exact: PER 1/(1+1), ORG 0/(1+1), LOC 0/(0+1)
    tally.add([(3, 6, "PER")], [(3, 6, "PER")])  # PER 1/(1+1)
    assert tally.comparisons == 2
    assert tally.f1("exact") == {"LOC": 0.0, "ORG": 0.0, "PER": 1.0}
    assert tally.micro_f1("exact") == pytest.approx(2 * 2 / 7)
    assert tally.micro_f1("overlap") == pytest.approx(2 * 3 / 7)
    assert SpanTally().micro_f1("exact") is None


def test_edit_similarity_hand_examples():
    assert edit_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert edit_similarity("", "") == 1.0
    assert edit_similarity("", "abc") == 0.0
    assert edit_similarity("café", "cafe") == pytest.approx(0.75)  # code points, not bytes
    assert mean_pairwise_similarity(["abc", "abc", "abd"]) == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert mean_pairwise_similarity(["only one", None]) is None


def test_wilson_interval_hand_example():
    low, high = wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and high == pytest.approx(0.4345, abs=1e-4)
    assert wilson_interval(5, 5)[1] == 1.0


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 300)
    units = [[int(t), int(t) if rng.random() < 0.8 else int(rng.integers(0, 3))] for t in truth]
    counts, values = value_counts(units)
    point = alpha_from_counts(counts, values)

    def stat(idx):
        return alpha_from_counts(counts[idx], values)

    first = bootstrap_ci(stat, len(units), n_boot=200, seed=42)
    assert first == bootstrap_ci(stat, len(units), n_boot=200, seed=42)
    assert first != bootstrap_ci(stat, len(units), n_boot=200, seed=43)
    assert first[0] < point < first[1]
    assert bootstrap_ci(stat, 0) is None
    assert bootstrap_ci(lambda idx: None, 10, n_boot=20) is None


@pytest.mark.parametrize(
    ("field", "answer", "gold", "score"),
    [
        ({"type": "choice"}, "a", "a", 1.0),
        ({"type": "choice"}, "a", "b", 0.0),
        ({"type": "choice"}, ["y", "x"], ["x", "y"], 1.0),
        ({"type": "choice"}, None, "a", 0.0),
        ({"type": "choice"}, "a", None, None),
        ({"type": "pairwise"}, {"choice": "a", "reason": "r"}, {"choice": "a"}, 1.0),
        ({"type": "pairwise"}, {"choice": "tie"}, {"choice": "a"}, 0.0),
        ({"type": "rating"}, {"relevance": 4, "safety": 5}, {"relevance": 4}, 1.0),
        ({"type": "rating"}, {"relevance": 3}, {"relevance": 4}, 0.0),
        ({"type": "spans"}, [{"start": 0, "end": 5, "label": "P"}], [{"start": 1, "end": 5, "label": "P"}], 1.0),
        ({"type": "spans"}, [], [], 1.0),
        ({"type": "spans"}, [], [{"start": 0, "end": 5, "label": "P"}], 0.0),
        ({"type": "text"}, "kitten", "sitting", pytest.approx(4 / 7)),
    ],
)
def test_gold_score(field, answer, gold, score):
    assert gold_score(field, answer, gold) == score
