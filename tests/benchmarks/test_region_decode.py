"""benchmarks/region_decode.py: the large scene it times is the small coded crop repeated, tile
for tile (a valid file whose plain decode is the small decode tiled)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import REPO, TINY_MODEL, golden_image, load_script

import cosmic

bench = load_script(REPO / "benchmarks" / "region_decode.py")


def test_repeated_tiles_decode_to_the_tiled_small_decode():
    small = cosmic.compress(golden_image(128, 192), model=TINY_MODEL, tile=64)
    big = bench.repeat_tiles(small, 3)
    assert (cosmic.open(big).width, cosmic.open(big).height) == (576, 384)
    tile = cosmic.decompress(small, model=TINY_MODEL, deblock=False)
    window = cosmic.decompress(big, model=TINY_MODEL, deblock=False, window=(100, 150, 300, 200))
    assert np.array_equal(window, np.tile(tile, (3, 3, 1))[150:350, 100:400])


def test_a_file_that_does_not_fill_its_tiles_is_refused():
    with pytest.raises(ValueError, match="multiples of the tile"):
        bench.repeat_tiles(cosmic.compress(golden_image(), model=TINY_MODEL, tile=64), 2)
