"""Issue 33 item 3: every size a user types is bounded by the memory policy of cosmic.io.limits.

``--tile 4096`` on a 64x64 image drove one process to 15.7 GB (an OOM kill); the old code only
asked for a multiple of 64. Each case here must be refused in one line (exit 2) before a model is
run, and what is accepted must be decodable (the decoder's tile-row limit applies to the encoder).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from helpers import TINY_MODEL

from cosmic.errors import InputError
from cosmic.io.limits import MAX_BATCH_PIXELS, MAX_TILE, batch_tiles, check_row, check_tile


@pytest.fixture()
def small_png(tmp_path):
    path = tmp_path / "small.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    return path


def test_check_tile_bounds():
    assert check_tile(256) == 256 and check_tile(MAX_TILE) == MAX_TILE and check_tile(np.int64(64)) == 64
    for bad in (0, -64, 100, MAX_TILE + 64, 4096, 256.0, True):
        with pytest.raises(InputError, match=f"^tile={bad}: "):  # API terms; the CLI shows --tile
            check_tile(bad)
    with pytest.raises(InputError, match="--crop 49: must be a positive multiple of 8"):
        check_tile(49, "--crop", 8)
    with pytest.raises(InputError, match="at most 1024 px.*23 GB"):
        check_tile(4096, "--crop", 8)


def test_encoder_batch_is_bounded():
    assert batch_tiles(256, 4) == 4  # the default is unchanged
    assert batch_tiles(512, 4) == 4 and batch_tiles(1024, 4) == 1
    assert batch_tiles(64, 1000) * 64 * 64 <= MAX_BATCH_PIXELS


def test_compress_tile_4096_refused_in_one_line(cli, one_line_error, small_png, tmp_path):
    out = tmp_path / "o.cosmic"
    code, _, err = cli("compress", small_png, "-o", out, "-m", TINY_MODEL, "--tile", "4096", "-q")
    one_line_error(code, err, "--tile 4096", "at most 1024")
    assert code == 2 and not out.exists()


@pytest.mark.parametrize("args", [
    ("flops", "--size", "8192"),
    ("export", "onnx", str(TINY_MODEL), "-o", "{tmp}/e.onnx", "--tile", "2048"),
    ("data", "tiles", "--scenes", "{tmp}", "--out", "{tmp}/t", "--tile", "4096"),
    ("train", "stage1", "--data", "{tmp}", "--out", "{tmp}/r", "--crop", "4096"),
    ("train", "enhance", "--data", "{tmp}", "--out", "{tmp}/r", "--crop", "4096"),
    ("train", "codebook", "--stage", "1", "--data", "{tmp}", "--out", "{tmp}/r", "--crop", "4096"),
])
def test_every_typed_size_is_bounded(cli, one_line_error, tmp_path, args):
    code, _, err = cli(*[a.format(tmp=tmp_path) for a in args])
    one_line_error(code, err, "at most 1024")
    assert code == 2


def test_api_refuses_a_grid_the_decoder_would_refuse():
    """A 1 x 200,000 px strip in 1024-px tiles: one tile row is 600 MiB, over the decoder's
    512 MiB row limit; the old encoder wrote a file that no decoder would read."""
    import cosmic

    with pytest.raises(InputError, match=r"MiB limit; choose a smaller tile size \(tile=\)"):
        cosmic.compress(np.zeros((1, 200_000, 3), np.uint8), model=TINY_MODEL, tile=1024)
    check_row(200_000, 256, "fits", bitstream=False)  # the default tile fits

