"""Issue 33 item 4: the border filter is the default decode (CLI, API, pipeline, batch, demo).

Measured before switching (docs/RESULTS.md, "Seams and the border filter"): on a 934x723 NAIP
scene with the shipped model the seam score falls from 2.72 to 0.61 at quality 3 for -0.002 dB.
The old code decoded plain stitched tiles unless ``--deblock`` was given.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import TINY_MODEL, golden_image

from cosmic.errors import InputError


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    """The golden image (300x200: two tile columns, one border at x = 256) coded by the tiny model."""
    import cosmic

    path = tmp_path_factory.mktemp("deblock") / "g.cosmic"
    path.write_bytes(cosmic.compress(golden_image(), model=TINY_MODEL))
    return path


def _png(path):
    from cosmic.io.images import load_rgb

    return load_rgb(path).pixels


def test_cli_decodes_deblocked_by_default_and_no_deblock_turns_it_off(cli, coded, tmp_path):
    from cosmic.pipelines.decode import DecodePipeline

    outs = {}
    for flags in ((), ("--deblock",), ("--no-deblock",)):
        out = tmp_path / f"o{'-'.join(flags)}.png"
        assert cli("decompress", coded, "-o", out, "-m", TINY_MODEL, "-q", *flags)[0] == 0
        outs[flags] = _png(out)
    assert np.array_equal(outs[()], outs[("--deblock",)])
    assert not np.array_equal(outs[()], outs[("--no-deblock",)])
    changed = np.argwhere((outs[()] != outs[("--no-deblock",)]).any(axis=2))
    assert changed[:, 1].min() >= 256 - 8 and changed[:, 1].max() < 256 + 8  # only around the border
    pipe = DecodePipeline.from_pretrained(TINY_MODEL)
    assert np.array_equal(pipe(coded).pixels, outs[()])
    assert np.array_equal(pipe(coded, deblock=False).pixels, outs[("--no-deblock",)])


def test_api_default_is_the_cli_default_window_stays_exact(coded):
    import cosmic

    full = cosmic.decompress(coded, model=TINY_MODEL)
    assert np.array_equal(full, cosmic.decompress(coded, model=TINY_MODEL, deblock=True))
    assert not np.array_equal(full, cosmic.decompress(coded, model=TINY_MODEL, deblock=False))
    window = cosmic.decompress(coded, model=TINY_MODEL, window=(250, 10, 12, 20))  # across the border
    assert np.array_equal(window, full[10:30, 250:262])
    with pytest.raises(InputError, match="deblock='no'"):
        cosmic.decompress(coded, model=TINY_MODEL, deblock="no")


def test_demo_shows_the_default_decode(coded, tmp_path):
    from PIL import Image

    from cosmic.demo import run_demo
    from cosmic.pipelines.decode import DecodePipeline

    image = tmp_path / "g.png"
    Image.fromarray(golden_image()).save(image)
    run_demo(image, tmp_path / "demo", str(TINY_MODEL), echo=lambda *_: None)
    pipe = DecodePipeline.from_pretrained(TINY_MODEL)
    shown = _png(tmp_path / "demo" / "g.cosmic.png")
    assert np.array_equal(shown, pipe(tmp_path / "demo" / "g.cosmic", deblock=True).pixels)
    assert not np.array_equal(shown, pipe(tmp_path / "demo" / "g.cosmic", deblock=False).pixels)


def test_batch_decode_options_default_to_deblock():
    from cosmic.pipelines.decode_job import DecodeRequest

    assert DecodeRequest().deblock is True
