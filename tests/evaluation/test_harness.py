"""`cosmic eval` end to end (:mod:`cosmic.evaluation.harness`): real-byte bpp, reports, tile sets, seed sweeps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import TINY_MODEL, encode_file, golden_image
from PIL import Image

from cosmic.evaluation.classical import DEFAULT_KNOBS, encode


@pytest.mark.slow
def test_eval_command_writes_real_bpp_and_reports(cli, tmp_path, monkeypatch):
    data = tmp_path / "imgs"
    data.mkdir()
    for i in range(2):
        Image.fromarray(np.roll(golden_image(256, 256), 37 * i, axis=1)).save(data / f"im{i}.png")
    out = tmp_path / "res"
    code, stdout, err = cli("eval", "--data", data, "--codecs", f"model:{TINY_MODEL},jpeg2000,webp,mbt2018-mean",
                            "--out", out, "--title", "tiny")
    assert code == 0, err
    rows = json.loads((out / "per_image.json").read_text())
    assert {r["codec"] for r in rows} == {"tiny-model", "jpeg2000", "webp"}
    assert len([r for r in rows if r["codec"] == "jpeg2000"]) == 2 * len(DEFAULT_KNOBS["jpeg2000"])
    # bpp of the COSMIC rows is the real file: re-encode and compare bytes
    from cosmic.models.cosmic import Cosmic

    model = Cosmic.from_pretrained(TINY_MODEL)
    x = np.asarray(Image.open(data / "im0.png"))
    size = len(encode_file(model.onboard, x, model.name, tmp_path / "a.cosmic"))
    row = next(r for r in rows if r["codec"] == "tiny-model" and r["image"].endswith("im0.png"))
    assert row["bpp"] == size * 8 / (256 * 256)
    j2k = next(r for r in rows if r["codec"] == "jpeg2000" and r["point"] == "96" and r["image"].endswith("im0.png"))
    assert j2k["bpp"] == len(encode("jpeg2000", x, 96.0).data) * 8 / (256 * 256)
    compressai_style = json.loads((out / "webp.json").read_text())
    assert len(compressai_style["results"]["bpp"]) == 6 and "psnr-rgb" in compressai_style["results"]
    summary = (out / "summary.md").read_text()
    assert "| webp |" in summary and "| mbt2018-mean | unavailable" in summary and "LPIPS: unavailable" in summary
    assert (out / "rd-psnr.png").stat().st_size > 1000 and (out / "rd-msssim.png").is_file()
    assert "mbt2018-mean: unavailable" in err


def test_unknown_codec_is_one_line_error(cli, tmp_path, one_line_error):
    one_line_error(*cli("eval", "--data", tmp_path, "--codecs", "jpeg,nope")[::2], "unknown codec 'nope'")


@pytest.mark.slow
def test_eval_on_tile_set_stitches_scenes(cli, tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    Image.fromarray(golden_image(200, 330)).save(scenes / "s.png")
    assert cli("data", "tiles", "--scenes", scenes, "--out", tmp_path / "tiles", "--tile", "128")[0] == 0
    out = tmp_path / "res"
    code, stdout, err = cli("eval", "--data", tmp_path / "tiles", "--codecs", f"model:{TINY_MODEL},jpeg2000",
                            "--out", out)
    assert code == 0, err
    rows = json.loads((out / "per_image.json").read_text())
    assert len({r["image"] for r in rows}) == 2  # 1 x 2 whole tiles of 128 px
    stitched = json.loads((out / "stitched.json").read_text())
    assert {(s["scene"], s["codec"]) for s in stitched} == {("s", "tiny-model"), ("s", "jpeg2000")}
    assert len(stitched) == 1 + len(DEFAULT_KNOBS["jpeg2000"]) and all(np.isfinite(s["seam"]) for s in stitched)
    # the stitched PSNR at J2K's highest rate beats its lowest
    j = sorted((s for s in stitched if s["codec"] == "jpeg2000"), key=lambda s: float(s["point"]))
    assert j[0]["psnr"] > j[-1]["psnr"]
    out2 = tmp_path / "res2"  # --no-stitch: the tiles' table only
    code, stdout, err = cli("eval", "--data", tmp_path / "tiles", "--codecs", "jpeg2000", "--no-stitch",
                            "--classifier", "none", "--out", out2)
    assert code == 0, err
    assert (out2 / "summary.md").is_file() and not (out2 / "stitched.json").exists()
    assert "Stitched" not in stdout


@pytest.mark.slow
def test_eval_seed_sweep_reports_mean_and_spread(cli, tmp_path):
    """`cosmic eval --seed 0,1,2` decodes the same files once per seed and writes Table 4."""
    import shutil

    from cosmic.ground.diffusion.noise_predictor import NoisePredictor
    from cosmic.ground.diffusion.sampler import DiffusionCompensator

    model_dir = tmp_path / "tiny"
    shutil.copytree(TINY_MODEL, model_dir)
    import torch

    torch.manual_seed(0)
    net = NoisePredictor(M=16, latent_channels=4, injection_hidden=16, unet={
        "block_out_channels": [32, 32], "layers_per_block": 1, "cross_attention_dim": 32, "attention_head_dim": 8})
    with torch.no_grad():  # a non-zero output layer, so that the seed shows in the decode
        net.unet.conv_out.weight.normal_(0, 0.5)
    DiffusionCompensator(net, 1.0, residual=True).save_pretrained(model_dir / "diffusion")
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        Image.fromarray(np.roll(golden_image(128, 128), 11 * i, axis=1)).save(data / f"im{i}.png")
    out = tmp_path / "out"
    code, stdout, err = cli("eval", "--data", data, "--split", "all", "--codecs", f"model-dc:{model_dir}",
                            "--steps", "2", "--seed", "0,1,2", "--classifier", "none", "--out", out)
    assert code == 0, err
    rows = json.loads((out / "per_image.json").read_text())
    assert sorted({r["codec"] for r in rows}) == ["tiny-dc2-s0", "tiny-dc2-s1", "tiny-dc2-s2"]
    assert len({r["bpp"] for r in rows if r["image"].endswith("im0.png")}) == 1  # one file, three decodes
    (spread,) = json.loads((out / "seeds.json").read_text())
    per_seed = [np.mean([r["psnr"] for r in rows if r["codec"] == f"tiny-dc2-s{s}"]) for s in range(3)]
    assert len(set(per_seed)) == 3
    assert spread["psnr"] == pytest.approx(np.mean(per_seed))
    assert spread["psnr_2sigma"] == pytest.approx(2 * np.std(per_seed, ddof=1)) and spread["psnr_2sigma"] > 0
    assert "Seed variance" in (out / "summary.md").read_text()
    code, _, err = cli("eval", "--data", data, "--codecs", "jpeg", "--seed", "1,1", "--out", out)
    assert code == 2 and "distinct" in err
