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

__all__ = ["LearnedBaseline", "BaselineSynthesis"]


class BaselineSynthesis(nn.Module):
    """g_s of the CompressAI model; called like :class:`~cosmic.ground.decoder.GroundDecoder`."""

    def __init__(self, g_s: nn.Module):
        super().__init__()
        self.g_s = g_s

    def forward(self, y_hat: torch.Tensor, z0: torch.Tensor | None = None, quality=None) -> torch.Tensor:
        return self.g_s(y_hat)


class LearnedBaseline(TwoSidedCodec):
    """bmshj2018-hyperprior or mbt2018-mean, trained by us on our data with our budget.

    Args:
        arch: ``bmshj2018-hyperprior`` or ``mbt2018-mean``.
        N, M: CompressAI's widths (its quality 1-5 models use N=128, M=192).
        name: the model identifier written into every bitstream.
    """

    def __init__(self, arch: str = "bmshj2018-hyperprior", N: int = 128, M: int = 192,
                 name: str | None = None):
        super().__init__()
        name = name or arch
        self.register_config(arch=arch, N=N, M=M, name=name)
        self.name = name
        self.onboard = BaselineCodec(arch, N, M)
        self.ground = BaselineSynthesis(compressai_model(arch, N, M).g_s)

    def forward(self, x: torch.Tensor) -> dict:
        """Training pass: rate terms and ``x_hat`` (also given as ``x_hat_est``: one decoder path)."""
        out = self.onboard(x)
        x_hat = self.ground(out["y_hat"])
        return {"likelihoods": out["likelihoods"], "x_hat": x_hat, "x_hat_est": x_hat,
                "y_hat": out["y_hat"], "split": None}

    @torch.no_grad()
    def decompress(self, strings, shape, z0: torch.Tensor | None = None, quality=None,
                   compensate=None) -> dict:
        """Decode strings to ``x_hat`` = g_s(y_hat) in [0, 1]; there is no z0 and no quality."""
        if compensate is not None:
            raise ValueError(f"{self.name} has no compensation latent")
        y_hat = self.onboard.decompress(strings, shape)["y_hat"]
        self.onboard.quality_tensor(quality, y_hat.shape[0])
        return {"x_hat": self.ground(y_hat).clamp_(0, 1), "y_hat": y_hat}
