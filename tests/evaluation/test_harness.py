"""Evaluation harness (issue #5): BD-rate, real-byte bpp, rate search, perceptual availability."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import TINY_MODEL, encode_file, golden_image
from PIL import Image

from cosmic.evaluation.bjontegaard import bd_psnr, bd_rate, quality_at_rate
from cosmic.evaluation.classical import CLASSICAL, DEFAULT_KNOBS, encode, encode_at_bpp


def test_bd_rate_known_answers():
    r = np.array([0.1, 0.2, 0.4, 0.8])
    q = 30 + 4 * np.log2(r / 0.1)
    assert bd_rate(r, q, r, q) == pytest.approx(0.0, abs=1e-9)
    assert bd_rate(r, q, 0.9 * r, q) == pytest.approx(-10.0, abs=1e-6)  # 10% fewer bits everywhere
    assert bd_rate(r, q, 1.25 * r, q) == pytest.approx(25.0, abs=1e-6)
    # +1 dB at every rate on a 4 dB-per-doubling curve = 2^(-1/4) of the rate
    assert bd_rate(r, q, r, q + 1) == pytest.approx((2 ** -0.25 - 1) * 100, abs=1e-6)
    assert bd_psnr(r, q, r, q + 0.5) == pytest.approx(0.5, abs=1e-9)
    assert math.isnan(bd_rate(r, q, r, q + 100))  # no overlap in quality
    assert math.isnan(bd_rate(r[:1], q[:1], r, q))
    # one point against the anchor at its rate: 4 dB per doubling -> +2 dB at sqrt(2) x 0.1
    assert quality_at_rate(r, q, 0.1 * 2 ** 0.5) == pytest.approx(32.0, abs=1e-9)
    assert quality_at_rate(r, q, 0.4) == pytest.approx(38.0, abs=1e-9)
    assert math.isnan(quality_at_rate(r, q, 0.05)) and math.isnan(quality_at_rate(r, q, 1.0))


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


@pytest.mark.slow
def test_eval_command_writes_real_bpp_and_reports(cli, tmp_path, monkeypatch):
    data = tmp_path / "imgs"
    data.mkdir()
    for i in range(2):
        Image.fromarray(np.roll(golden_image(256, 256), 37 * i, axis=1)).save(data / f"im{i}.png")
    out = tmp_path / "res"
    code, stdout, err = cli("eval", "--data", data, "--codecs", f"model:{TINY_MODEL},jpeg2000,webp,elic",
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
    assert "| webp |" in summary and "| elic | unavailable" in summary and "LPIPS: unavailable" in summary
    assert (out / "rd-psnr.png").stat().st_size > 1000 and (out / "rd-msssim.png").is_file()
    assert "elic: unavailable" in err


def test_perceptual_metrics_unavailable_without_weights(tmp_path, monkeypatch):
    """No cached backbone: 'unavailable', at once, with no network attempt."""
    import socket
    import time

    from cosmic.evaluation import perceptual

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    t0 = time.perf_counter()
    st = perceptual.status()
    assert st["lpips"].startswith("unavailable") and st["fid"].startswith("unavailable")
    assert perceptual.lpips_metric() is None
    assert time.perf_counter() - t0 < 5


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


def test_frechet_distance_known_values():
    from cosmic.evaluation.classifier import frechet_distance

    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shifted = a + np.array([1.0, 0.0, 2.0, 0.0])
    assert frechet_distance(a, shifted) == pytest.approx(5.0, rel=1e-6)  # |mean shift|^2, same covariance
    scaled = a * 2.0  # covariance 4I vs I: trace(I + 4I - 2*2I) = 1 per dimension
    assert frechet_distance(a, scaled) == pytest.approx(4.0, rel=0.05)


@pytest.mark.slow
def test_classifier_learns_a_tiny_set_and_feeds_eval(cli, tmp_path):
    from cosmic.evaluation.classifier import SceneClassifier
    from cosmic.training.classifier import train_classifier

    data = tmp_path / "set"
    rng = np.random.default_rng(0)
    for cls, colour in (("red", (200, 40, 40)), ("blue", (40, 40, 200))):
        (data / cls).mkdir(parents=True)
        for i in range(4):
            img = np.clip(rng.normal(0, 25, (256, 256, 3)) + colour, 0, 255).astype(np.uint8)
            Image.fromarray(img).save(data / cls / f"{cls}{i}.png")
    path, acc = train_classifier(data, tmp_path / "cls", steps=30, batch_size=8, progress=False)
    assert acc == 1.0
    model = SceneClassifier.from_pretrained(path)
    assert model.classes == ["blue", "red"]
    code, _, err = cli("eval", "--data", data, "--split", "all", "--codecs", "jpeg", "--classifier", path,
                       "--out", tmp_path / "res")
    assert code == 0, err
    summary = (tmp_path / "res" / "summary.md").read_text()
    assert "top-1" in summary and "FD-UCM" in summary and "on the originals: 1.000" in summary
    rows = json.loads((tmp_path / "res" / "per_image.json").read_text())
    assert all(isinstance(r["top1"], bool) for r in rows)


def test_bd_rate_is_robust_to_flat_noisy_curves():
    """The case that made a single cubic swing: 4 close points, two of them nearly equal in quality."""
    from cosmic.evaluation.bjontegaard import pareto_front

    j2k_r = [0.0629, 0.0999, 0.1475, 0.2453, 0.4898, 0.9747]
    j2k_q = [0.7815, 0.8485, 0.8878, 0.9271, 0.9604, 0.9816]
    test_r = [0.0938, 0.1124, 0.1325, 0.1479]
    test_q = [0.8316, 0.8523, 0.8529, 0.8592]
    bd = bd_rate(j2k_r, j2k_q, test_r, test_q)
    assert 5 < bd < 60  # the test codec needs more bits at every quality it reaches
    r, q = pareto_front([0.1, 0.2, 0.3, 0.4], [30, 32, 31, 33])
    assert list(r) == [0.1, 0.2, 0.4] and list(q) == [30, 32, 33]


def test_one_encode_serves_every_decode_of_an_image(tmp_path, monkeypatch):
    """A steps sweep decodes one file several ways: it is encoded once per (model, image)."""
    from cosmic.evaluation.harness import CodecSpec, CosmicRunner
    from cosmic.metadata import SensorMetadata
    from cosmic.pipelines import EncodePipeline

    calls = []
    real = EncodePipeline.encode
    monkeypatch.setattr(EncodePipeline, "encode", lambda *a, **k: calls.append(1) or real(*a, **k))
    shared: dict = {}
    spec = CodecSpec("tiny", "cosmic", [str(TINY_MODEL)])
    a, b = (CosmicRunner(spec, encoded=shared) for _ in range(2))
    x = golden_image(128, 128)
    first = a.run(str(TINY_MODEL), x, SensorMetadata(), key="im0")
    second = b.run(str(TINY_MODEL), x, SensorMetadata(), key="im0")
    assert len(calls) == 1 and first[0] == second[0] and np.array_equal(first[1], second[1])
    b.run(str(TINY_MODEL), np.roll(x, 5, axis=1), SensorMetadata(), key="im1")
    assert len(calls) == 2 and list(shared) == [(str(TINY_MODEL), "im1")]  # the old image's file dropped


def test_seed_spread_known_values():
    """Table 4: mean and 2σ (sample std) over seeds of the per-seed means, per rate point."""
    from cosmic.evaluation.harness import seed_spread

    summary = {f"x-dc25-s{s}": [{"point": "q3", "bpp": 0.1, "psnr": v, "ms_ssim": 0.8 + v / 1000}]
               for s, v in zip((0, 1, 2), (20.0, 21.0, 22.0))}
    summary["jpeg2000"] = [{"point": "10", "bpp": 0.1, "psnr": 25.0, "ms_ssim": 0.9}]
    summary["lonely-s0"] = [{"point": "a", "bpp": 0.1, "psnr": 1.0, "ms_ssim": 0.1}]  # one seed: no spread
    (row,) = seed_spread(summary)
    assert row["codec"] == "x-dc25" and row["point"] == "q3" and row["seeds"] == [0, 1, 2]
    assert row["psnr"] == pytest.approx(21.0) and row["psnr_2sigma"] == pytest.approx(2.0)
    assert row["bpp_2sigma"] == pytest.approx(0.0, abs=1e-12) and row["ms_ssim_2sigma"] == pytest.approx(0.002)


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


def test_compare_leaves_out_images_where_jpeg2000_missed(tmp_path):
    """`cosmic compare`: an image where the JPEG2000 rate search missed COSMIC's bpp by more
    than 5 % is flagged in the report and left out of every mean."""
    from cosmic.evaluation.matched import write_report

    def row(name, bpp, j2k_bpp, missed):
        return {"image": name, "width": 256, "height": 256,
                "cosmic": {"bytes": 1, "bpp": bpp, "psnr": 30.0, "ms_ssim": 0.9, "encode_s": 1, "decode_s": 1},
                "jpeg2000": {"bytes": 1, "bpp": j2k_bpp, "psnr": 20.0 if missed else 28.0, "ms_ssim": 0.8,
                             "missed": missed}}

    rows = [row("a.png", 0.10, 0.101, False), row("b.png", 0.10, 0.05, True)]
    s = write_report(rows, tmp_path, "t")
    assert s["images"] == 1 and s["j2k_missed"] == ["b.png"]
    assert s["jpeg2000"]["psnr"] == 28.0 and s["jpeg2000"]["bpp"] == 0.101
    assert "b.png" in (tmp_path / "summary.md").read_text()


def test_a_variable_rate_model_is_one_series_of_its_qualities(tmp_path):
    from cosmic.evaluation.harness import parse_codecs, point_label
    from cosmic.models.cosmic import Cosmic

    model = Cosmic(N=16, M=16, ground_channels=8, rate_levels=3, gain_span=2.0)
    model.update(force=True)
    model.save_pretrained(tmp_path / "vr" / "final")
    ref = str(tmp_path / "vr" / "final")
    (spec,) = parse_codecs(f"model:{ref}")
    assert spec.name == "vr" and spec.points == [f"{ref}@1", f"{ref}@2", f"{ref}@3"]
    assert point_label(spec.points[1]) == "vr@2"
    (one,) = parse_codecs(f"model:{ref}@2.5")
    assert one.points == [f"{ref}@2.5"]


def test_compensated_variable_rate_model_is_evaluated_at_each_quality(tmp_path):
    """``model-dc:VR`` stands for the model's integer qualities, like ``model:VR``; ``@Q`` points
    and '+'-joined models work too; a model without a stage-2 network is refused in one line."""
    from cosmic.errors import InputError
    from cosmic.evaluation.harness import parse_codecs
    from cosmic.ground.diffusion.noise_predictor import NoisePredictor
    from cosmic.ground.diffusion.sampler import DiffusionCompensator
    from cosmic.models.cosmic import Cosmic

    vr = Cosmic(N=16, M=16, ground_channels=8, rate_levels=3, gain_span=2.0)
    vr.save_pretrained(tmp_path / "vr")
    net = NoisePredictor(M=16, latent_channels=4, injection_hidden=16, quality_conditioning=True, unet={
        "block_out_channels": [32, 32], "layers_per_block": 1, "cross_attention_dim": 32, "attention_head_dim": 8})
    DiffusionCompensator(net, 1.0).save_pretrained(tmp_path / "vr" / "diffusion")
    vr_dir = str(tmp_path / "vr")
    (spec,) = parse_codecs(f"model-dc:{vr_dir}", steps=10)
    assert spec.name == "vr-dc10" and spec.steps == 10
    assert spec.points == [f"{vr_dir}@{q}" for q in (1, 2, 3)]
    (spec,) = parse_codecs(f"model-dc:{vr_dir}@1.5+{vr_dir}@3", steps=4)
    assert spec.points == [f"{vr_dir}@1.5", f"{vr_dir}@3"] and spec.steps == 4
    Cosmic(N=16, M=16, ground_channels=8).save_pretrained(tmp_path / "plain")
    with pytest.raises(InputError, match="no stage-2"):
        parse_codecs(f"model-dc:{tmp_path / 'plain'}")
    with pytest.raises(InputError, match="after 'model-dc:'"):
        parse_codecs("model-dc:")
