"""Compensation sampling (paper Algorithm 2): z0' = DDIM(ε_θ; y_hat, metadata), then
x_hat = D(concat(transconv(y_hat), z0')).

``DiffusionCompensator`` bundles the noise predictor, the latent scaling factor measured in
stage 2 (z0 is scaled to unit variance for diffusion, as Stable Diffusion scales its VAE latents)
and the DDIM scheduler; it is saved beside the stage-1 model as ``diffusion/``, in diffusers'
pipeline layout::

    diffusion/model_index.json     {"_class_name": "DiffusionCompensator", "latent_scale": ..., "residual": ...,
                                    "noise_predictor": ["cosmic", "NoisePredictor"],
                                    "metadata_encoder": ["cosmic", "MetadataEncoder"],
                                    "scheduler": ["diffusers", "DDIMScheduler"]}
    diffusion/noise_predictor/     config.json, model.safetensors (UNet + y_hat injection)
    diffusion/metadata_encoder/    config.json, model.safetensors (ME, Eq. 3)
    diffusion/scheduler/           scheduler_config.json (what diffusers' ``save_config`` writes)

(the one save format of every model: :mod:`cosmic.utils.pretrained`).

Residual mode (ours, not the paper's; ``residual=True``, what ``cosmic train stage2`` trains):
the diffusion generates ``r = z0 - ẑ0(y_hat)``, the part of z0 that the deterministic estimate
(the "w/o DC" decode) misses, and ``z0' = ẑ0(y_hat) + r'``. Everything y_hat already determines
(colour, layout) is then given, not re-generated: what the diffusion adds is detail on top of a
decode that is already a correct image of the scene, and a network that has learned little
adds little, where one that generates the whole z0 (the paper's formulation, ``residual=False``)
must first learn to reproduce what ẑ0 knows or paints wrong colours (measured, MODEL_CARD).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from diffusers import DDIMScheduler
from torch import nn

from cosmic.ground.diffusion.metadata_encoder import MetadataEncoder, metadata_to_tensor
from cosmic.ground.diffusion.noise_predictor import NoisePredictor
from cosmic.metadata import SensorMetadata
from cosmic.utils.pretrained import (
    load_component,
    read_composite,
    register_component,
    write_model_index,
    write_text,
)

__all__ = ["DiffusionCompensator", "SCHEDULE", "DEFAULT_STEPS"]

DEFAULT_STEPS = 25
#: diffusers' DDPM schedule used in training and mirrored by DDIM at inference
SCHEDULE = {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
            "beta_end": 0.012, "prediction_type": "epsilon", "clip_sample": False}

register_component(DDIMScheduler)


def ddim_scheduler(schedule: dict | None = None) -> DDIMScheduler:
    """The DDIM sampler of a training ``schedule`` (default :data:`SCHEDULE`), as Stable Diffusion
    configures it (``set_alpha_to_one=False``, ``steps_offset=1``)."""
    return DDIMScheduler(**(SCHEDULE if schedule is None else schedule), set_alpha_to_one=False, steps_offset=1)


@register_component
class DiffusionCompensator(nn.Module):
    """The stage-2 network, its latent scale, its target (residual or z0) and its sampler (a
    diffusers ``DDIMScheduler``, default :func:`ddim_scheduler`; saved with its config and read back)."""

    def __init__(self, net: NoisePredictor, latent_scale: float = 1.0, residual: bool = False,
                 scheduler: DDIMScheduler | None = None):
        super().__init__()
        self.net = net
        self.latent_scale = float(latent_scale)
        self.residual = bool(residual)
        self.scheduler = ddim_scheduler() if scheduler is None else scheduler

    @torch.no_grad()
    def sample(self, y_hat: torch.Tensor, metadata: list[SensorMetadata] | None = None,
               steps: int = DEFAULT_STEPS, seeds: list[int] | None = None,
               anchor: torch.Tensor | None = None, quality: torch.Tensor | None = None) -> torch.Tensor:
        """Sample z0' for a batch of tiles with deterministic DDIM (eta = 0).

        Each tile's starting noise comes from its own generator seeded with ``seeds[i]``, so a
        tile's result does not depend on which batch it was decoded in. A residual model needs
        ``anchor`` = ẑ0(y_hat) (:meth:`GroundDecoder.estimate_z0`) and returns ``anchor + r'``.
        ``quality`` (B,): the tiles' quality, for a network conditioned on it (variable rate)."""
        if self.residual and anchor is None:
            raise ValueError("a residual diffusion model needs the anchor ẑ0(y_hat)")
        b, _, h, w = y_hat.shape
        metadata = metadata or [SensorMetadata()] * b
        if len(metadata) == 1 and b > 1:
            metadata = metadata * b
        values, present = (t.to(y_hat.device) for t in metadata_to_tensor(metadata))
        self.net.eval()
        tokens = self.net.condition(values, present)
        scheduler = DDIMScheduler.from_config(self.scheduler.config)  # set_timesteps changes its state
        scheduler.set_timesteps(steps)
        up = self.net.injection.up
        c = self.net.config["latent_channels"]
        seeds = list(range(b)) if seeds is None else seeds
        z = torch.stack([
            torch.randn((c, h * up, w * up), generator=torch.Generator().manual_seed(int(s))) for s in seeds
        ]).to(y_hat.device)  # drawn on the CPU: the same seed gives the same noise on every device
        for t in scheduler.timesteps:
            eps = self.net(z, t.expand(b).to(z.device), y_hat, tokens, quality)
            z = scheduler.step(eps, t, z, eta=0.0).prev_sample
        z = z / self.latent_scale
        return z + anchor if self.residual else z

    def for_tiles(self, metadata: SensorMetadata, steps: int, seed: int, indices: list[int]):
        """``compensate(y, z0_est, quality) -> z0'`` for :meth:`cosmic.models.cosmic.Cosmic.decompress`
        of the tiles ``indices`` of one scene: each tile gets its own seed derived from ``seed``
        and its index, so the same seed gives the same scene whatever the batching; ``z0_est`` =
        ẑ0(y_hat) is a residual model's anchor (a plain model ignores it)."""
        seeds = [seed * 1_000_003 + i for i in indices]

        def compensate(y_hat: torch.Tensor, z0_est: torch.Tensor, quality=None) -> torch.Tensor:
            return self.sample(y_hat, [metadata] * len(indices), steps=steps, seeds=seeds,
                               anchor=z0_est if self.residual else None, quality=quality)

        return compensate

    # -- persistence --------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, extra: dict | None = None,
                        dtype: torch.dtype | None = None, stored: dict | None = None) -> Path:
        """The components in their subfolders, then ``model_index.json`` (see the module
        docstring); ``dtype`` / ``stored`` as for
        :meth:`~cosmic.utils.pretrained.ConfigMixin.save_pretrained` (``stored``: the noise
        predictor's tensors, the metadata encoder's included, already in storage form)."""
        directory = Path(directory)
        me = "metadata_encoder."
        own = None if stored is None else {k[len(me):]: v for k, v in stored.items() if k.startswith(me)}
        self.net.metadata_encoder.save_pretrained(directory / "metadata_encoder", dtype=dtype, stored=own)
        self.net.save_pretrained(directory / "noise_predictor", dtype=dtype, exclude=(me,), stored=stored)
        (directory / "scheduler").mkdir(parents=True, exist_ok=True)  # diffusers' file, written atomically
        write_text(directory / "scheduler" / self.scheduler.config_name, self.scheduler.to_json_string())
        components = {"noise_predictor": self.net, "metadata_encoder": self.net.metadata_encoder,
                      "scheduler": self.scheduler}
        config = {"latent_scale": self.latent_scale, "residual": self.residual}
        write_model_index(directory, type(self).__name__, config, components, extra)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "DiffusionCompensator":
        """Each component from its own config (the scheduler with diffusers' ``from_pretrained``)."""
        index = read_composite(directory, cls.__name__)
        me = load_component(directory, index, "metadata_encoder", MetadataEncoder)
        net = load_component(directory, index, "noise_predictor", NoisePredictor, metadata_encoder=me)
        scheduler = load_component(directory, index, "scheduler", DDIMScheduler)
        return cls(net, index["latent_scale"], index["residual"], scheduler)
