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

``kind="channel"`` trains :class:`ChannelWiseContext` instead (Minnen & Singh 2020's channel
conditioning) by the same loss, batches and schedule: a *measurement* for choosing between the
two at equal steps (issue 30 item 2), not a coding path (only the checkerboard codes files).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from compressai.models.utils import conv
from torch import nn

__all__ = ["ContextConfig", "ChannelWiseContext", "with_context", "train_context"]


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
    kind: str = "checkerboard"  # or "channel": ChannelWiseContext, measured by its rate only
    stop_at: int | None = None  # stop after this step (the schedule stays that of ``steps``)


class ChannelWiseContext(nn.Module):
    """Channel-conditional (scales, means) after Minnen & Singh, "Channel-wise autoregressive
    entropy models", ICIP 2020: y's M channels in ``slices`` groups, coded one after the other;
    group i's parameters are the hyperprior's corrected from the decoded groups before it (a 3x3
    conv over them), group 0's are the hyperprior's, and each group is rounded around its own
    corrected means (what a decoder of group i has, and what group i+1's context reads).
    Zero-initialised residual like :class:`~cosmic.onboard.context.CheckerboardContext`, and
    about the same on-board cost (0.33 against 0.52 MMACs per latent position at M = 192, 4
    slices). Departure: no latent residual prediction."""

    def __init__(self, M: int, slices: int = 4):
        super().__init__()
        self.width = M // slices
        if self.width * slices != M:
            raise ValueError(f"{M} channels do not split into {slices} slices")
        w = self.width
        self.context = nn.ModuleList(conv(i * w, 2 * w, kernel_size=3, stride=1) for i in range(1, slices))
        self.parameters_net = nn.ModuleList(
            nn.Sequential(conv(4 * w, 2 * w, kernel_size=1, stride=1), nn.ReLU(inplace=True),
                          conv(2 * w, 2 * w, kernel_size=1, stride=1)) for _ in range(1, slices))
        for net in self.parameters_net:
            nn.init.zeros_(net[-1].weight)
            nn.init.zeros_(net[-1].bias)

    def forward(self, scales: torch.Tensor, means: torch.Tensor, y: torch.Tensor):
        """(scales, means, y_hat) of every group, in order: y_hat = round(y - means) + means with
        each group's own means (a straight-through round, so E still learns through it)."""
        from cosmic.onboard.codec import ste_round

        w = self.width
        out_scales, out_means = [scales[:, :w]], [means[:, :w]]
        y_hat = [ste_round(y[:, :w] - means[:, :w]) + means[:, :w]]
        for i, (context, net) in enumerate(zip(self.context, self.parameters_net), 1):
            part = slice(i * w, (i + 1) * w)
            hidden = torch.cat([scales[:, part], means[:, part], context(torch.cat(y_hat, 1))], dim=1)
            log_gain, delta_means = net(hidden).chunk(2, 1)
            out_scales.append(scales[:, part] * torch.exp(log_gain))
            out_means.append(means[:, part] + delta_means)
            y_hat.append(ste_round(y[:, part] - out_means[-1]) + out_means[-1])
        return torch.cat(out_scales, 1), torch.cat(out_means, 1), torch.cat(y_hat, 1)


def with_context(model, kind: str = "checkerboard"):
    """``model`` (a :class:`~cosmic.models.cosmic.Cosmic`) with its on-board codec replaced by
    one that has a zero-initialised checkerboard context: the same bits and pixels until trained.
    ``kind="channel"``: a :class:`ChannelWiseContext` in its place (a rate measurement only: the
    codec's coding paths are the checkerboard's, so such a model must not code files)."""
    from cosmic.onboard.codec import OnboardCodec

    config = {k: v for k, v in model.onboard.config.items() if not k.startswith("_")}
    codec = OnboardCodec(**{**config, "context": "checkerboard"})
    missing, unexpected = codec.load_state_dict(model.onboard.state_dict(), strict=False)
    if unexpected or any(not k.startswith("context_model.") for k in missing):
        raise ValueError(f"state mismatch: missing {missing}, unexpected {unexpected}")
    if kind == "channel":
        codec.context_model = ChannelWiseContext(codec.M)
    model.onboard = codec
    return model


def _rate(codec, x: torch.Tensor, quality: torch.Tensor | None) -> torch.Tensor:
    """bpp of y (the only part the context changes) for a batch: noisy likelihoods in training
    mode, y rounded around its (context's) means in eval mode."""
    if not isinstance(codec.context_model, ChannelWiseContext):
        likelihoods = codec(x, quality)["likelihoods"]["y"]
    else:  # the groups in order: each one's parameters need the groups before it rounded
        y = codec.analysis(x, quality)
        z_hat, _ = codec.entropy_bottleneck(codec.h_a(y))
        scales, means, _ = codec.context_model(*codec.h_s(z_hat).chunk(2, 1), y)
        likelihoods = codec.gaussian_conditional(y, scales, means=means)[1]
    return -torch.log2(likelihoods).sum() / (x.shape[0] * x.shape[2] * x.shape[3])


def train_context(cfg: ContextConfig) -> Path:
    """Train the context of ``cfg.model`` (see the module docstring); returns OUT/final."""
    from cosmic.training.data import ImageFolder
    from cosmic.zoo import load_model

    torch.manual_seed(cfg.seed)
    model = with_context(load_model(cfg.model), cfg.kind)
    codec = model.onboard.train()
    for name, p in codec.named_parameters():
        p.requires_grad_(name.startswith("context_model."))
    params = [p for p in codec.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * s / cfg.steps)))
    data = ImageFolder(cfg.data, cfg.split, crop=cfg.crop, samples_per_epoch=cfg.steps * cfg.batch_size, seed=cfg.seed)
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=False, drop_last=True)
    levels = codec.quality_range
    gen, t0, out = torch.Generator().manual_seed(cfg.seed), time.time(), Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "metrics.csv", "w") as log:
        log.write("step,wall_s,y_bpp\n")
        for step, x in enumerate(loader, 1):
            q = None if levels is None else levels[0] + (levels[1] - levels[0]) * torch.rand(x.shape[0], generator=gen)
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
    if cfg.kind != "checkerboard":  # a measurement: its curve is in metrics.csv
        from safetensors.torch import save_file

        save_file(codec.context_model.state_dict(), str(out / f"{cfg.kind}_context.safetensors"))
        return out
    model.eval()
    model.update(force=True)
    return model.save_pretrained(out / "final")
