"""The checkerboard context model (He et al., "Checkerboard Context Model for Efficient Learned
Image Compression", CVPR 2021), optional per model (issue 30 item 2).

The latent y is split into two halves on a checkerboard: the *anchors* ((row + col) even) are
coded first with the hyperprior's (scales, means) alone, as today; the *non-anchors* are then
coded with parameters that also see the decoded anchors around them. Both halves decode in one
parallel pass each (not the serial raster scan of Minnen 2018's autoregressive context, which is
too slow for a satellite and for a GPU alike).

Where we depart from the paper, and why:

* **Residual, zero-initialised parameters.** The non-anchors' parameters are the hyperprior's
  corrected by ``EP(concat(params_hyper, ctx(y_hat_anchor)))`` (scales times exp of one half,
  means plus the other) whose last layer starts at zero, so a model given a context starts exactly where it was (the same bits, the same decode)
  and the context is trained on top of a trained hyperprior (the diffusers habit of zero-
  initialised residual conditioning). The paper trains everything jointly from scratch.
* **One rANS string per tile in two parts** (all anchors, then all non-anchors), not the
  paper's interleaved order: the decoder reads it part by part from a padded buffer and re-encodes
  both parts to check them (:class:`~cosmic.onboard.entropy.CheckedStream`), so a corrupt tile is
  refused the same way every time, as the one-part decoder refuses it.
* **float64 on both ends**, like h_s (:mod:`cosmic.onboard.coding`): the non-anchors' CDF
  tables are chosen from a network output, so encoder and decoder must compute it bit for bit.
* A light context network (3x3 conv instead of the paper's 5x5 masked conv; a plain conv on the
  anchors-only map is already "masked", the non-anchors being zero there) to keep the on-board
  cost small: ``cosmic flops`` counts it.

This module imports nothing from :mod:`cosmic.ground`.
"""

from __future__ import annotations

import torch
from compressai.models.utils import conv
from torch import nn

__all__ = ["CheckerboardContext", "anchor_mask", "CONTEXTS"]

#: the context models a codec may name in its config (``context=``); None: the hyperprior alone
CONTEXTS = ("checkerboard",)


def anchor_mask(height: int, width: int, device=None) -> torch.Tensor:
    """(height, width) bool: True on the anchors, (row + col) even (the half coded first)."""
    rows = torch.arange(height, device=device)[:, None]
    cols = torch.arange(width, device=device)[None, :]
    return (rows + cols) % 2 == 0


class CheckerboardContext(nn.Module):
    """(scales, means) of the non-anchors from the hyperprior's and the decoded anchors (see the
    module docstring); at initialisation it returns the hyperprior's unchanged."""

    def __init__(self, M: int):
        super().__init__()
        self.context = conv(M, M, kernel_size=3, stride=1)
        self.parameters_net = nn.Sequential(
            conv(3 * M, M, kernel_size=1, stride=1), nn.ReLU(inplace=True),
            conv(M, 2 * M, kernel_size=1, stride=1),
        )
        nn.init.zeros_(self.parameters_net[-1].weight)
        nn.init.zeros_(self.parameters_net[-1].bias)

    def forward(self, scales: torch.Tensor, means: torch.Tensor, y_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scales, means) of every position: the hyperprior's on the anchors, corrected on the
        non-anchors from ``y_hat`` (only its anchors are read: the others are zeroed here)."""
        anchors = anchor_mask(*y_hat.shape[-2:], device=y_hat.device)
        seen = y_hat * anchors.to(y_hat.dtype)
        log_gain, delta_means = self.parameters_net(
            torch.cat([scales, means, self.context(seen)], dim=1)).chunk(2, 1)
        return (torch.where(anchors, scales, scales * torch.exp(log_gain)),
                torch.where(anchors, means, means + delta_means))
