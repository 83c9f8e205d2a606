"""Stage 2: sensor metadata, metadata encoder, y_hat injection, DDIM sampling, training, CLI."""

from __future__ import annotations

import itertools
import json
import warnings

import numpy as np
import pytest
import torch
from helpers import SHARED_DATA, TINY_MODEL

from cosmic.errors import InputError
from cosmic.ground.diffusion.metadata_encoder import FIELDS, MetadataEncoder, metadata_to_tensor
from cosmic.ground.diffusion.noise_predictor import NoisePredictor
from cosmic.ground.diffusion.sampler import SCHEDULE, DiffusionCompensator
from cosmic.metadata import MetadataWarning, SensorMetadata, load_sidecar

TINY_UNET = {"block_out_channels": [32, 32], "layers_per_block": 1, "cross_attention_dim": 32,
             "attention_head_dim": 8}
LANDSAT_META = {"utm": "10N", "timestamp": "2016-06-25T18:55:50Z", "gsd": 150.0, "cloud_cover": 11.3,
                "off_nadir_angle_dbl": 0.001, "sun_azimuth_dbl": 139.33, "sun_elevation_dbl": 62.58}


def tiny_net(**kw) -> NoisePredictor:
    torch.manual_seed(0)
    return NoisePredictor(M=16, latent_channels=4, unet=TINY_UNET, injection_hidden=16, **kw)


# -- metadata ---------------------------------------------------------------------------------
def test_metadata_parsing(tmp_path):
    m = SensorMetadata.from_dict(LANDSAT_META)
    assert m.utm_zone == 10 and m.utm_north is True and m.timestamp.hour == 18
    assert m.target_azimuth is None and "target_azimuth" not in m.known()
    assert SensorMetadata.from_dict(m.to_dict()) == m
    assert SensorMetadata.from_dict({"utm": "33"}).utm_north is None
    assert SensorMetadata.from_dict({"utm": "56H"}).utm_north is False  # MGRS band H: south


def test_shared_landsat_metadata_parses():
    from pathlib import Path

    path = SHARED_DATA / "metadata/landsat8_LC80460282016177LGN00/meta.json"
    if not path.exists():
        pytest.skip("shared data not present")
    with warnings.catch_warnings():
        warnings.simplefilter("error", MetadataWarning)
        m = load_sidecar(path)
    assert m.sun_elevation == pytest.approx(62.58, abs=0.01) and m.cloud_cover == pytest.approx(11.3)


@pytest.mark.parametrize("bad, needle", [
    ({"sun_elevation_dbl": 95}, "outside"),
    ({"off_nadir_angle_dbl": -1}, "outside"),
    ({"cloud_cover": "lots"}, "must be a number"),
    ({"gsd": float("nan")}, "outside"),
    ({"utm": "99Z"}, "UTM zone"),
    ({"timestamp": "yesterday"}, "ISO 8601"),
    ({"timestamp": "1850-01-01T00:00:00Z"}, "years"),
])
def test_metadata_bad_values(bad, needle):
    with pytest.raises(InputError, match=needle):
        SensorMetadata.from_dict(bad)


def test_metadata_bad_json_and_unknown_keys(tmp_path):
    p = tmp_path / "m.json"
    p.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_sidecar(p)
    p.write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        load_sidecar(p)
    p.write_text(json.dumps({"gsd": 0.5, "favourite_colour": "blue"}))
    with pytest.warns(MetadataWarning, match="favourite_colour"):
        assert load_sidecar(p).gsd == 0.5


def test_cli_metadata_errors_and_notes(cli, one_line_error, golden_png, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"sun_azimuth_dbl": 400}))
    code, _, err = cli("compress", golden_png, "-o", tmp_path / "o.cosmic", "-m", TINY_MODEL, "--meta", bad)
    one_line_error(code, err, "sun_azimuth_dbl")
    assert not (tmp_path / "o.cosmic").exists()
    side = golden_png.with_suffix(".json")  # fMoW layout: scene.json beside scene.png
    side.write_text(json.dumps({**LANDSAT_META, "mystery": 1}))
    code, _, err = cli("compress", golden_png, "-o", tmp_path / "o.cosmic", "-m", TINY_MODEL, "-q")
    assert code == 0 and "mystery" in err
    from cosmic.io.container import read_container

    assert read_container(tmp_path / "o.cosmic").header.metadata["utm"] == "10N"


# -- metadata encoder ---------------------------------------------------------------------------
def test_metadata_encoder_every_subset():
    enc = MetadataEncoder(dim=32, sin_dim=16).eval()
    full = SensorMetadata.from_dict({**LANDSAT_META, "target_azimuth_dbl": 20.0})
    values, present = metadata_to_tensor([full])
    assert present.sum() == len(FIELDS)
    masks = torch.tensor(list(itertools.product([0.0, 1.0], repeat=len(FIELDS))))
    tokens = enc(values.expand(len(masks), -1), masks)
    assert tokens.shape == (len(masks), len(FIELDS) + 1, 32) and torch.isfinite(tokens).all()
    assert len({tuple(t.flatten()[:8].tolist()) for t in tokens}) == len(masks)  # every subset differs
    # an absent field uses its learned unknown embedding whatever the (ignored) value
    t1 = enc(torch.zeros(1, len(FIELDS)), torch.zeros(1, len(FIELDS)))
    t2 = enc(torch.full((1, len(FIELDS)), 123.0), torch.zeros(1, len(FIELDS)))
    assert torch.equal(t1, t2)


# -- noise predictor ----------------------------------------------------------------------------
def test_zero_init_injection_then_learns():
    net = tiny_net()
    z, y = torch.randn(2, 4, 16, 16), torch.randn(2, 16, 4, 4)
    t = torch.tensor([10, 700])
    tokens = net.condition(*metadata_to_tensor([SensorMetadata()] * 2))
    assert torch.equal(net(z, t, y, tokens), net(z, t, torch.zeros_like(y), tokens))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(3):
        tokens = net.condition(*metadata_to_tensor([SensorMetadata()] * 2))
        loss = (net(z, t, y, tokens) - torch.randn_like(z)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        tokens = net.condition(*metadata_to_tensor([SensorMetadata()] * 2))
        assert not torch.allclose(net(z, t, y, tokens), net(z, t, torch.zeros_like(y), tokens))


def test_sampling_seed_and_metadata():
    comp = DiffusionCompensator(tiny_net().eval(), latent_scale=2.0)
    y = torch.randn(2, 16, 4, 4)
    meta = SensorMetadata.from_dict(LANDSAT_META)
    a = comp.sample(y, [meta], steps=3, seeds=[5, 6])
    b = comp.sample(y, [meta], steps=3, seeds=[5, 6])
    assert a.shape == (2, 4, 16, 16) and torch.equal(a, b)
    assert not torch.equal(a, comp.sample(y, [meta], steps=3, seeds=[7, 8]))
    other = meta.replace(sun_elevation=10.0, cloud_cover=90.0)
    assert not torch.allclose(a, comp.sample(y, [other], steps=3, seeds=[5, 6]))
    # a tile's sample does not depend on its batch
    single = comp.sample(y[1:], [meta], steps=3, seeds=[6])
    assert torch.allclose(single[0], a[1], atol=1e-5)


def test_residual_sampling_adds_the_anchor(tmp_path):
    """Residual mode: z0' = ẑ0(y_hat) + r', r' sampled exactly as a plain model samples z0; the
    mode survives save/load, and a residual model without its anchor is refused."""
    plain = DiffusionCompensator(tiny_net().eval(), latent_scale=2.0)
    resid = DiffusionCompensator(tiny_net().eval(), latent_scale=2.0, residual=True)
    y = torch.randn(2, 16, 4, 4)
    anchor = torch.randn(2, 4, 16, 16)
    r = plain.sample(y, steps=3, seeds=[1, 2])
    assert torch.allclose(resid.sample(y, steps=3, seeds=[1, 2], anchor=anchor), r + anchor)
    with pytest.raises(ValueError, match="anchor"):
        resid.sample(y, steps=3, seeds=[1, 2])
    z0_est = torch.randn(2, 4, 16, 16)
    compensate = resid.for_tiles(SensorMetadata(), 3, 0, [1, 2])
    assert torch.allclose(compensate(y, z0_est), plain.for_tiles(SensorMetadata(), 3, 0, [1, 2])(y, None) + z0_est)
    resid.save_pretrained(tmp_path / "r")
    assert DiffusionCompensator.from_pretrained(tmp_path / "r").residual is True
    plain.save_pretrained(tmp_path / "p")
    assert DiffusionCompensator.from_pretrained(tmp_path / "p").residual is False


def test_residual_target_is_z0_minus_estimate(tiny_model):
    from cosmic.training.stage2 import diffusion_target

    x = torch.rand(2, 3, 64, 64)
    torch.manual_seed(7)
    y_hat, z0 = diffusion_target(tiny_model, x, residual=False)
    torch.manual_seed(7)
    y_hat2, r = diffusion_target(tiny_model, x, residual=True)
    assert torch.equal(y_hat, y_hat2)
    est = tiny_model.ground.estimate_z0(y_hat)
    assert est.shape == z0.shape and float(est.abs().mean()) > 0
    assert torch.allclose(r + est, z0, atol=1e-6)


def test_init_from_diffusers_unet(tmp_path):
    net = tiny_net()
    net.unet.save_pretrained(tmp_path / "unet")
    other = tiny_net()
    with torch.no_grad():
        for p in other.unet.parameters():
            p.add_(1.0)
    other.load_unet(tmp_path / "unet")
    for (n, p), (_, q) in zip(net.unet.named_parameters(), other.unet.named_parameters()):
        assert torch.equal(p, q), n
    wrong = NoisePredictor(M=16, unet={**TINY_UNET, "block_out_channels": [32, 64]}, injection_hidden=16)
    with pytest.raises((ValueError, RuntimeError)):
        wrong.load_unet(tmp_path / "unet")


@pytest.mark.slow
def test_stage2_overfit_loss_falls(tiny_model):
    from diffusers import DDPMScheduler

    from cosmic.training.stage2 import stage2_loss

    net = tiny_net()
    sched = DDPMScheduler(**SCHEDULE)
    x = torch.rand(2, 3, 64, 64)
    values, present = metadata_to_tensor([SensorMetadata.from_dict(LANDSAT_META)] * 2)
    net.metadata_encoder.field_dropout = 0.0

    def fixed_loss():
        torch.manual_seed(123)
        return stage2_loss(tiny_model, net, sched, x, values, present, 1.0)

    with torch.no_grad():
        before = float(fixed_loss())
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    for i in range(40):
        torch.manual_seed(123)
        loss = stage2_loss(tiny_model, net, sched, x, values, present, 1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(fixed_loss())
    assert after < 0.7 * before, (before, after)


@pytest.mark.parametrize("residual", [False, True])
def test_cli_decompress_with_diffusion(cli, golden_png, tmp_path, residual):
    import shutil

    from PIL import Image

    model_dir = tmp_path / "model"
    shutil.copytree(TINY_MODEL, model_dir)
    DiffusionCompensator(tiny_net(), 1.0, residual=residual).save_pretrained(model_dir / "diffusion")
    out = tmp_path / "g.cosmic"
    assert cli("compress", golden_png, "-o", out, "-m", model_dir, "-q")[0] == 0
    imgs = {}
    for name, args in {"a": ["--steps", "2", "--seed", "1"], "b": ["--steps", "2", "--seed", "1"],
                       "c": ["--steps", "2", "--seed", "2"], "d": ["--steps", "0"]}.items():
        code, _, err = cli("decompress", out, "-o", tmp_path / f"{name}.png", "-m", model_dir, "-q", *args)
        assert code == 0, err
        imgs[name] = np.asarray(Image.open(tmp_path / f"{name}.png"))
    assert np.array_equal(imgs["a"], imgs["b"])
    assert not np.array_equal(imgs["a"], imgs["c"]) and not np.array_equal(imgs["a"], imgs["d"])


def test_cli_steps_without_diffusion_model(cli, one_line_error, golden_png, tmp_path):
    out = tmp_path / "g.cosmic"
    assert cli("compress", golden_png, "-o", out, "-m", TINY_MODEL, "-q")[0] == 0
    code, _, err = cli("decompress", out, "-o", tmp_path / "x.png", "-m", TINY_MODEL, "--steps", "25")
    one_line_error(code, err, "no diffusion compensation")


@pytest.mark.slow
def test_train_stage2_runs_resumes_and_saves(tmp_path, monkeypatch):
    import cosmic.ground.diffusion.noise_predictor as npred
    from PIL import Image

    from cosmic.training.stage2 import MetadataImageFolder, Stage2Config, train_stage2
    from helpers import golden_image

    monkeypatch.setitem(npred.UNET_PRESETS, "small", TINY_UNET)
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        Image.fromarray(np.roll(golden_image(96, 96), 9 * i, axis=0)).save(data / f"im{i}.png")
    (data / "im0.json").write_text(json.dumps(LANDSAT_META))
    ds = MetadataImageFolder(data, "all", crop=64, default=SensorMetadata(gsd=0.3048))
    assert ds.present[0].sum() == 9 and ds.present[1].sum() == 1  # sidecar (9 fields) vs dataset-wide GSD
    seen = set()
    for _ in range(30):  # crops are drawn at random; each comes with its own image's metadata
        crop, values, present = ds[0]
        assert crop.shape == (3, 64, 64)
        k = int(present.sum())
        seen.add(k)
        i = 0 if k == 9 else 1
        assert torch.equal(values, ds.values[i]) and torch.equal(present, ds.present[i])
    assert seen == {9, 1}
    cfg = Stage2Config(stage1=str(TINY_MODEL), data=str(data), out=str(tmp_path / "run"), steps=4,
                       batch_size=2, crop=64, checkpoint_every=2, gsd=0.3048)
    train_stage2(cfg, progress=False)
    cfg.steps = 6
    final = train_stage2(cfg, progress=False)
    state = json.loads((tmp_path / "run" / "last" / "trainer.json").read_text())
    assert state["step"] == 6 and [e["step"] for e in state["losses"]] == [2, 4, 6]
    comp = DiffusionCompensator.from_pretrained(final)
    assert comp.latent_scale == pytest.approx(state["latent_scale"]) and comp.latent_scale > 0
    assert comp.residual is True  # the default target: z0 - ẑ0(y_hat)
    cfg.steps, cfg.residual = 8, False  # resuming with the other target would mix two scales
    with pytest.raises(InputError, match="--residual"):
        train_stage2(cfg, progress=False)
    anchor = torch.zeros(1, 4, 16, 16)
    assert comp.sample(torch.zeros(1, 16, 4, 4), steps=2, seeds=[0], anchor=anchor).shape == (1, 4, 16, 16)


@pytest.mark.slow
def test_cli_compare_reports_both_paths_and_jpeg2000(cli, tmp_path):
    import shutil

    from PIL import Image

    from helpers import golden_image

    model_dir = tmp_path / "model"
    shutil.copytree(TINY_MODEL, model_dir)
    DiffusionCompensator(tiny_net(), 1.0).save_pretrained(model_dir / "diffusion")
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(golden_image(192, 200)).save(data / "a.png")
    out = tmp_path / "cmp"
    code, stdout, err = cli("compare", "--data", data, "--split", "all", "--steps", "2", "-m", model_dir,
                            "--out", out, "--gsd", "0.3")
    assert code == 0, err
    s = json.loads((out / "summary.json").read_text())
    rows = json.loads((out / "per_image.json").read_text())
    assert s["images"] == 1 and set(s) >= {"cosmic", "cosmic_dc", "jpeg2000"}
    assert rows[0]["cosmic"]["bpp"] == pytest.approx(rows[0]["cosmic"]["bytes"] * 8 / (192 * 200))
    assert abs(rows[0]["jpeg2000"]["bpp"] - rows[0]["cosmic"]["bpp"]) <= 0.05 * rows[0]["cosmic"]["bpp"] + 0.01
    assert s["cosmic_dc"]["steps"] == 2 and s["cosmic_dc"]["decode_s_per_tile"] > 0
    assert "JPEG2000" in stdout and "diffusion compensation (2 DDIM steps)" in stdout


@pytest.mark.slow
def test_demo_with_compensation(cli, golden_png, tmp_path):
    import shutil

    from PIL import Image

    model_dir = tmp_path / "model"
    shutil.copytree(TINY_MODEL, model_dir)
    DiffusionCompensator(tiny_net(), 1.0).save_pretrained(model_dir / "diffusion")
    code, stdout, err = cli("demo", "--out", tmp_path / "d", "--image", golden_png, "-m", model_dir, "--steps", "2")
    assert code == 0, err
    assert "compensated, 2 steps" in stdout
    with Image.open(tmp_path / "d" / "side_by_side.png") as im:
        assert im.width > 4 * 300


def test_int8_storage_round_trip(tmp_path):
    """Shipping at int8 (per-channel kernels, float16 rest): rounded first, the stored model loads
    back bit-identical and samples the same z0; the file is about a quarter of float32."""
    from cosmic.utils.pretrained import round_parameters

    comp = DiffusionCompensator(tiny_net().eval(), latent_scale=2.0)
    before = {k: v.clone() for k, v in comp.net.state_dict().items()}
    round_parameters(comp.net, torch.int8)
    changed = [k for k, v in comp.net.state_dict().items() if not torch.equal(v, before[k])]
    assert changed  # something was really rounded
    worst = max(float((comp.net.state_dict()[k] - before[k]).abs().max() / before[k].abs().max())
                for k in changed)
    assert worst < 1 / 200  # int8 per channel: error within half a step of 1/127 of the row max
    comp.save_pretrained(tmp_path / "q8", dtype=torch.int8)
    comp.save_pretrained(tmp_path / "f32")
    back = DiffusionCompensator.from_pretrained(tmp_path / "q8")
    for k, v in comp.net.state_dict().items():
        assert torch.equal(back.net.state_dict()[k], v), k
    y = torch.randn(1, 16, 4, 4)
    assert torch.equal(back.sample(y, steps=2, seeds=[1]), comp.sample(y, steps=2, seeds=[1]))
    size = lambda d: sum(f.stat().st_size for f in d.rglob("*.safetensors"))  # noqa: E731
    assert size(tmp_path / "q8") < 0.4 * size(tmp_path / "f32")


def test_compensated_decode_runs_transconv_once_per_batch(tiny_model, tmp_path):
    """The decode pipeline goes through Cosmic.decompress, which shares transconv(y_hat) and ẑ0
    between the residual anchor and D: one transconv per batch of tiles, compensated or not (a
    batch is one tile since decodes became batch-invariant, issue 34 §1)."""
    from helpers import golden_image

    from cosmic.pipelines import DecodePipeline, EncodePipeline, open_scene
    from cosmic.utils.device import exact_synthesis

    data = EncodePipeline(tiny_model.onboard, tiny_model.name).encode(open_scene(golden_image())).to_bytes()
    comp = DiffusionCompensator(tiny_net().eval(), 1.0, residual=True)
    pipe = DecodePipeline(tiny_model, compensator=comp)
    calls = []
    # the decode runs the float64 copy of the ground decoder (cached on the model; a hook on the
    # float32 module reached it only when the copy was made after the hook: an order-dependent test)
    ground = exact_synthesis(tiny_model.ground, torch.device("cpu"))
    hook = ground.transconv.register_forward_hook(lambda *a: calls.append(1))
    try:
        plain = pipe(data).pixels
        assert len(calls) == 2  # two tiles, a batch each
        compensated = pipe(data, steps=2, seed=3).pixels
        assert len(calls) == 4
    finally:
        hook.remove()
    assert plain.shape == compensated.shape == (200, 300, 3) and not np.array_equal(plain, compensated)


def test_stage2_for_a_variable_rate_stage1_is_conditioned_on_the_quality(tmp_path, monkeypatch):
    """One stage-2 network for every rate: it sees the dequantised latent and the quality, and a
    compensated decode of a variable-rate file passes the file's quality through."""
    import cosmic.ground.diffusion.noise_predictor as npred
    from PIL import Image

    from cosmic.models.cosmic import Cosmic
    from cosmic.pipelines import DecodePipeline, EncodePipeline, open_scene
    from cosmic.training.stage2 import Stage2Config, train_stage2
    from cosmic.zoo import DIFFUSION_DIR
    from helpers import golden_image

    monkeypatch.setitem(npred.UNET_PRESETS, "small", TINY_UNET)
    torch.manual_seed(0)
    stage1 = Cosmic(N=16, M=16, ground_channels=8, rate_levels=3, gain_span=2.0, colour_space="ycbcr")
    stage1.update(force=True)
    model_dir = tmp_path / "vr"
    stage1.save_pretrained(model_dir)
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(golden_image(96, 96)).save(data / "im0.png")
    cfg = Stage2Config(stage1=str(model_dir), data=str(data), out=str(tmp_path / "run"), steps=2,
                       batch_size=2, crop=64, checkpoint_every=2, gsd=0.3048)
    comp = DiffusionCompensator.from_pretrained(train_stage2(cfg, progress=False))
    assert comp.net.quality_conditioning and comp.net.config["quality_conditioning"]
    y, z = torch.zeros(2, 16, 4, 4), torch.zeros(2, 4, 16, 16)
    with pytest.raises(ValueError, match="quality"):
        comp.sample(y, steps=1, seeds=[0, 1], anchor=z)
    low, high = (comp.sample(y, steps=2, seeds=[0, 1], anchor=z, quality=torch.full((2,), q)) for q in (1.0, 3.0))
    assert not torch.equal(low, high)  # the quality changes what is generated
    comp.save_pretrained(model_dir / DIFFUSION_DIR)
    data_bytes = EncodePipeline.from_pretrained(model_dir).encode(open_scene(golden_image(64, 64)), quality=2.0).to_bytes()
    pipe = DecodePipeline.from_pretrained(model_dir)
    a, b = (pipe(data_bytes, steps=2, seed=0).pixels for _ in range(2))
    assert a.shape == (64, 64, 3) and np.array_equal(a, b)
    assert not np.array_equal(a, pipe(data_bytes, steps=0).pixels)
