"""Issue 33 item 10: edge tiles padded to the codec's stride (format version 4), old files unchanged."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from helpers import HERE, TINY_MODEL, encode_file, golden_image, write_file

from cosmic.errors import BitstreamError, InputError
from cosmic.io.container import Header, read_container

GOLDEN_V1 = HERE / "fixtures" / "golden-v1.cosmic"


@pytest.fixture(scope="module")
def tiny_pipe():
    from cosmic.pipelines import DecodePipeline

    return DecodePipeline.from_pretrained(TINY_MODEL)


def _digests() -> dict[str, str]:
    lines = (HERE / "fixtures" / "golden-v1.txt").read_text().splitlines()
    return {name: digest for digest, name in (line.split(" ", 1) for line in lines)}


def test_a_version_1_file_decodes_to_the_same_pixels_as_before_version_4(tiny_pipe):
    """The file the tiny model wrote before version 4 existed (edge tiles padded to 256 px)."""
    digests = _digests()
    assert hashlib.sha256(GOLDEN_V1.read_bytes()).hexdigest() == digests["file"]
    assert read_container(GOLDEN_V1).version == 1
    for deblock, name in ((False, "decode"), (True, "decode --deblock")):
        pixels = tiny_pipe(GOLDEN_V1, deblock=deblock).pixels
        assert hashlib.sha256(pixels.tobytes()).hexdigest() == digests[name], name


def _tiny_encode(pixels, path, pad_edges=True, runtime="torch"):
    from cosmic.models.cosmic import Cosmic
    from cosmic.pipelines import EncodePipeline, open_scene

    model = Cosmic.from_pretrained(TINY_MODEL)
    pipe = EncodePipeline(model.onboard, model.name, runtime=runtime, pad_edges=pad_edges)
    return pipe.to_file(open_scene(pixels), path)


def test_edge_tiles_are_coded_at_the_stride_and_cost_less(tmp_path, tiny_pipe):
    """A 260x300 image: the right column and bottom row are coded 64 px wide / high."""
    img = golden_image(260, 300)
    new, old = tmp_path / "new.cosmic", tmp_path / "old.cosmic"
    _tiny_encode(img, new)
    _tiny_encode(img, old, pad_edges=False)
    c_new, c_old = read_container(new), read_container(old)
    assert (c_new.version, c_new.header.edge_stride) == (4, 64)
    assert (c_old.version, c_old.header.edge_stride) == (1, 0)
    assert [c_new.header.tile_extent(i) for i in range(4)] == [(256, 256), (256, 64), (64, 256), (64, 64)]
    assert [c_new.header.tile_latent(i) for i in range(4)] == [(4, 4), (4, 1), (1, 4), (1, 1)]
    assert c_new.file_size < 0.7 * c_old.file_size
    a, b = tiny_pipe(new).pixels, tiny_pipe(old).pixels
    assert a.shape == b.shape == img.shape
    assert np.abs(a.astype(int) - b).mean() < 1.0  # the same model, a different padding


def test_a_multiple_of_the_tile_keeps_the_old_bytes(tmp_path):
    """No edge tile (or none that the stride shrinks): no version 4, the same bytes as before."""
    for h, w in ((256, 512), (250, 200)):
        new, old = tmp_path / f"n{h}.cosmic", tmp_path / f"o{h}.cosmic"
        _tiny_encode(golden_image(h, w), new)
        _tiny_encode(golden_image(h, w), old, pad_edges=False)
        assert new.read_bytes() == old.read_bytes()
        assert read_container(new).version == 1


def test_batched_region_and_concealed_decodes_of_a_version_4_file(tmp_path, tiny_pipe):
    """Tiles of several shapes: a batch of 4 decodes what single tiles do, a window over the
    corner tile is the crop of the full decode, and a lost edge tile is concealed alone."""
    from cosmic.ground.scene import decode_scene
    from cosmic.pipelines.region import Window, open_region

    path = tmp_path / "e.cosmic"
    _tiny_encode(golden_image(330, 400), path)
    full = tiny_pipe(path, deblock=False).pixels
    container = read_container(path)
    batched = decode_scene(tiny_pipe.model, container, batch_size=4).pixels
    assert np.array_equal(batched, full)
    region = open_region(container, Window(300, 280, 100, 50), deblock=False)  # in the corner tile
    assert (region.row0, region.col0, region.header.width, region.header.height) == (1, 1, 144, 74)
    assert np.array_equal(decode_scene(tiny_pipe.model, region).pixels, full[256:, 256:])

    data = bytearray(path.read_bytes())
    data[container.offsets[1] + 6] ^= 0xFF  # the right-hand tile of row 0
    damaged = tmp_path / "d.cosmic"
    damaged.write_bytes(bytes(data))
    scene = tiny_pipe(damaged, conceal=True, deblock=False)
    assert [e.index for e in scene.bad_tiles] == [1]
    assert np.array_equal(scene.pixels[:, :256], full[:, :256])
    assert np.array_equal(scene.pixels[256:], full[256:])


@pytest.mark.parametrize("stride", [0, 48, 512, 65535])
def test_a_forged_edge_stride_is_refused(tmp_path, stride):
    from cosmic.models.cosmic import Cosmic
    from helpers import encode_parts

    model = Cosmic.from_pretrained(TINY_MODEL)
    header, payloads = encode_parts(model.onboard, golden_image(), model.name)
    assert header.edge_stride == 64
    path = tmp_path / "f.cosmic"
    path.write_bytes(_with_stride(header, payloads, stride))
    with pytest.raises(BitstreamError, match="header field 'edge_stride' = "):
        read_container(path)


def _with_stride(header: Header, payloads, stride: int) -> bytes:
    """The container of a version 4 ``header`` with its edge stride field forged (CRC recomputed)."""
    import struct
    import zlib

    from cosmic.io.container import _CORE, MAGIC, container_bytes

    data = bytearray(container_bytes(header, payloads))
    at = len(MAGIC)
    version, header_len = struct.unpack_from("<HI", data, at)
    assert version == 4
    struct.pack_into("<H", data, at + 6 + _CORE.size + 2, stride)  # after the quality field
    struct.pack_into("<I", data, at + 6 + header_len, zlib.crc32(bytes(data[at : at + 6 + header_len])))
    return bytes(data)


def test_the_onnx_encoder_codes_edge_tiles_with_a_graph_of_their_shape(tmp_path, tiny_pipe):
    """The ground's ONNX Runtime encoder exports a graph per tile shape; a fixed graph given
    another shape is a one-line InputError (a satellite with one graph writes pad_edges=False
    files)."""
    pytest.importorskip("onnxruntime")
    import torch

    from cosmic.models.cosmic import Cosmic
    from cosmic.onboard.export import OnnxEncoder, export_onnx

    path = tmp_path / "o.cosmic"
    _tiny_encode(golden_image(260, 300), path, runtime="onnx")
    assert read_container(path).version == 4
    assert tiny_pipe(path).pixels.shape == (260, 300, 3)
    codec = Cosmic.from_pretrained(TINY_MODEL).onboard
    fixed = OnnxEncoder(codec, export_onnx(codec, tmp_path / "g.onnx", 128))
    with pytest.raises(InputError, match="takes 128x128 tiles, not 64x128"):
        fixed.compress(torch.rand(1, 3, 64, 128))


def test_info_names_the_edge_stride(cli, tmp_path):
    import json

    path = tmp_path / "e.cosmic"
    _tiny_encode(golden_image(), path)
    code, out, _ = cli("info", path, "--json")
    assert code == 0 and json.loads(out)["edge_stride"] == 64 and json.loads(out)["format_version"] == 4
    code, out, _ = cli("info", GOLDEN_V1)
    assert code == 0 and "COSMIC format v1" in out and "multiple of" not in out
    assert "edge tiles coded to a multiple of 64px" in cli("info", path)[1]
