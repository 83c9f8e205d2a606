"""Round trips, golden bitstream, determinism across thread counts and processes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch
from helpers import HERE, TINY_MODEL, encode_file, golden_image

from cosmic.ground.scene import decode_scene
from cosmic.io.container import read_container
from cosmic.models.cosmic import Cosmic
from cosmic.models.registry import build_model
from cosmic.onboard.scene import iter_tiles


def _encode_file(model, pixels, path: Path) -> bytes:
    return encode_file(model.onboard, pixels, model.name, path)


def test_decompress_equals_quantized_reconstruction(tiny_model, tmp_path):
    x = golden_image()
    _encode_file(tiny_model, x, tmp_path / "a.cosmic")
    container = read_container(tmp_path / "a.cosmic")
    decoded = decode_scene(tiny_model, container).pixels
    assert decoded.shape == x.shape
    # the model's own quantised reconstruction of every padded tile (the right-hand one 256x64:
    # format version 4 pads an edge tile to the stride), stitched and cropped
    rec = []
    for tile in iter_tiles(x, 256, container.header.edge_stride):
        t = torch.from_numpy(tile.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        rec.append((tiny_model.quantized_reconstruction(t)[0].permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8))
    assert [r.shape for r in rec] == [(256, 256, 3), (256, 64, 3)]
    expected = np.concatenate(rec, axis=1)[: x.shape[0], : x.shape[1]]  # one row of two tiles
    # exactly: both synthesise in float64
    assert np.array_equal(decoded, expected)


def test_tensor_round_trip_float_tolerance():
    torch.manual_seed(0)
    model = build_model("cosmic", "small").eval()
    model.update(force=True)
    x = torch.rand(2, 3, 128, 192)
    enc = model.compress(x)
    dec = model.decompress(enc["strings"], enc["shape"])
    ref = model.quantized_reconstruction(x)
    assert dec["x_hat"].shape == x.shape
    assert torch.allclose(dec["x_hat"], ref, atol=1e-5)


def test_golden_bitstream(tiny_model, tmp_path):
    data = _encode_file(tiny_model, golden_image(), tmp_path / "g.cosmic")
    expected = (HERE / "fixtures" / "golden.txt").read_text().strip()
    assert hashlib.sha256(data).hexdigest() == expected


_ENCODE_SCRIPT = textwrap.dedent(
    """
    import hashlib, sys, warnings
    warnings.simplefilter("ignore")
    import torch
    torch.set_num_threads(int(sys.argv[2]))
    sys.path.insert(0, sys.argv[3])
    from helpers import encode_file, golden_image
    from cosmic.models.cosmic import Cosmic
    model = Cosmic.from_pretrained(sys.argv[1])
    encode_file(model.onboard, golden_image(400, 520), model.name, sys.argv[4])
    """
)


def test_encoding_is_identical_across_threads_and_processes(tmp_path):
    torch.manual_seed(7)
    model = build_model("cosmic", "small").eval()
    model.update(force=True)
    model.save_pretrained(tmp_path / "model")
    model = Cosmic.from_pretrained(tmp_path / "model")
    files = []
    for threads in (1, 2):
        out = tmp_path / f"t{threads}.cosmic"
        subprocess.run(
            [sys.executable, "-c", _ENCODE_SCRIPT, str(tmp_path / "model"), str(threads), str(HERE), str(out)],
            check=True, capture_output=True,
        )
        files.append(out.read_bytes())
    in_process = _encode_file(model, golden_image(400, 520), tmp_path / "here.cosmic")
    assert files[0] == files[1] == in_process
    decoded = [decode_scene(model, read_container(tmp_path / n)).pixels for n in ("t1.cosmic", "here.cosmic")]
    assert np.array_equal(decoded[0], decoded[1])


def test_bitstream_decodes_identically_with_other_thread_count(tiny_model, tmp_path):
    _encode_file(tiny_model, golden_image(), tmp_path / "a.cosmic")
    torch.set_num_threads(2)
    try:
        two = decode_scene(tiny_model, read_container(tmp_path / "a.cosmic")).pixels
    finally:
        torch.set_num_threads(1)
    one = decode_scene(tiny_model, read_container(tmp_path / "a.cosmic")).pixels
    assert np.array_equal(one, two)


def test_onboard_only_load_matches_full_model(tmp_path):
    """The satellite loads only onboard.* weights, and codes the same bytes as the full model."""
    from cosmic.zoo import load_onboard

    codec, name = load_onboard(TINY_MODEL)
    full = Cosmic.from_pretrained(TINY_MODEL)
    assert name == full.name
    assert codec.digest() == full.onboard.digest()
    x = golden_image()
    assert encode_file(codec, x, name) == encode_file(full.onboard, x, name)


def test_onboard_package_does_not_import_ground():
    code = (
        "import sys, cosmic.onboard.codec, cosmic.onboard.scene, cosmic.io.container, cosmic.zoo;"
        "from cosmic.zoo import load_onboard; load_onboard(sys.argv[1]);"
        "bad=[m for m in sys.modules if m.startswith(('cosmic.ground','cosmic.models','diffusers'))];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code, str(TINY_MODEL)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_padding_and_crop_for_odd_sizes(tiny_model, tmp_path):
    for h, w in ((1, 1), (64, 300), (257, 255)):
        x = golden_image(h, w)
        container = read_container(encode_file(tiny_model.onboard, x, tiny_model.name))
        assert (container.header.rows, container.header.cols) == (-(-h // 256), -(-w // 256))
        out = decode_scene(tiny_model, container).pixels
        assert out.shape == (h, w, 3) and out.dtype == np.uint8


def test_colour_shortcut_starts_as_a_no_op_and_carries_colour():
    """ColourShortcut (ours): zero-initialised, so a model fine-tuned with it starts where it was;
    once its weights are non-zero, y changes with the colour of a flat patch and the real
    bitstream still round-trips."""
    import torch

    from cosmic.models.cosmic import Cosmic

    torch.manual_seed(0)
    plain = Cosmic(N=16, M=16, ground_channels=8).eval()
    with_cs = Cosmic(N=16, M=16, ground_channels=8, colour_shortcut=True).eval()
    missing, _ = with_cs.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["onboard.colour.proj.bias", "onboard.colour.proj.weight"]
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(with_cs.onboard.analysis(x), plain.onboard.analysis(x))
    torch.nn.init.normal_(with_cs.onboard.colour.proj.weight, std=0.1)
    red, green = torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64)
    red[:, 0], green[:, 1] = 0.5, 0.5
    delta = with_cs.onboard.analysis(red) - with_cs.onboard.analysis(green)
    base = plain.onboard.analysis(red) - plain.onboard.analysis(green)
    assert float((delta - base).abs().mean()) > 0.5  # the shortcut's own contribution, in quantisation steps
    with_cs.update(force=True)
    enc = with_cs.compress(x)
    y_hat = with_cs.onboard.decompress(enc["strings"], enc["shape"])["y_hat"]
    assert y_hat.shape == (1, 16, 4, 4) and torch.isfinite(y_hat).all()
