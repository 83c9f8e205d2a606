"""Stage 3 of Code-RSIC: the hierarchical prior integration network (HPIN, paper Fig. 3, bottom).

From the coarsest scale up, HPIN carries the LQ encoder E_L's features of the decoded image; at
each scale s of the frozen D_H (H/8, H/4, H/2 for the small preset) a Transformer block refines
them and a multi-head cross-attention module (MCM) queries D_H's feature map at that scale (the
prior decoded from the predicted codes): queries from the decoded image, keys and values from the
prior. The last map, at H/2, becomes an RGB residual (pixel shuffle) added to the decoded image.

Fidelity weight w (the run-time knob, "how far to trust the decoded image")::

    x_out = x_dec + (1 - w) · r,    r = HPIN(x_dec, E_L features, D_H features)

so w = 1 returns the plain decode exactly, w = 0 the full prior-integrated output, and the output
is linear in w between the two. CodeFormer blends features inside the decoder instead; we blend
in pixel space so that w = 1 is exactly the codec's decode. The residual head is zero-initialised,
so an untrained HPIN is the identity. Attention is windowed (see :mod:`cosmic.codebook.layers`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cosmic.codebook.layers import Trainable, TransformerBlock, WindowAttention
from cosmic.utils.pretrained import ConfigMixin, register_component, register_to_config

__all__ = ["HPIN"]


@register_component
class HPIN(nn.Module, ConfigMixin, Trainable):
    @register_to_config
    def __init__(self, channels: tuple = (32, 64, 128), heads: int = 4, window: int = 8):
        super().__init__()
        rev = list(channels)[::-1]  # coarse to fine, the D_H feature widths
        self.scales = [2 ** (len(rev) - i) for i in range(len(rev))]
        self.lq = nn.ModuleList(nn.Conv2d(ch, ch, 1) for ch in rev)
        self.blocks = nn.ModuleList(TransformerBlock(ch, _heads(ch, heads), window) for ch in rev)
        self.mcm = nn.ModuleList(WindowAttention(ch, _heads(ch, heads), window) for ch in rev)
        self.ups = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(rev[:-1], rev[1:]))
        self.head = nn.Conv2d(rev[-1], 3 * (self.scales[-1] ** 2), 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def residual(self, lq_feats: dict, prior_feats: dict) -> torch.Tensor:
        """r: the RGB residual (B, 3, H, W) from E_L's and D_H's features at every scale."""
        h = None
        for i, s in enumerate(self.scales):
            f = self.lq[i](lq_feats[s])
            if h is not None:
                h = self.ups[i - 1](F.interpolate(h, size=f.shape[-2:], mode="nearest"))
                f = f + h
            h = self.mcm[i](self.blocks[i](f), prior_feats[s])
        return F.pixel_shuffle(self.head(h), self.scales[-1])

    def forward(self, x_dec: torch.Tensor, lq_feats: dict, prior_feats: dict,
                fidelity: float | torch.Tensor = 0.0) -> torch.Tensor:
        """x_dec + (1 - w)·r (see the module docstring), not clamped."""
        return x_dec + (1.0 - fidelity) * self.residual(lq_feats, prior_feats)


def _heads(channels: int, heads: int) -> int:
    """The most heads up to ``heads`` that divide ``channels``."""
    return max(h for h in range(1, heads + 1) if channels % h == 0)
