"""Classical codecs at a requested bpp (DESIGN §5): JPEG2000 through Pillow/OpenJPEG.

JPEG2000 is configured as its best users do: 9/7 irreversible wavelet and the multi-component
(colour) transform (``mct=1``), raw codestream (no JP2 box overhead). bpp always comes from the
encoded bytes; the requested rate is reached by bisection on OpenJPEG's compression ratio.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["Encoded", "jpeg2000_encode", "jpeg2000_at_bpp"]


@dataclass
class Encoded:
    data: bytes
    decoded: np.ndarray
    bpp: float


def jpeg2000_encode(pixels: np.ndarray, ratio: float) -> Encoded:
    """Encode (H, W, 3) uint8 at compression ratio ``ratio`` (raw size / coded size)."""
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(
        buf, format="JPEG2000", quality_mode="rates", quality_layers=[float(ratio)],
        irreversible=True, mct=1, no_jp2=True,
    )
    data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as im:
        decoded = np.asarray(im.convert("RGB"), dtype=np.uint8)
    h, w = pixels.shape[:2]
    return Encoded(data, decoded, len(data) * 8.0 / (h * w))


def jpeg2000_at_bpp(pixels: np.ndarray, target_bpp: float, iterations: int = 14) -> Encoded:
    """The JPEG2000 encoding whose measured bpp is closest to ``target_bpp`` without exceeding
    it by more than 1% (bisection on the log compression ratio)."""
    lo, hi = np.log(1.0), np.log(2000.0)  # ratio bounds
    best: Encoded | None = None
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        enc = jpeg2000_encode(pixels, float(np.exp(mid)))
        if enc.bpp <= target_bpp * 1.01:
            if best is None or abs(enc.bpp - target_bpp) < abs(best.bpp - target_bpp):
                best = enc
            hi = mid  # can afford more bits: lower ratio
        else:
            lo = mid
    if best is None:
        best = jpeg2000_encode(pixels, 2000.0)
    return best
