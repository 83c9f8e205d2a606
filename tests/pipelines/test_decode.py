"""The decode pipeline's own defects (issue 34 section 2): a band group that names a model by a
digest the loaded model does not have."""

from __future__ import annotations

import struct
import zlib

import pytest
from helpers import encode_file, golden_image

from cosmic.errors import BitstreamError
from cosmic.io.container import MAGIC, Container, read_container
from cosmic.pipelines.decode import DecodePipeline


def _with_layout(path, layout: dict) -> None:
    """Rewrite the file at ``path`` with ``layout`` (format version 3, or 4 for a file whose edge
    tiles are padded to the stride; payloads unchanged)."""
    c = Container(path)
    h = c.header
    h.layout = layout
    blob = h.pack()
    head = struct.pack("<HI", h.format_version, len(blob)) + blob
    rest = path.read_bytes()[c.payload_start - 4 - len(c.entries) * 8:]
    path.write_bytes(MAGIC + head + struct.pack("<I", zlib.crc32(head)) + rest)


def test_group_model_with_a_wrong_digest_is_loaded_once_and_refused(tiny_model, tmp_path, monkeypatch):
    """Issue 34 item 1: band group 0 named a shipped model with a wrong digest; for_group loaded
    that model again and again until the recursion limit (70-180 s, 8.3 GB), then blamed the model."""
    path = tmp_path / "g.cosmic"
    encode_file(tiny_model.onboard, golden_image(64, 64), tiny_model.name, path)
    wrong = {"model": "cosmic-small-vr-gray", "sha256": "0" * 32}
    _with_layout(path, {"groups": [[1, 2, 3]], "mask": False, "models": [wrong]})
    loads = []

    def load(container, model=None, **device):  # the group's model by name: a model of another digest
        loads.append(container.header.model)
        assert len(loads) == 1, "the group's model was loaded again"
        return DecodePipeline(tiny_model)

    monkeypatch.setattr(DecodePipeline, "for_container", staticmethod(load))
    pipe = DecodePipeline(tiny_model)
    with pytest.raises(BitstreamError, match="coded by model 'cosmic-small-vr-gray'.*not by the loaded model"):
        pipe(read_container(path))
    assert loads == ["cosmic-small-vr-gray"]
    loads.clear()
    with pytest.raises(BitstreamError, match="not by the loaded model"):  # not kept: refused again
        pipe(read_container(path))
