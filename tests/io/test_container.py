"""The .cosmic container: layout, bpp, validation, corruption handling."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from helpers import encode_parts, golden_image, write_file

from cosmic.errors import BitstreamError
from cosmic.ground.scene import decode_scene
from cosmic.io.container import (
    FORMAT_VERSION, MAGIC, Container, Header, TileError, bits_per_pixel, join_payload,
    read_container, split_payload,
)


@pytest.fixture()
def coded(tiny_model, tmp_path):
    x = golden_image(300, 520)  # 2 x 3 tiles
    header, payloads = encode_parts(tiny_model.onboard, x, tiny_model.name, metadata={"gsd": 0.3, "cloud_cover": 11.3})
    path = tmp_path / "scene.cosmic"
    size = write_file(path, header, payloads)
    return path, size, header, payloads


def _rewrite_header(path, mutate):
    """Re-pack the header with ``mutate(header)`` applied and a valid CRC (a forged file)."""
    c = Container(path)
    data = path.read_bytes()
    h = c.header
    mutate(h)
    blob = h.pack()
    head = struct.pack("<HI", h.format_version, len(blob)) + blob
    rest = data[c.payload_start - 4 - len(c.entries) * 8 :]
    path.write_bytes(MAGIC + head + struct.pack("<I", zlib.crc32(head)) + rest)


def test_layout_and_bpp(coded):
    path, size, header, payloads = coded
    c = read_container(path)
    assert c.file_size == size == path.stat().st_size
    assert (c.header.rows, c.header.cols) == (2, 3)
    assert c.header.metadata == {"gsd": 0.3, "cloud_cover": 11.3}
    assert c.bpp == pytest.approx(size * 8 / (300 * 520))
    assert bits_per_pixel(1000, 100, 10) == 8.0
    assert [c.tile_payload(i) for i in range(6)] == payloads
    overhead = size - sum(len(p) for p in payloads)
    assert overhead < 200  # fixed header + 8 bytes per tile


def test_payload_split_round_trip():
    assert split_payload(join_payload(b"yyyy", b"zz")) == (b"yyyy", b"zz")
    with pytest.raises(ValueError):
        split_payload(struct.pack("<I", 99) + b"zz")


def test_header_pack_round_trip():
    h = Header("m", "ab" * 16, 1000, 700, 256, (4, 4), 1, 8, {"gsd": 1.0}, {"crs": "EPSG:32610"})
    assert Header.unpack(h.pack()) == h


@pytest.mark.parametrize("cut", [0, 5, 8, 12, 30, 60, -200, -1])
def test_truncated_file_is_refused(coded, cut):
    path, size, *_ = coded
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut >= 0 else data[: size + cut])
    with pytest.raises(BitstreamError):
        read_container(path)


def test_wrong_magic_and_newer_version(coded):
    path, *_ = coded
    data = bytearray(path.read_bytes())
    bad = bytes(b"\x89PNG\r\n\x1a\n") + bytes(data[8:])
    path.write_bytes(bad)
    with pytest.raises(BitstreamError, match="magic"):
        read_container(path)
    data[8:10] = struct.pack("<H", FORMAT_VERSION + 1)
    path.write_bytes(bytes(data))
    with pytest.raises(BitstreamError, match="newer"):
        read_container(path)


def test_header_bit_flip_is_caught(coded):
    path, *_ = coded
    data = bytearray(path.read_bytes())
    data[20] ^= 0x10  # inside the binary header (width)
    path.write_bytes(bytes(data))
    with pytest.raises(BitstreamError, match="header CRC"):
        read_container(path)


def test_huge_declared_image_refused_before_allocating(coded):
    path, *_ = coded

    def huge(h):
        h.width = h.height = 1_000_000

    _rewrite_header(path, huge)
    with pytest.raises(BitstreamError, match="1000000x1000000"):
        read_container(path)


def test_absurd_side_refused(coded):
    path, *_ = coded

    def absurd(h):
        h.width = 4_000_000_000

    _rewrite_header(path, absurd)
    with pytest.raises(BitstreamError, match="sides must be"):
        read_container(path)


def test_corrupt_tile_named_and_concealed(tiny_model, coded):
    path, size, header, payloads = coded
    c = read_container(path)
    data = bytearray(path.read_bytes())
    data[c.offsets[4] + 6] ^= 0xFF  # tile 4 = row 1, col 1
    path.write_bytes(bytes(data))
    c = read_container(path)
    with pytest.raises(TileError, match=r"tile 4 \(row 1, col 1\)"):
        decode_scene(tiny_model, c)
    clean = golden_image(300, 520)
    scene = decode_scene(tiny_model, c, conceal=True)
    assert [e.index for e in scene.bad_tiles] == [4]
    assert scene.pixels.shape == clean.shape
    tile = scene.pixels[256:300, 256:512]
    assert (tile == tile[0, 0]).all()  # filled with one colour
    # the intact tiles decode exactly as in an undamaged file
    header2, payloads2 = header, payloads
    write_file(path.with_name("ok.cosmic"), header2, payloads2)
    ok = decode_scene(tiny_model, read_container(path.with_name("ok.cosmic"))).pixels
    assert np.array_equal(ok[:256], scene.pixels[:256])


def test_other_model_refused(coded):
    from cosmic.models.cosmic import Cosmic

    path, *_ = coded
    other = Cosmic(N=16, M=16, ground_channels=8, name="another")
    other.update(force=True)
    with pytest.raises(BitstreamError, match="coded by model"):
        decode_scene(other, read_container(path))


def test_scene_too_large_for_memory_refused(tiny_model, coded, monkeypatch):
    import cosmic.ground.scene as gs

    path, *_ = coded
    monkeypatch.setattr(gs, "MAX_DECODE_PIXELS", 256 * 256 * 5)  # the file has 6 tiles
    with pytest.raises(BitstreamError, match="larger than this decoder holds"):
        decode_scene(tiny_model, read_container(path))


def test_forged_headers_never_crash(tiny_model, coded):
    """Random header bytes with a recomputed (valid) CRC: a clean BitstreamError or a decode."""
    path, *_ = coded
    original = path.read_bytes()
    c = Container(path)
    head_end = c.payload_start - 4 - len(c.entries) * 8 - 4  # end of the header body
    rng = np.random.default_rng(1)
    for _ in range(40):
        data = bytearray(original)
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(14, head_end))] = int(rng.integers(0, 256))
        fixed = bytes(data[8:14])
        blob = bytes(data[14:head_end])
        data[head_end : head_end + 4] = struct.pack("<I", zlib.crc32(fixed + blob))
        path.write_bytes(bytes(data))
        try:
            decode_scene(tiny_model, read_container(path), conceal=True)
        except BitstreamError:
            pass


def test_crc_valid_garbage_payloads_never_crash(tiny_model, coded):
    """Payload corruption that a forger re-CRCs reaches the rANS decoder: it must either decode
    (to a wrong image: the CRC is the guard) or fail as a concealable tile, never crash."""
    path, size, header, payloads = coded
    rng = np.random.default_rng(2)
    for _ in range(30):
        q = [bytearray(p) for p in payloads]
        i = int(rng.integers(0, len(q)))
        for _ in range(int(rng.integers(1, 6))):
            q[i][int(rng.integers(0, len(q[i])))] = int(rng.integers(0, 256))
        if rng.random() < 0.3:
            q[i] = q[i][: int(rng.integers(1, len(q[i]) + 1))]
        write_file(path, header, [bytes(p) for p in q])
        scene = decode_scene(tiny_model, read_container(path), conceal=True)
        assert scene.pixels.shape == (300, 520, 3)
        assert all(e.index == i for e in scene.bad_tiles)


def test_model_bug_is_not_a_corrupt_tile(tiny_model, coded, monkeypatch, cli, tmp_path):
    """Only the container's and the entropy decoder's errors are bad tiles: an exception from the
    model itself propagates (exit 70 in the CLI), even with --conceal."""
    from helpers import TINY_MODEL

    path, *_ = coded

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the ground decoder")

    monkeypatch.setattr(type(tiny_model.ground), "synthesize", broken)
    with pytest.raises(RuntimeError, match="bug in the ground decoder"):
        decode_scene(tiny_model, read_container(path), conceal=True)
    code, _, err = cli("decompress", path, "-o", tmp_path / "x.png", "-m", TINY_MODEL, "--conceal", "-q")
    assert code == 70 and "internal error" in err and not (tmp_path / "x.png").exists()
