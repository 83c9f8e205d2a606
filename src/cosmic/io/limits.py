"""One size / memory policy for every input and output path (checked before any large allocation).

* An image held whole in memory (PNG / JPEG / plain TIFF input, PNG / JPEG output) may have at
  most :data:`MAX_MEMORY_PIXELS` pixels (20000 x 20000, 1.2 GB of RGB). Larger scenes go
  through GeoTIFFs, which are read and written one tile window at a time. Pillow's own
  decompression-bomb limit is set to the same figure, so a small palette PNG that declares a huge
  canvas is refused from its header, before a pixel is decoded.
* The windowed paths hold at most three tile rows; one row (``tile x padded width x 3`` bytes)
  may take at most :data:`MAX_ROW_BYTES` (512 MiB), whatever the output format.
* A ``.cosmic`` file's sides are at most ``container.MAX_SIDE`` and its tile table must be
  present in the file (8 bytes per tile), so the pixels a file can ask for grow with its size.

An input over a limit is an :class:`~cosmic.errors.InputError` (exit 2), a bitstream that
declares too much a :class:`~cosmic.errors.BitstreamError` (exit 3). Plain Python.
"""

from __future__ import annotations

from cosmic.errors import BitstreamError, InputError

__all__ = ["MAX_MEMORY_PIXELS", "MAX_ROW_BYTES", "check_memory_image", "check_row", "check_scene"]

MAX_MEMORY_PIXELS = 20000 * 20000
MAX_ROW_BYTES = 512 << 20


def check_memory_image(width: int, height: int, what: str, bitstream: bool = False) -> None:
    """Refuse an image of ``width x height`` that would be held whole in memory."""
    if width * height > MAX_MEMORY_PIXELS:
        error = BitstreamError if bitstream else InputError
        raise error(f"{what}: {width}x{height} px is more than the {MAX_MEMORY_PIXELS // 10**6} Mpx "
                    "an image held in memory may have; use a GeoTIFF (.tif), read and written "
                    "one tile window at a time")


def check_row(width: int, tile: int, what: str) -> None:
    """Refuse a tile grid whose one row of decoded tiles would exceed :data:`MAX_ROW_BYTES`."""
    cols = -(-width // tile)
    need = tile * cols * tile * 3
    if need > MAX_ROW_BYTES:
        raise BitstreamError(f"{what}: one row of {tile}-px tiles of a {width}-px wide image needs "
                             f"{need >> 20} MiB, more than the {MAX_ROW_BYTES >> 20} MiB limit")


def check_scene(width: int, height: int, what: str) -> None:
    """Refuse an input scene whose sides a ``.cosmic`` file cannot hold (before coding it)."""
    from cosmic.io.container import MAX_SIDE

    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise InputError(f"{what}: a {width}x{height} image; sides must be 1..{MAX_SIDE} px")
