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

import torch
from compressai.models import CompressionModel, MeanScaleHyperprior, ScaleHyperprior

from cosmic.onboard.coding import HyperpriorCodec
from cosmic.utils.pretrained import register_component, register_to_config

__all__ = ["BASELINE_ARCHS", "BaselineCodec"]

#: architecture name -> CompressAI class whose g_a / h_a / h_s / g_s are used
BASELINE_ARCHS = {"bmshj2018-hyperprior": ScaleHyperprior, "mbt2018-mean": MeanScaleHyperprior}


def compressai_model(arch: str, N: int, M: int) -> CompressionModel:
    """A freshly initialised CompressAI model of ``arch`` (its transforms are what we use)."""
    if arch not in BASELINE_ARCHS:
        raise ValueError(f"unknown baseline '{arch}'; choose one of {', '.join(BASELINE_ARCHS)}")
    return BASELINE_ARCHS[arch](N=N, M=M)


@register_component
class BaselineCodec(HyperpriorCodec):
    """g_a + hyperprior + entropy coding of a CompressAI baseline: its on-board part (fixed rate;
    the coding paths are :class:`~cosmic.onboard.coding.HyperpriorCodec`'s)."""

    part_of = "LearnedBaseline"

    @register_to_config
    def __init__(self, arch: str = "bmshj2018-hyperprior", N: int = 128, M: int = 192):
        super().__init__()
        self.arch = arch
        ref = compressai_model(arch, N, M)
        self.g_a, self.h_a, self.h_s = ref.g_a, ref.h_a, ref.h_s
        self.entropy_bottleneck = ref.entropy_bottleneck
        self.gaussian_conditional = ref.gaussian_conditional
        self.mean_scale = arch == "mbt2018-mean"

    def hyper_input(self, y: torch.Tensor) -> torch.Tensor:
        """bmshj2018's scale hyperprior sees |y|; mbt2018's mean-scale one sees y."""
        return y if self.mean_scale else torch.abs(y)

    def split_params(self, params: torch.Tensor):
        """(scales, means), or (scales, None) for the scale-only hyperprior."""
        return params.chunk(2, 1) if self.mean_scale else (params, None)

    def forward(self, x: torch.Tensor) -> dict:
        """Training pass, CompressAI's: additive-noise likelihoods and noisy ``y_hat``."""
        y = self.g_a(x)
        z = self.h_a(self.hyper_input(y))
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        scales, means = self.split_params(self.h_s(z_hat))
        y_hat, y_likelihoods = self.gaussian_conditional(y, scales, means=means)
        return {"y_hat": y_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}
