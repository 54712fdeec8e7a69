"""bench.expressions' error table: all, large and ordinary pairs, active weights, pairs without a face."""

from __future__ import annotations

import numpy as np
import pytest

from bench.expressions import _errors


def test_errors_split_by_pair_kind_and_skip_pairs_without_a_face() -> None:
    truth = np.array([[0.9, 0.0], [0.1, 0.0], [0.8, 0.0]], np.float32)
    predicted = np.array([[0.5, 0.2], [0.1, 0.1], [np.nan, np.nan]], np.float32)
    large = np.array([True, False, True])
    row = _errors(predicted, truth, large, np.array([True, True, True]))
    assert row["pairs"] == 3 and row["no_face"] == 1
    assert row["mae_large"] == pytest.approx((0.4 + 0.2) / 2)
    assert row["mae_ordinary"] == pytest.approx((0.0 + 0.1) / 2)
    assert row["mae_all"] == pytest.approx((0.4 + 0.2 + 0.0 + 0.1) / 4)
    assert row["mae_active_all"] == pytest.approx(0.4), "only the truth's active weight of the found pairs"
    assert np.isnan(row["mae_active_ordinary"])


def test_errors_are_scored_on_the_pairs_every_method_found() -> None:
    truth = np.array([[0.9, 0.0], [0.1, 0.0]], np.float32)
    predicted = np.array([[0.5, 0.0], [0.1, 0.0]], np.float32)
    row = _errors(predicted, truth, np.array([True, False]), np.array([False, True]))
    assert row["mae_all"] == pytest.approx(0.0) and row["no_face"] == 0
