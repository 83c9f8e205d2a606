"""Train a checkerboard context (:mod:`cosmic.onboard.context`) on top of a trained model, every
other weight frozen (issue 30 item 2).

    .venv/bin/python scripts/train_context.py --model src/cosmic/zoo/weights/cosmic-small-vr \\
        --data ../shared/data/ucmerced --out runs/ctx --steps 1500

The context only changes the entropy parameters of y's non-anchor half, so the loss is y's rate
alone: -log2 p(y_tilde) per pixel under the context's (scales, means), at qualities drawn
uniformly over a variable-rate model's range. The decoder is untouched; the means the context
predicts move y_hat by less than the quantisation step (y_hat = round(y - mean) + mean), which
the frozen ground decoder reads like any other y_hat (the rate-distortion check is the
measurement on real files: benchmarks/context_model.py). Adam, cosine schedule, fixed seed; a
model directory (the input model with ``context="checkerboard"`` and the trained context) is
written to OUT/final.

``kind="channel"`` trains the channel-wise context (:class:`~cosmic.onboard.context.
ChannelWiseContext`) instead, by the same loss, batches and schedule: the two were chosen between
this way at equal steps (issue 30 item 2; ``benchmarks/context_curves.py``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["ContextConfig", "with_context", "train_context", "context_batches"]


@dataclass
class ContextConfig:
    model: str  # model directory or shipped name
    data: str
    out: str = "runs/context"
    split: str = "train+train_extra"
    steps: int = 1500
    batch_size: int = 8
    crop: int = 128
    lr: float = 1e-3
    seed: int = 0
    log_every: int = 50
    kind: str = "checkerboard"  # or "channel" (ChannelWiseContext)
    stop_at: int | None = None  # stop after this step (the schedule stays that of ``steps``)


def with_context(model, kind: str = "checkerboard"):
    """``model`` (a :class:`~cosmic.models.cosmic.Cosmic`) with its on-board codec replaced by
    one that has a zero-initialised context of ``kind``: the same pixels until trained."""
    from cosmic.onboard.codec import OnboardCodec

    config = {k: v for k, v in model.onboard.config.items() if not k.startswith("_")}
    codec = OnboardCodec(**{**config, "context": kind})
    missing, unexpected = codec.load_state_dict(model.onboard.state_dict(), strict=False)
    if unexpected or any(not k.startswith("context_model.") for k in missing):
        raise ValueError(f"state mismatch: missing {missing}, unexpected {unexpected}")
    model.onboard = codec
    model.register_config(context=kind)
    return model


def _rate(codec, x: torch.Tensor, quality: torch.Tensor | None) -> torch.Tensor:
    """bpp of y (the only part the context changes) for a batch: noisy likelihoods in training
    mode, y rounded around its (context's) means in eval mode."""
    likelihoods = codec(x, quality)["likelihoods"]["y"]
    return -torch.log2(likelihoods).sum() / (x.shape[0] * x.shape[2] * x.shape[3])


def context_batches(cfg: ContextConfig, levels: tuple[float, float] | None):
    """``(step, crops, qualities)`` of a :func:`train_context` run, in order (qualities drawn
    uniformly over ``levels``, None for a fixed-rate model): the same for every run of one seed,
    which is what lets two kinds of context be compared on the same batches."""
    from cosmic.training.data import ImageFolder

    data = ImageFolder(cfg.data, cfg.split, crop=cfg.crop, samples_per_epoch=cfg.steps * cfg.batch_size, seed=cfg.seed)
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=False, drop_last=True)
    gen = torch.Generator().manual_seed(cfg.seed)
    for step, x in enumerate(loader, 1):
        q = None if levels is None else levels[0] + (levels[1] - levels[0]) * torch.rand(x.shape[0], generator=gen)
        yield step, x, q


def train_context(cfg: ContextConfig) -> Path:
    """Train the context of ``cfg.model`` (see the module docstring); returns OUT/final."""
    from cosmic.zoo import load_model

    torch.manual_seed(cfg.seed)
    model = with_context(load_model(cfg.model), cfg.kind)
    codec = model.onboard.train()
    for name, p in codec.named_parameters():
        p.requires_grad_(name.startswith("context_model."))
    params = [p for p in codec.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * s / cfg.steps)))
    t0, out = time.time(), Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "metrics.csv", "w") as log:
        log.write("step,wall_s,y_bpp\n")
        for step, x, q in context_batches(cfg, codec.quality_range):
            loss = _rate(codec, x, q)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if step % cfg.log_every == 0 or step == cfg.steps:
                log.write(f"{step},{time.time() - t0:.0f},{loss.item():.5f}\n")
                log.flush()
            if step == cfg.stop_at:
                break
    model.eval()
    model.update(force=True)
    return model.save_pretrained(out / "final")
