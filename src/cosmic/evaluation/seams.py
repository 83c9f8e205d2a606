"""Seam score: how visible the tile borders of a stitched reconstruction are (paper Fig. 5).

``blockiness(img, tile)`` is the mean absolute jump between neighbouring pixels *across* tile
borders divided by the same mean over all other neighbouring pairs (both directions). A natural
image has about 1 (borders are ordinary pixel pairs); a blocky one more. The seam score of a
reconstruction is its blockiness minus the original's: 0 for the original itself, positive when
coding added steps at the borders.
"""

from __future__ import annotations

import numpy as np

__all__ = ["blockiness", "seam_score"]


def _jumps(img: np.ndarray, tile: int, axis: int) -> tuple[float, int, float, int]:
    """(sum, count) of |jumps| across borders and elsewhere, along ``axis``."""
    d = np.abs(np.diff(img.astype(np.float32), axis=axis))
    if d.ndim == 3:
        d = d.mean(axis=2)
    n = d.shape[axis]
    is_border = (np.arange(n) % tile) == tile - 1  # pair (k*tile - 1, k*tile)
    border = np.compress(is_border, d, axis=axis)
    other = np.compress(~is_border, d, axis=axis)
    return float(border.sum()), border.size, float(other.sum()), other.size


def blockiness(img: np.ndarray, tile: int = 256) -> float:
    """Mean |jump| across tile borders / mean |jump| elsewhere (nan without any border)."""
    bs = bn = os_ = on = 0.0
    for axis in (0, 1):
        b, nb, o, no = _jumps(img, tile, axis)
        bs, bn, os_, on = bs + b, bn + nb, os_ + o, on + no
    if bn == 0 or on == 0:
        return float("nan")
    return (bs / bn) / max(os_ / on, 1e-6)


def seam_score(decoded: np.ndarray, original: np.ndarray, tile: int = 256) -> float:
    """Blockiness of ``decoded`` minus that of ``original`` (same shape)."""
    if decoded.shape != original.shape:
        raise ValueError(f"shape mismatch: {decoded.shape} vs {original.shape}")
    return blockiness(decoded, tile) - blockiness(original, tile)
