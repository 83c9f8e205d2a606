"""Stage II of LDM-RSIC: a latent diffusion model that generates the prior F̂ from the decoded
image (paper, second stage), on the machinery of COSMIC's compensation: a diffusers
``UNet2DModel`` as ε-predictor, diffusers' DDPM schedule (:data:`cosmic.ground.diffusion.sampler.SCHEDULE`)
in training and deterministic DDIM (eta = 0) at inference.

Conditioning: the UNet's input is the noisy latent concatenated with the prior regressor's
estimate F_reg (what the decoded image and the rate determine) and a learned 1/8-resolution
feature map of the decoded image; the rate enters like the timestep (diffusers' class embedding
"timestep"). Like COSMIC's compensation (``residual=True``, see the sampler), the diffusion
generates the residual ``F - F_reg`` (ours; the paper generates F itself), so ``F̂ = F_reg + r'``
and an under-trained LDM adds little rather than painting a wrong prior.
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, UNet2DModel
from torch import nn

from cosmic.enhance.modules import PriorEncoder, rate_feature
from cosmic.ground.diffusion.sampler import SCHEDULE
from cosmic.utils.pretrained import ConfigMixin, register_component, register_to_config

__all__ = ["PriorDiffusion", "RATE_SCALE"]

#: rate_feature (about -0.5..0.5) -> "class label" for the sinusoidal class embedding
RATE_SCALE = 500.0


@register_component
class PriorDiffusion(nn.Module, ConfigMixin):
    """ε_θ(r_t, t, F_reg, c(decoded), rate) and its DDIM sampler."""

    @register_to_config
    def __init__(self, prior_channels: int = 4, cond_channels: int = 8, block_out_channels: tuple = (32, 64),
                 layers_per_block: int = 1, latent_scale: float = 1.0, schedule: dict | None = None):
        super().__init__()
        self.schedule = dict(SCHEDULE if schedule is None else schedule)
        self.latent_scale = float(latent_scale)
        self.cond = PriorEncoder(in_channels=3, prior_channels=cond_channels, width=block_out_channels[0])
        n = len(block_out_channels)
        self.unet = UNet2DModel(
            in_channels=2 * prior_channels + cond_channels, out_channels=prior_channels,
            block_out_channels=tuple(block_out_channels), layers_per_block=layers_per_block,
            down_block_types=("DownBlock2D",) + ("AttnDownBlock2D",) * (n - 1),
            up_block_types=("AttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
            norm_num_groups=min(32, block_out_channels[0] // 4), attention_head_dim=8,
            class_embed_type="timestep",
        )

    def set_latent_scale(self, scale: float) -> None:
        """The measured 1 / RMS of the LDM target (kept in the config, so it is saved)."""
        self.latent_scale = float(scale)
        self.config["latent_scale"] = float(scale)

    def forward(self, r_t: torch.Tensor, t: torch.Tensor, f_reg: torch.Tensor, cond: torch.Tensor,
                bpp: torch.Tensor) -> torch.Tensor:
        labels = rate_feature(bpp.reshape(-1).expand(r_t.shape[0])) * RATE_SCALE
        return self.unet(torch.cat([r_t, f_reg, cond], 1), t, class_labels=labels).sample

    @torch.no_grad()
    def sample(self, decoded: torch.Tensor, f_reg: torch.Tensor, bpp: torch.Tensor, steps: int,
               seeds: list[int]) -> torch.Tensor:
        """F̂ = F_reg + r' with r' from ``steps`` DDIM steps; tile i starts from the noise of
        ``seeds[i]``, so a tile's result does not depend on its batch."""
        cond = self.cond(decoded)
        scheduler = DDIMScheduler(**self.schedule, set_alpha_to_one=False, steps_offset=1)
        scheduler.set_timesteps(steps)
        r = torch.stack([torch.randn(f_reg.shape[1:], generator=torch.Generator().manual_seed(int(s)))
                         for s in seeds]).to(f_reg)
        for t in scheduler.timesteps:
            eps = self(r, t.expand(r.shape[0]), f_reg, cond, bpp)
            r = scheduler.step(eps, t, r, eta=0.0).prev_sample
        return f_reg + r / self.latent_scale
