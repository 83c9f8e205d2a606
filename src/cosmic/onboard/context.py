"""Context models for y's entropy model, optional per model (issue 30 item 2): the checkerboard
(He et al., "Checkerboard Context Model for Efficient Learned Image Compression", CVPR 2021) and
the channel-wise one (Minnen & Singh, "Channel-wise autoregressive entropy models for learned
image compression", ICIP 2020).

Both code y in *parts*, one after the other, in one rANS string per tile: :meth:`coding_masks`
says which elements each part holds, :meth:`part_parameters` gives a part's (scales, means) from
the hyperprior's and the parts decoded before it, and :meth:`training_parameters` is the same
computation on the training path (straight-through rounding, so E learns through it). The coder
(:mod:`cosmic.onboard.coding`) only sees this protocol.

The checkerboard:

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
from compressai.ops import quantize_ste
from torch import nn

__all__ = ["CheckerboardContext", "ChannelWiseContext", "anchor_mask", "CONTEXTS", "build_context"]

#: the context models a codec may name in its config (``context=``); None: the hyperprior alone
CONTEXTS = ("checkerboard", "channel")


def build_context(kind: str, M: int) -> nn.Module:
    """The context model ``kind`` (one of :data:`CONTEXTS`) for a latent of ``M`` channels."""
    return {"checkerboard": CheckerboardContext, "channel": ChannelWiseContext}[kind](M)



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

    def coding_masks(self, shape, device=None) -> list[torch.Tensor]:
        """The two parts of a (C, H, W) latent: the anchors, then the non-anchors."""
        anchors = anchor_mask(*shape[-2:], device=device).expand(*shape)
        return [anchors, ~anchors]

    def part_parameters(self, part: int, scales, means, y_hat):
        """(scales, means) for ``part``: the hyperprior's for the anchors, the corrected ones
        (from the anchors of ``y_hat``) for the rest."""
        return (scales, means) if part == 0 else self(scales, means, y_hat)

    def training_parameters(self, scales, means, y):
        """(scales, means, y_hat) of the training path: anchors rounded around the hyperprior's
        means (as the decoder has them), the non-anchors around their corrected ones."""
        scales, means = self(scales, means, quantize_ste(y - means) + means)
        return scales, means, quantize_ste(y - means) + means


class ChannelWiseContext(nn.Module):
    """Channel-conditional (scales, means) after Minnen & Singh 2020: y's M channels in
    ``slices`` groups coded one after the other; group i's parameters are the hyperprior's
    corrected from the decoded groups before it (a 3x3 conv over them, then a 1x1 network with
    the hyperprior's parameters), group 0's are the hyperprior's, and each group is rounded
    around its own corrected means (what its decoder has, and what the next group reads).

    Chosen over the checkerboard by measurement at equal steps (docs/TRAINING_LOG.md, issue 30):
    trained alone on a frozen model, y's rate fell 3-4 % where the checkerboard's fell 0.1-0.5 %.
    Departures: no latent residual prediction (it would change the ground's input); the same
    zero-initialised residual as the checkerboard, so a model given one codes its old bits until
    trained; 4 groups (the paper: 10 of 32 channels) for the on-board budget (0.33 MMACs per
    latent position at M = 192, the checkerboard's 0.52)."""

    def __init__(self, M: int, slices: int = 4):
        super().__init__()
        self.width = M // slices
        if self.width * slices != M:
            raise ValueError(f"{M} channels do not split into {slices} slices")
        w = self.width
        self.context = nn.ModuleList(conv(i * w, 2 * w, kernel_size=3, stride=1) for i in range(1, slices))
        self.parameters_net = nn.ModuleList(
            nn.Sequential(conv(4 * w, 2 * w, kernel_size=1, stride=1), nn.ReLU(inplace=True),
                          conv(2 * w, 2 * w, kernel_size=1, stride=1)) for _ in range(1, slices))
        for net in self.parameters_net:
            nn.init.zeros_(net[-1].weight)
            nn.init.zeros_(net[-1].bias)

    def _group(self, i: int, scales, means, y_hat_before):
        """(scales, means) of group ``i`` >= 1 from the decoded groups before it."""
        part = slice(i * self.width, (i + 1) * self.width)
        hidden = torch.cat([scales[:, part], means[:, part], self.context[i - 1](y_hat_before)], dim=1)
        log_gain, delta_means = self.parameters_net[i - 1](hidden).chunk(2, 1)
        return scales[:, part] * torch.exp(log_gain), means[:, part] + delta_means

    def coding_masks(self, shape, device=None) -> list[torch.Tensor]:
        """One part per channel group of a (C, H, W) latent."""
        masks = []
        for i in range(shape[0] // self.width):
            mask = torch.zeros(tuple(shape), dtype=torch.bool, device=device)
            mask[i * self.width:(i + 1) * self.width] = True
            masks.append(mask)
        return masks

    def part_parameters(self, part: int, scales, means, y_hat):
        """(scales, means) with group ``part``'s corrected from the groups of ``y_hat`` before it."""
        if part == 0:
            return scales, means
        s, m = self._group(part, scales, means, y_hat[:, : part * self.width])
        group = slice(part * self.width, (part + 1) * self.width)
        scales, means = scales.clone(), means.clone()
        scales[:, group], means[:, group] = s, m
        return scales, means

    def training_parameters(self, scales, means, y):
        """(scales, means, y_hat) of every group, in order (straight-through rounding)."""
        w = self.width
        out_scales, out_means = [scales[:, :w]], [means[:, :w]]
        y_hat = [quantize_ste(y[:, :w] - means[:, :w]) + means[:, :w]]
        for i in range(1, len(self.context) + 1):
            s, m = self._group(i, scales, means, torch.cat(y_hat, 1))
            out_scales.append(s)
            out_means.append(m)
            y_hat.append(quantize_ste(y[:, i * w:(i + 1) * w] - m) + m)
        return torch.cat(out_scales, 1), torch.cat(out_means, 1), torch.cat(y_hat, 1)

    def forward(self, scales, means, y):
        """:meth:`training_parameters` (the module's call, as for the FLOP count)."""
        return self.training_parameters(scales, means, y)
