"""On-board cost (paper Table 1; docs/DESIGN.md §1): MACs and FLOPs of everything the satellite runs.

Counted with ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions;
FLOPs = 2 x MACs). The on-board part is the analysis transform, the hyper-analysis and the
hyper-synthesis (the satellite needs the latter to get the means and scales that code y), plus
for context-model baselines everything else their encoder must run; it is measured as the
model's ``forward`` minus its synthesis transform ``g_s`` on the same input.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["OnboardCost", "onboard_cost", "count_flops", "BASELINES"]


@dataclass
class OnboardCost:
    name: str
    flops: int
    params: int

    @property
    def macs(self) -> int:
        return self.flops // 2


def count_flops(fn, *args) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(*args)
    return int(counter.get_total_flops())


#: what the variable-rate model adds on board (``variable_rate=True``): YCbCr, the colour
#: shortcut, six gain vectors (the shipped campaign's configuration)
VARIABLE_RATE = {"colour_shortcut": True, "rate_levels": 6, "gain_span": 1.99, "colour_space": "ycbcr"}


def _cosmic_onboard(preset: str, cams: bool = True, variable_rate: bool = False, onboard_channels: int | None = None,
                    context: str | None = None):
    from cosmic.models.registry import PRESETS
    from cosmic.onboard.codec import OnboardCodec

    p = PRESETS[preset]
    extra = VARIABLE_RATE if variable_rate else {}
    return OnboardCodec(p["N"], p["M"], cam_positions=(2, 3) if cams else (), onboard_channels=onboard_channels,
                        context=context, **extra)


def _elementwise_macs(model, x: torch.Tensor) -> int:
    """Multiplies the flop counter does not see: one per latent value for the gains (Cui et al.'s
    gain unit is an element-wise product), none otherwise."""
    if model.gain is None:
        return 0
    f = model.downsampling_factor // 4  # y is at H/16
    return model.M * (x.shape[-2] // f) * (x.shape[-1] // f)


def _compressai(name: str, preset: str = "paper"):
    """A CompressAI baseline at the widths ``cosmic train stage1 --arch NAME --preset`` trains;
    ELIC always at its own (N=192, M=320): it is not trained here."""
    import compressai.models as cm

    from cosmic.models.registry import BASELINE_PRESETS
    from cosmic.onboard.baselines import compressai_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "elic":
            return cm.Elic2022Official(N=192, M=320)
        return compressai_model(name, **BASELINE_PRESETS[preset])


BASELINES = ("bmshj2018-hyperprior", "mbt2018-mean", "elic")


def onboard_cost(name: str, size: int = 256, preset: str = "paper", cams: bool = True,
                 variable_rate: bool = False, onboard_channels: int | None = None,
                 context: str | None = None) -> OnboardCost:
    """On-board cost of ``cosmic`` (at ``preset``; ``cams=False``: the w/o CAM ablation;
    ``variable_rate``: with YCbCr, colour shortcut and gain units; ``onboard_channels``: E that
    wide instead of the preset's N, the hyperprior at N; ``context``: with that context
    model's network, "checkerboard" or "channel", :mod:`cosmic.onboard.context`) or a CompressAI baseline (at the same
    preset's widths) at ``size`` x ``size``."""
    x = torch.rand(1, 3, size, size)
    if name == "cosmic":
        model = _cosmic_onboard(preset, cams, variable_rate, onboard_channels, context).eval()
        quality = 3.0 if variable_rate else None

        def onboard(inp):
            y = model.analysis(inp, quality)
            z = model.h_a(y)
            z_hat, _ = model.entropy_bottleneck(z)
            params = model.h_s(z_hat)
            return model.context_model(*params.chunk(2, 1), y) if context else params

        flops = count_flops(onboard, x) + 2 * _elementwise_macs(model, x)
        label = ", w/o CAM" if not cams else ", variable rate" if variable_rate else ""
        label += f", E {onboard_channels}" if onboard_channels else ""
        label += f", {context} context" if context else ""
        return OnboardCost(f"cosmic ({preset}{label})", flops,
                           sum(p.numel() for n, p in model.named_parameters()))
    model = _compressai(name, preset).eval()
    total = count_flops(model, x)
    y_hat = torch.zeros_like(model.g_a(x))
    synthesis = count_flops(model.g_s, y_hat)
    params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("g_s."))
    widths = "paper" if name == "elic" else preset
    return OnboardCost(f"{name} ({widths})", total - synthesis, params)
