"""Models by name, with the ``paper`` and ``small`` presets (CompressAI's ``models`` dict idea)."""

from __future__ import annotations

from typing import Any, Callable

from cosmic.models.baselines import LearnedBaseline
from cosmic.models.cosmic import Cosmic

__all__ = ["PRESETS", "BASELINE_PRESETS", "MODELS", "build_model", "register_model"]

#: Widths per preset. ``paper``: the paper's widths (N=192 as in §4.2 and Table 3; M=320 as in
#: Minnen 2018's mean-scale hyperprior), for MAC counts and for users with GPUs.
#: ``small``: trains on 2 CPU cores in hours; the shipped default.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"N": 192, "M": 320, "ground_channels": 192, "latent_channels": 4},
    "small": {"N": 128, "M": 192, "ground_channels": 64, "latent_channels": 4},
}

#: CompressAI's own widths for its learned baselines: ``paper`` = its high-rate configuration
#: (qualities 6-8), ``small`` = its low-rate one (qualities 1-5), which covers our rates.
BASELINE_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"N": 192, "M": 320},
    "small": {"N": 128, "M": 192},
}

MODELS: dict[str, Callable[..., Any]] = {}


def register_model(name: str):
    def wrap(factory):
        MODELS[name] = factory
        return factory

    return wrap


@register_model("cosmic")
def _cosmic(preset: str = "small", **overrides) -> Cosmic:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")
    kwargs = {**PRESETS[preset], "name": f"cosmic-{preset}", **overrides}
    return Cosmic(**kwargs)


def _baseline(arch: str):
    def factory(preset: str = "small", **overrides) -> LearnedBaseline:
        if preset not in BASELINE_PRESETS:
            raise ValueError(f"unknown preset '{preset}'; choose one of {', '.join(BASELINE_PRESETS)}")
        kwargs = {**BASELINE_PRESETS[preset], "name": f"{arch}-{preset}", **overrides}
        return LearnedBaseline(arch=arch, **kwargs)

    return factory


for _arch in ("bmshj2018-hyperprior", "mbt2018-mean"):
    register_model(_arch)(_baseline(_arch))


def build_model(arch: str = "cosmic", preset: str = "small", **overrides):
    if arch not in MODELS:
        raise ValueError(f"unknown architecture '{arch}'; choose one of {', '.join(MODELS)}")
    return MODELS[arch](preset=preset, **overrides)
