"""Bjøntegaard delta rate and PSNR: how much more or less rate a codec needs than an anchor for
the same quality, averaged over the quality range both curves cover.

Each curve is first reduced to its Pareto front (a point with more bits and no better quality
than another is dropped: noisy RD points must not bend the fit), then log-rate is interpolated as
a function of quality with a piecewise cubic Hermite interpolant (PCHIP, the variant JVET's
common test conditions adopted over VCEG-M33's single cubic, which swings wildly on short or
flat curves), both interpolants are integrated over the overlapping quality interval, and the
mean log-rate difference becomes a percentage: -10 means 10% fewer bits than the anchor.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["bd_rate", "bd_psnr", "pareto_front", "quality_at_rate"]


def pareto_front(rate, quality) -> tuple[np.ndarray, np.ndarray]:
    """Points sorted by rate, keeping only those better in quality than every cheaper point."""
    r = np.asarray(rate, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    keep = np.isfinite(r) & np.isfinite(q) & (r > 0)
    r, q = r[keep], q[keep]
    order = np.lexsort((-q, r))
    out_r, out_q = [], []
    for i in order:
        if not out_q or q[i] > out_q[-1]:
            out_r.append(r[i])
            out_q.append(q[i])
    return np.array(out_r), np.array(out_q)


def _mean_difference(x_a, y_a, x_b, y_b) -> float | None:
    """Mean of interp_b(x) - interp_a(x) over the overlap of the (increasing) x ranges."""
    from scipy.interpolate import PchipInterpolator

    lo, hi = max(x_a.min(), x_b.min()), min(x_a.max(), x_b.max())
    if not hi > lo:
        return None
    fa, fb = PchipInterpolator(x_a, y_a), PchipInterpolator(x_b, y_b)
    return float((fb.integrate(lo, hi) - fa.integrate(lo, hi)) / (hi - lo))


def bd_rate(anchor_rate, anchor_quality, test_rate, test_quality) -> float:
    """Average rate difference of ``test`` against ``anchor`` in percent at equal quality
    (NaN with fewer than two Pareto points on a curve, or no overlap in quality)."""
    ra, qa = pareto_front(anchor_rate, anchor_quality)
    rt, qt = pareto_front(test_rate, test_quality)
    if len(ra) < 2 or len(rt) < 2:
        return math.nan
    diff = _mean_difference(qa, np.log(ra), qt, np.log(rt))
    return math.nan if diff is None else (math.exp(diff) - 1.0) * 100.0


def bd_psnr(anchor_rate, anchor_quality, test_rate, test_quality) -> float:
    """Average quality difference of ``test`` against ``anchor`` at equal rate (in the quality's
    unit, e.g. dB)."""
    ra, qa = pareto_front(anchor_rate, anchor_quality)
    rt, qt = pareto_front(test_rate, test_quality)
    if len(ra) < 2 or len(rt) < 2:
        return math.nan
    diff = _mean_difference(np.log(ra), qa, np.log(rt), qt)
    return math.nan if diff is None else diff


def quality_at_rate(anchor_rate, anchor_quality, rate: float) -> float:
    """The anchor's quality at ``rate``, interpolated like :func:`bd_psnr` (PCHIP of quality over
    log-rate on its Pareto front); NaN outside the anchor's rate range. A single rate point of
    another codec is then compared with the anchor at the same rate: ``quality - this``."""
    from scipy.interpolate import PchipInterpolator

    ra, qa = pareto_front(anchor_rate, anchor_quality)
    if len(ra) < 2 or not ra[0] <= rate <= ra[-1]:
        return math.nan
    return float(PchipInterpolator(np.log(ra), qa)(math.log(rate)))
