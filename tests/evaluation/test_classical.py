"""Classical codecs (:mod:`cosmic.evaluation.classical`): real-byte bpp and the rate search."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import golden_image

from cosmic.evaluation.classical import CLASSICAL, encode, encode_at_bpp


@pytest.mark.parametrize("codec", sorted(CLASSICAL))
def test_rate_search_within_five_percent(codec):
    x = golden_image(256, 256)
    for target in (0.5, 1.5):
        enc = encode_at_bpp(codec, x, target)
        assert abs(enc.bpp - target) / target < 0.05, (codec, target, enc.bpp)
        assert enc.bpp == len(enc.data) * 8 / (256 * 256)
        assert enc.decoded.shape == x.shape and enc.decoded.dtype == np.uint8
    lo, hi = encode(codec, x, CLASSICAL[codec].knob_range[0]), encode(codec, x, CLASSICAL[codec].knob_range[1])
    assert (lo.bpp < hi.bpp) == CLASSICAL[codec].increasing  # the knob's direction is right
