"""scripts/rd_table.py: the anchor's curve read at a codec's rates (interpolated in log bpp)."""

from __future__ import annotations

import json
import math

from helpers import REPO, load_script

table = load_script(REPO / "scripts" / "rd_table.py")


def _write(folder, name, bpp, psnr, msssim):
    points = [f"{name}@{i}" for i in range(len(bpp))]
    results = {"bpp": bpp, "psnr-rgb": psnr, "ms-ssim-rgb": msssim, "point": points}
    (folder / f"{name}.json").write_text(json.dumps({"name": name, "results": results}))


def test_rows_give_the_difference_at_equal_rate(tmp_path):
    _write(tmp_path, "jpeg2000", [0.05, 0.2, 0.8], [20.0, 24.0, 30.0], [0.8, 0.9, 0.95])
    _write(tmp_path, "model", [0.1, 0.2, 1.6], [21.0, 25.5, 31.0], [0.86, 0.88, 0.99])
    anchor = table.curve(tmp_path, "jpeg2000")
    assert table.at_rate(anchor, "psnr-rgb", 0.1) == 22.0  # halfway between 0.05 and 0.2 in log bpp
    assert math.isnan(table.at_rate(anchor, "psnr-rgb", 1.6))
    rows = table.rows(tmp_path, "model", "jpeg2000")
    assert rows[2] == "| model@0 | 0.1000 | 21.00 | 0.8600 | -1.00 / +0.010 |"
    assert rows[3] == "| model@1 | 0.2000 | 25.50 | 0.8800 | +1.50 / -0.020 |"
    assert rows[4].endswith("| +nan / +nan |")
