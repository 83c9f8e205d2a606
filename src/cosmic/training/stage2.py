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
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset
from cosmic.utils.progress import progress_bar as tqdm

from cosmic.errors import InputError
from cosmic.ground.diffusion.metadata_encoder import metadata_to_tensor
from cosmic.ground.diffusion.noise_predictor import NoisePredictor
from cosmic.ground.diffusion.sampler import SCHEDULE, DiffusionCompensator
from cosmic.io.product_metadata import sidecar_metadata
from cosmic.metadata import SensorMetadata, sidecar_for
from cosmic.training import distributed as ddp
from cosmic.training.checkpoint import check_resume, load_checkpoint, prepare_run, save_checkpoint
from cosmic.training.validation import say_held_out
from cosmic.training.data import ImageFolder, refuse_val_split
from cosmic.utils.pretrained import component_class, read_model_index
from cosmic.training.metrics_log import MetricsLog
from cosmic.utils.device import grad_scaler, move_model

__all__ = ["Stage2Config", "MetadataImageFolder", "train_stage2", "stage2_loss"]


@dataclass
class Stage2Config:
    stage1: str
    data: str
    out: str
    preset: str = "small"
    steps: int = 20000
    batch_size: int = 8
    crop: int = 256
    lr: float = 1e-4
    ema_decay: float = 0.999
    checkpoint_every: int = 250
    gsd: float | None = None  # a GSD known for the whole dataset (UC Merced: 0.3048 m)
    init_from: str | None = None  # a diffusers UNet, or a COSMIC stage-2 model to warm-start from
    use_metadata: bool = True
    residual: bool = True  # diffuse z0 - ẑ0(y_hat) (ours) instead of z0 itself (the paper)
    extra_data: list[str] | None = None  # images or folders (with sidecars) mixed into the crops
    seed: int = 0
    threads: int = 0
    device: str = "auto"  # auto, cpu, cuda, cuda:N (under torchrun: each rank's cuda:LOCAL_RANK)
    precision: str = "fp32"  # fp32, bf16 or fp16 (CUDA) autocast of the noise predictor
    workers: int = 0  # DataLoader worker processes
    stream: bool = False  # read training images from disk as needed instead of holding them in RAM
    log_every: int = 10
    split: str = "train"  # SPLITS.json split(s) of --data, '+'-joined (never val)


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
        ours = issubclass(component_class(read_model_index(source).get("_class_name")),
                          (NoisePredictor, DiffusionCompensator))
    except (OSError, ValueError):
        ours = False
    if ours:
        load_noise_predictor(net, DiffusionCompensator.from_pretrained(source).net.state_dict(), source)
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


def _resume(ckpt: Path, net: NoisePredictor, optimizer, ema: EMAModel, cfg: Stage2Config) -> dict:
    """Load a stage-2 checkpoint (weights, AdamW moments, EMA shadow); the trainer state."""
    state = load_checkpoint(ckpt, net, {"main": optimizer})
    theirs = state["config"].get("residual", False)  # runs older than the option trained on z0
    if theirs != cfg.residual:
        raise InputError(f"{ckpt}: that run trains on the {'residual' if theirs else 'z0'} target; "
                         f"resume it with {'--residual' if theirs else '--no-residual'}")
    shadow = load_file(str(ckpt / "ema.safetensors"))
    ema.shadow_params = [shadow[n].to(p.device) for n, p in net.named_parameters()]
    ema.optimization_step = state["step"]
    return state


def _checkpoint(ckpt: Path, net: NoisePredictor, optimizer, ema: EMAModel, state: dict) -> None:
    save_checkpoint(ckpt, net, {"main": optimizer}, state)
    names = [n for n, _ in net.named_parameters()]
    save_file({n: p.detach().cpu().contiguous() for n, p in zip(names, ema.shadow_params)},
              str(ckpt / "ema.safetensors"))


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
    stage1, net = _models(cfg, info.device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.0)
    ema = EMAModel(net.parameters(), decay=cfg.ema_decay)
    ckpt = out / "last"
    state = {"step": 0, "losses": [], "config": asdict(cfg)}
    if resume and (ckpt / "trainer.json").is_file():
        state = _resume(ckpt, net, optimizer, ema, cfg)
        if info.active:  # the saved RNG state is rank 0's
            torch.manual_seed(ddp.rank_seed(cfg.seed, info, int(state["step"])))
    else:
        state["latent_scale"] = measure_latent_scale(stage1, _loader(cfg, info, 0), cfg.residual, info=info)
    if info.main:
        from cosmic.training.config import write_config

        write_config(out / "stage2_config.json", asdict(cfg))
    parts = (stage1, ddp.wrap(net, info, ignore_suffix=None), optimizer, ema,
             grad_scaler(info.device, cfg.precision), MetricsLog(out, int(state["step"]), enabled=info.main))
    _loop(cfg, info, parts, state, out, progress)
    final = out / "final"
    if info.main:
        ema.copy_to(net.parameters())
        DiffusionCompensator(net.eval(), state["latent_scale"], cfg.residual).save_pretrained(
            final, extra={"stage2": asdict(cfg), "stage1": str(cfg.stage1)})
    ddp.barrier(info)
    return final


def _loop(cfg: Stage2Config, info: ddp.DistInfo, parts, state: dict, out: Path, progress: bool) -> None:
    stage1, net, optimizer, ema, scaler, log = parts
    raw = getattr(net, "module", net)
    scheduler = DDPMScheduler(**SCHEDULE)
    step = int(state["step"])
    net.train()
    bar = tqdm(total=cfg.steps, initial=step, disable=not (progress and info.main), dynamic_ncols=True,
               desc="stage2")
    it = iter(_loader(cfg, info, step))
    window: list[float] = []
    t0 = time.time()
    while step < cfg.steps:
        x, values, present = (t.to(info.device, non_blocking=True) for t in next(it))
        loss = stage2_loss(stage1, net, scheduler, x, values, present, state["latent_scale"],
                           cfg.residual, cfg.precision)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(raw.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        ema.step(raw.parameters())
        step += 1
        window.append(float(loss.detach()))
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            mean = ddp.mean_terms({"loss": sum(window[-cfg.log_every:]) / len(window[-cfg.log_every:])}, info)
            log.log(step, mean)
            bar.set_postfix(loss=f"{mean['loss']:.4f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            state["step"] = step
            state["losses"].append({"step": step, "loss": sum(window) / len(window),
                                    "steps_per_s": len(window) / max(time.time() - t0, 1e-9)})
            window, t0 = [], time.time()
            if info.main:
                _checkpoint(out / "last", raw, optimizer, ema, state)
            ddp.barrier(info)
    bar.close()
    log.close()
