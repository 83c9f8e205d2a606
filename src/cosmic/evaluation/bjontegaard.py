"""Bjøntegaard delta rate and PSNR (VCEG-M33): how much more or less rate a codec needs than an
anchor for the same quality, averaged over the quality range both curves cover.

Each curve's log-rate is fitted as a cubic polynomial of quality (and quality of log-rate for
BD-PSNR), the fits are integrated over the overlapping interval, and the mean log-rate
difference is turned into a percentage: -10 means 10% fewer bits than the anchor.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["bd_rate", "bd_psnr"]


def _prepare(rate, quality) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rate, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    keep = np.isfinite(r) & np.isfinite(q) & (r > 0)
    r, q = r[keep], q[keep]
    order = np.argsort(r)
    return np.log(r[order]), q[order]


def _integral_mean(x_a, y_a, x_b, y_b) -> float | None:
    """Mean of fit_b(x) - fit_a(x) over the overlap of the x ranges (cubic fits, or lower order
    with fewer points)."""
    lo, hi = max(x_a.min(), x_b.min()), min(x_a.max(), x_b.max())
    if not hi > lo:
        return None
    deg_a, deg_b = min(3, len(x_a) - 1), min(3, len(x_b) - 1)
    pa, pb = np.polyint(np.polyfit(x_a, y_a, deg_a)), np.polyint(np.polyfit(x_b, y_b, deg_b))
    area_a = np.polyval(pa, hi) - np.polyval(pa, lo)
    area_b = np.polyval(pb, hi) - np.polyval(pb, lo)
    return float((area_b - area_a) / (hi - lo))


def bd_rate(anchor_rate, anchor_quality, test_rate, test_quality) -> float:
    """Average rate difference of ``test`` against ``anchor`` in percent at equal quality
    (NaN when the curves have fewer than two points or do not overlap in quality)."""
    la, qa = _prepare(anchor_rate, anchor_quality)
    lt, qt = _prepare(test_rate, test_quality)
    if len(la) < 2 or len(lt) < 2:
        return math.nan
    diff = _integral_mean(qa, la, qt, lt)
    return math.nan if diff is None else (math.exp(diff) - 1.0) * 100.0


def bd_psnr(anchor_rate, anchor_quality, test_rate, test_quality) -> float:
    """Average quality difference of ``test`` against ``anchor`` at equal rate (in the quality's
    unit, e.g. dB)."""
    la, qa = _prepare(anchor_rate, anchor_quality)
    lt, qt = _prepare(test_rate, test_quality)
    if len(la) < 2 or len(lt) < 2:
        return math.nan
    diff = _integral_mean(la, qa, lt, qt)
    return math.nan if diff is None else diff
