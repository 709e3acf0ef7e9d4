"""Agreement coefficients against hand-worked textbook examples and the ``krippendorff`` package."""

from __future__ import annotations

import random

import krippendorff
import numpy as np
import pytest

from projects.quality.metrics.agreement import (
    alpha_from_counts,
    cohen_kappa,
    fleiss_kappa,
    fleiss_kappa_from_counts,
    krippendorff_alpha,
    numeric_agreement,
    observed_agreement,
    pairwise_alpha,
    value_counts,
)

# --- Cohen's kappa ------------------------------------------------------------------------


def test_cohen_kappa_wikipedia_example():
    # 50 proposals: both yes 20, A yes / B no 5, A no / B yes 10, both no 15.
    # p_o = 35/50 = 0.7; p_e = 0.5·0.6 + 0.5·0.4 = 0.5; kappa = 0.2 / 0.5 = 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_kappa_small_hand_example_and_missing_pairs():
    # p_o = 3/4; p_e = 0.5·0.25 + 0.5·0.75 = 0.5 → 0.5. The pair with None is dropped.
    assert cohen_kappa([1, 1, 0, 0, None], [1, 0, 0, 0, 1]) == pytest.approx(0.5)


def test_cohen_kappa_perfect_disagreement_is_minus_one():
    assert cohen_kappa(["x", "y"], ["y", "x"]) == pytest.approx(-1.0)


def test_cohen_kappa_degenerate_cases():
    assert cohen_kappa([], []) is None  # no overlap
    assert cohen_kappa(["x", None], [None, "y"]) is None  # no item labelled by both
    assert cohen_kappa(["x", "x", "x"], ["x", "x", "x"]) == 1.0  # all agree on one category: 0/0 → 1.0
    assert cohen_kappa(["x", "y"], ["x", "y"]) == 1.0
    with pytest.raises(ValueError):
        cohen_kappa(["x"], ["x", "y"])


# --- Fleiss' kappa ------------------------------------------------------------------------

FLEISS_WIKIPEDIA = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_wikipedia_example():
    # 10 subjects, 14 raters, 5 categories: P̄ = 0.378, P̄e = 0.213, kappa = 0.210.
    assert fleiss_kappa_from_counts(np.array(FLEISS_WIKIPEDIA)) == pytest.approx(0.20993, abs=1e-5)


def test_fleiss_kappa_from_labels_equals_from_counts():
    units = [[k for k, n in enumerate(row) for _ in range(n)] for row in FLEISS_WIKIPEDIA]
    assert fleiss_kappa(units) == pytest.approx(0.20993, abs=1e-5)


def test_fleiss_kappa_hand_example_with_three_raters():
    # Units (a,a,a), (a,a,b), (b,b,b): P_i = 1, 1/3, 1 → P̄ = 7/9 = 63/81; p_a = 5/9, p_b = 4/9
    # → Pe = 41/81. kappa = (63/81 − 41/81) / (40/81) = 22/40.
    assert fleiss_kappa([["a", "a", "a"], ["a", "a", "b"], ["b", "b", "b"]]) == pytest.approx(0.55)


def test_fleiss_kappa_degenerate_cases():
    assert fleiss_kappa([["a"], ["b"]]) is None  # one rater per unit: no overlap
    assert fleiss_kappa([]) is None
    assert fleiss_kappa([["a", "a"], ["a", "a", None]]) == 1.0  # all agree


# --- Krippendorff's alpha -----------------------------------------------------------------

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 coders ×
# 12 units with missing values. Published: nominal .743, ordinal .815, interval .849, ratio .797.
NAN = np.nan
K2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]


def _units(coders_by_units):
    arr = np.array(coders_by_units, dtype=float)
    return [[None if np.isnan(v) else int(v) for v in arr[:, u]] for u in range(arr.shape[1])]


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)]
)
def test_alpha_krippendorff_2011_example(level, published):
    value = krippendorff_alpha(_units(K2011), level)
    assert round(value, 3) == published
    assert value == pytest.approx(krippendorff.alpha(reliability_data=K2011, level_of_measurement=level), abs=1e-9)


def test_alpha_nominal_hand_example():
    # Units (a,a), (a,b), (b,b), (b,b): o_aa = 2, o_ab = o_ba = 1, o_bb = 4; n_a = 3, n_b = 5, n = 8.
    # alpha = 1 − (n − 1)·(o_ab + o_ba) / (2·n_a·n_b) = 1 − 7·2/30 = 8/15.
    assert krippendorff_alpha([["a", "a"], ["a", "b"], ["b", "b"], ["b", "b"]]) == pytest.approx(8 / 15)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
@pytest.mark.parametrize("seed", range(5))
def test_alpha_matches_reference_package_on_random_data_with_missing_values(level, seed):
    rng = random.Random(seed)
    coders, n_units = rng.randint(2, 6), rng.randint(5, 40)
    data = [[rng.choice([1, 2, 3, 4, 5]) if rng.random() < 0.7 else NAN for _ in range(n_units)] for _ in range(coders)]
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert krippendorff_alpha(_units(data), level) == pytest.approx(expected, abs=1e-9)


def test_alpha_degenerate_cases():
    assert krippendorff_alpha([[1], [2], [3]]) is None  # one annotator / no overlap
    assert krippendorff_alpha([]) is None
    assert krippendorff_alpha([[None, None], [1]]) is None
    assert krippendorff_alpha([[2, 2], [2, 2, None]], "interval") == 1.0  # all agree: 0/0 → 1.0
    with pytest.raises(ValueError):
        krippendorff_alpha([[1, 2]], "cardinal")


def test_alpha_domain_values_without_data_change_nothing_for_ordinal():
    units = _units(K2011)
    counts, values = value_counts(units, domain=[1, 2, 3, 4, 5, 6, 7])
    assert alpha_from_counts(counts, values, "ordinal") == pytest.approx(0.8153875, abs=1e-6)


def test_pairwise_alpha_hand_example_with_ties():
    # a = −1, tie = both_bad = 0, b = +1. Units (a,a), (b,tie), (both_bad,tie): coincidences
    # o(−1,−1) = 2, o(1,0) = o(0,1) = 1, o(0,0) = 2; n = (2, 3, 1), total 6.
    # Σ o·δ² = 2; Σ n_c·n_k·δ² = 2·(2·3·1 + 2·1·4 + 3·1·1) = 34; alpha = 1 − 5·2/34 = 12/17.
    units = [["a", "a"], ["b", "tie"], ["both_bad", "tie"]]
    assert pairwise_alpha(units) == pytest.approx(12 / 17)
    reference = krippendorff.alpha(reliability_data=[[-1, 1, 0], [-1, 0, 0]], level_of_measurement="interval")
    assert pairwise_alpha(units) == pytest.approx(reference)


def test_pairwise_alpha_degenerate():
    assert pairwise_alpha([["a"], ["b", None]]) is None
    assert pairwise_alpha([["tie", "both_bad"], ["tie", "tie"]]) == 1.0


# --- per-unit agreement -------------------------------------------------------------------


def test_observed_agreement_per_unit():
    assert observed_agreement(["a", "a", "b"]) == pytest.approx(1 / 3)  # 1 agreeing pair of 3
    assert observed_agreement(["a", "a"]) == 1.0
    assert observed_agreement(["a", None]) is None


def test_numeric_agreement_per_unit():
    # Scores 1, 3, 5 on a 1–5 scale: pair gaps 2, 4, 2 → mean 8/3, / 4 → 2/3; 1 − 2/3 = 1/3.
    assert numeric_agreement([1, 3, 5], 4) == pytest.approx(1 / 3)
    assert numeric_agreement([4], 4) is None
