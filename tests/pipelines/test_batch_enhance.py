"""`cosmic enhance DIR_OR_GLOB -o OUTDIR`: many JPEG2000 files, the enhancer loaded once per worker,
each output the one-file command's, a cut-off codestream reported and skipped."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from helpers import golden_image
from PIL import Image

from cosmic.evaluation.classical import jpeg2000_encode
from cosmic.pipelines import batch
from cosmic.pipelines.enhance_job import EnhanceRequest, enhance_file, enhance_inputs


@pytest.fixture()
def downlinks(tmp_path):
    """Two JPEG2000 codestreams (different images and rates), one cut short, and a PNG a folder
    batch leaves alone."""
    folder = tmp_path / "jp2"
    folder.mkdir()
    for i, ratio in enumerate((30.0, 60.0)):
        raw = jpeg2000_encode(np.roll(golden_image(64, 96), 29 * i, axis=1), ratio).data
        (folder / f"pass{i}.j2k").write_bytes(raw)
    (folder / "cut.j2k").write_bytes(raw[:-40])
    Image.fromarray(golden_image(64, 64)).save(folder / "preview.png")
    return folder


def test_batch_enhance_as_one_file(cli, downlinks, tiny_enhancer, tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "LOADED", {})
    out, single = tmp_path / "out", tmp_path / "single.png"
    code, stdout, err = cli("enhance", downlinks, "-o", out, "-m", tiny_enhancer, "--steps", "2", "--seed", "3")
    assert code == 3  # the cut-off codestream, as on its own
    assert stdout.count(": ok ") == 2 and err.count("FAILED") == 1 and "cut.j2k" in err
    assert "2 of 3 files enhanced" in err and len(batch.LOADED) == 1
    assert sorted(p.name for p in out.iterdir()) == ["pass0.png", "pass1.png"]  # no partials
    for i in range(2):
        code, _, err = cli("enhance", downlinks / f"pass{i}.j2k", "-o", single, "-m", tiny_enhancer, "--steps", "2",
                           "--seed", "3", "-q")
        assert code == 0, err
        batched = np.asarray(Image.open(out / f"pass{i}.png"))
        assert batched.shape == (64, 96, 3) and np.array_equal(batched, np.asarray(Image.open(single)))


def test_batch_enhance_inputs_and_bad_options(cli, downlinks, tiny_enhancer, tmp_path, one_line_error):
    assert [p.name for p in batch.find_inputs(downlinks, enhance_inputs(None))] == ["cut.j2k", "pass0.j2k", "pass1.j2k"]
    assert ".tif" in enhance_inputs(0.5) and ".tif" not in enhance_inputs(None)  # a TIFF's rate must be given
    assert ".tif" in enhance_inputs(None, "codebook-ucm")  # a prior needs no rate
    out = tmp_path / "out"
    for extra, needle in ((["--format", "jpeg"], "--format"), (["--steps", "-1"], "--steps")):
        code, _, err = cli("enhance", downlinks, "-o", out, "-m", tiny_enhancer, *extra)
        one_line_error(code, err, needle)
        assert code == 2 and not out.exists()
    one_line_error(*cli("enhance", tmp_path / "none-*.jp2", "-o", out)[::2], "no JPEG2000")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="dask.distributed not installed")
def test_batch_enhance_on_a_dask_local_cluster(downlinks, tiny_enhancer, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    pairs = batch.plan(batch.find_inputs(f"{downlinks}/pass*.j2k", enhance_inputs(None)), out, ".tif")
    results = batch.run_batch(enhance_file, pairs, EnhanceRequest(model=str(tiny_enhancer)), jobs=1, scheduler="local")
    assert [r.ok for r in results] == [True, True]
    single = tmp_path / "single.tif"
    enhance_file(EnhanceRequest(downlinks / "pass1.j2k", single, str(tiny_enhancer)))
    import rasterio

    with rasterio.open(out / "pass1.tif") as a, rasterio.open(single) as b:
        assert np.array_equal(a.read(), b.read())
