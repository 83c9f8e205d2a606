"""Distortion metrics on uint8 images: PSNR and MS-SSIM (pytorch-msssim); the detail energy a
perceptual prior restores."""

from __future__ import annotations

import math

import numpy as np
import torch
from pytorch_msssim import ms_ssim as _ms_ssim

__all__ = ["psnr", "ms_ssim", "ms_ssim_or", "detail_energy", "MS_SSIM_MIN_SIDE"]

#: MS-SSIM's five scales need both sides above this many pixels
MS_SSIM_MIN_SIDE = 160


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of equal shape (peak 255)."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM (5 scales, Gaussian window 11) of two (H, W, 3) uint8 images; sides must exceed 160."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    if min(a.shape[:2]) <= MS_SSIM_MIN_SIDE:
        raise ValueError(f"MS-SSIM needs both sides > {MS_SSIM_MIN_SIDE} px, got {a.shape[1]}x{a.shape[0]}")
    ta = torch.from_numpy(np.array(a, dtype=np.float64)).permute(2, 0, 1)[None]
    tb = torch.from_numpy(np.array(b, dtype=np.float64)).permute(2, 0, 1)[None]
    return float(_ms_ssim(ta, tb, data_range=255.0, size_average=True))


def ms_ssim_or(a: np.ndarray, b: np.ndarray, small=math.nan):
    """:func:`ms_ssim`, or ``small`` (NaN, or None in a JSON report) for images too small for its
    five scales (a side of 160 px or less)."""
    return ms_ssim(a, b) if min(a.shape[:2]) > MS_SSIM_MIN_SIDE else small


def detail_energy(a: np.ndarray) -> float:
    """Mean absolute difference of neighbouring pixels (both directions, all bands) of a uint8
    image: how much fine detail it holds. A low-rate decode has less than the original; a
    perceptual prior (the GAN-trained codebook prior) puts some back. Not a quality score on its
    own (noise raises it too): read it beside PSNR."""
    x = np.asarray(a, dtype=np.float64)
    return float((np.abs(np.diff(x, axis=0)).mean() + np.abs(np.diff(x, axis=1)).mean()) / 2)
