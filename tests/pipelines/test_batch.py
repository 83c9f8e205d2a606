"""`cosmic decompress DIR_OR_GLOB -o OUTDIR`: many files, models loaded once per worker, a corrupt
file reported and skipped, outputs written whole; the same work on local processes and Dask
(the runner, cosmic.pipelines.batch, with the decode job of cosmic.pipelines.decode_job)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from helpers import TINY_MODEL, golden_image
from PIL import Image

from cosmic.pipelines import batch
from cosmic.pipelines.decode_job import DecodeRequest, decode_file


@pytest.fixture()
def downlinks(tmp_path):
    """Three good files (different images) and one cut short, in one folder."""
    import cosmic

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        data = cosmic.compress(np.roll(golden_image(128, 192), 23 * i, axis=1), model=str(TINY_MODEL))
        (folder / f"pass{i}.cosmic").write_bytes(data)
    (folder / "broken.cosmic").write_bytes(data[: len(data) // 2])
    (folder / "notes.txt").write_text("not a downlink")
    return folder


def test_batch_decodes_reports_and_skips(cli, downlinks, tmp_path):
    import cosmic

    out = tmp_path / "out"
    code, stdout, err = cli("decompress", downlinks, "-o", out, "-m", TINY_MODEL)
    assert code == 3  # a bitstream error: the status that file would have had on its own
    assert stdout.count(": ok ") == 3 and err.count("FAILED") == 1 and "broken.cosmic" in err
    assert "3 of 4 files decoded" in err and "1 failed" in err
    assert sorted(p.name for p in out.iterdir()) == ["pass0.png", "pass1.png", "pass2.png"]  # no partials
    for i in range(3):
        expected = cosmic.decompress((downlinks / f"pass{i}.cosmic").read_bytes(), model=str(TINY_MODEL))
        assert np.array_equal(np.asarray(Image.open(out / f"pass{i}.png")), expected)


def test_batch_glob_and_models_loaded_once(downlinks, tmp_path, monkeypatch):
    import cosmic.zoo

    loads = []
    real = cosmic.zoo.load_model
    monkeypatch.setattr(cosmic.zoo, "load_model", lambda ref: loads.append(ref) or real(ref))
    monkeypatch.setattr(batch, "LOADED", {})
    inputs = batch.find_inputs(str(downlinks / "pass*.cosmic"))
    assert [p.name for p in inputs] == ["pass0.cosmic", "pass1.cosmic", "pass2.cosmic"]
    assert batch.find_inputs(str(downlinks / "*")) == batch.find_inputs(downlinks)  # notes.txt is no downlink
    results = batch.run_batch(decode_file, batch.plan(inputs, tmp_path, ".png"), DecodeRequest(model=str(TINY_MODEL)))
    assert all(r.ok for r in results) and len(loads) == 1
    with pytest.raises(Exception, match="no .cosmic files"):
        batch.find_inputs(str(tmp_path / "nothing-*.cosmic"))
    with pytest.raises(Exception, match="overwrite an input"):
        batch.plan(inputs, downlinks, ".cosmic")


def test_batch_geotiff_options_as_one_file(cli, downlinks, tmp_path, one_line_error):
    """--dtype and --co apply to every file of a batch, as they do to one file."""
    import rasterio

    out, single = tmp_path / "out", tmp_path / "single.tif"
    product = ["--dtype", "uint16", "--co", "BLOCKSIZE=64"]
    code, _, err = cli("decompress", f"{downlinks}/pass*.cosmic", "-o", out, "-m", TINY_MODEL, "--format", "tiff",
                       *product, "-q")
    assert code == 0, err
    code, _, err = cli("decompress", downlinks / "pass1.cosmic", "-o", single, "-m", TINY_MODEL, *product, "-q")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["pass0.tif", "pass1.tif", "pass2.tif"]
    with rasterio.open(out / "pass1.tif") as a, rasterio.open(single) as b:
        assert a.dtypes == b.dtypes == ("uint16",) * 3 and a.profile["blockxsize"] == 64 == b.profile["blockxsize"]
        assert np.array_equal(a.read(), b.read())
    one_line_error(*cli("decompress", downlinks, "-o", tmp_path / "o2", "-m", TINY_MODEL, "--co", "COMPRESS=ZSTD")[::2],
                   "--format tiff")
    one_line_error(*cli("decompress", downlinks, "-o", tmp_path / "o3", "-m", TINY_MODEL, "--format", "tiff",
                        "--co", "oops")[::2], "--co")
    one_line_error(*cli("decompress", downlinks, "-o", tmp_path / "o4", "-m", TINY_MODEL, "--enhance", "--prior",
                        "codebook")[::2], "--enhance")
    assert not (tmp_path / "o4").exists()


def test_batch_with_a_prior_as_one_file(cli, downlinks, tmp_path, monkeypatch):
    """--prior / --fidelity: the prior is loaded once per worker and applied to every file."""
    import cosmic

    monkeypatch.setattr(batch, "LOADED", {})
    out, single = tmp_path / "out", tmp_path / "single.png"
    prior = ["--prior", "codebook", "--fidelity", "0.5"]
    code, _, err = cli("decompress", f"{downlinks}/pass*.cosmic", "-o", out, "-m", TINY_MODEL, *prior, "-q")
    assert code == 0, err
    assert sum(k[0] == "post" for k in batch.LOADED) == 1  # one prior loaded for the three files
    code, _, err = cli("decompress", downlinks / "pass2.cosmic", "-o", single, "-m", TINY_MODEL, *prior, "-q")
    assert code == 0, err
    batched = np.asarray(Image.open(out / "pass2.png"))
    assert np.array_equal(batched, np.asarray(Image.open(single)))
    plain = cosmic.decompress((downlinks / "pass2.cosmic").read_bytes(), model=str(TINY_MODEL))
    assert not np.array_equal(batched, plain)  # the prior did act


def test_batch_enhance_as_one_file(cli, downlinks, tmp_path, monkeypatch):
    """--enhance on many files: the enhancer of the files' model, loaded once per worker; each
    output equals the one-file `decompress --enhance`'s."""
    from helpers import perturbed_enhancer

    from cosmic.enhance.model import build_enhancer

    import cosmic

    name = cosmic.open(downlinks / "pass0.cosmic").model  # a shipped enhancer names its source model
    enhancer = perturbed_enhancer(build_enhancer("small", source=name)).save_pretrained(tmp_path / "enh")
    monkeypatch.setattr("cosmic.zoo.shipped_models", lambda: [str(enhancer)])  # as if it shipped
    monkeypatch.setattr(batch, "LOADED", {})
    out, single, plain = tmp_path / "out", tmp_path / "single.png", tmp_path / "plain.png"
    code, stdout, err = cli("decompress", f"{downlinks}/pass*.cosmic", "-o", out, "-m", TINY_MODEL, "--enhance")
    assert code == 0, err
    assert stdout.count(", enhanced") == 3 and sum(k[0] == "post" for k in batch.LOADED) == 1
    for name in ("pass0", "pass2"):
        code, _, err = cli("decompress", downlinks / f"{name}.cosmic", "-o", single, "-m", TINY_MODEL, "--enhance", "-q")
        assert code == 0, err
        batched = np.asarray(Image.open(out / f"{name}.png"))
        assert batched.shape == (128, 192, 3) and np.array_equal(batched, np.asarray(Image.open(single)))
    assert cli("decompress", downlinks / "pass2.cosmic", "-o", plain, "-m", TINY_MODEL, "-q")[0] == 0
    assert not np.array_equal(batched, np.asarray(Image.open(plain)))  # the enhancer did act


@pytest.mark.slow
def test_batch_on_two_processes(cli, downlinks, tmp_path):
    code, stdout, err = cli("decompress", f"{downlinks}/*.cosmic", "-o", tmp_path / "out", "-m", TINY_MODEL,
                            "--jobs", "2", "-q")
    assert code == 3 and stdout == "" and err.count("FAILED") == 1
    assert len(list((tmp_path / "out").glob("*.png"))) == 3


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="dask.distributed not installed")
def test_batch_on_a_dask_local_cluster(downlinks, tmp_path):
    """One task per file on a 1-process LocalCluster; the broken file fails alone."""
    pairs = batch.plan(batch.find_inputs(downlinks), tmp_path / "out", ".png")
    (tmp_path / "out").mkdir()
    results = batch.run_batch(decode_file, pairs, DecodeRequest(model=str(TINY_MODEL)), jobs=1, scheduler="local")
    assert sorted(r.ok for r in results) == [False, True, True, True]
    assert [r.exit_code for r in results if not r.ok] == [3]
    assert len(list((tmp_path / "out").glob("*.png"))) == 3
