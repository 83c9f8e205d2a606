"""Issue 33 item 5: ``cosmic enhance`` enhances only within the rate range of its enhancer.

The old code enhanced a 16 bpp ``.j2k`` from 51.5 to 38.2 dB, and lost 0.05-0.13 dB at 1-2 bpp,
without a word. Outside the range the JPEG2000 decode is written as it is, with one note.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import golden_image, perturbed_enhancer

from cosmic.enhance.model import build_enhancer
from cosmic.enhance.pipeline import DEFAULT_ENHANCER, EnhancePipeline
from cosmic.evaluation.classical import jpeg2000_encode
from cosmic.io.images import load_rgb


@pytest.fixture()
def ranged_enhancer(tmp_path):
    """A small JPEG2000 enhancer (not the identity) trained, says its config, on 0.05..1 bpp."""
    enhancer = perturbed_enhancer(build_enhancer("small", ldm=False))
    enhancer.extra = {"training": {"bpp_range": [0.05, 1.0]}}
    return enhancer.save_pretrained(tmp_path / "ranged")


def _j2k(path, ratio: float):
    coded = jpeg2000_encode(golden_image(64, 96), ratio)
    path.write_bytes(coded.data)
    return coded.decoded, len(coded.data) * 8 / (64 * 96)


def test_a_rate_outside_the_range_passes_through_with_one_note(cli, ranged_enhancer, tmp_path):
    decoded, bpp = _j2k(tmp_path / "fine.j2k", 1.5)  # about 6.6 bpp: a fine decode
    assert bpp > 5
    out = tmp_path / "fine.png"
    code, stdout, err = cli("enhance", tmp_path / "fine.j2k", "-o", out, "-m", ranged_enhancer)
    assert code == 0
    assert np.array_equal(load_rgb(out).pixels, decoded)  # the decode, untouched
    notes = [line for line in err.splitlines() if line.strip()]
    assert len(notes) == 1 and "outside the 0.05..1 bpp" in notes[0] and "not enhanced" in notes[0]
    assert "written as decoded" in stdout


def test_a_rate_inside_the_range_is_enhanced(cli, ranged_enhancer, tmp_path):
    decoded, bpp = _j2k(tmp_path / "low.j2k", 48)  # 0.5 bpp
    assert 0.05 <= bpp <= 1.0
    out = tmp_path / "low.png"
    code, stdout, err = cli("enhance", tmp_path / "low.j2k", "-o", out, "-m", ranged_enhancer)
    assert code == 0 and "outside" not in err and " enhanced (" in stdout
    assert not np.array_equal(load_rgb(out).pixels, decoded)


def test_ranges_of_the_shipped_enhancers_and_of_an_unknown_one(tmp_path):
    shipped = EnhancePipeline.from_pretrained(DEFAULT_ENHANCER)
    assert shipped.rate_range == (0.05, 0.75)  # measured: the mean gain turns negative above it
    assert shipped.outside_range(0.5) is None and "16 bpp" in shipped.outside_range(16.0)
    assert "0.02 bpp" in shipped.outside_range(0.02)
    bare = EnhancePipeline(perturbed_enhancer(build_enhancer("small", ldm=False)))
    assert bare.rate_range is None and bare.outside_range(16.0) is None  # nothing recorded: enhanced
    cosmic = EnhancePipeline.from_pretrained("ldm-rsic-cosmic-small")
    assert cosmic.rate_range is None  # its rate is the model's quality range


def test_enhance_array_passes_through_outside_the_range(ranged_enhancer):
    pipe = EnhancePipeline.from_pretrained(ranged_enhancer)
    pixels = golden_image(64, 96)
    assert np.array_equal(pipe.enhance_array(pixels, 4.0), pixels)
    assert not np.array_equal(pipe.enhance_array(pixels, 0.5), pixels)
