"""Stage-2 training (paper Algorithm 1, second stage; Eq. 5).

Stage 1 is frozen. The target is z0 = mu_z + sigma_z * eps from Ẽ(x) (the paper), or by default
its residual z0 - ẑ0(y_hat) over the deterministic estimate (ours, see
:mod:`cosmic.ground.diffusion.sampler`), scaled to unit variance by a factor measured on the first
batches; the noise predictor learns the ε-prediction MSE of Eq. 5
under diffusers' DDPM schedule, with random metadata-field dropout (in the metadata encoder) and
an EMA of its weights (diffusers' ``EMAModel``). Checkpoints are safetensors + JSON and resume.

As stage 1: ``device`` / ``precision`` (the noise predictor's forward under autocast; the frozen
stage 1 that makes the target runs in float32), DDP under ``torchrun`` (each rank a slice of every
global batch; rank 0 writes), crops a function of (seed, index) from the in-memory images or
streamed from disk (``stream``), the loss to ``OUT/metrics.csv``.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset

from cosmic.errors import InputError
from cosmic.ground.diffusion.metadata_encoder import metadata_to_tensor
from cosmic.ground.diffusion.noise_predictor import NoisePredictor
from cosmic.ground.diffusion.sampler import SCHEDULE, DiffusionCompensator
from cosmic.io.product_metadata import sidecar_metadata
from cosmic.metadata import SensorMetadata, sidecar_for
from cosmic.training import distributed as ddp
from cosmic.training.checkpoint import check_resume, load_checkpoint, prepare_run, save_checkpoint
from cosmic.training.config import STAGE2_HELP, Stage2Config, write_config
from cosmic.training.loop import Cadence, Task, TrainLoop
from cosmic.training.validation import say_held_out
from cosmic.training.data import ImageFolder, refuse_val_split
from cosmic.utils.pretrained import component_class, read_model_index
from cosmic.training.metrics_log import MetricsLog
from cosmic.utils.device import move_model

__all__ = ["Stage2Config", "STAGE2_HELP", "MetadataImageFolder", "Stage2Task", "train_stage2", "stage2_loss"]


class MetadataImageFolder(Dataset):
    """Random crops with the sensor metadata of their image: a ``NAME.json`` sidecar beside the
    image if there is one (completed from its ``georef`` block when it has one, see
    :func:`cosmic.io.product_metadata.sidecar_metadata`), else only what is known for the whole
    set (``default``)."""

    def __init__(self, root, split: str = "train", crop: int = 256, default: SensorMetadata | None = None,
                 samples_per_epoch: int = 10**9, extra: list | None = None, seed: int | None = None):
        self.seed = seed  # None: a fresh random crop per call; else sample i is f(seed, i)
        self.images = ImageFolder(root, split, crop=crop, samples_per_epoch=samples_per_epoch, extra=extra)
        default = default or SensorMetadata()
        metas = []
        for f in self.images.files:
            side = sidecar_for(f)
            metas.append(sidecar_metadata(side) if side else default)
        self.values, self.present = metadata_to_tensor(metas)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        rng = None if self.seed is None else np.random.default_rng([self.seed, index])
        i, crop = self.images.random_crop(rng)
        return crop, self.values[i], self.present[i]


def sample_qualities(stage1, batch: int) -> torch.Tensor | None:
    """A quality per sample, uniform over a variable-rate stage 1's range (None otherwise): one
    stage-2 network serves every rate, conditioned on it."""
    rng = stage1.onboard.quality_range
    device = stage1.onboard.entropy_bottleneck.quantiles.device
    return None if rng is None else rng[0] + (rng[1] - rng[0]) * torch.rand(batch, device=device)


@torch.no_grad()
def diffusion_target(stage1, x: torch.Tensor, residual: bool,
                     quality: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, target)``: the dequantised latent y (y_hat itself for a fixed-rate stage 1) and
    z0 ~ q(z0|x) from Ẽ, minus ẑ0(y_hat) when ``residual`` (unscaled)."""
    y = stage1.ground.dequantise(stage1.onboard(x, quality)["y_hat"], quality)
    mu, logvar = stage1.ground.encode_z0(x)
    z0 = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    return y, (z0 - stage1.ground.z0_estimator(stage1.ground.transconv(y)) if residual else z0)


def stage2_loss(stage1, net: NoisePredictor, scheduler: DDPMScheduler, x, values, present,
                latent_scale: float, residual: bool = False, precision: str = "fp32") -> torch.Tensor:
    """ε-prediction MSE of Eq. 5 for one batch (stage 1 frozen, in float32). ``net`` may be the
    noise predictor DDP-wrapped; under ``precision`` autocast its forward runs in bf16 / fp16."""
    from cosmic.utils.device import autocast

    quality = sample_qualities(stage1, x.shape[0])
    y, z0 = diffusion_target(stage1, x, residual, quality)
    z0 = z0 * latent_scale
    noise = torch.randn_like(z0)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (x.shape[0],)).to(x.device)
    z_t = scheduler.add_noise(z0, noise, t)
    with autocast(x.device, precision):
        pred = net(z_t, t, y, getattr(net, "module", net).condition(values, present), quality)
    return F.mse_loss(pred.float(), noise)


@torch.no_grad()
def measure_latent_scale(stage1, loader, residual: bool = False, batches: int = 8, info=None) -> float:
    """1 / RMS of the diffusion target over a few batches (unit variance for the DDPM schedule);
    under torchrun, over every rank's batches (all ranks get the same scale)."""
    from cosmic.training.distributed import mean_terms

    sq, n = 0.0, 0
    it = iter(loader)
    device = stage1.onboard.entropy_bottleneck.quantiles.device
    for _ in range(batches):
        x = next(it)[0].to(device)
        z0 = diffusion_target(stage1, x, residual, sample_qualities(stage1, x.shape[0]))[1]
        sq += float(z0.pow(2).sum())
        n += z0.numel()
    if info is not None:
        total = mean_terms({"sq": sq, "n": float(n)}, info)
        sq, n = total["sq"], total["n"]
    return 1.0 / max(math.sqrt(sq / n), 1e-6)


def _init_from(net: NoisePredictor, source: str) -> None:
    """Warm start: a COSMIC stage-2 model directory (whole noise predictor, e.g. trained for
    another stage-1 model, or a stage-2 checkpoint) or a diffusers UNet saved with ``save_pretrained``."""
    try:  # a class of ours (the component registry), or else a diffusers UNet
        cls = component_class(read_model_index(source).get("_class_name"))
        ours = issubclass(cls, (NoisePredictor, DiffusionCompensator))
    except (OSError, ValueError):
        ours = False
    if ours:  # a stage-2 model (its noise predictor), or a checkpoint's noise predictor
        loaded = cls.from_pretrained(source)
        load_noise_predictor(net, getattr(loaded, "net", loaded).state_dict(), source)
    else:
        net.load_unet(source)


def load_noise_predictor(net: NoisePredictor, state: dict, source: str) -> None:
    """Load ``state`` into ``net``; a network trained without quality conditioning (a fixed-rate
    stage 1's) warm-starts a quality-conditioned one: only the quality embedding is new, and it
    starts at zero (see :class:`NoisePredictor`), so the warm start begins as the source network."""
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of another size
        raise InputError(f"--init-from {source}: not a noise predictor of this shape "
                         f"({str(exc).splitlines()[-1].strip()})") from None
    new = [k for k in missing if not k.startswith("unet.class_embedding.")]
    if new or unexpected:
        raise InputError(f"--init-from {source}: not a noise predictor of this shape "
                         f"({len(new)} tensors missing, {len(unexpected)} unexpected)")


class Stage2Task(Task):
    """Stage 2 for the :class:`~cosmic.training.loop.TrainLoop`: the noise predictor (``model``;
    ``net`` is it DDP-wrapped under torchrun), AdamW, diffusers' ``EMAModel`` of its weights
    (``shadow``, saved as ``ema.safetensors`` beside the checkpoint), the frozen stage 1."""

    def __init__(self, cfg: Stage2Config, loop: TrainLoop, stage1, net: NoisePredictor):
        self.cfg, self.loop, self.stage1 = cfg, loop, stage1
        self.model = self.net = net
        self.optimizers = {"main": torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.0)}
        self.shadow = EMAModel(net.parameters(), decay=cfg.ema_decay)
        self.scheduler = DDPMScheduler(**SCHEDULE)
        self.latent_scale = 1.0

    def step(self, batch, step: int) -> dict:
        x, values, present = (t.to(self.loop.device, non_blocking=True) for t in batch)
        loss = stage2_loss(self.stage1, self.net, self.scheduler, x, values, present, self.latent_scale,
                           self.cfg.residual, self.cfg.precision)
        self.optimizers["main"].zero_grad(set_to_none=True)
        self.loop.optimise(loss, self.optimizers["main"])
        return {"loss": float(loss.detach())}

    def update_ema(self) -> None:
        self.shadow.step(self.model.parameters())

    def on_checkpoint(self, state: dict, step: int, window: list[dict], seconds: float) -> None:
        state["losses"].append({"step": step, "loss": sum(t["loss"] for t in window) / len(window),
                                "steps_per_s": len(window) / max(seconds, 1e-9)})

    def postfix(self, terms: dict) -> dict:
        return {"loss": f"{terms['loss']:.4f}"}

    def save(self, directory: Path, state: dict) -> None:
        save_checkpoint(directory, self.model, self.optimizers, state)
        names = [n for n, _ in self.model.named_parameters()]
        save_file({n: p.detach().cpu().contiguous() for n, p in zip(names, self.shadow.shadow_params)},
                  str(directory / "ema.safetensors"))

    def load(self, directory: Path) -> dict:
        """A stage-2 checkpoint (weights, AdamW moments, EMA shadow); the trainer state."""
        state = load_checkpoint(directory, self.model, self.optimizers)
        theirs = state["config"].get("residual", False)  # runs older than the option trained on z0
        if theirs != self.cfg.residual:
            raise InputError(f"{directory}: that run trains on the {'residual' if theirs else 'z0'} target; "
                             f"resume it with {'--residual' if theirs else '--no-residual'}")
        shadow = load_file(str(directory / "ema.safetensors"))
        self.shadow.shadow_params = [shadow[n].to(p.device) for n, p in self.model.named_parameters()]
        self.shadow.optimization_step = state["step"]
        return state


def train_stage2(cfg: Stage2Config, resume: bool = True, progress: bool = True) -> Path:
    """Train the noise predictor until ``cfg.steps``, resuming from ``out/last``; returns
    ``out/final`` (the EMA weights). Under torchrun each process trains its share of every batch;
    rank 0 alone writes."""
    if resume:
        check_resume(Path(cfg.out) / "last", asdict(cfg))  # before any weights are loaded
    say_held_out(cfg.data)
    return ddp.launch(_train, cfg, resume, progress)


def _models(cfg: Stage2Config, device: torch.device):
    """(frozen stage 1, noise predictor), both on ``device``."""
    from cosmic.zoo import load_model

    stage1 = move_model(load_model(cfg.stage1).eval(), device)
    if stage1.config.get("in_channels", 3) != 3:  # its Ẽ reads one band; the crops here are RGB
        raise InputError(f"--stage1 {cfg.stage1}: a single-band model; stage 2 trains on RGB models only")
    for p in stage1.parameters():
        p.requires_grad_(False)
    net = NoisePredictor(M=stage1.config["M"], latent_channels=stage1.config["latent_channels"],
                         preset=cfg.preset, use_metadata=cfg.use_metadata,
                         quality_conditioning=stage1.onboard.quality_range is not None)
    if cfg.init_from:
        _init_from(net, cfg.init_from)
    return stage1, net.to(device)


def _loader(cfg: Stage2Config, info: ddp.DistInfo, first_step: int) -> DataLoader:
    """This rank's share of the batches from ``first_step`` on (crop i = f(seed, i))."""
    default = SensorMetadata(gsd=cfg.gsd) if cfg.gsd else SensorMetadata()
    if cfg.stream:
        from cosmic.training.streaming import streamed

        data, sampler = streamed(cfg.data, cfg.split, cfg.crop, cfg.extra_data, cfg.seed, default, info,
                                 first_step, cfg.batch_size)
    else:
        data = MetadataImageFolder(cfg.data, cfg.split, crop=cfg.crop, default=default, extra=cfg.extra_data,
                                   seed=cfg.seed)
        sampler = ddp.StepSampler(first_step, cfg.batch_size, info.rank, info.world)
    return DataLoader(data, batch_size=ddp.check_batch(cfg.batch_size, info), drop_last=True, sampler=sampler,
                      num_workers=cfg.workers, persistent_workers=cfg.workers > 0,
                      generator=torch.Generator().manual_seed(cfg.seed))


def _train(cfg: Stage2Config, info: ddp.DistInfo, resume: bool, progress: bool) -> Path:
    refuse_val_split(cfg.split)
    out = prepare_run(cfg.out, cfg.threads, ddp.rank_seed(cfg.seed, info))
    loop = TrainLoop(Cadence.of(cfg), out / "last", info, cfg.precision, progress, "stage2")
    task = Stage2Task(cfg, loop, *_models(cfg, info.device))
    fresh = {"step": 0, "losses": [], "config": asdict(cfg)}
    state = loop.resume(task, fresh, cfg.seed) if resume else fresh
    if state is fresh:
        state["latent_scale"] = measure_latent_scale(task.stage1, _loader(cfg, info, 0), cfg.residual, info=info)
    task.latent_scale = state["latent_scale"]
    if info.main:
        write_config(out / "stage2_config.json", asdict(cfg))
    task.net = loop.wrap(task.model, ignore_suffix=None)
    step = int(state["step"])
    loop.run(task, iter(_loader(cfg, info, step)), state, MetricsLog(out, step, enabled=info.main))
    final = out / "final"
    if info.main:
        task.shadow.copy_to(task.model.parameters())
        DiffusionCompensator(task.model.eval(), state["latent_scale"], cfg.residual).save_pretrained(
            final, extra={"stage2": asdict(cfg), "stage1": str(cfg.stage1)})
    ddp.barrier(info)
    return final
