"""One size / memory policy for every input and output path (checked before any large allocation).

* An image held whole in memory (PNG / JPEG / plain TIFF input, PNG / JPEG output) may have at
  most :data:`MAX_MEMORY_PIXELS` pixels (20000 x 20000, 1.2 GB of RGB). Larger scenes go
  through GeoTIFFs, which are read and written one tile window at a time. Pillow's own
  decompression-bomb limit is set to the same figure, so a small palette PNG that declares a huge
  canvas is refused from its header, before a pixel is decoded.
* The windowed paths hold at most three tile rows; one row (``tile x padded width x 3`` bytes)
  may take at most :data:`MAX_ROW_BYTES` (512 MiB), whatever the output format.
* A tile a user chooses to code (``--tile``, the API's ``tile=``, ``--size`` / ``--crop`` of the
  tools that run the networks on one square) is a multiple of 64 of at most :data:`MAX_TILE`
  px: the on-board networks need about 1.3 kB per pixel of a batch (measured: 2.45 GB peak for
  one 1024-px tile, against 1.1 GB at 256; ``--tile 4096`` reached 15.7 GB and an OOM kill), and
  the encoder's batch shrinks so that one forward holds at most :data:`MAX_BATCH_PIXELS`. The
  tile row of what is coded obeys the decoder's :data:`MAX_ROW_BYTES`, so every file written
  can be decoded. (The reader still accepts tiles up to 4096 px, which older files may have.)
* A ``.cosmic`` file's sides are at most ``container.MAX_SIDE`` and its tile table must be
  present in the file (8 bytes per tile), so the pixels a file can ask for grow with its size.
* The work a file asks for is bounded by its size too: at most :data:`MAX_PIXELS_PER_BYTE`
  decoded pixels (summed over its band groups) per byte present, 0.0005 bpp. The flattest real
  files measured need 0.009 bpp or more (a constant 1024 x 1024 image at quality 1: 1,218 bytes);
  a forged 273-byte file declaring 20000 x 20000 px in 4096-px tiles took 94 s and 1.38 GB to
  conceal into a GeoTIFF (issue 34). A truncated file opened with ``--conceal`` counts the bytes
  it still has.

An input over a limit is an :class:`~cosmic.errors.InputError` (exit 2), a bitstream that
declares too much a :class:`~cosmic.errors.BitstreamError` (exit 3). Plain Python.
"""

from __future__ import annotations

from numbers import Integral

from cosmic.errors import BitstreamError, InputError

__all__ = ["MAX_MEMORY_PIXELS", "MAX_ROW_BYTES", "MAX_TILE", "MAX_BATCH_PIXELS", "MAX_PIXELS_PER_BYTE",
           "check_memory_image", "check_row", "check_scene", "check_tile", "check_work", "batch_tiles"]

MAX_MEMORY_PIXELS = 20000 * 20000
#: the most decoded pixels a ``.cosmic`` file may ask for per byte it holds (0.0005 bpp)
MAX_PIXELS_PER_BYTE = 16384
MAX_ROW_BYTES = 512 << 20
#: the largest tile side a user may choose for coding (one tile's networks: about 1.4 GB)
MAX_TILE = 1024
#: the most pixels one encoder forward takes (4 tiles of 256 px, 1 of 1024)
MAX_BATCH_PIXELS = MAX_TILE * MAX_TILE


def check_work(width: int, height: int, planes: int, file_bytes: int, what: str) -> None:
    """Refuse a ``.cosmic`` file whose ``planes`` band groups of ``width x height`` px are more
    than :data:`MAX_PIXELS_PER_BYTE` decoded pixels per byte it holds, so that the time and memory
    a decode takes grow with the input's size, not only with what its header declares."""
    if width * height * planes > MAX_PIXELS_PER_BYTE * file_bytes:
        groups = f" in {planes} band groups" if planes > 1 else ""
        raise BitstreamError(f"{what}: declares {width}x{height} px{groups} to decode from {file_bytes:,} bytes, "
                             f"more than {MAX_PIXELS_PER_BYTE:,} px per byte (0.0005 bpp; no real file is so "
                             "small): forged, or truncated to almost nothing")


def check_memory_image(width: int, height: int, what: str, bitstream: bool = False) -> None:
    """Refuse an image of ``width x height`` that would be held whole in memory."""
    if width * height > MAX_MEMORY_PIXELS:
        error = BitstreamError if bitstream else InputError
        raise error(f"{what}: {width}x{height} px is more than the {MAX_MEMORY_PIXELS // 10**6} Mpx "
                    "an image held in memory may have; use a GeoTIFF (.tif), read and written "
                    "one tile window at a time")


def check_row(width: int, tile: int, what: str, bitstream: bool = True) -> None:
    """Refuse a tile grid whose one row of decoded tiles would exceed :data:`MAX_ROW_BYTES`: a
    :class:`BitstreamError` for a file's grid, an :class:`InputError` (``bitstream=False``) for
    a grid about to be coded."""
    cols = -(-width // tile)
    need = tile * cols * tile * 3
    if need > MAX_ROW_BYTES:
        error = BitstreamError if bitstream else InputError
        hint = "" if bitstream else "; choose a smaller tile size (tile=)"
        raise error(f"{what}: one row of {tile}-px tiles of a {width}-px wide image needs "
                    f"{need >> 20} MiB, more than the {MAX_ROW_BYTES >> 20} MiB limit{hint}")


def check_tile(tile: int, what: str = "tile", factor: int = 64) -> int:
    """A tile side a user typed: a positive multiple of ``factor`` of at most :data:`MAX_TILE`
    (InputError otherwise, naming ``what``: an API parameter, ``tile=256``, which the CLI shows
    as ``--tile 256``, or a CLI-only option such as ``--crop``); returned unchanged."""
    given = f"{what} {tile!r}" if what.startswith("--") else f"{what}={tile!r}"
    if isinstance(tile, bool) or not isinstance(tile, Integral) or tile <= 0 or tile % factor:
        raise InputError(f"{given}: must be a positive multiple of {factor}")
    if tile > MAX_TILE:
        raise InputError(f"{given}: at most {MAX_TILE} px (one {tile}-px tile would need about "
                         f"{tile * tile * 1400 / 1e9:.0f} GB of memory in the networks)")
    return tile


def batch_tiles(tile: int, batch_size: int) -> int:
    """How many ``tile``-px tiles one encoder forward takes: ``batch_size``, fewer when their
    pixels would exceed :data:`MAX_BATCH_PIXELS` (at least one)."""
    return max(1, min(batch_size, MAX_BATCH_PIXELS // (tile * tile)))


def check_scene(width: int, height: int, what: str) -> None:
    """Refuse an input scene whose sides a ``.cosmic`` file cannot hold (before coding it)."""
    from cosmic.io.container import MAX_SIDE

    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise InputError(f"{what}: a {width}x{height} image; sides must be 1..{MAX_SIDE} px")
