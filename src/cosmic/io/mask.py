"""The validity (nodata) mask of a tile, coded losslessly in front of its first band group's payload.

A scene whose source declares fill (a nodata value, an alpha band or GDAL's internal mask; see
:mod:`cosmic.io.raster`) carries one mask per tile, covering the tile's pixels inside the image
(an edge tile's mask is cut to the image). Framing, at the start of the tile payload of band
group 0 (so the tile's CRC covers it)::

    u8 kind   0: every pixel valid (1 byte in all)
              1: no pixel valid (1 byte in all)
              2: u32 n, then n bytes: zlib (deflate) of the mask's bits, each row XOR-ed
                 with the row above it (a fill border then leaves a bit or two per row), packed
                 row-major, most significant bit first (numpy.packbits); 1 = valid

This is the per-tile deflate bitmask JPEG 2000 products do not have but GDAL's internal masks
(``GDAL_TIFF_INTERNAL_MASK``, deflate) do; the paper codes no mask (it has no fill). The row
XOR costs nothing to undo and makes the Landsat 8 scene's border masks 32% smaller than plain
deflate (2206 against 3237 bytes for its 21 border tiles).

Decoding is bounded: the inflated size must be exactly ``ceil(h * w / 8)`` bytes, inflating stops
one byte past it, and any fault is a :class:`PayloadError`. Plain Python + numpy (both sides).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from cosmic.errors import BitstreamError

__all__ = ["ALL_VALID", "NONE_VALID", "pack_mask", "split_mask", "unpack_mask", "MaskError"]

ALL_VALID, NONE_VALID, CODED = 0, 1, 2


class MaskError(BitstreamError, ValueError):
    """A tile's mask section is malformed."""


def pack_mask(valid: np.ndarray) -> bytes:
    """The mask section of one tile from its (h, w) boolean validity (True: valid)."""
    valid = np.asarray(valid, dtype=bool)
    if valid.all():
        return bytes([ALL_VALID])
    if not valid.any():
        return bytes([NONE_VALID])
    rows = valid.copy()
    rows[1:] ^= valid[:-1]
    data = zlib.compress(np.packbits(rows, axis=None).tobytes(), 9)
    return bytes([CODED]) + struct.pack("<I", len(data)) + data


def split_mask(payload: bytes) -> tuple[bytes, bytes]:
    """A tile payload with a mask section -> (mask section, the rest: the ordinary payload)."""
    if not payload:
        raise MaskError("tile payload has no mask section")
    kind = payload[0]
    if kind in (ALL_VALID, NONE_VALID):
        return payload[:1], payload[1:]
    if kind != CODED:
        raise MaskError(f"mask kind {kind} is not 0, 1 or 2")
    if len(payload) < 5:
        raise MaskError("mask length field cut short")
    (n,) = struct.unpack_from("<I", payload, 1)
    if 5 + n > len(payload):
        raise MaskError("mask runs past the end of the tile")
    return payload[: 5 + n], payload[5 + n :]


def unpack_mask(section: bytes, height: int, width: int) -> np.ndarray:
    """The (height, width) boolean validity of a mask section (see :func:`split_mask`)."""
    kind = section[0]
    if kind in (ALL_VALID, NONE_VALID):
        return np.full((height, width), kind == ALL_VALID)
    need = -(-height * width // 8)
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(section[5:], need + 1)
    except zlib.error as exc:
        raise MaskError(f"mask does not inflate ({exc})") from None
    if len(raw) != need or not inflater.eof or inflater.unconsumed_tail:
        raise MaskError(f"mask inflates to {len(raw)} bytes, expected {need}")
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=height * width)
    return np.bitwise_xor.accumulate(bits.reshape(height, width), axis=0).astype(bool)
