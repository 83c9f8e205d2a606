"""Compensation sampling (paper Algorithm 2): z0' = DDIM(ε_θ; y_hat, metadata), then
x_hat = D(concat(transconv(y_hat), z0')).

``DiffusionCompensator`` bundles the noise predictor, the latent scaling factor measured in
stage 2 (z0 is scaled to unit variance for diffusion, as Stable Diffusion scales its VAE latents)
and the scheduler configuration; it is saved beside the stage-1 model as ``diffusion/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch import nn

from cosmic.ground.diffusion.metadata_encoder import metadata_to_tensor
from cosmic.ground.diffusion.noise_predictor import NoisePredictor
from cosmic.metadata import SensorMetadata

__all__ = ["DiffusionCompensator", "SCHEDULE", "DEFAULT_STEPS"]

DEFAULT_STEPS = 25
#: diffusers' DDPM schedule used in training and mirrored by DDIM at inference
SCHEDULE = {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
            "beta_end": 0.012, "prediction_type": "epsilon", "clip_sample": False}


class DiffusionCompensator(nn.Module):
    def __init__(self, net: NoisePredictor, latent_scale: float = 1.0):
        super().__init__()
        self.net = net
        self.latent_scale = float(latent_scale)

    def training_scheduler(self) -> DDPMScheduler:
        return DDPMScheduler(**SCHEDULE)

    @torch.no_grad()
    def sample(self, y_hat: torch.Tensor, metadata: list[SensorMetadata] | None = None,
               steps: int = DEFAULT_STEPS, seeds: list[int] | None = None) -> torch.Tensor:
        """Sample z0' for a batch of tiles with deterministic DDIM (eta = 0).

        Each tile's starting noise comes from its own generator seeded with ``seeds[i]``, so a
        tile's result does not depend on which batch it was decoded in."""
        b, _, h, w = y_hat.shape
        metadata = metadata or [SensorMetadata()] * b
        if len(metadata) == 1 and b > 1:
            metadata = metadata * b
        values, present = metadata_to_tensor(metadata)
        self.net.eval()
        tokens = self.net.condition(values, present)
        scheduler = DDIMScheduler(**SCHEDULE, set_alpha_to_one=False, steps_offset=1)
        scheduler.set_timesteps(steps)
        up = self.net.injection.up
        c = self.net.config["latent_channels"]
        seeds = list(range(b)) if seeds is None else seeds
        z = torch.stack([
            torch.randn((c, h * up, w * up), generator=torch.Generator().manual_seed(int(s))) for s in seeds
        ])
        for t in scheduler.timesteps:
            eps = self.net(z, t.expand(b), y_hat, tokens)
            z = scheduler.step(eps, t, z, eta=0.0).prev_sample
        return z / self.latent_scale

    def z0_fn(self, metadata: SensorMetadata, steps: int = DEFAULT_STEPS, seed: int = 0):
        """A ``z0_fn(y_hat, tile_indices)`` for :func:`cosmic.ground.scene.decode_scene`: every tile
        of a scene gets its own seed derived from ``seed`` and its index, so the same seed gives
        the same scene whatever the batching."""

        def z0_fn(y_hat: torch.Tensor, indices: list[int]) -> torch.Tensor:
            return self.sample(y_hat, [metadata] * len(indices), steps=steps,
                               seeds=[seed * 1_000_003 + i for i in indices])

        return z0_fn

    # -- persistence --------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, extra: dict | None = None,
                        dtype: torch.dtype | None = None) -> Path:
        directory = Path(directory)
        self.net.save_pretrained(directory, extra={"latent_scale": self.latent_scale, **(extra or {})},
                                 dtype=dtype)
        (directory / "scheduler.json").write_text(json.dumps(SCHEDULE, indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "DiffusionCompensator":
        net = NoisePredictor.from_pretrained(directory)
        cfg = NoisePredictor.read_config(directory)
        return cls(net, cfg.get("_extra", {}).get("latent_scale", 1.0))
