"""Building blocks of the lightweight on-board encoder (paper §4.2, Fig. 2 (c), (d)).

* :class:`LCB` - the lightweight convolution block, Fig. 2 (d): a depthwise 5x5 conv (which carries
  the stride) mixes space, a 1x1 conv makes half of the output channels, and a cheap depthwise 3x3
  on those makes the other half ("redundant features", GhostNet).
* :class:`CAM` - the convolution attention module, Fig. 2 (c): branch A is a pair of 1-D depthwise
  convs in series (1xK horizontal, then Kx1 vertical) on a 2x average-pooled map, giving a sigmoid
  attention map with a large receptive field at almost no cost (GhostNetV2's DFC attention);
  branch B is a stride-1 LCB (local features); the output is B * A.

This module runs on the satellite: it imports nothing from :mod:`cosmic.ground`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LCB", "CAM"]


class LCB(nn.Module):
    """Lightweight convolution block (paper Fig. 2 (d)); replaces a dense ``k x k`` conv.

    MACs per output pixel: ``d*in_ch*k*k`` (depthwise) + ``d*in_ch*out_ch/2`` (1x1) +
    ``out_ch/2*9`` (cheap op), against ``in_ch*out_ch*k*k`` for the dense conv it replaces.

    ``multiplier`` d gives the depthwise conv d filters per input channel. On the RGB input a
    plain depthwise stride-2 conv would keep only 3 filtered maps at a quarter of the pixels,
    0.75 values per pixel: information the rest of the encoder can never recover. The first LCB
    of E therefore uses d = 8 (24 maps), which costs a few MMACs.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 5, stride: int = 1, multiplier: int = 1):
        super().__init__()
        if out_ch % 2:
            raise ValueError(f"LCB needs an even number of output channels, got {out_ch}")
        half = out_ch // 2
        self.depthwise = nn.Conv2d(
            in_ch, in_ch * multiplier, kernel_size, stride=stride, padding=kernel_size // 2, groups=in_ch
        )
        self.pointwise = nn.Conv2d(in_ch * multiplier, half, 1)
        self.cheap = nn.Conv2d(half, half, 3, padding=1, groups=half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        primary = self.pointwise(self.depthwise(x))
        return torch.cat([primary, self.cheap(primary)], dim=1)


class CAM(nn.Module):
    """Convolution attention module (paper Fig. 2 (c)): ``LCB(x) * sigmoid(DFC(x))``.

    The attention branch works on a 2x average-pooled copy of ``x`` and is upsampled back, so its
    cost is a quarter of a full-resolution branch; ``kernel_size`` sets the reach of the 1-D convs.
    """

    def __init__(self, channels: int, kernel_size: int = 7):
        super().__init__()
        pad = kernel_size // 2
        self.local = LCB(channels, channels, kernel_size=5, stride=1)
        self.horizontal = nn.Conv2d(
            channels, channels, (1, kernel_size), padding=(0, pad), groups=channels
        )
        self.vertical = nn.Conv2d(
            channels, channels, (kernel_size, 1), padding=(pad, 0), groups=channels
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool2d(x, 2, ceil_mode=True)
        attention = torch.sigmoid(self.vertical(self.horizontal(pooled)))
        attention = F.interpolate(attention, size=x.shape[-2:], mode="nearest")
        return self.local(x) * attention
