"""On-board halves of CompressAI's learned baselines, with the same coding contract as
:class:`~cosmic.onboard.codec.OnboardCodec` (``compress`` -> y/z rANS strings, ``decompress`` ->
``y_hat``), so the container, the scene tiler and the CLI treat them like COSMIC.

* ``bmshj2018-hyperprior``: Ballé et al. 2018, scale hyperprior (CompressAI ``ScaleHyperprior``).
* ``mbt2018-mean``: Minnen et al. 2018, mean-scale hyperprior without context model
  (CompressAI ``MeanScaleHyperprior``).

The transforms are CompressAI's own (``g_a``, ``h_a``, ``h_s`` taken from its model classes);
only the coding paths differ: ``h_s`` runs in float64 there, as in COSMIC, so encoder and decoder
pick the same CDF tables whatever the thread count (CompressAI issues #279, #309). Training uses
CompressAI's forward (additive-noise likelihoods, noisy ``y_hat`` for g_s).

This module imports nothing from :mod:`cosmic.ground`.
"""

from __future__ import annotations

import copy

import torch
from compressai.models import CompressionModel, MeanScaleHyperprior, ScaleHyperprior
from compressai.models.base import get_scale_table
from torch import nn

from cosmic.onboard.entropy import guard_entropy_coders
from cosmic.utils.pretrained import ConfigMixin, weights_digest

__all__ = ["BASELINE_ARCHS", "BaselineCodec"]

#: architecture name -> CompressAI class whose g_a / h_a / h_s / g_s are used
BASELINE_ARCHS = {"bmshj2018-hyperprior": ScaleHyperprior, "mbt2018-mean": MeanScaleHyperprior}


def compressai_model(arch: str, N: int, M: int) -> CompressionModel:
    if arch not in BASELINE_ARCHS:
        raise ValueError(f"unknown baseline '{arch}'; choose one of {', '.join(BASELINE_ARCHS)}")
    return BASELINE_ARCHS[arch](N=N, M=M)


class BaselineCodec(CompressionModel, ConfigMixin):
    """g_a + hyperprior + entropy coding of a CompressAI baseline: its on-board part."""

    def __init__(self, arch: str = "bmshj2018-hyperprior", N: int = 128, M: int = 192):
        super().__init__()
        self.register_config(arch=arch, N=N, M=M)
        self.arch = arch
        ref = compressai_model(arch, N, M)
        self.g_a, self.h_a, self.h_s = ref.g_a, ref.h_a, ref.h_s
        self.entropy_bottleneck = ref.entropy_bottleneck
        self.gaussian_conditional = ref.gaussian_conditional
        self.mean_scale = arch == "mbt2018-mean"
        self._h_s64: nn.Module | None = None

    # -- bookkeeping shared with OnboardCodec ---------------------------------------------------
    def _double_h_s(self) -> nn.Module:
        if self._h_s64 is None:
            h = copy.deepcopy(self.h_s).to(torch.float64).eval()
            for p in h.parameters():
                p.requires_grad_(False)
            object.__setattr__(self, "_h_s64", h)
        return self._h_s64

    def _invalidate(self) -> None:
        object.__setattr__(self, "_h_s64", None)

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        self._invalidate()
        return super().load_state_dict(state_dict, strict=strict, **kwargs)

    def train(self, mode: bool = True):
        if mode:
            self._invalidate()
        return super().train(mode)

    def bitstream_id(self) -> str:
        return weights_digest(self.state_dict())[:32]

    @property
    def downsampling_factor(self) -> int:
        return 64

    def update(self, scale_table=None, force: bool = False) -> bool:
        self._invalidate()
        return super().update(scale_table=scale_table or get_scale_table(), force=force)

    # -- training path (CompressAI's forward) -----------------------------------------------------
    def forward(self, x: torch.Tensor) -> dict:
        y = self.g_a(x)
        z = self.h_a(y if self.mean_scale else torch.abs(y))
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        scales, means = self._params(self.h_s(z_hat))
        y_hat, y_likelihoods = self.gaussian_conditional(y, scales, means=means)
        return {"y_hat": y_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def _params(self, out: torch.Tensor):
        return out.chunk(2, 1) if self.mean_scale else (out, None)

    # -- coding paths -----------------------------------------------------------------------------
    def entropy_parameters(self, z_hat: torch.Tensor):
        return self._params(self._double_h_s()(z_hat.to(torch.float64)))

    #: a fixed-rate model: no quality knob
    quality_range = None

    def quality_tensor(self, quality, batch: int) -> None:
        if quality is not None:
            raise ValueError("this model codes one rate; it takes no quality value")
        return None

    @torch.no_grad()
    def compress(self, x: torch.Tensor, quality=None) -> dict:
        self.quality_tensor(quality, x.shape[0])
        y = self.g_a(x)
        z = self.h_a(y if self.mean_scale else torch.abs(y))
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        scales, means = self.entropy_parameters(z_hat)
        indexes = self.gaussian_conditional.build_indexes(scales)
        y_strings = self.gaussian_conditional.compress(y.to(torch.float64), indexes, means=means)
        return {"strings": [y_strings, z_strings], "shape": tuple(z.shape[-2:])}

    @torch.no_grad()
    def decompress(self, strings, shape) -> dict:
        guard_entropy_coders(self)  # bounds-safe, deterministic rANS decode
        y_strings, z_strings = strings
        z_hat = self.entropy_bottleneck.decompress(z_strings, shape)
        scales, means = self.entropy_parameters(z_hat)
        indexes = self.gaussian_conditional.build_indexes(scales)
        y_hat = self.gaussian_conditional.decompress(y_strings, indexes, means=means)
        return {"y_hat": y_hat.to(torch.float32)}
