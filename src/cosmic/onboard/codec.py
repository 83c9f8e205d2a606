"""What flies: the lightweight encoder E, the mean-scale hyperprior and the entropy coder.

Paper §4.2 and docs/DESIGN.md §2. Layout of E (Ballé 2018 with every dense 5x5 conv replaced by an LCB)::

    x ─ LCB(C→N, s2, x24/C) ─ GDN ─ LCB(N→N, s2) ─ GDN ─ CAM ─ LCB(N→N, s2) ─ GDN ─ CAM ─ LCB(N→M, s2) ─ y

(N here is ``onboard_channels`` when a model sets it: E's width apart from the hyperprior's, ours.)

Where the CAMs sit (our choice; the paper leaves it open): after the 2nd and 3rd GDN, i.e. at H/4
and H/8. At H/2 a CAM would cost four times what it costs at H/4 while the 1-D attention there
spans only a few dozen pixels; at H/4 and H/8 the 7-tap 1-D convs on a pooled map reach across
56 and 112 input pixels, which is where non-local context helps the latent most. Before the last
LCB the map is already as small as y, and y itself must stay linear for the entropy model.

Input channels C (``in_channels``): 3 (RGB, the paper) or 1 (one band: panchromatic, or any single
band; ours). The stem's depthwise conv makes 24 maps either way (8 per RGB channel, 24 from one
band), so the 1-channel E is exactly the RGB E seen on (g, g, g) after
:func:`~cosmic.training.widen.single_band_state`, at the same cost.

Entropy model: Minnen 2018's mean-scale hyperprior *without* the autoregressive context model
(sequential decoding is too slow for the satellite): ``z = h_a(y)`` coded with CompressAI's
``EntropyBottleneck``; ``(scales, means) = h_s(z_hat)``; ``y`` coded with ``GaussianConditional``
and CompressAI's rANS coder. Optionally (``context="checkerboard"``, ours after He et al. 2021)
the non-anchor half of y is coded with parameters that also see the decoded anchor half
(:mod:`cosmic.onboard.context`): two parallel passes, not a serial scan.

Coding paths (``update``, ``compress``, ``decompress``, float64 h_s): :class:`~cosmic.onboard.coding.HyperpriorCodec`.

This module imports nothing from :mod:`cosmic.ground`.
"""

from __future__ import annotations

import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import GDN
from compressai.models.utils import conv, deconv
from torch import nn

from cosmic.onboard.context import CONTEXTS, build_context
from cosmic.onboard.layers import CAM, LCB
from cosmic.onboard.rate import COLOUR_SPACES, GainUnits, rgb_to_ycbcr
from cosmic.onboard.coding import HyperpriorCodec
from cosmic.utils.pretrained import register_component, register_to_config

__all__ = ["LightweightEncoder", "ColourShortcut", "OnboardCodec", "ste_round", "check_channels"]


def check_channels(in_channels: int, colour_space: str) -> None:
    """ValueError unless ``in_channels`` is 3 (RGB) or 1 (one band, coded as it is: "rgb")."""
    if colour_space not in COLOUR_SPACES:
        raise ValueError(f"colour_space '{colour_space}': choose one of {', '.join(COLOUR_SPACES)}")
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels {in_channels}: a model codes 1 band or 3 (RGB)")
    if in_channels == 1 and colour_space != "rgb":
        raise ValueError(f"colour_space '{colour_space}': a single-band model codes its band as it is (rgb)")

def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Round with a straight-through gradient (Minnen & Singh 2020)."""
    return (torch.round(x) - x).detach() + x


class LightweightEncoder(nn.Sequential):
    """The on-board analysis transform E (paper §4.2, Fig. 2 (a)); see the module docstring."""

    def __init__(self, N: int, M: int, cam_positions: tuple[int, ...] = (2, 3), cam_kernel: int = 7,
                 stem_multiplier: int = 8, in_channels: int = 3):
        layers: list[nn.Module] = []
        chans = [in_channels, N, N, N, M]
        for stage in range(4):  # the stem makes 3·stem_multiplier maps whatever the input channels
            mult = stem_multiplier * 3 // in_channels if stage == 0 else 1
            layers.append(LCB(chans[stage], chans[stage + 1], kernel_size=5, stride=2, multiplier=mult))
            if stage < 3:
                layers.append(GDN(chans[stage + 1]))
                if stage + 1 in cam_positions:
                    layers.append(CAM(chans[stage + 1], kernel_size=cam_kernel))
        super().__init__(*layers)


class ColourShortcut(nn.Module):
    """Our addition to E (not in the paper): ``y += W · avgpool16(x)``, a 1x1 conv from each
    16x16 block's mean colour straight into y, zero-initialised.

    Measured on the first models: E's depthwise LCB stack nearly discards colour (swapping R and G
    changed y by 0.6 % of its norm; in bmshj2018-hyperprior's dense g_a by 17 %), so y_hat carried
    almost no chroma, the decoder took colour from Ẽ's z0, and the diffusion model, which must
    generate z0 from y_hat, invented it. This path costs 3·M MACs per latent pixel (0.02 % of E)."""

    #: output gain: Adam moves a weight by about lr per step whatever its gradient's scale, and y
    #: lives in units of the quantisation step; the gain lets this path catch up in a fine-tune
    gain = 256.0

    def __init__(self, M: int, block: int = 16, in_channels: int = 3):
        super().__init__()
        self.block = block
        self.proj = nn.Conv2d(in_channels, M, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * self.proj(torch.nn.functional.avg_pool2d(x, self.block, ceil_mode=True))


@register_component
class OnboardCodec(HyperpriorCodec):
    """E + h_a + h_s + entropy coding: everything the satellite runs (docs/DESIGN.md §1).

    ``forward`` is the training path (noisy likelihoods, straight-through rounded ``y_hat``);
    the coding paths are :class:`~cosmic.onboard.coding.HyperpriorCodec`'s.

    ``onboard_channels`` (ours; the paper has one width N for E and the hyperprior): E's internal
    width, N when None. Only E reads it, so y (M channels), z (N channels), h_a, h_s and both
    entropy models keep their shapes, and :func:`~cosmic.training.widen.widen_onboard_state` can
    widen a trained E without changing a single bit of its bitstreams.
    """

    part_of = "Cosmic"

    @register_to_config
    def __init__(self, N: int = 192, M: int = 320, cam_positions=(2, 3), cam_kernel: int = 7,
                 stem_multiplier: int = 8, colour_shortcut: bool = False, rate_levels: int = 0,
                 gain_span: float = 0.0, colour_space: str = "rgb", in_channels: int = 3,
                 onboard_channels: int | None = None, context: str | None = None):
        super().__init__()
        check_channels(in_channels, colour_space)
        if context is not None and context not in CONTEXTS:
            raise ValueError(f"context '{context}': choose one of {', '.join(CONTEXTS)} or none")
        self.N, self.M = N, M
        #: E's internal width (ours: None = N, the paper's single width); h_a, h_s and z stay at N
        self.onboard_channels = N if onboard_channels is None else onboard_channels
        self.colour_space, self.in_channels = colour_space, in_channels
        self.g_a = LightweightEncoder(self.onboard_channels, M, tuple(cam_positions), cam_kernel, stem_multiplier,
                                      in_channels)
        self.colour = ColourShortcut(M, in_channels=in_channels) if colour_shortcut else None
        #: rate_levels 0: a fixed-rate model (one λ); else a variable-rate one (see GainUnits)
        self.gain = GainUnits(rate_levels, M, gain_span) if rate_levels else None
        self.h_a = nn.Sequential(
            conv(M, N, stride=1, kernel_size=3),
            nn.ReLU(inplace=True),
            conv(N, N),
            nn.ReLU(inplace=True),
            conv(N, N),
        )
        self.h_s = nn.Sequential(
            deconv(N, N),
            nn.ReLU(inplace=True),
            deconv(N, N),
            nn.ReLU(inplace=True),
            conv(N, 2 * M, stride=1, kernel_size=3),
        )
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)
        #: the context model of issue 30 (zero-initialised: the hyperprior's pixels until trained)
        self.context_model = build_context(context, M) if context else None

    def analysis(self, x: torch.Tensor, quality=None) -> torch.Tensor:
        """y = E(x) (+ the colour shortcut when the model has one), in the coding colour space,
        times the gains of ``quality`` for a variable-rate model."""
        q = self.quality_tensor(quality, x.shape[0])
        if self.colour_space == "ycbcr":
            x = rgb_to_ycbcr(x)
        y = self.g_a(x)
        if self.colour is not None:
            y = y + self.colour(x)
        return y if q is None else y * self.gain(q).to(y.dtype)

    # -- training path ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, quality=None) -> dict:
        y = self.analysis(x, quality)
        z = self.h_a(y)
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        scales, means = self.h_s(z_hat).chunk(2, 1)
        if self.context_model is None:
            y_hat = ste_round(y - means) + means
        else:  # each part rounded as its decoder will have it
            scales, means, y_hat = self.context_model.training_parameters(scales, means, y)
        _, y_likelihoods = self.gaussian_conditional(y, scales, means=means)
        return {"y_hat": y_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}
