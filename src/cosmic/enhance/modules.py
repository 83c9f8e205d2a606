"""LDM-RSIC networks (Li et al., "Exploring Distortion Prior with Latent Diffusion Models for
Remote Sensing Image Compression"; abstract in ``shared/papers/ldm-rsic-abstract.md``).

- :class:`PriorEncoder`: a strided conv encoder to the compact distortion prior F, a few channels
  at 1/8 resolution. Built twice: the stage-I *self-encoder* sees the original and the decoded
  image (6 channels) and defines F; the *prior regressor* sees only the decoded image and the
  rate (4 channels) and estimates F deterministically (the "w/o LDM" path, ``--steps 0``).
- :class:`MEN`: the multi-scale enhancement network, a 3-level U-shaped Transformer whose blocks
  open with the dynamic feature attention module (:class:`DFAM`: channel attention and a gate
  fusing F into the features). The output is the decoded image plus a predicted residual.

Departures from the paper, for our CPUs: (1) the Transformer blocks use Restormer's transposed
(channel-wise) attention, whose cost is linear in the pixels, instead of full spatial
attention, and there are 1-2 blocks per level (``small``) rather than the paper's 4-8;
(2) F is a spatial latent at 1/8 (the issue's "small latent"), where the paper's own prior
size is not given in the abstract; (3) the rate (bpp, read from the file) enters every DFAM's
channel attention, so one model covers the source codec's whole rate range.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cosmic.utils.pretrained import ConfigMixin, register_component, register_to_config

__all__ = ["PriorEncoder", "MEN", "DFAM", "rate_feature", "PRIOR_DOWNSCALE"]

#: F is at 1/8 of the image resolution
PRIOR_DOWNSCALE = 8


def rate_feature(bpp: torch.Tensor) -> torch.Tensor:
    """The rate as a network input: log10(bpp / 0.158), about -0.5..+0.5 over 0.05..0.5 bpp."""
    return torch.log10(bpp.clamp_min(1e-3) / 0.158)


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of every pixel (Restormer's "WithBias" norm)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


@register_component
class PriorEncoder(nn.Module, ConfigMixin):
    """(B, in_channels, H, W) -> (B, prior_channels, H/8, W/8): three stride-2 stages."""

    @register_to_config
    def __init__(self, in_channels: int = 6, prior_channels: int = 4, width: int = 32):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.GELU()]
        for _ in range(int(math.log2(PRIOR_DOWNSCALE))):
            layers += [nn.Conv2d(width, width, 4, stride=2, padding=1), nn.GELU(),
                       nn.Conv2d(width, width, 3, padding=1), nn.GELU()]
        layers.append(nn.Conv2d(width, prior_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DFAM(nn.Module):
    """Dynamic feature attention module: channel attention driven by the features, the prior
    and the rate, then a spatial gate that decides where the prior's projection is added:
    ``f' = f * a + g * p`` with ``p = proj(F)``, ``a = sigmoid(MLP(GAP(f, p), rate))``,
    ``g = sigmoid(conv([f, p]))``."""

    def __init__(self, channels: int, prior_channels: int):
        super().__init__()
        self.proj = nn.Conv2d(prior_channels, channels, 3, padding=1)
        hidden = max(channels // 4, 8)
        self.attn = nn.Sequential(nn.Linear(2 * channels + 1, hidden), nn.GELU(), nn.Linear(hidden, channels))
        self.gate = nn.Conv2d(2 * channels, channels, 3, padding=1)

    def forward(self, f: torch.Tensor, prior: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        p = self.proj(F.interpolate(prior, size=f.shape[-2:], mode="bilinear", align_corners=False))
        pooled = torch.cat([f.mean((2, 3)), p.mean((2, 3)), rate[:, None]], dim=1)
        a = torch.sigmoid(self.attn(pooled))[:, :, None, None]
        g = torch.sigmoid(self.gate(torch.cat([f, p], dim=1)))
        return f * a + g * p


class ChannelAttention(nn.Module):
    """Restormer's multi-Dconv-head transposed attention (attention over channels)."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.dw = nn.Conv2d(3 * channels, 3 * channels, 3, padding=1, groups=3 * channels)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.dw(self.qkv(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(-1)
        return self.out((attn @ v).reshape(b, c, h, w))


class GatedFeedForward(nn.Module):
    """Restormer's gated-Dconv feed-forward network."""

    def __init__(self, channels: int, expansion: float = 2.0):
        super().__init__()
        hidden = int(channels * expansion)
        self.inp = nn.Conv2d(channels, 2 * hidden, 1)
        self.dw = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden)
        self.out = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.dw(self.inp(x)).chunk(2, dim=1)
        return self.out(F.gelu(a) * b)


class PriorBlock(nn.Module):
    """One MEN block: DFAM fuses the prior, then a pre-norm Transformer block."""

    def __init__(self, channels: int, prior_channels: int, heads: int):
        super().__init__()
        self.dfam = DFAM(channels, prior_channels)
        self.norm1, self.norm2 = LayerNorm2d(channels), LayerNorm2d(channels)
        self.attn = ChannelAttention(channels, heads)
        self.ffn = GatedFeedForward(channels)

    def forward(self, x: torch.Tensor, prior: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        x = self.dfam(x, prior, rate)
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class _Level(nn.Module):
    def __init__(self, channels: int, prior_channels: int, heads: int, blocks: int):
        super().__init__()
        self.blocks = nn.ModuleList(PriorBlock(channels, prior_channels, heads) for _ in range(blocks))

    def forward(self, x, prior, rate):
        for block in self.blocks:
            x = block(x, prior, rate)
        return x


@register_component
class MEN(nn.Module, ConfigMixin):
    """Multi-scale enhancement network: (decoded image, F, rate) -> enhanced image. Levels at
    1, 1/2 and 1/4 resolution (pixel-unshuffle down, pixel-shuffle up, skip concatenation),
    a refinement level, and a global residual on the decoded image. Inputs must be multiples of
    :data:`PRIOR_DOWNSCALE` pixels."""

    @register_to_config
    def __init__(self, prior_channels: int = 4, widths: tuple = (24, 48, 96), blocks: tuple = (1, 1, 2),
                 heads: tuple = (1, 2, 4), refine_blocks: int = 1):
        super().__init__()
        c0, c1, c2 = widths
        self.inp = nn.Conv2d(3, c0, 3, padding=1)
        self.enc0 = _Level(c0, prior_channels, heads[0], blocks[0])
        self.down01 = nn.Sequential(nn.Conv2d(c0, c0 // 2, 3, padding=1), nn.PixelUnshuffle(2), nn.Conv2d(2 * c0, c1, 1))
        self.enc1 = _Level(c1, prior_channels, heads[1], blocks[1])
        self.down12 = nn.Sequential(nn.Conv2d(c1, c1 // 2, 3, padding=1), nn.PixelUnshuffle(2), nn.Conv2d(2 * c1, c2, 1))
        self.mid = _Level(c2, prior_channels, heads[2], blocks[2])
        self.up21 = nn.Sequential(nn.Conv2d(c2, 4 * c1, 3, padding=1), nn.PixelShuffle(2))
        self.fuse1 = nn.Conv2d(2 * c1, c1, 1)
        self.dec1 = _Level(c1, prior_channels, heads[1], blocks[1])
        self.up10 = nn.Sequential(nn.Conv2d(c1, 4 * c0, 3, padding=1), nn.PixelShuffle(2))
        self.dec0 = _Level(2 * c0, prior_channels, heads[0], blocks[0])
        self.refine = _Level(2 * c0, prior_channels, heads[0], refine_blocks)
        self.out = nn.Conv2d(2 * c0, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # a fresh MEN returns its input
        nn.init.zeros_(self.out.bias)

    def forward(self, decoded: torch.Tensor, prior: torch.Tensor, bpp: torch.Tensor) -> torch.Tensor:
        rate = rate_feature(bpp.to(decoded.dtype).reshape(-1).expand(decoded.shape[0]))
        f0 = self.enc0(self.inp(decoded), prior, rate)
        f1 = self.enc1(self.down01(f0), prior, rate)
        f2 = self.mid(self.down12(f1), prior, rate)
        g1 = self.dec1(self.fuse1(torch.cat([self.up21(f2), f1], 1)), prior, rate)
        g0 = self.dec0(torch.cat([self.up10(g1), f0], 1), prior, rate)
        return decoded + self.out(self.refine(g0, prior, rate))
