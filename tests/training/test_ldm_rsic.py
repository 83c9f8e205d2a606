"""The LDM-RSIC enhancer's trainer (:mod:`cosmic.training.ldm_rsic`): the three phases, exact
resume, the training squares, the cached coded pairs, COSMIC sources, warm starts, --tune-men."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import golden_image

from cosmic.enhance.model import Enhancer
from cosmic.errors import InputError


def test_trainer_runs_resumes_and_never_uses_val(tiny_data, tmp_path):
    from cosmic.training.ldm_rsic import EnhanceConfig, train_enhancer

    def cfg(out, **kw):
        return EnhanceConfig(data=str(tiny_data), out=str(out), split="train", image_size=128, crop=32,
                             batch_size=2, steps={"stage1": 4, "regressor": 2, "ldm": 2}, checkpoint_every=2, **kw)

    final = train_enhancer(cfg(tmp_path / "a"))
    e = Enhancer.from_pretrained(final)
    assert e.ldm is not None and e.ldm.latent_scale > 0 and e.extra["history"]["stage1"]
    # stopping after 2 steps and resuming gives the uninterrupted run's weights exactly
    train_enhancer(cfg(tmp_path / "b", max_minutes=0.0))  # stops each phase after its first step
    import shutil

    for phase in ("stage1", "regressor", "ldm"):
        shutil.rmtree(tmp_path / "b" / phase / "final", ignore_errors=True)
    shutil.rmtree(tmp_path / "b" / "final", ignore_errors=True)
    resumed = Enhancer.from_pretrained(train_enhancer(cfg(tmp_path / "b")))
    for k, v in e.men.state_dict().items():
        assert torch.equal(v, resumed.men.state_dict()[k]), k
    with pytest.raises(InputError, match="val"):
        train_enhancer(EnhanceConfig(data=str(tiny_data), out=str(tmp_path / "c"), split="train+val"))


def test_training_squares_add_overlapping_scene_squares_without_fill(tiny_data, tmp_path):
    from cosmic.io.images import save_image
    from cosmic.training.ldm_rsic import EnhanceConfig, training_squares

    scene = np.random.default_rng(3).integers(1, 256, (128 + 96, 128 + 32, 3), dtype=np.uint8)
    scene[:, -32:] = 0  # a fill strip: squares at left 32 are 1/4 fill (kept), none reach half
    scene[-96:, :] = 0  # fill below row 128: squares at top 64 and 96 are half fill or more
    save_image(scene, tmp_path / "scene.png")
    cfg = EnhanceConfig(data=str(tiny_data), out="o", split="train", image_size=128,
                        extra_data=[str(tmp_path / "scene.png")])
    squares = list(training_squares(cfg))
    assert len(squares) == 2 + 2 * 2  # two train images; scene rows 0, 32 x cols 0, 32
    assert all(s.shape == (128, 128, 3) and s.dtype == np.uint8 for s in squares)
    np.testing.assert_array_equal(squares[3], scene[0:128, 32:160])
    np.testing.assert_array_equal(squares[4], scene[32:160, 0:128])
    (tmp_path / "scenes").mkdir()
    save_image(scene, tmp_path / "scenes" / "a.png")
    folder = EnhanceConfig(data=str(tiny_data), out="o", split="train", image_size=128,
                           extra_data=[str(tmp_path / "scenes")])
    assert len(list(training_squares(folder))) == len(squares)
    # bad paths are refused when the squares are asked for, before any image is read or coded
    for bad, needle in ((tmp_path / "missing.png", "no such file"), (tiny_data, "inside the --data folder"),
                        (tmp_path / "empty", "no images")):
        (tmp_path / "empty").mkdir(exist_ok=True)
        with pytest.raises(InputError, match=needle):
            training_squares(EnhanceConfig(data=str(tiny_data), out="o", split="train", extra_data=[str(bad)]))


def test_coded_pairs_are_reused_only_for_the_same_data(tiny_data, tmp_path):
    from cosmic.training.ldm_rsic import EnhanceConfig, train_enhancer

    def cfg(**kw):
        return EnhanceConfig(data=str(tiny_data), out=str(tmp_path / "run"), split="train", image_size=128,
                             crop=32, batch_size=2, steps={"stage1": 1, "regressor": 0, "ldm": 0}, **kw)

    train_enhancer(cfg())
    train_enhancer(cfg())  # the same options: the cached pairs are reused
    with pytest.raises(InputError, match="other data or rates"):
        train_enhancer(cfg(rates_per_image=3))


def test_code_image_through_a_cosmic_model(variable_rate_model):
    """COSMIC training pairs are real files through the pipelines: same bytes' bpp, same decode."""
    from cosmic.pipelines import DecodePipeline, EncodePipeline, open_scene
    from cosmic.training.ldm_rsic import EnhanceConfig, code_image, knob_sampler, source_name

    img = golden_image(64, 64)
    source = str(variable_rate_model)
    bpps = []
    for q in (1.0, 4.0):
        decoded, bpp = code_image(source, img, q)
        coded = EncodePipeline.from_pretrained(source).encode(open_scene(img), quality=q)
        assert bpp == coded.bpp == coded.size * 8 / (64 * 64)
        assert np.array_equal(decoded, DecodePipeline.from_pretrained(source)(coded.to_bytes()).pixels)
        bpps.append(bpp)
    assert bpps[0] < bpps[1]
    assert source_name(source) == "cosmic-vr-test"
    draw = knob_sampler(EnhanceConfig(data="d", out="o", source=source), np.random.default_rng(0))
    qualities = [draw() for _ in range(200)]
    assert 1.0 <= min(qualities) < 1.2 and 3.8 < max(qualities) <= 4.0  # uniform over the model's 1..4
    with pytest.raises(InputError, match="neither jpeg2000 nor a COSMIC model"):
        code_image("no-such-codec", img, 1.0)


def test_trainer_on_cosmic_decodes_warm_started(tiny_data, tmp_path, tiny_enhancer):
    from helpers import TINY_MODEL

    from cosmic.training.ldm_rsic import EnhanceConfig, train_enhancer

    cfg = EnhanceConfig(data=str(tiny_data), out=str(tmp_path / "run"), split="train", image_size=128, crop=32,
                        batch_size=2, steps={"stage1": 0, "regressor": 3, "ldm": 0}, checkpoint_every=3,
                        source=str(TINY_MODEL), init_from=str(tiny_enhancer), rates_per_image=1)
    e = Enhancer.from_pretrained(train_enhancer(cfg))
    start = Enhancer.from_pretrained(tiny_enhancer)
    assert e.source == "cosmic-tiny-test" and e.ldm is None
    for k, v in start.men.state_dict().items():  # MEN frozen in the regressor phase: the warm start's
        assert torch.allclose(v, e.men.state_dict()[k], atol=1e-6), k
    assert any(not torch.equal(v, e.prior_regressor.state_dict()[k]) for k, v in start.prior_regressor.state_dict().items())
    pairs = np.load(tmp_path / "run" / "pairs.npz")
    assert pairs["decoded"].shape == (2, 1, 128, 128, 3) and 0.0 < float(pairs["bpp"].min())
    cfg.out, cfg.preset = str(tmp_path / "bad"), "paper"
    with pytest.raises(InputError, match="not 'paper'"):
        train_enhancer(cfg)


def test_tune_men_trains_men_with_the_regressor(tiny_data, tmp_path, tiny_enhancer):
    """--tune-men: the regressor phase moves MEN too (without it MEN stays frozen, test above);
    --max-bpp widens the JPEG2000 training rates."""
    from cosmic.training.ldm_rsic import EnhanceConfig, train_enhancer

    cfg = EnhanceConfig(data=str(tiny_data), out=str(tmp_path / "run"), split="train", image_size=128, crop=32,
                        batch_size=2, steps={"stage1": 0, "regressor": 2, "ldm": 0}, checkpoint_every=2,
                        init_from=str(tiny_enhancer), rates_per_image=3, bpp_range=(0.6, 1.0), tune_men=True)
    e, start = Enhancer.from_pretrained(train_enhancer(cfg)), Enhancer.from_pretrained(tiny_enhancer)
    assert any(not torch.equal(v, e.men.state_dict()[k]) for k, v in start.men.state_dict().items())
    assert any(not torch.equal(v, e.prior_regressor.state_dict()[k]) for k, v in start.prior_regressor.state_dict().items())
    assert float(np.load(tmp_path / "run" / "pairs.npz")["bpp"].min()) > 0.4  # coded at 0.6..1 bpp, not 0.05..0.5
