"""CompressAI's learned baselines wrapped in COSMIC's model contract (for ``cosmic eval`` and
``cosmic train stage1 --arch``): ``.onboard`` is a :class:`~cosmic.onboard.baselines.BaselineCodec`,
``.ground`` CompressAI's synthesis transform g_s. They have no compensation latent: decoding
ignores ``z0``, and a diffusion model cannot be attached.
"""

from __future__ import annotations

import torch
from torch import nn

from cosmic.models.base import TwoSidedCodec
from cosmic.onboard.baselines import BaselineCodec, compressai_model
from cosmic.utils.device import exact_synthesis
from cosmic.utils.pretrained import ConfigMixin, register_component, register_to_config

__all__ = ["LearnedBaseline", "BaselineSynthesis"]


@register_component
class BaselineSynthesis(nn.Module, ConfigMixin):
    """g_s of the CompressAI model ``arch``; called like :class:`~cosmic.ground.decoder.GroundDecoder`."""

    @register_to_config
    def __init__(self, arch: str = "bmshj2018-hyperprior", N: int = 128, M: int = 192):
        super().__init__()
        self.g_s = compressai_model(arch, N, M).g_s

    def forward(self, y_hat: torch.Tensor, z0: torch.Tensor | None = None, quality=None) -> torch.Tensor:
        return self.g_s(y_hat)


@register_component
class LearnedBaseline(TwoSidedCodec):
    """bmshj2018-hyperprior or mbt2018-mean, trained by us on our data with our budget.

    Args:
        arch: ``bmshj2018-hyperprior`` or ``mbt2018-mean``.
        N, M: CompressAI's widths (its quality 1-5 models use N=128, M=192).
        name: the model identifier written into every bitstream (default: ``arch``).
        onboard, ground: the components already built (loading); by default built here.
    """

    @register_to_config
    def __init__(self, arch: str = "bmshj2018-hyperprior", N: int = 128, M: int = 192,
                 name: str | None = None, onboard: BaselineCodec | None = None,
                 ground: BaselineSynthesis | None = None):
        super().__init__()
        self.name = name or arch
        self.register_config(name=self.name)
        self.onboard = onboard if onboard is not None else BaselineCodec(arch, N, M)
        self.ground = ground if ground is not None else BaselineSynthesis(arch, N, M)

    def forward(self, x: torch.Tensor) -> dict:
        """Training pass: rate terms and ``x_hat`` (also given as ``x_hat_est``: one decoder path)."""
        out = self.onboard(x)
        x_hat = self.ground(out["y_hat"])
        return {"likelihoods": out["likelihoods"], "x_hat": x_hat, "x_hat_est": x_hat,
                "y_hat": out["y_hat"], "split": None}

    @torch.no_grad()
    def decompress(self, strings, shape, z0: torch.Tensor | None = None, quality=None,
                   compensate=None) -> dict:
        """Decode strings to ``x_hat`` = g_s(y_hat) in [0, 1]; there is no z0 and no quality. g_s
        runs in float64 as COSMIC's synthesis does (:func:`~cosmic.utils.device.exact_synthesis`)."""
        if compensate is not None:
            raise ValueError(f"{self.name} has no compensation latent")
        y_hat = self.onboard.decompress(strings, shape)["y_hat"]
        self.onboard.quality_tensor(quality, y_hat.shape[0])
        ground = exact_synthesis(self.ground, y_hat.device)
        x_hat = ground(y_hat.to(next(ground.parameters()).dtype)).clamp_(0, 1).float()
        return {"x_hat": x_hat, "y_hat": y_hat}
