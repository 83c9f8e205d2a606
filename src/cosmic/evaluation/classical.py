"""Classical codecs, each with its own rate knob (docs/DESIGN.md §5).

- ``jpeg2000``: Pillow/OpenJPEG, 9/7 irreversible wavelet, multi-component (colour) transform,
  raw codestream (no JP2 box overhead) - configured as its best users (satellites) do; knob: the
  compression ratio.
- ``jpeg``: Pillow/libjpeg, 4:2:0, optimised Huffman tables; knob: quality 1..95.
- ``webp``: Pillow/libwebp, method 6; knob: quality 0..100.
- ``avif``: Pillow/libavif, speed 6; knob: quality 0..100.
- ``jpegxl``: imagecodecs/libjxl, effort 7; knob: Butteraugli distance 0.1..25.

bpp always comes from the encoded bytes. :func:`encode_at_bpp` reaches a requested bpp by
bisection on the knob; :data:`DEFAULT_KNOBS` are the fixed settings ``cosmic eval`` sweeps.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

__all__ = ["Encoded", "ClassicalCodec", "CLASSICAL", "DEFAULT_KNOBS", "encode", "encode_at_bpp",
           "jpeg2000_encode", "jpeg2000_at_bpp"]


@dataclass
class Encoded:
    data: bytes
    decoded: np.ndarray
    bpp: float
    knob: float | None = None


@dataclass(frozen=True)
class ClassicalCodec:
    name: str
    encode_bytes: Callable[[np.ndarray, float], bytes]
    decode_bytes: Callable[[bytes], np.ndarray]
    knob_range: tuple[float, float]
    integer: bool  # the knob takes integer values
    increasing: bool  # bpp grows with the knob
    log_knob: bool = False  # bisect on log(knob)


def _pil_encode(fmt: str, **fixed) -> Callable[[np.ndarray, float], bytes]:
    """An encoder through Pillow's ``fmt`` with the ``fixed`` settings, its knob as quality or ratio."""
    def enc(pixels: np.ndarray, knob: float) -> bytes:
        """The coded bytes of ``pixels`` at ``knob``."""
        buf = io.BytesIO()
        kwargs = dict(fixed)
        if fmt == "JPEG2000":
            kwargs["quality_layers"] = [float(knob)]
        else:
            kwargs["quality"] = int(round(knob)) if fmt != "WEBP" else float(knob)
        Image.fromarray(pixels, "RGB").save(buf, format=fmt, **kwargs)
        return buf.getvalue()

    return enc


def _pil_decode(data: bytes) -> np.ndarray:
    """RGB uint8 pixels of an image file Pillow reads."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _jxl_encode(pixels: np.ndarray, distance: float) -> bytes:
    """JPEG XL bytes at Butteraugli ``distance`` (libjxl, effort 7)."""
    import imagecodecs

    return imagecodecs.jpegxl_encode(pixels, distance=float(distance), effort=7)


def _jxl_decode(data: bytes) -> np.ndarray:
    """RGB uint8 pixels of JPEG XL bytes."""
    import imagecodecs

    return np.asarray(imagecodecs.jpegxl_decode(data), dtype=np.uint8)[..., :3]


CLASSICAL: dict[str, ClassicalCodec] = {
    "jpeg2000": ClassicalCodec(
        "jpeg2000", _pil_encode("JPEG2000", quality_mode="rates", irreversible=True, mct=1, no_jp2=True),
        _pil_decode, (1.0, 2000.0), integer=False, increasing=False, log_knob=True),
    "jpeg": ClassicalCodec("jpeg", _pil_encode("JPEG", subsampling="4:2:0", optimize=True), _pil_decode,
                           (1, 95), integer=True, increasing=True),
    "webp": ClassicalCodec("webp", _pil_encode("WEBP", method=6), _pil_decode, (0.0, 100.0),
                           integer=False, increasing=True),
    "avif": ClassicalCodec("avif", _pil_encode("AVIF", speed=6), _pil_decode, (0, 100), integer=True,
                           increasing=True),
    "jpegxl": ClassicalCodec("jpegxl", _jxl_encode, _jxl_decode, (0.1, 25.0), integer=False,
                             increasing=False, log_knob=True),
}

#: knob settings swept by ``cosmic eval`` (chosen to span about 0.05 to 1 bpp on 256 px tiles)
DEFAULT_KNOBS: dict[str, list[float]] = {
    # 1000 and 600 reach below the learned codecs' lowest PSNR, so a PSNR BD-rate exists
    "jpeg2000": [1000.0, 600.0, 384.0, 240.0, 160.0, 96.0, 48.0, 24.0],
    "jpeg": [3, 6, 10, 20, 35, 60],
    "webp": [0.0, 5.0, 15.0, 30.0, 50.0, 75.0],
    "avif": [5, 15, 25, 35, 50, 65],
    "jpegxl": [25.0, 15.0, 9.0, 5.0, 3.0, 1.5],
}


def encode(codec: str, pixels: np.ndarray, knob: float) -> Encoded:
    """Encode (H, W, 3) uint8 with ``codec`` at ``knob``; decode it back; measure bpp."""
    c = CLASSICAL[codec]
    data = c.encode_bytes(np.ascontiguousarray(pixels), knob)
    h, w = pixels.shape[:2]
    return Encoded(data, c.decode_bytes(data), len(data) * 8.0 / (h * w), float(knob))


def encode_at_bpp(codec: str, pixels: np.ndarray, target_bpp: float, iterations: int = 14) -> Encoded:
    """The encoding whose measured bpp is closest to ``target_bpp`` among those not above it by
    more than 1% (bisection on the knob); the smallest reachable one if none is."""
    c = CLASSICAL[codec]
    lo, hi = c.knob_range
    if c.log_knob:
        lo, hi = np.log(lo), np.log(hi)
    to_knob = (lambda v: float(np.exp(v))) if c.log_knob else (lambda v: float(round(v) if c.integer else v))
    best: Encoded | None = None
    smallest: Encoded | None = None
    seen: dict[float, Encoded] = {}
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        knob = to_knob(mid)
        enc = seen.get(knob) or encode(codec, pixels, knob)
        seen[knob] = enc
        if smallest is None or enc.bpp < smallest.bpp:
            smallest = enc
        fits = enc.bpp <= target_bpp * 1.01
        if fits and (best is None or abs(enc.bpp - target_bpp) < abs(best.bpp - target_bpp)):
            best = enc
        # move towards the target: more bits if this one fits, fewer otherwise
        if fits == c.increasing:
            lo = mid
        else:
            hi = mid
        if c.integer and abs(hi - lo) < 0.5:
            break
    return best if best is not None else smallest


def jpeg2000_encode(pixels: np.ndarray, ratio: float) -> Encoded:
    """JPEG2000 at compression ratio ``ratio`` (raw size / coded size)."""
    return encode("jpeg2000", pixels, ratio)


def jpeg2000_at_bpp(pixels: np.ndarray, target_bpp: float, iterations: int = 14) -> Encoded:
    """JPEG2000 searched to ``target_bpp`` (:func:`encode_at_bpp`)."""
    return encode_at_bpp("jpeg2000", pixels, target_bpp, iterations)
