"""The LDM-RSIC enhancer: its components, the ``small`` / ``paper`` presets, and saving them in
the one save format (:mod:`cosmic.utils.pretrained`)::

    ENHANCER/model_index.json    {"_class_name": "Enhancer", "name": ..., "source": ..., "preset": ...,
                                  "self_encoder": ["cosmic", "PriorEncoder"], "men": ["cosmic", "MEN"],
                                  "prior_regressor": ["cosmic", "PriorEncoder"],
                                  "ldm": ["cosmic", "PriorDiffusion"] (optional), "_extra": {...}}
    ENHANCER/self_encoder/, men/, prior_regressor/, ldm/    config.json, model.safetensors
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from cosmic.enhance.diffusion import PriorDiffusion
from cosmic.enhance.modules import MEN, PRIOR_DOWNSCALE, PriorEncoder
from cosmic.utils.pretrained import (
    load_components,
    model_config,
    read_composite,
    register_component,
    save_composite,
)

__all__ = ["Enhancer", "ENHANCE_PRESETS", "build_enhancer", "COMPONENTS"]

#: widths per preset. ``small``: trains on one CPU thread in tens of minutes (shipped);
#: ``paper``: Restormer-sized levels (48/96/192, 4/6/6 blocks, the DiffIR/LDM-RSIC scale) for GPUs.
ENHANCE_PRESETS: dict[str, dict] = {
    "small": {"prior_channels": 4, "encoder_width": 32,
              "men": {"widths": [16, 32, 64], "blocks": [1, 1, 2], "heads": [1, 2, 4], "refine_blocks": 0},
              "ldm": {"cond_channels": 8, "block_out_channels": [32, 64], "layers_per_block": 1}},
    "paper": {"prior_channels": 16, "encoder_width": 64,
              "men": {"widths": [48, 96, 192], "blocks": [4, 6, 6], "heads": [1, 2, 4], "refine_blocks": 4},
              "ldm": {"cond_channels": 32, "block_out_channels": [128, 256, 256], "layers_per_block": 2}},
}

#: component directory -> class
COMPONENTS = {"self_encoder": PriorEncoder, "prior_regressor": PriorEncoder, "men": MEN, "ldm": PriorDiffusion}
TILE_MULTIPLE = 4 * PRIOR_DOWNSCALE  # MEN's levels and F's grid both divide tiles of this multiple


@register_component
class Enhancer(nn.Module):
    """Self-encoder (stage I only), MEN, prior regressor and LDM (optional) of one source codec."""

    def __init__(self, self_encoder: PriorEncoder, men: MEN, prior_regressor: PriorEncoder,
                 ldm: PriorDiffusion | None = None, source: str = "jpeg2000", preset: str = "small",
                 name: str | None = None, extra: dict | None = None):
        super().__init__()
        self.self_encoder, self.men, self.prior_regressor, self.ldm = self_encoder, men, prior_regressor, ldm
        self.source, self.preset = source, preset
        self.name = name or f"ldm-rsic-{source}-{preset}"
        self.extra = dict(extra or {})

    def estimate_prior(self, decoded: torch.Tensor, bpp: torch.Tensor) -> torch.Tensor:
        """F_reg: the deterministic prior from the decoded image and the rate ("w/o LDM")."""
        rate_map = torch.log10(bpp.reshape(-1, 1, 1, 1).clamp_min(1e-3) / 0.158).expand(
            decoded.shape[0], 1, *decoded.shape[-2:])
        return self.prior_regressor(torch.cat([decoded, rate_map], 1))

    @torch.no_grad()
    def enhance(self, decoded: torch.Tensor, bpp: torch.Tensor, steps: int = 0,
                seeds: list[int] | None = None) -> torch.Tensor:
        """Enhanced tiles (B, 3, H, W) in [0, 1]; H, W multiples of :data:`TILE_MULTIPLE`."""
        bpp = bpp.reshape(-1).expand(decoded.shape[0]).to(decoded)
        prior = self.estimate_prior(decoded, bpp)
        if steps > 0:
            if self.ldm is None:
                raise ValueError(f"{self.name} has no LDM; use steps 0")
            prior = self.ldm.sample(decoded, prior, bpp, steps, seeds or list(range(decoded.shape[0])))
        return self.men(decoded, prior, bpp).clamp_(0.0, 1.0)

    # -- persistence --------------------------------------------------------------------------
    def components(self) -> dict[str, nn.Module]:
        parts = {"self_encoder": self.self_encoder, "men": self.men, "prior_regressor": self.prior_regressor}
        return {**parts, "ldm": self.ldm} if self.ldm is not None else parts

    def save_pretrained(self, directory: str | os.PathLike, dtype: torch.dtype | None = None,
                        dtypes: dict | None = None) -> Path:
        """Each component in its subfolder at ``dtype``, or at ``dtypes[key]`` when given (the
        shipped LDM at int8, the rest at float16), then ``model_index.json``."""
        config = {"name": self.name, "source": self.source, "preset": self.preset}
        return save_composite(directory, type(self).__name__, config, self.components(), self.extra,
                              dtype=dtype, dtypes=dtypes)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "Enhancer":
        index = read_composite(directory, cls.__name__)
        parts = load_components(directory, index, COMPONENTS)
        return cls(**parts, **model_config(index), extra=index.get("_extra")).eval()


def build_enhancer(preset: str = "small", source: str = "jpeg2000", ldm: bool = True,
                   latent_scale: float = 1.0) -> Enhancer:
    """A fresh enhancer of ``preset`` for ``source`` ("jpeg2000" or "cosmic")."""
    if preset not in ENHANCE_PRESETS:
        raise ValueError(f"unknown enhancer preset '{preset}'; choose one of {', '.join(ENHANCE_PRESETS)}")
    p = ENHANCE_PRESETS[preset]
    c, w = p["prior_channels"], p["encoder_width"]
    return Enhancer(PriorEncoder(6, c, w), MEN(prior_channels=c, **p["men"]), PriorEncoder(4, c, w),
                    PriorDiffusion(prior_channels=c, latent_scale=latent_scale, **p["ldm"]) if ldm else None,
                    source=source, preset=preset)
