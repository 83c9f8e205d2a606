"""Stage-1 training (paper Algorithm 1, first stage): E, h_a, h_s, Ẽ, ẑ0 and D together.

CPU-minded: images live in memory, tensors are channels_last, bf16 autocast is optional, and a
checkpoint (safetensors + JSON) is written every ``checkpoint_every`` steps so a run can resume.
Before every save, ``update()`` rebuilds the entropy tables so any checkpoint can code real
bitstreams.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from cosmic.errors import InputError
from cosmic.models.registry import build_model
from cosmic.training.checkpoint import load_checkpoint, prepare_run, save_checkpoint
from cosmic.training.data import ImageFolder
from cosmic.training.losses import Stage1Loss, psnr

__all__ = ["Stage1Config", "train_stage1", "evaluate"]


@dataclass
class Stage1Config:
    data: str
    out: str
    preset: str = "small"
    arch: str = "cosmic"
    lmbda: float = 0.0026
    kl_weight: float = 0.5
    est_weight: float = 0.5  # weight of the no-compensation (ẑ0) path in the distortion term
    chroma_weight: float = 0.0  # extra weight on the ẑ0 path's low-pass colour error
    steps: int = 20000
    batch_size: int = 8
    crop: int = 128
    lr: float = 1e-4
    aux_lr: float = 1e-3
    lr_drop_at: float = 0.85  # fraction of steps after which lr drops 10x
    val_every: int = 1000
    val_images: int = 42
    checkpoint_every: int = 250
    threads: int = 0  # 0: torch's default
    bf16: bool = False
    channels_last: bool = True
    seed: int = 0
    workers: int = 0
    name: str | None = None
    init_from: str | None = None  # start from this model's weights (e.g. a new λ); fresh optimizer
    colour_shortcut: bool = False  # add the colour shortcut to E (see ColourShortcut)
    cams: bool = True  # False: the paper's "w/o CAM" ablation (Fig. 6), E without its CAMs
    extra_data: list[str] | None = None  # images or folders mixed into the training crops


def _split_parameters(model):
    main = [p for n, p in model.named_parameters() if not n.endswith(".quantiles") and p.requires_grad]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    return main, aux


@torch.no_grad()
def evaluate(model, dataset, loss_fn, channels_last: bool = True) -> dict:
    """Mean loss terms and PSNR of both decoder paths on whole validation images (forward pass,
    likelihood rate; use ``cosmic eval`` for real-bitstream figures)."""
    model.eval()
    sums: dict[str, float] = {}
    for i in range(len(dataset)):
        x = dataset[i].unsqueeze(0)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = model(x)
        terms = loss_fn(out, x)
        terms["psnr"] = torch.tensor(psnr(terms["mse"]))
        terms["psnr_est"] = torch.tensor(psnr(terms["mse_est"]))
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v)
    model.train()
    return {k: v / len(dataset) for k, v in sums.items()}


def _init_from(model, source: str) -> None:
    """Copy the weights of a saved model of the same architecture and size (fine-tuning to a new
    λ starts here, as CompressAI's rate points usually do)."""
    from cosmic.zoo import model_path
    from safetensors.torch import load_file

    path = model_path(source)
    config = type(model).read_config(path)
    added = {"colour_shortcut"}  # may be switched on when fine-tuning a model without it
    mine = {k: v for k, v in model.config.items() if k != "name" and k not in added}
    theirs = {k: v for k, v in config.items() if not k.startswith("_") and k != "name" and k not in added}
    if mine != theirs:
        raise ValueError(f"--init-from {source}: its config {theirs} differs from this run's {mine}")
    state = load_file(str(path / "model.safetensors"))
    missing = set(model.state_dict()) - set(state)
    if any(not k.startswith("onboard.colour.") for k in missing):
        raise ValueError(f"--init-from {source}: weights missing for {sorted(missing)[:3]}")
    model.load_state_dict(state, strict=not missing)  # a new colour shortcut keeps its zero init
    print(f"initialised from {path}")


def train_stage1(cfg: Stage1Config, resume: bool = True, progress: bool = True) -> Path:
    if not cfg.cams and cfg.arch != "cosmic":
        raise InputError(f"--no-cams: only the cosmic architecture has CAMs, not {cfg.arch}")
    out = prepare_run(cfg.out, cfg.threads, cfg.seed)

    overrides = {"name": cfg.name} if cfg.name else {}
    if cfg.colour_shortcut:
        overrides["colour_shortcut"] = True
    if not cfg.cams:
        overrides["cam_positions"] = ()
    model = build_model(cfg.arch, cfg.preset, **overrides)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    main_params, aux_params = _split_parameters(model)
    optimizer = torch.optim.Adam(main_params, lr=cfg.lr)
    aux_optimizer = torch.optim.Adam(aux_params, lr=cfg.aux_lr)
    optimizers = {"main": optimizer, "aux": aux_optimizer}
    loss_fn = Stage1Loss(cfg.lmbda, cfg.kl_weight, cfg.est_weight, cfg.chroma_weight)

    ckpt = out / "last"
    state = {"step": 0, "history": [], "config": asdict(cfg)}
    if resume and (ckpt / "trainer.json").is_file():
        state = load_checkpoint(ckpt, model, optimizers)
        print(f"resumed from {ckpt} at step {state['step']}")
    elif cfg.init_from:
        _init_from(model, cfg.init_from)
    (out / "stage1_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")

    train_set = ImageFolder(cfg.data, "train", crop=cfg.crop, samples_per_epoch=10**9,
                            extra=cfg.extra_data)
    val_set = ImageFolder(cfg.data, "val", crop=None, limit=None)
    if len(val_set.images) > cfg.val_images:  # a spread-out, fixed subset
        stride = len(val_set.images) / cfg.val_images
        val_set.images = [val_set.images[int(i * stride)] for i in range(cfg.val_images)]
    loader = DataLoader(train_set, batch_size=cfg.batch_size, num_workers=cfg.workers, drop_last=True)

    step = int(state["step"])
    model.train()
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, dynamic_ncols=True, desc="stage1")
    started, t0, seen = time.time(), time.time(), 0
    it = iter(loader)
    while step < cfg.steps:
        lr = cfg.lr * (0.1 if step >= cfg.lr_drop_at * cfg.steps else 1.0)
        for g in optimizer.param_groups:
            g["lr"] = lr
        x = next(it)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        optimizer.zero_grad(set_to_none=True)
        aux_optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            out_ = model(x)
        terms = loss_fn(out_, x)
        if not math.isfinite(float(terms["loss"].detach())):
            raise FloatingPointError(f"non-finite loss at step {step}: {terms}")
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(main_params, 1.0)
        optimizer.step()
        aux_loss = model.aux_loss()
        aux_loss.backward()
        aux_optimizer.step()
        step += 1
        seen += 1
        bar.update(1)
        if step % 10 == 0:
            t = {k: float(v.detach()) for k, v in terms.items()}
            bar.set_postfix(
                bpp=f"{t['bpp']:.3f}", psnr=f"{psnr(t['mse']):.2f}", psnr0=f"{psnr(t['mse_est']):.2f}",
                kl=f"{t['kl_bpp']:.3f}", aux=f"{float(aux_loss.detach()):.0f}",
            )
        if step % cfg.val_every == 0 or step == cfg.steps:
            val = evaluate(model, val_set, loss_fn, cfg.channels_last)
            val["step"] = step
            val["wall_s"] = time.time() - started
            val["steps_per_s"] = seen / max(time.time() - t0, 1e-9)
            state["history"].append(val)
            tqdm.write(
                f"val @ {step}: bpp {val['bpp']:.4f}  psnr(ẑ0) {val['psnr_est']:.2f}  "
                f"psnr(Ẽ) {val['psnr']:.2f}  kl {val['kl_bpp']:.4f}  {val['steps_per_s']:.2f} it/s"
                + (f"  chroma(ẑ0) {val['chroma_est']:.2e}" if "chroma_est" in val else "")
            )
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            model.update(force=True)
            state["step"] = step
            save_checkpoint(ckpt, model, optimizers, state)
    bar.close()
    model.update(force=True)
    final = out / "final"
    model.save_pretrained(final, extra={"stage1": asdict(cfg), "history": state["history"][-1:]})
    return final

