"""Stage-1 training: the loss falls on a tiny overfit run; checkpoints resume exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import golden_image
from PIL import Image

from cosmic.models.cosmic import Cosmic
from cosmic.training.data import ImageFolder
from cosmic.training.losses import Stage1Loss
from cosmic.training.stage1 import Stage1Config, train_stage1


def test_dataset_honours_splits_and_crops(tiny_data):
    train = ImageFolder(tiny_data, "train", crop=64, samples_per_epoch=5)
    assert len(train.images) == 2 and len(train) == 5
    assert train[0].shape == (3, 64, 64) and 0 <= float(train[0].min()) and float(train[0].max()) <= 1
    val = ImageFolder(tiny_data, "val", crop=None)
    assert len(val) == 1 and val[0].shape == (3, 128, 128)


def test_loss_terms():
    torch.manual_seed(0)
    model = Cosmic(N=16, M=16, ground_channels=8)
    x = torch.rand(4, 3, 64, 64)
    out = model(x)
    assert out["split"] == 2 and out["x_hat"].shape == (2, 3, 64, 64)
    terms = Stage1Loss(0.01)(out, x)
    assert set(terms) >= {"loss", "bpp", "mse", "mse_est", "kl_bpp"}
    assert float(terms["bpp"].detach()) > 0 and float(terms["kl_bpp"].detach()) >= 0
    model.eval()
    out = model(x)
    assert out["split"] is None and out["x_hat"].shape == out["x_hat_est"].shape == x.shape


def _cfg(tiny_data, out, steps):
    return Stage1Config(
        data=str(tiny_data), out=str(out), preset="small", lmbda=0.01, steps=steps, batch_size=2,
        crop=64, lr=1e-3, val_every=10**6, checkpoint_every=5, channels_last=False,
    )


@pytest.mark.slow
def test_overfit_loss_falls_and_resume(tiny_data, tmp_path, monkeypatch):
    import cosmic.models.registry as reg

    monkeypatch.setitem(reg.PRESETS, "small", {"N": 16, "M": 16, "ground_channels": 8, "latent_channels": 4})
    out = tmp_path / "run"
    torch.manual_seed(0)
    final = train_stage1(_cfg(tiny_data, out, 10), progress=False)
    state = json.loads((out / "last" / "trainer.json").read_text())
    assert state["step"] == 10 and state["history"][-1]["step"] == 10
    first = state["history"][-1]["loss"]
    model = Cosmic.from_pretrained(final)  # entropy tables were built: it can code
    enc = model.compress(torch.rand(1, 3, 64, 64))
    assert len(enc["strings"][0][0]) > 0
    # resume: continues from step 10, optimizer moments restored
    train_stage1(_cfg(tiny_data, out, 60), progress=False)
    state = json.loads((out / "last" / "trainer.json").read_text())
    assert state["step"] == 60
    assert state["history"][-1]["loss"] < first
    assert state["optimizer_steps"]["main"] and min(state["optimizer_steps"]["main"].values()) == 60


def test_est_weight_and_chroma_term():
    from cosmic.training.losses import low_chroma

    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64)
    grey = x.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    assert float(low_chroma(grey).abs().max()) == 0.0
    out = {"likelihoods": {"y": torch.full((2, 4, 4, 4), 0.5)}, "x_hat": x.clone(), "x_hat_est": grey,
           "z0_mu": torch.zeros(2, 4, 16, 16), "z0_logvar": torch.zeros(2, 4, 16, 16), "split": None}
    half = Stage1Loss(0.01)(out, x)
    assert torch.allclose(half["loss"], half["bpp"] + 0.01 * 255**2 * 0.5 * half["mse_est"])
    only_est = Stage1Loss(0.01, est_weight=1.0)(out, x)
    assert torch.allclose(only_est["loss"] - only_est["bpp"], 2 * (half["loss"] - half["bpp"]))
    with_chroma = Stage1Loss(0.01, chroma_weight=4.0)(out, x)
    expect = F.mse_loss(low_chroma(grey), low_chroma(x))
    assert float(expect) > 0 and torch.allclose(with_chroma["chroma_est"], expect)
    assert torch.allclose(with_chroma["loss"], half["loss"] + 0.01 * 255**2 * 4.0 * expect)
    with pytest.raises(ValueError):
        Stage1Loss(0.01, est_weight=1.5)


@pytest.mark.slow
def test_no_cams_ablation_trains_and_codes(tiny_data, tmp_path, monkeypatch):
    """`--no-cams` (paper Fig. 6, w/o CAM): E has no CAM layers, the saved model reloads without
    them and codes; a baseline architecture refuses the switch."""
    import dataclasses

    import cosmic.models.registry as reg
    from cosmic.onboard.layers import CAM

    monkeypatch.setitem(reg.PRESETS, "small", {"N": 16, "M": 16, "ground_channels": 8, "latent_channels": 4})
    cfg = dataclasses.replace(_cfg(tiny_data, tmp_path / "nocam", 3), cams=False)
    model = Cosmic.from_pretrained(train_stage1(cfg, progress=False))
    assert model.config["cam_positions"] == []
    assert not any(isinstance(m, CAM) for m in model.modules())
    with_cams = Cosmic(N=16, M=16, ground_channels=8)
    assert sum(isinstance(m, CAM) for m in with_cams.modules()) == 2
    enc = model.compress(torch.rand(1, 3, 64, 64))
    out = model.decompress(enc["strings"], enc["shape"])
    assert out["x_hat"].shape == (1, 3, 64, 64)
    from cosmic.errors import InputError

    with pytest.raises(InputError, match="only the cosmic architecture"):
        train_stage1(dataclasses.replace(cfg, arch="bmshj2018-hyperprior", out=str(tmp_path / "b")),
                     progress=False)
    assert not (tmp_path / "b").exists()  # refused before a run directory is made


def test_trainers_refuse_the_val_split_before_writing_anything(tiny_data, tmp_path):
    """Stage 1 and stage 2 never train on val (nor on a '+'-joined list holding it): one-line
    error, no run directory."""
    import dataclasses

    from cosmic.errors import InputError
    from cosmic.training.stage2 import Stage2Config, train_stage2

    stage1 = dataclasses.replace(_cfg(tiny_data, tmp_path / "s1", 1), split="train+val")
    with pytest.raises(InputError, match="val split is for evaluation only"):
        train_stage1(stage1, progress=False)
    stage2 = Stage2Config(stage1="cosmic-small-vr", data=str(tiny_data), out=str(tmp_path / "s2"), steps=1, split="val")
    with pytest.raises(InputError, match="val split is for evaluation only"):
        train_stage2(stage2, progress=False)
    assert not (tmp_path / "s1").exists() and not (tmp_path / "s2").exists()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["checkerboard", "channel"])
def test_context_run_starts_from_a_model_without_one(tiny_data, tmp_path, monkeypatch, kind):
    """`--context KIND` (issue 30 item 2, trained jointly): from a model without a context
    the run starts it at zero, so before training it decodes the source's pixels exactly; the
    trained model saves and codes with its context; a context is never dropped silently."""
    import dataclasses

    import cosmic.models.registry as reg
    from cosmic.errors import InputError
    from cosmic.training.stage1 import _init_from

    monkeypatch.setitem(reg.PRESETS, "small", {"N": 16, "M": 16, "ground_channels": 8, "latent_channels": 4})
    torch.manual_seed(0)
    source = train_stage1(_cfg(tiny_data, tmp_path / "plain", 2), progress=False)
    plain = Cosmic.from_pretrained(source).eval()
    started = Cosmic(N=16, M=16, ground_channels=8, context=kind)
    _init_from(started, str(source))
    started.eval().update(force=True)
    x = torch.rand(1, 3, 64, 64)
    for model in (plain, started):
        enc = model.compress(x)
        model.decoded = model.decompress(enc["strings"], enc["shape"])["x_hat"]
    assert torch.equal(plain.decoded, started.decoded)

    cfg = dataclasses.replace(_cfg(tiny_data, tmp_path / "ctx", 2), init_from=str(source), context=kind)
    trained = Cosmic.from_pretrained(train_stage1(cfg, progress=False)).eval()
    assert trained.onboard.config["context"] == kind
    enc = trained.compress(x)
    assert trained.decompress(enc["strings"], enc["shape"])["x_hat"].shape == (1, 3, 64, 64)
    no_context = dataclasses.replace(cfg, context=None, init_from=str(tmp_path / "ctx" / "final"),
                                     out=str(tmp_path / "dropped"))
    with pytest.raises(InputError, match="--context"):
        train_stage1(no_context, progress=False)
