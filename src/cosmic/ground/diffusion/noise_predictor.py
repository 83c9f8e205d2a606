"""Noise predictor ε_θ(z_t, t, y_hat, c) (paper §4.4, Fig. 2 (b), Eq. 4-5).

A diffusers ``UNet2DConditionModel`` on the 4-channel compensation latent z at H/4, with
cross-attention to the metadata tokens, and y_hat (at H/16) injected into its conv blocks at every
resolution (Eq. 4: f_i' = f_i + projection_i(y_hat)). The projections are an up-sampling conv stem
shared by all resolutions and one zero-initialised 1x1 conv per UNet feature map, added as
ControlNet-style residuals to every skip connection and to the mid block; zero initialisation
means a fresh model ignores y_hat exactly, and training opens the path (diffusers injects
conditioning the same way).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from torch import nn

from cosmic.ground.diffusion.metadata_encoder import MetadataEncoder
from cosmic.utils.pretrained import ConfigMixin, register_component, register_to_config

__all__ = ["LatentInjection", "NoisePredictor", "UNET_PRESETS"]

UNET_PRESETS = {
    # the paper fine-tunes Stable Diffusion's UNet: these are SD 1.x widths
    "paper": {"block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2,
              "cross_attention_dim": 768, "attention_head_dim": 8},
    "small": {"block_out_channels": [64, 128, 128], "layers_per_block": 1,
              "cross_attention_dim": 128, "attention_head_dim": 8},
}


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def residual_layout(block_out_channels, layers_per_block) -> list[tuple[int, int]]:
    """(channels, downscale) of each skip feature of a UNet2DConditionModel, in order."""
    layout = [(block_out_channels[0], 1)]
    scale = 1
    for i, ch in enumerate(block_out_channels):
        layout += [(ch, scale)] * layers_per_block
        if i < len(block_out_channels) - 1:
            scale *= 2
            layout.append((ch, scale))
    return layout


class LatentInjection(nn.Module):
    """y_hat (M, H/16) → residuals for every skip feature and the mid block (Eq. 4)."""

    def __init__(self, M: int, block_out_channels, layers_per_block: int, hidden: int = 64, up: int = 4):
        super().__init__()
        self.up = up
        self.stem = nn.Sequential(
            nn.Conv2d(M, hidden, 3, padding=1), nn.SiLU(),
            nn.Upsample(scale_factor=up, mode="nearest"),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.SiLU(),
        )
        self.layout = residual_layout(block_out_channels, layers_per_block)
        self.proj = nn.ModuleList(_zero(nn.Conv2d(hidden, ch, 1)) for ch, _ in self.layout)
        self.mid_scale = 2 ** (len(block_out_channels) - 1)
        self.mid = _zero(nn.Conv2d(hidden, block_out_channels[-1], 1))

    def forward(self, y_hat: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        f = self.stem(y_hat)
        pooled = {1: f}

        def at(scale: int) -> torch.Tensor:
            if scale not in pooled:
                pooled[scale] = F.avg_pool2d(f, scale, ceil_mode=True)
            return pooled[scale]

        down = tuple(p(at(s)) for p, (_, s) in zip(self.proj, self.layout))
        return down, self.mid(at(self.mid_scale))


@register_component
class NoisePredictor(nn.Module, ConfigMixin):
    """ε_θ: metadata encoder + y_hat injection + diffusers UNet2DConditionModel.

    ``unet``: the UNet's widths (default: ``UNET_PRESETS[preset]``, recorded in the config as
    resolved, so a saved model does not depend on the presets). ``metadata_encoder``: the
    metadata encoder ME already built (a saved model's own component); by default a new one
    with ``cross_attention_dim`` tokens."""

    ignore_for_config = ("metadata_encoder",)

    @register_to_config
    def __init__(self, M: int = 192, latent_channels: int = 4, preset: str = "small",
                 unet: dict | None = None, injection_hidden: int = 64, use_metadata: bool = True,
                 quality_conditioning: bool = False, metadata_encoder: MetadataEncoder | None = None):
        super().__init__()
        unet_cfg = dict(UNET_PRESETS[preset] if unet is None else unet)
        self.register_config(unet=unet_cfg)
        self.quality_conditioning = quality_conditioning
        n = len(unet_cfg["block_out_channels"])
        self.unet = UNet2DConditionModel(
            in_channels=latent_channels, out_channels=latent_channels,
            down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
            up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
            block_out_channels=tuple(unet_cfg["block_out_channels"]),
            layers_per_block=unet_cfg["layers_per_block"],
            cross_attention_dim=unet_cfg["cross_attention_dim"],
            attention_head_dim=unet_cfg["attention_head_dim"],
            norm_num_groups=min(32, unet_cfg["block_out_channels"][0]),
            # a variable-rate stage 1: the quality enters like the timestep (sinusoidal features,
            # an MLP, added to the time embedding: diffusers' class embedding "timestep")
            class_embed_type="timestep" if quality_conditioning else None,
        )
        if quality_conditioning:  # zero-initialised: a warm start from a network without it is unchanged
            nn.init.zeros_(self.unet.class_embedding.linear_2.weight)
            nn.init.zeros_(self.unet.class_embedding.linear_2.bias)
        self.injection = LatentInjection(M, unet_cfg["block_out_channels"], unet_cfg["layers_per_block"],
                                         injection_hidden)
        self.use_metadata = use_metadata
        self.metadata_encoder = metadata_encoder or MetadataEncoder(dim=unet_cfg["cross_attention_dim"])

    def condition(self, values: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Cross-attention tokens; without the metadata encoder ("w/o ME") all fields are unknown."""
        if not self.use_metadata:
            present = torch.zeros_like(present)
        return self.metadata_encoder(values, present)

    #: qualities 1..K become "timesteps" 100..100K for the class embedding's sinusoidal features
    QUALITY_SCALE = 100.0

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, y_hat: torch.Tensor,
                tokens: torch.Tensor, quality: torch.Tensor | None = None) -> torch.Tensor:
        if self.quality_conditioning and quality is None:
            raise ValueError("this noise predictor is conditioned on the quality; give it")
        labels = quality.to(z_t.dtype) * self.QUALITY_SCALE if self.quality_conditioning else None
        down, mid = self.injection(y_hat)
        return self.unet(
            z_t, t, encoder_hidden_states=tokens, class_labels=labels,
            down_block_additional_residuals=down, mid_block_additional_residual=mid,
        ).sample

    def load_unet(self, directory: str | os.PathLike) -> None:
        """Initialise the UNet from a diffusers checkpoint saved with ``save_pretrained`` (offline;
        safetensors only). Shapes must match this model's UNet configuration."""
        directory = Path(directory)
        loaded = UNet2DConditionModel.from_pretrained(directory, use_safetensors=True, local_files_only=True)
        missing, unexpected = self.unet.load_state_dict(loaded.state_dict(), strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{directory}: UNet does not match (missing {len(missing)}, unexpected {len(unexpected)} tensors)"
            )
