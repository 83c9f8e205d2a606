"""Statistics of `cosmic eval` (:mod:`cosmic.evaluation.statistics`): the seed spread of Table 4."""

from __future__ import annotations

import pytest

from cosmic.evaluation.statistics import seed_spread


def test_seed_spread_known_values():
    """Table 4: mean and 2σ (sample std) over seeds of the per-seed means, per rate point."""
    summary = {f"x-dc25-s{s}": [{"point": "q3", "bpp": 0.1, "psnr": v, "ms_ssim": 0.8 + v / 1000}]
               for s, v in zip((0, 1, 2), (20.0, 21.0, 22.0))}
    summary["jpeg2000"] = [{"point": "10", "bpp": 0.1, "psnr": 25.0, "ms_ssim": 0.9}]
    summary["lonely-s0"] = [{"point": "a", "bpp": 0.1, "psnr": 1.0, "ms_ssim": 0.1}]  # one seed: no spread
    (row,) = seed_spread(summary)
    assert row["codec"] == "x-dc25" and row["point"] == "q3" and row["seeds"] == [0, 1, 2]
    assert row["psnr"] == pytest.approx(21.0) and row["psnr_2sigma"] == pytest.approx(2.0)
    assert row["bpp_2sigma"] == pytest.approx(0.0, abs=1e-12) and row["ms_ssim_2sigma"] == pytest.approx(0.002)
