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
    from cosmic.zoo import DEFAULT_MODEL, load_onboard

    codec, _ = load_onboard(DEFAULT_MODEL)
    path = export_onnx(codec, tmp_path / "enc.onnx")
    encoder = OnnxEncoder(codec, path)
    tiles = list(iter_tiles(load_rgb(sample_path()).pixels, 256))
    assert len(tiles) == 12
    for tile, quality in zip(tiles, np.linspace(1.0, 6.0, len(tiles))):  # the shipped model's range
        x = _to_tensor([tile])
        assert encoder.compress(x, quality)["strings"] == codec.compress(x, quality)["strings"], quality


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


def test_ground_encoder_writes_the_satellites_bytes(tmp_path):
    """The encode pipeline runs the exported graph: its file is the one an ONNX Runtime on board
    writes from the ``cosmic export onnx`` file, tile for tile, byte for byte."""
    from cosmic.data import sample_path
    from cosmic.io.container import join_payload
    from cosmic.onboard.export import OnnxEncoder, export_onnx
    from cosmic.pipelines import EncodePipeline
    from cosmic.pipelines.scene import open_scene
    from cosmic.zoo import DEFAULT_MODEL

    pipe = EncodePipeline.from_pretrained(DEFAULT_MODEL)
    assert isinstance(pipe.encoder(256), OnnxEncoder)
    with open_scene(sample_path()) as scene:
        coded = pipe.encode(scene, quality=3.0)
        tiles = list(scene.tiles(256, 0, coded.header.edge_stride))
    assert len(tiles) == len(coded.payloads) == 12
    graphs = {}  # one graph per tile shape: 256x256, and the edge tiles' (format version 4)
    for i, tile in enumerate(tiles):
        if tile.shape[:2] not in graphs:
            onnx = export_onnx(pipe.codec, tmp_path / f"enc{len(graphs)}.onnx", tile.shape[:2])
            graphs[tile.shape[:2]] = OnnxEncoder(pipe.codec, onnx)
        y, z = graphs[tile.shape[:2]].compress(_to_tensor([tile]), 3.0)["strings"]
        assert coded.payloads[i] == join_payload(y[0], z[0]), f"tile {i}"


def test_onnx_encode_is_the_same_for_any_thread_count_and_batch(tiny_model):
    """Unlike PyTorch's (whose y moves by ~1e-6 between 1 and 2 threads), ONNX Runtime's y and
    z, hence the bitstream, do not depend on the thread count or the batch size."""
    from cosmic.onboard.export import OnnxEncoder, export_bytes, select_encoder

    codec = tiny_model.onboard
    x = _to_tensor(list(iter_tiles(golden_image(256, 512), 128)))
    assert len(x) == 8
    one = select_encoder(codec, 128)
    two = OnnxEncoder(codec, export_bytes(codec, 128), threads=2)
    y1, z1 = torch.cat([one.analysis(x[i : i + 1])[0] for i in range(8)]), one.analysis(x)[1]
    y2, z2 = two.analysis(x)
    assert torch.equal(y1, y2) and torch.equal(z1, z2)
    assert one.compress(x)["strings"] == two.compress(x)["strings"]


def test_select_encoder_runtimes(tiny_model):
    from cosmic.errors import InputError
    from cosmic.onboard.export import OnnxEncoder, select_encoder

    codec = tiny_model.onboard
    assert select_encoder(codec, 128, "torch") is codec
    assert isinstance(select_encoder(codec, 128, "onnx"), OnnxEncoder)
    assert select_encoder(codec, 128, "onnx").session is select_encoder(codec, 128).session  # exported once
    with pytest.raises(InputError, match="runtime 'tf'"):
        select_encoder(codec, 128, "tf")
    with pytest.raises(InputError, match="--tile 100"):
        select_encoder(codec, 100, "onnx")


def test_export_leaves_torch_rng_alone(tiny_model):
    """The encode pipeline exports inside training runs' validation: it must not move the RNG
    (a resumed run, whose export is cached, would otherwise diverge from a straight one)."""
    from cosmic.onboard.export import export_bytes

    torch.manual_seed(3)
    export_bytes(tiny_model.onboard, 128)
    after = torch.rand(4)
    torch.manual_seed(3)
    assert torch.equal(after, torch.rand(4))
