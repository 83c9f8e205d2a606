"""Stage 2 of Code-RSIC (paper Fig. 3, middle; CodeFormer's code-lookup Transformer, Zhou et al.
2022): the LQ encoder E_L on the decoded (low-quality) image and a Transformer that predicts, at
every code position, the index of the frozen codebook's code of the *original* image
(cross-entropy). Decoding the predicted codes with the frozen D_H gives the pure prior image.

Departures: positions are encoded by a depthwise 3x3 convolution (a conditional positional
encoding, Chu et al. 2021) instead of CodeFormer's learned table of fixed length, so the same
network runs on 64-px training crops and 256-px tiles; E_L starts from the VQGAN encoder's weights.
"""

from __future__ import annotations

import torch
from torch import nn

from cosmic.codebook.layers import Encoder, Trainable
from cosmic.utils.pretrained import ConfigMixin, register_component, register_to_config

__all__ = ["CodePredictor"]


@register_component
class CodePredictor(nn.Module, ConfigMixin, Trainable):
    @register_to_config
    def __init__(self, channels: tuple = (32, 64, 128), dim: int = 64, num_codes: int = 512,
                 blocks: int = 1, width: int = 128, layers: int = 2, heads: int = 4):
        super().__init__()
        self.encoder = Encoder(tuple(channels), dim, blocks)  # E_L
        self.proj = nn.Conv2d(dim, width, 1)
        self.pos = nn.Conv2d(width, width, 3, padding=1, groups=width)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, num_codes))

    def forward(self, x_lq: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor], torch.Tensor]:
        """(logits (B, num_codes, h, w), E_L's multi-scale features, E_L's latent (B, dim, h, w))
        of a decoded image in [0, 1]."""
        z, feats = self.encoder(x_lq)
        h = self.proj(z)
        h = h + self.pos(h)
        b, c, hh, ww = h.shape
        t = self.transformer(h.flatten(2).transpose(1, 2))
        logits = self.head(t).transpose(1, 2).reshape(b, -1, hh, ww)
        return logits, feats, z
