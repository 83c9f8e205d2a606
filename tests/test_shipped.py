"""Quality floor of the shipped default model on the bundled sample (issue #6 item 4, used by
`make demo`). The bounds come from measurements recorded in docs/MODEL_CARD.md: a regression in
the weights, the coder or the decoder trips them."""

from __future__ import annotations

import pytest

from cosmic.data import sample_path
from cosmic.evaluation.metrics import psnr
from cosmic.ground.scene import decode_scene
from cosmic.io.container import read_container, write_container
from cosmic.io.images import load_rgb
from cosmic.onboard.scene import encode_scene
from cosmic.zoo import DEFAULT_MODEL, load_model, load_onboard, shipped_models

# measured on the bundled NAIP sample (see docs/MODEL_CARD.md); floors leave a small margin
MAX_BPP = 0.118  # measured 0.1120
MIN_PSNR = 24.4  # measured 24.72 dB


def test_default_model_ships():
    assert DEFAULT_MODEL in shipped_models()


@pytest.fixture(scope="module")
def sample_round_trip(tmp_path_factory):
    x = load_rgb(sample_path()).pixels
    codec, name = load_onboard(DEFAULT_MODEL)
    header, payloads = encode_scene(codec, x, name)
    path = tmp_path_factory.mktemp("shipped") / "sample.cosmic"
    size = write_container(path, header, payloads)
    decoded = decode_scene(load_model(DEFAULT_MODEL), read_container(path)).pixels
    return x, size, decoded


def test_quality_floor_on_bundled_sample(sample_round_trip):
    x, size, decoded = sample_round_trip
    bpp = size * 8 / (x.shape[0] * x.shape[1])
    assert bpp <= MAX_BPP, bpp
    assert psnr(x, decoded) >= MIN_PSNR, psnr(x, decoded)
