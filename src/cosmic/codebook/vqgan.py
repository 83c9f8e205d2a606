"""Stage 1 of Code-RSIC (Li & Hou; paper Fig. 3, top): a VQGAN whose discrete codebook C and
decoder D_H store high-quality texture of remote-sensing images, learned by self-reconstruction.

x -> encoder E_H -> z (H/2^L) -> EMA vector quantiser (:mod:`cosmic.codebook.quantizer`) -> z_q
-> D_H -> x_rec. D_H also returns its multi-scale features, which HPIN (stage 3) queries.
The discriminator is VQGAN's PatchGAN (hinge loss). Where we depart from the paper: smaller
widths (presets in :mod:`cosmic.codebook.presets`), windowed instead of global attention and no
attention inside the VQGAN (CPU cost), an EMA codebook with dead-code restarts, and a feature
loss on our scene classifier instead of LPIPS (no ImageNet weights here; see
:mod:`cosmic.training.codebook`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cosmic.codebook.layers import Encoder, ResBlock, Trainable, norm
from cosmic.codebook.quantizer import EMAVectorQuantizer
from cosmic.utils.pretrained import ConfigMixin, register_component, register_to_config

__all__ = ["Decoder", "VQGAN", "PatchDiscriminator"]


class Decoder(nn.Module):
    """D_H: z_q (B, dim, H/2^L) -> (x in [0, 1] (unclamped), features {s: map at H/s}), the
    mirror of :class:`~cosmic.codebook.layers.Encoder` (nearest up-sampling + conv)."""

    def __init__(self, channels: tuple, dim: int, blocks: int = 1):
        super().__init__()
        rev = list(channels)[::-1]
        self.inp = nn.Conv2d(dim, rev[0], 3, padding=1)
        self.scales = [2 ** (len(rev) - i) for i in range(len(rev))]  # H/8, H/4, H/2 for L = 3
        levels, prev = [], rev[0]
        for ch in rev:
            levels.append(nn.Sequential(ResBlock(prev, ch), *[ResBlock(ch) for _ in range(blocks - 1)]))
            prev = ch
        self.levels = nn.ModuleList(levels)
        self.ups = nn.ModuleList(nn.Conv2d(ch, ch, 3, padding=1) for ch in rev)
        self.out = nn.Sequential(norm(rev[-1]), nn.SiLU(), nn.Conv2d(rev[-1], 3, 3, padding=1))

    def forward(self, z_q: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        h = self.inp(z_q)
        feats = {}
        for s, level, up in zip(self.scales, self.levels, self.ups):
            h = level(h)
            feats[s] = h
            h = up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return (self.out(h) + 1) / 2, feats


@register_component
class VQGAN(nn.Module, ConfigMixin, Trainable):
    """Encoder, codebook (``num_codes`` x ``dim``) and D_H. ``channels`` per level, so codes sit at
    H / 2^len(channels)."""

    @register_to_config
    def __init__(self, channels: tuple = (32, 64, 128), dim: int = 64, num_codes: int = 512,
                 blocks: int = 1, decay: float = 0.99, beta: float = 0.25, restart_threshold: float = 0.3):
        super().__init__()
        self.encoder = Encoder(tuple(channels), dim, blocks)
        self.quantizer = EMAVectorQuantizer(num_codes, dim, decay=decay, beta=beta,
                                            restart_threshold=restart_threshold)
        self.decoder = Decoder(tuple(channels), dim, blocks)
        self.factor = 2 ** len(channels)

    def encode(self, x: torch.Tensor):
        """(z_q straight-through, commitment loss, code indices, usage stats) of x in [0, 1]."""
        z, _ = self.encoder(x)
        return self.quantizer(z)

    def decode_indices(self, indices: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """D_H of code indices (B, h, w): (image, multi-scale features)."""
        return self.decoder(self.quantizer.lookup(indices))

    def forward(self, x: torch.Tensor) -> dict:
        z_q, commit, idx, stats = self.encode(x)
        x_rec, _ = self.decoder(z_q)
        return {"x_rec": x_rec, "commit": commit, "indices": idx, **stats}


@register_component
class PatchDiscriminator(nn.Module, ConfigMixin, Trainable):
    """VQGAN's PatchGAN (Isola et al. 2017), three stride-2 stages: one logit per ~30 px patch."""

    @register_to_config
    def __init__(self, width: int = 32):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), norm(2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), norm(4 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)
