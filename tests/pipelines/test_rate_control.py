"""Variable-rate models through the encode pipeline: --quality over the model's range, and rate
control (--bpp, --max-bytes) that lands within 3 % under the target and never over it."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import TINY_MODEL, golden_image
from PIL import Image

from cosmic.io.container import read_container

IMAGES = {
    "golden": golden_image(),
    "square": golden_image(256, 256)[::-1].copy(),
    "wide": np.roll(golden_image(130, 400), 37, axis=1),
}


@pytest.fixture(params=sorted(IMAGES))
def image(request, tmp_path):
    path = tmp_path / f"{request.param}.png"
    Image.fromarray(IMAGES[request.param]).save(path)
    return path


def _reach(cli, image, model, tmp_path) -> tuple[int, int]:
    """File sizes at the lowest and highest quality."""
    sizes = []
    for q in ("1", "4"):
        out = tmp_path / f"q{q}.cosmic"
        assert cli("compress", image, "-o", out, "-m", model, "--quality", q, "-q")[0] == 0
        sizes.append(out.stat().st_size)
    return sizes[0], sizes[1]


def test_bpp_target_is_hit_within_3_percent_under(cli, image, variable_rate_model, tmp_path):
    lo, hi = _reach(cli, image, variable_rate_model, tmp_path)
    w, h = Image.open(image).size
    for frac in (0.3, 0.7):
        bpp = (lo + frac * (hi - lo)) * 8 / (w * h)
        out = tmp_path / "r.cosmic"
        code, stdout, err = cli("compress", image, "-o", out, "-m", variable_rate_model, "--bpp", f"{bpp:.4f}")
        assert code == 0, err
        budget = int(float(f"{bpp:.4f}") * w * h / 8)
        size = out.stat().st_size
        assert 0.97 * budget <= size <= budget, (size, budget)
        c = read_container(out)
        assert c.version == (4 if c.header.edge_stride else 2)  # 4: edge tiles padded to the stride
        assert 1.0 <= c.header.quality <= 4.0 and "quality" in stdout


def test_max_bytes_is_never_exceeded(cli, image, variable_rate_model, tmp_path):
    lo, hi = _reach(cli, image, variable_rate_model, tmp_path)
    for budget in (int(lo * 1.1), (lo + hi) // 2, hi - 1):
        out = tmp_path / "r.cosmic"
        code, _, err = cli("compress", image, "-o", out, "-m", variable_rate_model, "--max-bytes", budget, "-q")
        assert code == 0, err
        assert 0.97 * budget <= out.stat().st_size <= budget


def test_unreachable_target_is_one_line(cli, one_line_error, golden_png, variable_rate_model, tmp_path):
    out = tmp_path / "r.cosmic"
    for args in (["--bpp", "0.001"], ["--max-bytes", "100"], ["--bpp", "1000"]):
        code, _, err = cli("compress", golden_png, "-o", out, "-m", variable_rate_model, *args)
        one_line_error(code, err, "out of reach", "bytes", "bpp")
        assert code == 2 and not out.exists()


def test_rate_control_needs_a_variable_rate_model(cli, one_line_error, golden_png, tmp_path):
    out = tmp_path / "r.cosmic"
    code, _, err = cli("compress", golden_png, "-o", out, "-m", TINY_MODEL, "--bpp", "0.5")
    one_line_error(code, err, "variable-rate")
    code, _, err = cli("compress", golden_png, "-o", out, "-m", TINY_MODEL, "--quality", "2")
    one_line_error(code, err, "one rate")
    code, _, err = cli("compress", golden_png, "-o", out, "--quality", "7")  # the default codes 1..6
    one_line_error(code, err, "1..6")
    assert not out.exists()


def test_float_quality_round_trips(cli, golden_png, variable_rate_model, tmp_path):
    out, png = tmp_path / "q.cosmic", tmp_path / "q.png"
    assert cli("compress", golden_png, "-o", out, "-m", variable_rate_model, "--quality", "2.37", "-q")[0] == 0
    assert read_container(out).header.quality == pytest.approx(2.37, abs=1 / 1024)
    code, _, err = cli("decompress", out, "-o", png, "-m", variable_rate_model, "-q")
    assert code == 0, err
    assert Image.open(png).size == (300, 200)
    code, _, err = cli("compress", golden_png, "-o", out, "-m", variable_rate_model, "--quality", "4.5")
    assert code == 2 and "1..4" in err
