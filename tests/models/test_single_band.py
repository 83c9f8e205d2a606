"""Single-band models (issue 18 item 4): ``in_channels=1`` on the on-board codec and the ground
decoder, the exact RGB -> one-band conversion, one-band training crops, and one-band files coded
and decoded through the pipelines."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from helpers import golden_image, write_tif

from cosmic.io.container import read_container
from cosmic.models.cosmic import Cosmic
from cosmic.training.data import LUMINANCE, ImageFolder, single_band
from cosmic.training.widen import single_band_state


def _tiny(in_channels: int = 3) -> Cosmic:
    return Cosmic(N=16, M=16, ground_channels=8, rate_levels=3, gain_span=1.0, colour_shortcut=True,
                  in_channels=in_channels, name="cosmic-gray-test")


@pytest.fixture(scope="module")
def pair():
    """A (perturbed) tiny RGB model and its exact single-band conversion."""
    torch.manual_seed(0)
    rgb, grey = _tiny(3).eval(), _tiny(1).eval()
    for p in rgb.parameters():  # not the initial state (the colour shortcut starts at zero)
        p.data.add_(0.01 * torch.randn_like(p))
    grey.load_state_dict(single_band_state(grey, rgb.state_dict()))
    rgb.update(force=True)
    grey.update(force=True)
    return rgb, grey


def test_conversion_codes_a_band_as_the_rgb_model_codes_it_replicated(pair):
    rgb, grey = pair
    assert grey.onboard.colour.proj.weight.shape[1] == 1 and grey.ground.decoder[-1].weight.shape[1] == 1
    x, q = torch.rand(2, 1, 64, 64), torch.tensor([1.0, 2.5])
    x3 = x.repeat(1, 3, 1, 1)
    with torch.no_grad():
        y1, y3 = grey.onboard.analysis(x, q), rgb.onboard.analysis(x3, q)
        assert y3.abs().max() > 1.0 and torch.allclose(y1, y3, atol=1e-5)
        assert grey.compress(x, quality=2.0)["strings"] == rgb.compress(x3, quality=2.0)["strings"]
        a, b = grey(x, q), rgb(x3, q)
        assert torch.allclose(a["z0_mu"], b["z0_mu"], atol=1e-5)  # Ẽ reads the band as (g, g, g)
        for key in ("x_hat", "x_hat_est"):  # D's output: the mean of the RGB model's three
            assert a[key].shape[1] == 1
            assert torch.allclose(a[key], b[key].mean(1, keepdim=True), rtol=1e-4, atol=1e-5), key
        assert b["x_hat"].std(1).mean() > 1e-3  # the three RGB outputs do differ


def test_single_band_model_refuses_colour_and_other_counts():
    with pytest.raises(ValueError, match="single-band model codes its band as it is"):
        Cosmic(N=16, M=16, ground_channels=8, in_channels=1, colour_space="ycbcr")
    with pytest.raises(ValueError, match="in_channels 2"):
        Cosmic(N=16, M=16, ground_channels=8, in_channels=2)
    assert Cosmic(N=16, M=16, ground_channels=8).config["in_channels"] == 3  # the default: unchanged


def test_one_band_crops_are_a_band_or_the_luminance(tiny_data):
    data = ImageFolder(tiny_data, "train", crop=64, samples_per_epoch=40, seed=3, bands=1)
    rgb = ImageFolder(tiny_data, "train", crop=64, samples_per_epoch=40, seed=3)
    kinds = set()
    for i in range(40):
        crop, full = data[i], rgb[i]  # the same crop position and flips, then one band of it
        assert crop.shape == (1, 64, 64)
        px = np.rint(full.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        matches = [k for k in range(4) if np.array_equal(single_band(px, k)[..., 0], np.rint(crop[0].numpy() * 255))]
        assert matches, i
        kinds.add(matches[0])
    assert kinds == {0, 1, 2, LUMINANCE}
    val = ImageFolder(tiny_data, "val", crop=None, bands=1)[0]
    assert val.shape == (1, 128, 128)


def test_one_band_geotiff_round_trip_with_a_single_band_model(pair, cli, tmp_path, one_line_error):
    _, grey = pair
    model = tmp_path / "grey-model"
    grey.save_pretrained(model)
    assert Cosmic.from_pretrained(model).config["in_channels"] == 1
    band = golden_image(100, 140)[..., 1]
    src = write_tif(tmp_path / "b.tif", band[None], "uint8")
    coded, out = tmp_path / "b.cosmic", tmp_path / "b1.tif"
    assert cli("compress", src, "-o", coded, "-m", model, "-q", "--quality", "2")[0] == 0
    h = read_container(coded).header
    assert h.channels == 1 and h.model == "cosmic-gray-test"
    assert cli("decompress", coded, "-o", out, "-m", model, "-q")[0] == 0
    with rasterio.open(out) as ds:
        assert ds.count == 1 and ds.read(1).shape == band.shape
        decoded = ds.read(1)
    x = torch.from_numpy(band[None, None].astype(np.float32) / 255)
    x = torch.nn.functional.pad(x, (0, 256 - 140, 0, 256 - 100), mode="replicate")
    ref = grey.quantized_reconstruction(x, 2.0)[0, 0, :100, :140].numpy() * 255
    assert np.abs(decoded.astype(np.float64) - ref).mean() < 1.0  # the model's own decode, one band
    rgb = write_tif(tmp_path / "c.tif", golden_image(100, 140).transpose(2, 0, 1), "uint8")
    code, _, err = cli("compress", rgb, "-o", tmp_path / "c.cosmic", "-m", model, "-q")
    one_line_error(code, err, "codes one band", "--bands")


def test_band_groups_code_one_band_groups_with_the_single_band_model(pair, tmp_path):
    """``--band-groups 1,2,3:4``: the RGB group by the RGB model, the fourth band by the
    single-band one (named in ``layout.models``), decoded back to 4 bands by each group's model."""
    from cosmic.pipelines import DecodePipeline, EncodePipeline, open_scene

    rgb, grey = pair
    rgb_dir, grey_dir = tmp_path / "rgb", tmp_path / "grey"
    rgb.save_pretrained(rgb_dir)
    grey.save_pretrained(grey_dir)
    img = golden_image(100, 140)
    src = write_tif(tmp_path / "n.tif", np.concatenate([img.transpose(2, 0, 1), img[None, :, :, 1] // 2]), "uint8")
    pipe = EncodePipeline.from_pretrained(rgb_dir, single_band=EncodePipeline.from_pretrained(grey_dir))
    with open_scene(src, groups=[[1, 2, 3], [4]]) as scene:
        pipe.to_file(scene, tmp_path / "n.cosmic", quality=2.0)
        alone = EncodePipeline.from_pretrained(rgb_dir).encode(scene, quality=2.0)
    c = read_container(tmp_path / "n.cosmic")
    assert c.header.layout["models"] == [None, {"model": "cosmic-gray-test", "sha256": grey.onboard.bitstream_id()}]
    assert c.plane(1).header.model_sha256 == grey.onboard.bitstream_id() != c.header.model_sha256
    assert alone.header.layout.get("models") is None and alone.payloads[0] == c.tile_payload(0)
    dec = DecodePipeline(Cosmic.from_pretrained(rgb_dir), single_band=DecodePipeline(Cosmic.from_pretrained(grey_dir)))
    dec.write(c, tmp_path / "n1.tif")
    with rasterio.open(tmp_path / "n1.tif") as ds:
        y = ds.read()
    nir = dec(c, group=1).pixels  # the group decoded alone, by its own model
    assert y.shape == (4, 100, 140) and np.array_equal(y[3], nir[..., 0])
    with pytest.raises(Exception, match="not a shipped model"):  # nothing to decode group 1 with
        DecodePipeline(Cosmic.from_pretrained(rgb_dir)).write(c, tmp_path / "n2.tif")


def test_stage1_bands_options_are_checked(tiny_data, tmp_path):
    from cosmic.errors import InputError
    from cosmic.training.stage1 import Stage1Config, train_stage1

    for bad, needle in (({"bands": 1, "chroma_weight": 4.0}, "no colour"), ({"bands": 2}, "--bands 2"),
                        ({"bands": 1, "colour_space": "ycbcr"}, "no colour")):
        cfg = Stage1Config(data=str(tiny_data), out=str(tmp_path / "r"), **bad)
        with pytest.raises(InputError, match=needle):
            train_stage1(cfg, progress=False)
