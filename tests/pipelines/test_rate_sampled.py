"""Issue 33 item 6: rate control on a large scene searches a sample of tiles, shows progress,
reports the whole search's time and still never exceeds the budget.

The old search coded the whole scene at every bisection step (52 s for a 2.5 Mpx stack, silent)
and reported the last step's seconds. Here a 448x448 image in 64-px tiles (49 tiles) stands in
for a large scene: the search samples 8 of them.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import golden_image
from PIL import Image

from cosmic.pipelines import EncodePipeline, open_scene
from cosmic.pipelines import rate as rate_module
from cosmic.pipelines.rate import MAX_WHOLE_ENCODES, sample_count

TILE = 64


def _scene_pixels() -> np.ndarray:
    """Smooth on the left, busy on the right: tiles differ a lot in cost."""
    img = np.concatenate([golden_image(448, 224)[:, ::4].repeat(4, axis=1), golden_image(448, 224)], axis=1)
    return np.ascontiguousarray(img)


@pytest.fixture(scope="module")
def setting(variable_rate_model):
    pipe = EncodePipeline.from_pretrained(variable_rate_model)
    scene = open_scene(_scene_pixels())
    low, high = (pipe.encode(scene, TILE, q).size for q in pipe.quality_range)
    return pipe, scene, low, high


def _counting(monkeypatch, pipe):
    """Count the tiles every encode codes, and advance a fake clock by 1 s per tile."""
    clock, coded = [0.0], []
    encode = type(pipe).encode

    def counted(self, scene, tile=256, quality=None, progress=False):
        out = encode(self, scene, tile, quality, progress)
        coded.append(out.header.num_tiles)
        clock[0] += out.header.num_tiles
        return out

    monkeypatch.setattr(type(pipe), "encode", counted)
    for module in (rate_module, __import__("cosmic.pipelines.encode", fromlist=["time"])):
        monkeypatch.setattr(module.time, "perf_counter", lambda: clock[0])
    return coded


def test_sample_size():
    assert sample_count(16) is None and sample_count(4) is None  # small grids: searched whole
    assert sample_count(49) == 8 and sample_count(400) == 50


def test_budgets_are_met_from_a_sample_in_few_whole_encodes(setting, monkeypatch, tmp_path):
    pipe, scene, low, high = setting
    coded_tiles = _counting(monkeypatch, pipe)
    for frac in (0.2, 0.5, 0.8):
        coded_tiles.clear()
        budget = int(low + frac * (high - low))
        out = pipe.to_file(scene, tmp_path / "r.cosmic", TILE, max_bytes=budget)
        size = (tmp_path / "r.cosmic").stat().st_size
        assert 0.97 * budget <= size <= budget and size == out.size
        assert len(out.trials) <= MAX_WHOLE_ENCODES + 3
        assert out.seconds == sum(coded_tiles)  # every step counted (the fake clock: 1 s a tile)
        new = sum(coded_tiles)
        coded_tiles.clear()
        old = rate_module._Search(pipe, scene, TILE, budget, 0.03, "old", False).exact()  # whole-scene bisection
        assert old.size <= budget and new < sum(coded_tiles)  # measured: 146 / 81 / 138 tiles against 343 / 294 / 196


@pytest.mark.parametrize("bias", [0.4, 2.5])
def test_a_misleading_sample_never_exceeds_the_budget(setting, monkeypatch, tmp_path, bias):
    pipe, scene, low, high = setting
    estimate = rate_module._Search.estimate
    monkeypatch.setattr(rate_module._Search, "estimate", lambda self, q: bias * estimate(self, q))
    budget = int(low + 0.5 * (high - low))
    out = pipe.encode_to_size(scene, budget, TILE)
    assert 0.97 * budget <= out.size <= budget


def test_out_of_reach_on_a_sampled_scene(setting):
    from cosmic.errors import InputError

    pipe, scene, low, high = setting
    for budget in (low // 2, high * 2):
        with pytest.raises(InputError, match=f"out of reach .*: {low}..{high} bytes"):
            pipe.encode_to_size(scene, budget, TILE)


def test_cli_shows_progress_and_the_true_time(cli, setting, variable_rate_model, tmp_path):
    pipe, scene, low, high = setting
    image = tmp_path / "big.png"
    Image.fromarray(_scene_pixels()).save(image)
    out = tmp_path / "big.cosmic"
    code, stdout, err = cli("compress", image, "-o", out, "-m", variable_rate_model, "--tile", str(TILE),
                            "--max-bytes", str((low + high) // 2))
    assert code == 0, err
    assert "rate control: sampling 8 tiles" in err and "encode: 49/49 tile" in err
    assert out.stat().st_size <= (low + high) // 2 and "encoded in" in stdout


def test_a_band_group_stack_with_fill_is_sampled_in_every_group(tmp_path):
    """The issue's case: a 16-bit 4-band stack with fill (RGB + NIR groups, a mask), 49 tiles of 64."""
    from helpers import write_tif

    from cosmic.io.container import read_container
    from cosmic.io.raster import parse_scale

    img = golden_image(448, 448).astype(np.uint16) * 40 + 100
    bands = np.concatenate([img.transpose(2, 0, 1), img[None, :, :, 0] // 2])
    bands[:, :70, :90] = 0
    write_tif(tmp_path / "stack.tif", bands, "uint16", nodata=0)
    scene = open_scene(tmp_path / "stack.tif", scale=parse_scale("auto"))
    pipe = EncodePipeline.default_for(scene.group_sizes)
    low, high = (pipe.encode(scene, TILE, q).size for q in pipe.quality_range)
    budget = (low + high) // 2
    out = pipe.encode_to_size(scene, budget, TILE)
    assert 0.97 * budget <= out.size <= budget and len(out.trials) <= MAX_WHOLE_ENCODES + 3
    c = read_container(out.to_bytes())
    assert c.header.planes == 2 and c.header.has_mask  # measured: 3 whole encodes


@pytest.mark.parametrize("terminal", [False, True])
def test_a_small_scene_shows_bars_on_a_terminal_only(variable_rate_model, monkeypatch, terminal):
    import sys

    pipe = EncodePipeline.from_pretrained(variable_rate_model)
    scene = open_scene(golden_image())  # 2 tiles: searched whole
    flags = []
    encode = type(pipe).encode
    monkeypatch.setattr(type(pipe), "encode", lambda self, sc, tile=256, quality=None, progress=False: (
        flags.append(progress) or encode(self, sc, tile, quality, False)))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    low, high = (encode(pipe, scene, 256, q).size for q in pipe.quality_range)
    pipe.encode_to_size(scene, (low + high) // 2, progress=True)
    assert flags and set(flags) == {terminal}
