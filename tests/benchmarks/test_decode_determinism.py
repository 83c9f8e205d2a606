"""benchmarks/decode_determinism.py: the lost tiles it makes and the samples it compares."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import REPO, TINY_MODEL, golden_image, load_script

import cosmic
from cosmic.io.container import TileError, read_container

bench = load_script(REPO / "benchmarks" / "decode_determinism.py")


def test_every_other_tile_is_lost_and_the_rest_intact(tmp_path):
    src, out = tmp_path / "a.cosmic", tmp_path / "b.cosmic"
    src.write_bytes(cosmic.compress(golden_image(300, 520), model=TINY_MODEL))  # 2 x 3 tiles
    assert bench.lose_every_other_tile(src, out) == [1, 3, 5]
    before, after = read_container(src), read_container(out)
    for i in (0, 2, 4):
        assert after.tile_payload(i) == before.tile_payload(i)
    for i in (1, 3, 5):
        with pytest.raises(TileError):
            after.tile_payload(i)


def test_tile_mask_leaves_out_the_lost_tiles():
    keep = bench.tile_mask((3, 5), 2, 3, [1, 3])
    assert keep.astype(int).tolist() == [[1, 1, 0, 0, 1], [1, 1, 0, 0, 1], [0, 0, 1, 1, 1]]
    keep = bench.tile_mask((4, 6), 2, 3, [4], margin=1)
    assert keep.astype(int).tolist() == [[1] * 6, [1, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 1]]


def test_count_differences_counts_samples_and_files(tmp_path):
    """Two PNGs per side, one sample changed in a lost tile and one in an intact one; with the lost
    tiles named, the lost tile and the border filter's 8 px around it are not compared."""
    from PIL import Image

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    x = golden_image(24, 24)
    y = x.copy()
    y[0, 0, 0] += 1  # in tile 0
    y[23, 23, 2] += 1  # in tile 3, beyond tile 0's 8 px
    for name, other in (("f0", x), ("f1", y)):
        Image.fromarray(x).save(a / f"{name}.png")
        Image.fromarray(other).save(b / f"{name}.png")
    assert bench.count_differences(a, b) == (2, 2 * 24 * 24 * 3, 1)
    lost = {"f0": ([], 12, 2), "f1": ([0], 12, 2)}
    assert bench.count_differences(a, b, lost) == (1, (24 * 24 + 24 * 24 - 20 * 20) * 3, 1)
