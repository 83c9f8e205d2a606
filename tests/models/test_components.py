"""Models saved the diffusers way (issue 14): ``model_index.json`` + one subfolder per component,
each built from its own config; the layouts before it do not load and name their converter
(scripts/migrate_models.py, tested in tests/scripts/test_migrate_models.py; that nothing shipped
names an absolute path is tests/zoo/test_shipped.py's)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers import REPO, TINY_MODEL, load_script
from safetensors.torch import load_file

from cosmic.errors import ModelError
from cosmic.ground.decoder import GroundDecoder
from cosmic.ground.diffusion.metadata_encoder import FIELDS
from cosmic.ground.diffusion.noise_predictor import NoisePredictor
from cosmic.ground.diffusion.sampler import DiffusionCompensator, ddim_scheduler
from cosmic.models.cosmic import Cosmic
from cosmic.onboard.codec import OnboardCodec
from cosmic.zoo import DEFAULT_MODEL, load_compensator, load_model, load_onboard

ROOT = REPO
TINY_UNET = {"block_out_channels": [32, 32], "layers_per_block": 1, "cross_attention_dim": 32,
             "attention_head_dim": 8}


def _tiny_net() -> NoisePredictor:
    return NoisePredictor(M=16, latent_channels=4, unet=TINY_UNET, injection_hidden=16).eval()


def test_model_saves_one_subfolder_per_component_and_loads_from_their_configs(tmp_path):
    model = Cosmic(N=16, M=16, ground_channels=8, rate_levels=3, gain_span=2.0, name="parts").eval()
    model.update(force=True)
    model.save_pretrained(tmp_path / "m", extra={"note": "x"})
    index = json.loads((tmp_path / "m" / "model_index.json").read_text())
    assert index["onboard"] == ["cosmic", "OnboardCodec"] and index["ground"] == ["cosmic", "GroundDecoder"]
    assert index["_class_name"] == "Cosmic" and index["name"] == "parts" and index["_extra"] == {"note": "x"}
    assert not (tmp_path / "m" / "config.json").exists()
    # each component rebuilds from its own config alone
    onboard_cfg = json.loads((tmp_path / "m" / "onboard" / "config.json").read_text())
    assert onboard_cfg["rate_levels"] == 3 and onboard_cfg["N"] == 16
    assert OnboardCodec.from_config(onboard_cfg).config == model.onboard.config
    ground_cfg = json.loads((tmp_path / "m" / "ground" / "config.json").read_text())
    assert ground_cfg["N"] == 8 and GroundDecoder.from_config(ground_cfg).config == model.ground.config
    back = load_model(tmp_path / "m")
    assert back.config == model.config
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in model.state_dict().items())
    codec, name = load_onboard(tmp_path / "m")
    assert name == "parts" and codec.digest() == model.onboard.digest()


def _ship_model():
    return load_script(ROOT / "scripts" / "ship_model.py")


def test_older_layouts_do_not_load_and_name_their_converter(tmp_path):
    """A whole model in one file, a stage-2 model with scheduler.json: one-line ModelErrors that
    name scripts/migrate_models.py (the loaders of those layouts are gone)."""
    from cosmic.utils.pretrained import ConfigMixin

    ConfigMixin.save_pretrained(load_model(TINY_MODEL), tmp_path / "old")
    with pytest.raises(ModelError, match="migrate_models.py"):
        load_model(tmp_path / "old")
    with pytest.raises(ModelError, match="migrate_models.py"):
        load_onboard(tmp_path / "old")
    shutil.copytree(TINY_MODEL, tmp_path / "m")
    _tiny_net().save_pretrained(tmp_path / "m" / "diffusion", extra={"latent_scale": 3.0})
    with pytest.raises(ModelError, match="migrate_models.py"):
        load_compensator(tmp_path / "m")


def test_ship_model_adds_a_stage2_network_to_a_model(tmp_path, monkeypatch, capsys):
    """``ship_model.py --diffusion STAGE2_DIR NAME --out DIR``: the stage-2 network joins the model
    at int8 (its one positional is the name, as the usage line says)."""
    import sys

    shutil.copytree(TINY_MODEL, tmp_path / "m")
    DiffusionCompensator(_tiny_net(), 1.5).save_pretrained(tmp_path / "s2")
    monkeypatch.setattr(sys, "argv", ["ship_model.py", "--diffusion", str(tmp_path / "s2"), "tiny",
                                      "--out", str(tmp_path / "m")])
    _ship_model().main()
    comp = load_compensator(tmp_path / "m")
    assert comp is not None and comp.latent_scale == 1.5
    assert load_file(str(tmp_path / "m" / "diffusion" / "noise_predictor" / "model.safetensors"))[
        "unet.conv_in.weight"].dtype == torch.int8


def test_scheduler_config_is_read_back(tmp_path):
    scheduler = ddim_scheduler({"num_train_timesteps": 500, "beta_schedule": "linear", "beta_start": 0.001,
                                "beta_end": 0.02, "prediction_type": "epsilon", "clip_sample": False})
    comp = DiffusionCompensator(_tiny_net(), latent_scale=2.0, residual=True, scheduler=scheduler)
    comp.save_pretrained(tmp_path / "d")
    for part in ("noise_predictor", "metadata_encoder"):
        assert (tmp_path / "d" / part / "config.json").is_file()
    assert (tmp_path / "d" / "scheduler" / "scheduler_config.json").is_file()
    back = DiffusionCompensator.from_pretrained(tmp_path / "d")
    assert back.scheduler.config.num_train_timesteps == 500 and back.scheduler.config.beta_end == 0.02
    assert back.latent_scale == 2.0 and back.residual
    y = torch.randn(1, 16, 2, 2)
    assert torch.equal(back.sample(y, steps=2, seeds=[3], anchor=torch.zeros(1, 4, 8, 8)),
                       comp.sample(y, steps=2, seeds=[3], anchor=torch.zeros(1, 4, 8, 8)))


def test_unknown_component_class_is_a_model_error(tmp_path):
    shutil.copytree(TINY_MODEL, tmp_path / "m")
    model_dir = tmp_path / "m"
    load_model(TINY_MODEL).save_pretrained(model_dir)
    index = json.loads((model_dir / "model_index.json").read_text())
    index["onboard"] = ["os", "system"]
    (model_dir / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ModelError, match="unknown component class"):
        load_onboard(model_dir)
    with pytest.raises(ModelError, match="unknown component class"):
        load_model(model_dir)


def test_shipped_stage2_is_in_the_component_layout():
    comp = load_compensator(DEFAULT_MODEL)
    assert comp is not None and comp.residual
    assert comp.scheduler.config.steps_offset == 1 and not comp.scheduler.config.set_alpha_to_one


def test_stage2_warm_start_reads_both_layouts(tmp_path):
    """``cosmic train stage2 --init-from``: a stage-2 model in the component layout, or a stage-2
    checkpoint (one noise-predictor directory), gives the same weights."""
    from cosmic.training.stage2 import _init_from

    source = _tiny_net()
    DiffusionCompensator(source, 1.0).save_pretrained(tmp_path / "new")
    source.save_pretrained(tmp_path / "ckpt")
    for where in ("new", "ckpt"):
        net = _tiny_net()
        _init_from(net, str(tmp_path / where))
        assert all(torch.equal(v, net.state_dict()[k]) for k, v in source.state_dict().items()), where


def test_fixed_rate_stage2_warm_starts_a_quality_conditioned_one_unchanged(tmp_path):
    """The VR stage 2 starts from the fixed-rate q3 network: every weight is copied and the new
    quality embedding starts at zero, so at step 0 the network predicts what the source predicts,
    whatever the quality; a network of another shape is refused in one line."""
    from cosmic.errors import InputError
    from cosmic.training.stage2 import _init_from

    torch.manual_seed(0)
    source = _tiny_net()
    DiffusionCompensator(source, 1.0).save_pretrained(tmp_path / "fixed")
    net = NoisePredictor(M=16, latent_channels=4, unet=TINY_UNET, injection_hidden=16,
                         quality_conditioning=True).eval()
    _init_from(net, str(tmp_path / "fixed"))
    z, y = torch.randn(2, 4, 16, 16), torch.randn(2, 16, 4, 4)
    tokens = source.condition(torch.zeros(2, len(FIELDS)), torch.zeros(2, len(FIELDS)))
    with torch.no_grad():
        want = source(z, torch.tensor([10, 500]), y, tokens)
        for q in (1.0, 6.0):
            got = net(z, torch.tensor([10, 500]), y, tokens, torch.full((2,), q))
            assert torch.allclose(got, want, atol=1e-5), q
    other = NoisePredictor(M=32, latent_channels=4, unet=TINY_UNET, injection_hidden=16, quality_conditioning=True)
    with pytest.raises(InputError, match="not a noise predictor of this shape"):
        _init_from(other, str(tmp_path / "fixed"))
