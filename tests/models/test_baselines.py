"""CompressAI's learned baselines in COSMIC's contract: same training loop, container and CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import golden_image
from PIL import Image

from cosmic.evaluation.specs import parse_codecs
from cosmic.models.baselines import LearnedBaseline
from cosmic.models.registry import build_model
from cosmic.training.losses import Stage1Loss
from cosmic.training.stage1 import Stage1Config, train_stage1
from cosmic.zoo import load_model, load_onboard

ARCHS = ["bmshj2018-hyperprior", "mbt2018-mean"]


@pytest.mark.parametrize("arch", ARCHS)
def test_real_bitstream_round_trip_matches_quantisation(arch, tmp_path):
    torch.manual_seed(0)
    model = build_model(arch, "small", N=16, M=24).eval()
    model.update(force=True)
    x = torch.rand(2, 3, 128, 128)
    enc = model.compress(x)
    y_hat = model.onboard.decompress(enc["strings"], enc["shape"])["y_hat"]
    on = model.onboard
    y = on.g_a(x)
    z = on.h_a(y if on.mean_scale else y.abs())
    z_hat = on.entropy_bottleneck.quantize(z, "dequantize", on.entropy_bottleneck._get_medians())
    _, means = on.entropy_parameters(z_hat)
    expect = torch.round(y.double() - (0 if means is None else means)) + (0 if means is None else means)
    assert torch.equal(y_hat, expect.float())
    # saved and loaded back (whole model and the on-board part alone): the same bytes
    model.save_pretrained(tmp_path / "m")
    again, (codec, name) = load_model(tmp_path / "m"), load_onboard(tmp_path / "m")
    assert isinstance(again, LearnedBaseline) and name == f"{arch}-small"
    assert codec.compress(x)["strings"] == enc["strings"]
    assert again.decompress(enc["strings"], enc["shape"])["x_hat"].shape == x.shape


@pytest.mark.parametrize("arch", ["cosmic", *ARCHS])
def test_update_takes_an_explicit_scale_table(arch):
    """Every on-board codec shares one coding base: ``update(scale_table=tensor)`` works (the
    baselines' copy used ``scale_table or default`` and raised on a tensor)."""
    from compressai.models.base import get_scale_table

    from cosmic.onboard.coding import HyperpriorCodec

    model = build_model(arch, "small", N=16, M=24)
    assert isinstance(model.onboard, HyperpriorCodec)
    assert model.onboard.update(scale_table=get_scale_table(0.2, 64, 32), force=True)
    assert model.onboard.gaussian_conditional.scale_table.numel() == 32


def test_loss_has_no_kl_term_and_one_decoder_path():
    model = build_model("bmshj2018-hyperprior", "small", N=16, M=24)
    x = torch.rand(2, 3, 64, 64)
    terms = Stage1Loss(0.01, kl_weight=4.0, est_weight=0.8)(model(x), x)
    assert float(terms["kl_bpp"]) == 0.0 and torch.equal(terms["mse"], terms["mse_est"])
    expect = terms["bpp"] + 0.01 * 255**2 * terms["mse"]
    assert torch.allclose(terms["loss"], expect)


@pytest.mark.slow
def test_trains_with_stage1_loop_and_codes_through_the_cli(tiny_data, tmp_path, monkeypatch, cli, golden_png):
    import cosmic.models.registry as reg

    monkeypatch.setitem(reg.BASELINE_PRESETS, "small", {"N": 16, "M": 24})
    cfg = Stage1Config(data=str(tiny_data), out=str(tmp_path / "run"), arch="bmshj2018-hyperprior",
                       lmbda=0.01, steps=40, batch_size=2, crop=64, lr=1e-3, val_every=10,
                       checkpoint_every=20, channels_last=False)
    torch.manual_seed(0)
    final = train_stage1(cfg, progress=False)
    history = json.loads((tmp_path / "run" / "last" / "trainer.json").read_text())["history"]
    assert history[-1]["loss"] < history[0]["loss"]
    code, out, err = cli("compress", golden_png, "-o", tmp_path / "g.cosmic", "-m", final)
    assert code == 0, err
    code, out, err = cli("decompress", tmp_path / "g.cosmic", "-o", tmp_path / "g.png")
    assert code != 0 and "give its directory with --model" in err  # not a shipped model
    code, out, err = cli("decompress", tmp_path / "g.cosmic", "-o", tmp_path / "g.png", "-m", final)
    assert code == 0, err
    code, out, err = cli("decompress", tmp_path / "g.cosmic", "-o", tmp_path / "h.png", "-m", final,
                         "--steps", "25")
    assert code != 0 and "no diffusion compensation" in err
    assert Image.open(tmp_path / "g.png").size == Image.open(golden_png).size


def test_eval_codec_specs_for_baselines(tmp_path):
    spec = parse_codecs(f"bmshj2018-hyperprior:{tmp_path}/a/final+{tmp_path}/b")[0]
    assert spec.name == "bmshj2018-hyperprior" and spec.kind == "cosmic" and len(spec.points) == 2
    missing = parse_codecs("mbt2018-mean")[0]
    assert missing.points == [] and "cosmic train stage1 --arch mbt2018-mean" in missing.note


def test_model_series_spec(tmp_path):
    spec = parse_codecs(f"model:{tmp_path}/x-q1/final+{tmp_path}/x-q3/final")[0]
    assert spec.name == "x" and [p.split("/")[-2] for p in spec.points] == ["x-q1", "x-q3"]
    assert parse_codecs("model:cosmic-small-vr-gray")[0].name == "cosmic-small-vr-gray"
