"""--device / --precision: device resolution, and the coding path's indifference to autocast."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL, golden_image

from cosmic.errors import InputError
from cosmic.utils.device import autocast, exact, resolve_device

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="choose auto"):
        resolve_device("gpu")
    with pytest.raises(InputError, match="fp16"):
        autocast("cpu", "fp16")
    with pytest.raises(InputError, match="precision"):
        autocast("cpu", "fp8")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_exact_switches_autocast_off():
    a, b = torch.rand(8, 8), torch.rand(8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (a @ b).dtype == torch.bfloat16
        with exact():
            assert (a @ b).dtype == torch.float32


def _encode(pixels, model=str(TINY_MODEL), **kw) -> bytes:
    from cosmic.pipelines import EncodePipeline, open_scene
    from cosmic.zoo import load_onboard

    codec, name = load_onboard(model)
    return EncodePipeline(codec, name).encode(open_scene(pixels), **kw).to_bytes()


def test_bitstream_ignores_autocast():
    """Encoding inside a bf16 autocast gives the same bytes, and decoding them inside one gives the
    same latent: the coding paths switch autocast off (cosmic.utils.device.exact)."""
    from cosmic.models.cosmic import Cosmic
    from cosmic.pipelines.decode import open_container
    from cosmic.io.container import split_payload

    from cosmic.zoo import DEFAULT_MODEL, model_path

    # the shipped model at its highest quality: its latents are large enough that a bf16 g_a
    # rounds some of them differently (checked: without exact() the bytes differ)
    pixels = golden_image(128, 128)
    plain = _encode(pixels, DEFAULT_MODEL, quality=6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = _encode(pixels, DEFAULT_MODEL, quality=6)
    assert plain == under
    model = Cosmic.from_pretrained(model_path(DEFAULT_MODEL)).eval()
    c = open_container(plain)
    y, z = split_payload(c.tile_payload(0))
    ref = model.onboard.decompress([[y], [z]], c.header.tile_latent(0))["y_hat"]
    assert ref.abs().max() > 1  # a latent with symbols to lose
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = model.onboard.decompress([[y], [z]], c.header.tile_latent(0))["y_hat"]
    assert got.dtype == torch.float32 and torch.equal(ref, got)


def test_bf16_decode_close_to_fp32():
    """--precision bf16 runs the ground networks under autocast: the same file decodes to nearly
    the same pixels (bf16 has 8 mantissa bits)."""
    from cosmic.models.cosmic import Cosmic
    from cosmic.pipelines import DecodePipeline

    data = _encode(golden_image(128, 192))
    model = Cosmic.from_pretrained(TINY_MODEL)
    full = DecodePipeline(model, precision="fp32")(data).pixels
    half = DecodePipeline(model, precision="bf16")(data).pixels
    diff = np.abs(full.astype(int) - half.astype(int))
    assert full.shape == half.shape == (128, 192, 3)
    assert diff.mean() < 3.0 and diff.max() > 0  # bf16 did run, and stayed close


@CUDA
def test_cpu_encode_decodes_on_cuda():
    """A file coded on the CPU decodes on the GPU to the CPU's pixels (float64 h_s: the same
    CDF indices on both devices); the ground decoder's float32 differs by at most one level."""
    from cosmic.models.cosmic import Cosmic
    from cosmic.pipelines import DecodePipeline

    data = _encode(golden_image(128, 192))
    cpu = DecodePipeline(Cosmic.from_pretrained(TINY_MODEL), device="cpu")(data).pixels
    gpu = DecodePipeline(Cosmic.from_pretrained(TINY_MODEL), device="cuda")(data).pixels
    assert np.abs(cpu.astype(int) - gpu.astype(int)).max() <= 1


def test_cli_device_errors_are_one_line(cli, one_line_error, tmp_path):
    code, _, err = cli("decompress", tmp_path / "x.cosmic", "-o", tmp_path / "x.png", "--precision", "fp16")
    one_line_error(code, err, "fp16")
    if not torch.cuda.is_available():
        code, _, err = cli("decompress", tmp_path / "x.cosmic", "-o", tmp_path / "x.png", "--device", "cuda:1")
        one_line_error(code, err, "CUDA is not available")
        assert code == 2
