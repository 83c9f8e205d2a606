"""Ground-side synthesis (paper §4.3, Eq. 2, Table 3; docs/DESIGN.md §3).

::

    y_hat (M, H/16) ─ transconv ─► t (N, H/4) ──┐
                                                 ├─ concat ─► D ─► x_hat
    z0 (4, H/4): Ẽ(x) in training,  ─────────────┘
                 DDIM(ε_θ) on the ground, or the deterministic estimate ẑ0(t) ("w/o DC", steps 0)

* :class:`CompensationEncoder` Ẽ - Table 3 left: Conv(3→N,5,s2)+GDN, Conv(N→N,5,s2)+GDN,
  Conv(N→N,5,s1)+GDN, Conv(N→8,5,s1) → (mu_z, logvar_z), 4+4 channels at H/4.
* :class:`ImageDecoder` D - Table 3 right: Conv(N+4→N,5,s1)+IGDN, Conv(N→N,5,s1)+IGDN,
  up-conv(N→N,5,x2)+IGDN, up-conv(N→3,5,x2).
* :class:`LatentUpsampler` transconv - two 5x5 transposed convs (x4) with an IGDN between.
* :class:`Z0Estimator` - a small conv net ẑ0 = f(t) trained in stage 1 to match mu_z; it is the
  deterministic z0 used when decoding without diffusion compensation.
"""

from __future__ import annotations

import torch
from compressai.layers import GDN
from compressai.models.utils import conv, deconv
from torch import nn

from cosmic.onboard.codec import check_channels
from cosmic.onboard.rate import GainUnits, ycbcr_to_rgb
from cosmic.utils.pretrained import ConfigMixin, register_component, register_to_config

__all__ = [
    "CompensationEncoder",
    "ImageDecoder",
    "LatentUpsampler",
    "Z0Estimator",
    "GroundDecoder",
]


class CompensationEncoder(nn.Sequential):
    """Ẽ of Table 3: the training-time source of the compensation latent z0."""

    def __init__(self, N: int, latent_channels: int = 4, channels: int = 3):
        super().__init__(
            conv(channels, N, 5, 2), GDN(N),
            conv(N, N, 5, 2), GDN(N),
            conv(N, N, 5, 1), GDN(N),
            conv(N, 2 * latent_channels, 5, 1),
        )


class ImageDecoder(nn.Sequential):
    """D of Table 3: ``x_hat = D(concat(transconv(y_hat), z0))`` (Eq. 2)."""

    def __init__(self, N: int, latent_channels: int = 4, channels: int = 3):
        super().__init__(
            conv(N + latent_channels, N, 5, 1), GDN(N, inverse=True),
            conv(N, N, 5, 1), GDN(N, inverse=True),
            deconv(N, N, 5, 2), GDN(N, inverse=True),
            deconv(N, channels, 5, 2),
        )


class LatentUpsampler(nn.Sequential):
    """transconv of Eq. 2: y_hat (M channels, H/16) → N channels at H/4."""

    def __init__(self, N: int, M: int):
        super().__init__(deconv(M, N, 5, 2), GDN(N, inverse=True), deconv(N, N, 5, 2))


class Z0Estimator(nn.Sequential):
    """Deterministic z0 estimate from transconv(y_hat): the decoder's "no compensation" input."""

    def __init__(self, N: int, latent_channels: int = 4):
        super().__init__(
            conv(N, N, 3, 1), nn.ReLU(inplace=True),
            conv(N, N, 3, 1), nn.ReLU(inplace=True),
            conv(N, latent_channels, 3, 1),
        )


@register_component
class GroundDecoder(nn.Module, ConfigMixin):
    """transconv + Ẽ + ẑ0 + D: the ground's image synthesis, without the diffusion model.

    For a variable-rate model (``rate_levels`` > 0) the decoder first undoes the on-board gains
    with its own inverse gains at the bitstream's quality (Cui et al. 2021, see
    :class:`~cosmic.onboard.rate.GainUnits`); for ``colour_space="ycbcr"`` D's output is YCbCr
    and is turned back into RGB here, so every caller gets RGB. ``out_channels`` 1: a single-band
    model's decoder (Ẽ reads the band, D writes it; see :mod:`cosmic.onboard.codec`).
    """

    @register_to_config
    def __init__(self, N: int = 192, M: int = 320, latent_channels: int = 4, rate_levels: int = 0,
                 gain_span: float = 0.0, colour_space: str = "rgb", out_channels: int = 3):
        super().__init__()
        check_channels(out_channels, colour_space)
        self.latent_channels = latent_channels
        self.colour_space = colour_space
        self.inverse_gain = GainUnits(rate_levels, M, gain_span, inverse=True) if rate_levels else None
        self.transconv = LatentUpsampler(N, M)
        self.compensation_encoder = CompensationEncoder(N, latent_channels, out_channels)
        self.z0_estimator = Z0Estimator(N, latent_channels)
        self.decoder = ImageDecoder(N, latent_channels, out_channels)

    def encode_z0(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu_z, logvar_z) of q(z0 | x) from Ẽ, logvar clamped to a sane range."""
        mu, logvar = self.compensation_encoder(x).chunk(2, 1)
        return mu, logvar.clamp(-30.0, 20.0)

    def dequantise(self, y_hat: torch.Tensor, quality: torch.Tensor | None = None) -> torch.Tensor:
        """y_hat times the inverse gains of ``quality`` (a (B,) tensor) for a variable-rate model:
        the latent in the same units at every quality; y_hat itself for a fixed-rate one."""
        if self.inverse_gain is None:
            return y_hat
        if quality is None:
            raise ValueError("a variable-rate decoder needs the bitstream's quality")
        return y_hat * self.inverse_gain(quality.expand(y_hat.shape[0])).to(y_hat.dtype)

    def upsample(self, y_hat: torch.Tensor, quality: torch.Tensor | None = None) -> torch.Tensor:
        """transconv of the dequantised y_hat (:meth:`dequantise`)."""
        return self.transconv(self.dequantise(y_hat, quality))

    def synthesize(self, features: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        """D(concat(transconv(y_hat), z0)) - Eq. 2; ``features`` is :meth:`upsample`'s output."""
        x = self.decoder(torch.cat([features, z0], dim=1))
        return ycbcr_to_rgb(x) if self.colour_space == "ycbcr" else x

    def estimate_z0(self, y_hat: torch.Tensor, quality: torch.Tensor | None = None) -> torch.Tensor:
        """The deterministic estimate ẑ0(y_hat) (the "w/o DC" z0; a residual diffusion's anchor)."""
        return self.z0_estimator(self.upsample(y_hat, quality))

    def forward(self, y_hat: torch.Tensor, z0: torch.Tensor | None = None,
                quality: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruct from y_hat; with ``z0=None`` use the deterministic estimate ẑ0."""
        features = self.upsample(y_hat, quality)
        if z0 is None:
            z0 = self.z0_estimator(features)
        return self.synthesize(features, z0)
