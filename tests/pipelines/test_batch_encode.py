"""`cosmic compress DIR_OR_GLOB -o OUTDIR`: one .cosmic per image, byte for byte the one-file
command's; models loaded once per worker; a bad image reported and skipped; nothing of the ground
imported; the same work on a Dask LocalCluster."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import TINY_MODEL, golden_image
from PIL import Image

from cosmic.pipelines import batch, encode_job
from cosmic.pipelines.encode_job import EncodeRequest, encode_file


@pytest.fixture()
def frames(tmp_path):
    """Three small images (one with a metadata sidecar, one grey), a file that is no image, and a
    text file a folder batch leaves alone."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, side in enumerate((64, 96, 128)):
        Image.fromarray(np.roll(golden_image(side, side + 32), 19 * i, axis=1)).save(folder / f"frame{i}.png")
    Image.fromarray(golden_image(64, 64)[..., 1]).save(folder / "grey.png")
    (folder / "frame1.json").write_text(json.dumps({"gsd": 0.5, "cloud_cover": 10}))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    (folder / "notes.txt").write_text("not a frame")
    return folder


def test_batch_compress_equals_one_file_and_skips_bad_images(cli, frames, tmp_path):
    out, single = tmp_path / "out", tmp_path / "single.cosmic"
    code, stdout, err = cli("compress", frames, "-o", out, "-m", TINY_MODEL)
    assert code == 2  # the status the broken image has on its own
    assert stdout.count(": ok ") == 4 and err.count("FAILED") == 1 and "broken.png" in err
    assert "4 of 5 files encoded" in err and "1 failed" in err
    names = ["frame0.cosmic", "frame1.cosmic", "frame2.cosmic", "grey.cosmic"]
    assert sorted(p.name for p in out.iterdir()) == names  # no partials, nothing for broken.png
    for name in names:
        stem = name.removesuffix(".cosmic")
        code, _, err = cli("compress", frames / f"{stem}.png", "-o", single, "-m", TINY_MODEL, "-q")
        assert code == 0, err
        assert (out / name).read_bytes() == single.read_bytes(), name
    import cosmic

    assert cosmic.open(out / "frame1.cosmic").metadata["gsd"] == 0.5  # its own sidecar


def test_batch_compress_rate_options_as_one_file(cli, frames, tmp_path, variable_rate_model):
    """--quality and --bpp with a variable-rate model: each file as the one-file command codes it
    (--bpp 1.5: within every frame's reach; --max-bytes 9000 was out of it once edge tiles were
    padded to the stride and the files shrank)."""
    for option in (["--quality", "2.5"], ["--bpp", "1.5"]):
        out, single = tmp_path / option[0][2:], tmp_path / "single.cosmic"
        code, _, err = cli("compress", f"{frames}/frame*.png", "-o", out, "-m", variable_rate_model, *option, "-q")
        assert code == 0, err
        for i in range(3):
            code, _, err = cli("compress", frames / f"frame{i}.png", "-o", single, "-m", variable_rate_model,
                               *option, "-q")
            assert code == 0, err
            assert (out / f"frame{i}.cosmic").read_bytes() == single.read_bytes(), (option, i)


def test_batch_compress_bad_options_are_one_line(cli, frames, tmp_path, one_line_error):
    out = tmp_path / "out"
    cases = [(["--quality", "2", "--bpp", "0.5"], "exclude each other"), (["--bpp", "-1"], "--bpp"),
             (["--meta", frames / "frame1.json"], "--meta"), (["--jobs", "0"], "--jobs")]
    for extra, needle in cases:
        code, _, err = cli("compress", frames, "-o", out, "-m", TINY_MODEL, *extra)
        one_line_error(code, err, needle)
        assert code == 2 and not out.exists()
    one_line_error(*cli("compress", tmp_path / "none-*.png", "-o", out)[::2], "no image")
    (tmp_path / "file").write_text("")
    one_line_error(*cli("compress", frames, "-o", tmp_path / "file", "-m", TINY_MODEL)[::2], "folder")


def test_batch_compress_loads_each_model_once(frames, tmp_path, monkeypatch):
    import cosmic.zoo

    loads = []
    real = cosmic.zoo.load_onboard
    monkeypatch.setattr(cosmic.zoo, "load_onboard", lambda ref: loads.append(ref) or real(ref))
    monkeypatch.setattr(batch, "LOADED", {})
    inputs = batch.find_inputs(f"{frames}/frame*", encode_job.IMAGE_INPUTS)
    assert [p.name for p in inputs] == ["frame0.png", "frame1.png", "frame2.png"]  # not frame1.json
    results = batch.run_batch(encode_file, batch.plan(inputs, tmp_path, ".cosmic"), EncodeRequest(model=str(TINY_MODEL)))
    assert [r.ok for r in results] == [True] * 3 and len(loads) == 1


def test_batch_compress_imports_nothing_of_the_ground(frames, tmp_path):
    """The satellite's batch (CLI included) loads the encode side only."""
    code = (
        "import sys; from cosmic.cli import main\n"
        "try: main(['compress', sys.argv[1], '-o', sys.argv[2], '-m', sys.argv[3], '-q'])\n"
        "except SystemExit as e: print('exit', e.code)\n"
        "print([m for m in sys.modules if m.startswith(('cosmic.ground', 'cosmic.models', 'cosmic.enhance', "
        "'cosmic.pipelines.decode', 'cosmic.pipelines.decode_job', 'diffusers'))])"
    )
    r = subprocess.run([sys.executable, "-c", code, f"{frames}/frame*.png", str(tmp_path / "out"), str(TINY_MODEL)],
                       capture_output=True, text=True)
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout + r.stderr
    assert len(list((tmp_path / "out").glob("*.cosmic"))) == 3


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="dask.distributed not installed")
def test_batch_compress_on_a_dask_local_cluster(cli, frames, tmp_path):
    """One task per image on a 1-process LocalCluster: the same bytes; the broken image fails alone."""
    out = tmp_path / "out"
    out.mkdir()
    pairs = batch.plan(batch.find_inputs(frames, encode_job.IMAGE_INPUTS), out, ".cosmic")
    results = batch.run_batch(encode_file, pairs, EncodeRequest(model=str(TINY_MODEL)), jobs=1, scheduler="local")
    assert sorted(r.ok for r in results) == [False, True, True, True, True]
    assert [r.exit_code for r in results if not r.ok] == [2]
    assert cli("compress", frames / "frame2.png", "-o", tmp_path / "one.cosmic", "-m", TINY_MODEL, "-q")[0] == 0
    assert (out / "frame2.cosmic").read_bytes() == (tmp_path / "one.cosmic").read_bytes()


@pytest.mark.slow
def test_batch_compress_on_two_processes(cli, frames, tmp_path):
    code, stdout, err = cli("compress", frames, "-o", tmp_path / "out", "-m", TINY_MODEL, "--jobs", "2", "-q")
    assert code == 2 and stdout == "" and err.count("FAILED") == 1
    assert cli("compress", frames / "grey.png", "-o", tmp_path / "one.cosmic", "-m", TINY_MODEL, "-q")[0] == 0
    assert (tmp_path / "out" / "grey.cosmic").read_bytes() == (tmp_path / "one.cosmic").read_bytes()
