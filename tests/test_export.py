"""On-board export (cosmic.onboard.export): ONNX Runtime encodes give PyTorch's bitstreams."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL, golden_image

from cosmic.onboard.scene import _to_tensor, iter_tiles

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


def test_onnx_encode_matches_pytorch_on_every_sample_tile(tmp_path):
    from cosmic.data import sample_path
    from cosmic.io.images import load_rgb
    from cosmic.onboard.export import OnnxEncoder, export_onnx
    from cosmic.zoo import COMPENSATION_MODEL as DEFAULT_MODEL, load_onboard  # a fixed-rate shipped model

    codec, _ = load_onboard(DEFAULT_MODEL)
    path = export_onnx(codec, tmp_path / "enc.onnx")
    encoder = OnnxEncoder(codec, path)
    tiles = list(iter_tiles(load_rgb(sample_path()).pixels, 256))
    assert len(tiles) == 12
    for tile in tiles:
        x = _to_tensor([tile])
        assert encoder.compress(x)["strings"] == codec.compress(x)["strings"]


def test_variable_rate_ycbcr_graph_takes_quality(tmp_path):
    from cosmic.onboard.codec import OnboardCodec
    from cosmic.onboard.export import OnnxEncoder, export_onnx

    torch.manual_seed(0)
    codec = OnboardCodec(N=16, M=16, colour_shortcut=True, rate_levels=4, gain_span=1.5, colour_space="ycbcr")
    torch.nn.init.normal_(codec.colour.proj.weight, std=0.01)
    codec.update(force=True)
    codec.eval()
    path = export_onnx(codec, tmp_path / "vr.onnx", tile=128)
    encoder = OnnxEncoder(codec, path)
    assert encoder.inputs == ["x", "quality"]
    x = _to_tensor(list(iter_tiles(golden_image(128, 256), 128)))
    for q in (1.0, 2.5, 4.0):
        assert encoder.compress(x, q)["strings"] == codec.compress(x, q)["strings"]


def test_cli_export_onnx(cli, one_line_error, tmp_path):
    out = tmp_path / "encoder.onnx"
    code, stdout, err = cli("export", "onnx", TINY_MODEL, "-o", out, "--tile", "128")
    assert code == 0, err
    assert "x -> y, z" in stdout
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["x"]
    code, _, err = cli("export", "onnx", TINY_MODEL, "-o", tmp_path / "e.onnx", "--tile", "100")
    one_line_error(code, err, "--tile 100")
    assert not (tmp_path / "e.onnx").exists()
