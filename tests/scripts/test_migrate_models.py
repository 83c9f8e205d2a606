"""scripts/migrate_models.py: the older layouts (a whole model in one file, a stage-2 model with
scheduler.json, a composite with a root config.json) become the one save format with every
stored tensor byte for byte, the on-board digest (what .cosmic files name) unchanged, and load
with the one loader; a folder already in the format is left alone."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers import REPO, TINY_MODEL, golden_image, load_script
from safetensors.torch import load_file

from cosmic.ground.diffusion.noise_predictor import NoisePredictor
from cosmic.pipelines import EncodePipeline, open_scene
from cosmic.utils.pretrained import CONFIG_NAME, MODEL_INDEX_NAME, WEIGHTS_NAME, ConfigMixin, load_pretrained
from cosmic.zoo import load_compensator, load_model, load_onboard

TINY_UNET = {"block_out_channels": [32, 32], "layers_per_block": 1, "cross_attention_dim": 32,
             "attention_head_dim": 8}


@pytest.fixture(scope="module")
def migrate():
    return load_script(REPO / "scripts" / "migrate_models.py")


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_one_file_model_with_an_old_stage2_becomes_components(tmp_path, migrate, capsys):
    """The one-file layout and, inside it, a stage-2 model with scheduler.json: same stored
    tensors, same on-board digest, same bytes coded, the schedule and latent scale kept."""
    model = load_model(TINY_MODEL)
    old = tmp_path / "m"
    ConfigMixin.save_pretrained(model, old, extra={"note": "x"})
    stored = load_file(str(old / WEIGHTS_NAME))
    torch.manual_seed(0)
    net = NoisePredictor(M=16, latent_channels=4, unet=TINY_UNET, injection_hidden=16).eval()
    net.save_pretrained(old / "diffusion", extra={"latent_scale": 3.0, "residual": True, "steps": 9})
    schedule = {"num_train_timesteps": 800, "beta_schedule": "linear", "beta_start": 0.001,
                "beta_end": 0.03, "prediction_type": "epsilon", "clip_sample": False}
    (old / "diffusion" / "scheduler.json").write_text(json.dumps(schedule))
    s2_stored = load_file(str(old / "diffusion" / WEIGHTS_NAME))
    assert migrate.main([str(old)]) == 0
    assert "unchanged" in capsys.readouterr().out
    assert not (old / CONFIG_NAME).exists() and not (old / WEIGHTS_NAME).exists()
    assert not (old / "diffusion" / "scheduler.json").exists() and not (old / ".migrating").exists()
    for part in ("onboard", "ground"):
        for k, v in load_file(str(old / part / WEIGHTS_NAME)).items():
            assert v.dtype == stored[f"{part}.{k}"].dtype and torch.equal(v, stored[f"{part}.{k}"])
    new, (codec, name) = load_model(old), load_onboard(old)
    assert name == "cosmic-tiny-test" and codec.digest() == model.onboard.digest() == new.onboard.digest()
    assert json.loads((old / MODEL_INDEX_NAME).read_text())["_extra"] == {"note": "x"}
    scene = open_scene(golden_image(64, 64))
    assert (EncodePipeline.from_pretrained(TINY_MODEL).encode(scene).to_bytes()
            == EncodePipeline.from_pretrained(old).encode(scene).to_bytes())
    comp = load_compensator(old)
    assert comp.latent_scale == 3.0 and comp.residual and comp.scheduler.config.num_train_timesteps == 800
    assert json.loads((old / "diffusion" / MODEL_INDEX_NAME).read_text())["_extra"] == {"steps": 9}
    after = {**load_file(str(old / "diffusion" / "noise_predictor" / WEIGHTS_NAME)),
             **{f"metadata_encoder.{k}": v for k, v in
                load_file(str(old / "diffusion" / "metadata_encoder" / WEIGHTS_NAME)).items()}}
    assert after.keys() == s2_stored.keys() and all(torch.equal(after[k], v) for k, v in s2_stored.items())


def test_root_config_composites_get_an_index_and_keep_their_components(tmp_path, migrate):
    """An enhancer and a codebook prior with a root config.json (their layout before): a
    model_index.json with the same config and _extra; the component folders untouched."""
    from cosmic.codebook.prior import CodebookPrior
    from cosmic.enhance.model import Enhancer, build_enhancer

    enhancer = build_enhancer("small")
    enhancer.extra = {"history": [1, 2]}
    enhancer.save_pretrained(tmp_path / "e")
    (tmp_path / "e" / MODEL_INDEX_NAME).unlink()
    (tmp_path / "e" / CONFIG_NAME).write_text(json.dumps({
        "_class_name": "Enhancer", "name": "enh", "source": "jpeg2000", "preset": "small", "_extra": enhancer.extra,
        "components": {k: type(m).__name__ for k, m in enhancer.components().items()}}))
    prior = CodebookPrior.from_pretrained(REPO / "src" / "cosmic" / "zoo" / "weights" / "codebook-ucm")
    prior.save_pretrained(tmp_path / "p")
    (tmp_path / "p" / MODEL_INDEX_NAME).unlink()
    (tmp_path / "p" / CONFIG_NAME).write_text(json.dumps({"_class_name": "CodebookPrior", **prior.info}))
    before = {name: _files(tmp_path / name) for name in ("e", "p")}
    migrate.main([str(tmp_path / "e"), str(tmp_path / "p")])
    for name in ("e", "p"):
        after = _files(tmp_path / name)
        assert set(after) == set(before[name]) - {CONFIG_NAME} | {MODEL_INDEX_NAME}
        assert all(after[f] == before[name][f] for f in after if f != MODEL_INDEX_NAME)
    e = load_pretrained(tmp_path / "e")
    assert isinstance(e, Enhancer) and (e.name, e.source, e.extra) == ("enh", "jpeg2000", {"history": [1, 2]})
    p = load_pretrained(tmp_path / "p")
    assert p.info == prior.info and torch.equal(p.vqgan.quantizer.embed, prior.vqgan.quantizer.embed)


def test_a_one_file_checkpoint_is_converted_with_its_ema_and_resumes(tmp_path, migrate):
    """A trainer checkpoint of an older run (one file, its EMA likewise, trainer.json beside):
    both converted, the trainer's own files kept, and it resumes with the same weights."""
    from cosmic.models.cosmic import Cosmic
    from cosmic.training.checkpoint import load_checkpoint, make_ema

    old = Cosmic(N=16, M=16, ground_channels=8).eval()
    old.update(force=True)
    ckpt = tmp_path / "last"
    ConfigMixin.save_pretrained(old, ckpt)
    ConfigMixin.save_pretrained(old, ckpt / "ema")
    (ckpt / "trainer.json").write_text(json.dumps({"step": 5, "ema_n_averaged": 5}))
    lines = migrate.migrate(ckpt)
    assert len(lines) == 2 and (ckpt / "ema" / MODEL_INDEX_NAME).is_file() and (ckpt / "trainer.json").is_file()
    model = Cosmic(N=16, M=16, ground_channels=8)
    ema = make_ema(model, 0.9)
    assert load_checkpoint(ckpt, model, {}, ema)["step"] == 5
    for m in (model, ema.module):
        assert all(torch.equal(v, m.state_dict()[k]) for k, v in old.state_dict().items())


def test_a_folder_in_the_one_format_is_left_alone(tmp_path, migrate):
    shutil.copytree(TINY_MODEL, tmp_path / "m")
    before = _files(tmp_path / "m")
    assert migrate.migrate(tmp_path / "m") == [f"{tmp_path / 'm'}: already in the one format (components)"]
    assert _files(tmp_path / "m") == before
    with pytest.raises(SystemExit, match="not a model folder"):
        migrate.main([str(tmp_path)])
