"""JPEG2000 files as `cosmic enhance` reads them: the codestream's size and the rate it gives
(:func:`input_rate`), and the input check made before any model loads. Plain Python (no torch),
so that a wrong input is refused at once."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from cosmic.errors import BitstreamError, InputError

__all__ = ["codestream_bytes", "check_enhance_input", "input_rate", "is_tiff", "JPEG2000_SUFFIXES"]

#: the suffixes of JPEG2000 files (a folder of them is what `cosmic enhance DIR` reads)
JPEG2000_SUFFIXES = (".jp2", ".j2k", ".j2c", ".jpx", ".jpf")

_SOC_SIZ = b"\xff\x4f\xff\x51"
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_EOC = b"\xff\xd9"


def codestream_bytes(path: str | os.PathLike) -> int:
    """Bytes of the JPEG2000 codestream in ``path`` (a raw codestream or a JP2 / JPX file);
    :class:`InputError` if the file is neither, :class:`BitstreamError` if its boxes are cut."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if head.startswith(_SOC_SIZ):
            return _ends_with_eoc(f, path, size, size)
        if head != _JP2_SIGNATURE:
            raise InputError(f"{path}: not a JPEG2000 file (no codestream or JP2 signature)")
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            length, kind = struct.unpack(">I4s", f.read(8))
            header = 8
            if length == 1:
                length, header = struct.unpack(">Q", f.read(8))[0], 16
            elif length == 0:
                length = size - pos
            if kind == b"jp2c":
                if pos + length > size:
                    raise BitstreamError(f"{path}: the codestream box is cut off ({size - pos} of {length} bytes)")
                return _ends_with_eoc(f, path, pos + length, length - header)
            if length < header:
                break
            pos += length
    raise BitstreamError(f"{path}: a JP2 file without a complete codestream box")


def _ends_with_eoc(f, path: Path, end: int, length: int) -> int:
    """``length`` if the codestream ending at byte ``end`` closes with its EOC marker (a cut-off
    codestream does not: OpenJPEG would decode what is left without a word)."""
    f.seek(end - 2)
    if f.read(2) != _EOC:
        raise BitstreamError(f"{path}: the JPEG2000 codestream is cut off (no end-of-codestream marker)")
    return length


def check_enhance_input(source: str | os.PathLike) -> None:
    """What `cosmic enhance` reads, checked before any model loads: an existing file, a JPEG2000
    codestream or JP2 file unless it is a TIFF (a JPEG2000 GeoTIFF product); InputError otherwise."""
    source = Path(source)
    if not source.is_file():
        raise InputError(f"{source}: no such file")
    if source.suffix.lower() not in (".tif", ".tiff"):
        codestream_bytes(source)


def is_tiff(source: Path) -> bool:
    return source.suffix.lower() in (".tif", ".tiff")


def input_rate(source: Path, bpp: float | None) -> float:
    """The rate of a JPEG2000 file: ``bpp`` given, or its codestream's bytes x 8 / pixels (a JP2's
    ``jp2c`` box, without its metadata boxes; a raw ``.j2k`` whole); refused for a TIFF without
    ``bpp`` (its size says nothing reliable about the codestream inside it)."""
    if bpp is not None:
        if not 0.0 < bpp <= 24.0:
            raise InputError(f"--bpp {bpp}: must be in (0, 24]")
        if not is_tiff(source):
            codestream_bytes(source)  # still a JPEG2000 file
        return float(bpp)
    if is_tiff(source):
        raise InputError(f"{source}: a TIFF's size does not give the rate of the JPEG2000 codestream "
                         "it was coded with; give it with --bpp")
    n = codestream_bytes(source)
    from PIL import Image

    from cosmic.errors import first_line

    try:
        with Image.open(source) as im:
            w, h = im.size
    except Exception as exc:
        raise BitstreamError(f"{source}: cannot read the JPEG2000 header ({first_line(exc)})") from None
    return n * 8.0 / (w * h)
