"""Bjøntegaard deltas (:mod:`cosmic.evaluation.bjontegaard`): known answers, Pareto fronts, flat noisy curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cosmic.evaluation.bjontegaard import bd_psnr, bd_rate, quality_at_rate


def test_bd_rate_known_answers():
    r = np.array([0.1, 0.2, 0.4, 0.8])
    q = 30 + 4 * np.log2(r / 0.1)
    assert bd_rate(r, q, r, q) == pytest.approx(0.0, abs=1e-9)
    assert bd_rate(r, q, 0.9 * r, q) == pytest.approx(-10.0, abs=1e-6)  # 10% fewer bits everywhere
    assert bd_rate(r, q, 1.25 * r, q) == pytest.approx(25.0, abs=1e-6)
    # +1 dB at every rate on a 4 dB-per-doubling curve = 2^(-1/4) of the rate
    assert bd_rate(r, q, r, q + 1) == pytest.approx((2 ** -0.25 - 1) * 100, abs=1e-6)
    assert bd_psnr(r, q, r, q + 0.5) == pytest.approx(0.5, abs=1e-9)
    assert math.isnan(bd_rate(r, q, r, q + 100))  # no overlap in quality
    assert math.isnan(bd_rate(r[:1], q[:1], r, q))
    # one point against the anchor at its rate: 4 dB per doubling -> +2 dB at sqrt(2) x 0.1
    assert quality_at_rate(r, q, 0.1 * 2 ** 0.5) == pytest.approx(32.0, abs=1e-9)
    assert quality_at_rate(r, q, 0.4) == pytest.approx(38.0, abs=1e-9)
    assert math.isnan(quality_at_rate(r, q, 0.05)) and math.isnan(quality_at_rate(r, q, 1.0))


def test_bd_rate_is_robust_to_flat_noisy_curves():
    """The case that made a single cubic swing: 4 close points, two of them nearly equal in quality."""
    from cosmic.evaluation.bjontegaard import pareto_front

    j2k_r = [0.0629, 0.0999, 0.1475, 0.2453, 0.4898, 0.9747]
    j2k_q = [0.7815, 0.8485, 0.8878, 0.9271, 0.9604, 0.9816]
    test_r = [0.0938, 0.1124, 0.1325, 0.1479]
    test_q = [0.8316, 0.8523, 0.8529, 0.8592]
    bd = bd_rate(j2k_r, j2k_q, test_r, test_q)
    assert 5 < bd < 60  # the test codec needs more bits at every quality it reaches
    r, q = pareto_front([0.1, 0.2, 0.3, 0.4], [30, 32, 31, 33])
    assert list(r) == [0.1, 0.2, 0.4] and list(q) == [30, 32, 33]
