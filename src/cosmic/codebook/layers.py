"""Building blocks shared by the VQGAN, the code predictor and HPIN (Code-RSIC, Fig. 3).

Convolutions follow VQGAN / CodeFormer (GroupNorm + SiLU residual blocks, nearest up-sampling).
Attention over feature maps is windowed (``window`` x ``window`` positions, Swin-style, without
the shifted windows) where the paper's Transformer blocks and multi-head cross-attention modules
(MCMs) attend globally: global attention at H/2 costs O((H·W/4)²), which a CPU cannot afford at
256 px; windows keep it linear in the image area and let any multiple of the window decode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ResBlock", "Encoder", "WindowAttention", "TransformerBlock", "norm", "Trainable"]


class Trainable:
    """For :func:`cosmic.training.checkpoint.save_checkpoint`, which rebuilds a COSMIC model's
    entropy tables (``update``) before saving it: these networks have none."""

    def update(self, force: bool = False) -> bool:
        return False


def norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int | None = None):
        super().__init__()
        cout = cout or cin
        self.body = nn.Sequential(norm(cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1),
                                  norm(cout), nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class Encoder(nn.Module):
    """x in [0, 1] (B, 3, H, W) -> (latent (B, out_dim, H/2^L, W/2^L), features): a stem conv,
    then per level a stride-2 conv and ``blocks`` residual blocks; ``features[s]`` is the map at
    H/s (s = 2, 4, ..., 2^L). The VQGAN's encoder and the LQ encoder E_L are both this."""

    def __init__(self, channels: tuple, out_dim: int, blocks: int = 1):
        super().__init__()
        self.stem = nn.Conv2d(3, channels[0], 3, padding=1)
        prev, levels = channels[0], []
        for ch in channels:
            levels.append(nn.Sequential(nn.Conv2d(prev, ch, 3, stride=2, padding=1),
                                        *[ResBlock(ch) for _ in range(blocks)]))
            prev = ch
        self.levels = nn.ModuleList(levels)
        self.out = nn.Sequential(norm(prev), nn.SiLU(), nn.Conv2d(prev, out_dim, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        h = self.stem(x * 2 - 1)
        feats = {}
        for i, level in enumerate(self.levels):
            h = level(h)
            feats[2 ** (i + 1)] = h
        return self.out(h), feats


def _windows(x: torch.Tensor, ws: int) -> tuple[torch.Tensor, tuple]:
    """(B, C, H, W) -> (B·nW, ws², C), padding H and W up to multiples of ``ws`` (replicate)."""
    b, c, h, w = x.shape
    ph, pw = (-h) % ws, (-w) % ws
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    hp, wp = h + ph, w + pw
    t = x.view(b, c, hp // ws, ws, wp // ws, ws).permute(0, 2, 4, 3, 5, 1)
    return t.reshape(-1, ws * ws, c), (b, c, h, w, hp, wp)


def _unwindows(t: torch.Tensor, ws: int, shape: tuple) -> torch.Tensor:
    b, c, h, w, hp, wp = shape
    x = t.view(b, hp // ws, wp // ws, ws, ws, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, hp, wp)
    return x[:, :, :h, :w]


class WindowAttention(nn.Module):
    """Multi-head (cross-)attention inside non-overlapping windows: queries from ``x``, keys and
    values from ``context`` (``x`` itself for self-attention), pre-norm, residual."""

    def __init__(self, channels: int, heads: int, window: int):
        super().__init__()
        self.window = window
        self.norm_q, self.norm_kv = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        q, shape = _windows(x, self.window)
        kv = q if context is None else _windows(context, self.window)[0]
        q_n = self.norm_q(q)
        kv_n = q_n if context is None else self.norm_kv(kv)
        out, _ = self.attn(q_n, kv_n, kv_n, need_weights=False)
        return x + _unwindows(out, self.window, shape)


class TransformerBlock(nn.Module):
    """Windowed self-attention + a pointwise MLP (pre-norm, residual), on (B, C, H, W) maps."""

    def __init__(self, channels: int, heads: int, window: int, mlp_ratio: int = 2):
        super().__init__()
        self.attn = WindowAttention(channels, heads, window)
        self.mlp = nn.Sequential(norm(channels), nn.Conv2d(channels, mlp_ratio * channels, 1), nn.GELU(),
                                 nn.Conv2d(mlp_ratio * channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attn(x)
        return x + self.mlp(x)
