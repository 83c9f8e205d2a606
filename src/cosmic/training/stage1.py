"""Stage-1 training (paper Algorithm 1, first stage): E, h_a, h_s, Ẽ, ẑ0 and D together.

Runs on the CPU or a GPU (``device``; ``precision`` bf16 / fp16 autocast on the network parts,
:mod:`cosmic.utils.device`), on one process or several under ``torchrun`` (DDP,
:mod:`cosmic.training.distributed`). Images live in memory (:class:`~cosmic.training.data.ImageFolder`)
or are read from disk as needed (``stream``, :mod:`cosmic.training.streaming`). A checkpoint
(safetensors + JSON) is written every ``checkpoint_every`` steps so a run can resume; before every
save, ``update()`` rebuilds the entropy tables so any checkpoint can code real bitstreams. Loss
terms go to ``OUT/metrics.csv`` (and TensorBoard when installed) every ``log_every`` steps.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
from dataclasses import asdict
from pathlib import Path

import torch
from cosmic.utils.progress import progress_bar as tqdm

from cosmic.errors import InputError
from cosmic.onboard.context import CONTEXTS
from cosmic.models.registry import build_model
from cosmic.onboard.rate import interpolate_levels
from cosmic.training import distributed as ddp
from cosmic.training.checkpoint import check_resume, make_ema, prepare_run
from cosmic.training.config import STAGE1_HELP, Stage1Config, write_config
from cosmic.training.data import LUMINANCE, ImageFolder, crop_loader, refuse_val_split, single_band
from cosmic.training.loop import Cadence, Task, TrainLoop, set_lr
from cosmic.training.metrics_log import MetricsLog
from cosmic.training.losses import Stage1Loss, psnr
from cosmic.training.validation import say_held_out, validate_bitstreams
from cosmic.training.widen import single_band_state, widen_ground_state, widen_onboard_state

__all__ = ["Stage1Config", "STAGE1_HELP", "Stage1Task", "train_stage1", "stage1_loop", "initial_state", "evaluate"]


GAIN_PARAMETERS = ("onboard.gain.", "ground.inverse_gain.")


def _parameter_groups(model, gain_lr_scale: float = 1.0) -> tuple[list[dict], list]:
    """(Adam param groups of the main optimizer, the entropy models' quantiles for the aux one).

    With ``gain_lr_scale`` != 1 the variable-rate gain units get their own group whose lr is that
    multiple of the schedule's: a gain vector moves by about lr per Adam step, so at lr 1e-4 a run
    that widens the λ range (a new, wider ``gain_span``) takes tens of thousands of steps to widen
    the coded rate range; Cui et al. train the gains with the transforms at one lr from scratch,
    which is where a fresh run stays (scale 1)."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    aux = [p for n, p in trainable if n.endswith(".quantiles")]
    main = [(n, p) for n, p in trainable if not n.endswith(".quantiles")]
    gains = [p for n, p in main if n.startswith(GAIN_PARAMETERS)]
    if gain_lr_scale == 1.0 or not gains:
        return [{"params": [p for _, p in main], "lr_scale": 1.0}], aux
    rest = [p for n, p in main if not n.startswith(GAIN_PARAMETERS)]
    return [{"params": rest, "lr_scale": 1.0}, {"params": gains, "lr_scale": gain_lr_scale}], aux


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
    λ starts here, as CompressAI's rate points usually do). A fixed-rate model may start a
    variable-rate run: its gain units are new and keep their initialisation (gain 1 at the
    middle quality, so the source's λ should sit near the middle of ``rate_lambdas``), as a new
    colour shortcut keeps its zero initialisation. An RGB model may start a single-band run
    (``bands=1``): :func:`~cosmic.training.widen.single_band_state` converts it exactly. A wider
    ground decoder or E (``ground_channels``, ``onboard_channels``) starts as the source's, exactly
    (:mod:`cosmic.training.widen`). A run with a ``context`` starts a source's missing context at
    zero (the source's bits exactly); a source's context is never dropped."""
    from cosmic.utils.pretrained import read_weights
    from cosmic.zoo import model_path, read_model_config

    path = model_path(source)
    config = read_model_config(path)
    defaults = {k: p.default for k, p in inspect.signature(type(model)).parameters.items()}
    added = {"colour_shortcut", "name", "rate_levels", "gain_span", "ground_channels", "in_channels",
             "onboard_channels", "context"}
    mine = {k: v for k, v in model.config.items() if k not in added}
    theirs = {k: config.get(k, defaults.get(k)) for k in mine}  # older configs lack newer keys
    theirs = {k: list(v) if isinstance(v, tuple) else v for k, v in theirs.items()}
    if mine != theirs:
        raise ValueError(f"--init-from {source}: its config {theirs} differs from this run's {mine}")
    state = _widened(model, read_weights(path), config, source)  # either layout; float16 / int8 too
    if config.get("in_channels", 3) != model.config.get("in_channels", 3):  # RGB -> one band, exactly
        state = single_band_state(model, state)
    missing = set(model.state_dict()) - set(state)
    if any(k.startswith("onboard.context_model.") for k in set(state) - set(model.state_dict())):
        raise InputError(f"--init-from {source}: it has a context model; train it with --context "
                         f"{config.get('context') or 'KIND'} (checkerboard or channel)")
    new_parts = ("onboard.colour.", "onboard.gain.", "ground.inverse_gain.", "onboard.context_model.")
    if any(not k.startswith(new_parts) for k in missing):
        raise ValueError(f"--init-from {source}: weights missing for {sorted(missing)[:3]}")
    model.load_state_dict(state, strict=not missing)  # new parts keep their initialisation
    print(f"initialised from {path}")


def _widened(model, state: dict, config: dict, source: str) -> dict:
    """``state`` with a narrower source's ground decoder and E widened to ``model``'s widths;
    InputError when a width would shrink."""
    ground = (config.get("ground_channels"), model.config.get("ground_channels"))
    onboard = [c.get("onboard_channels") or c.get("N") for c in (config, model.config)]
    for (old_n, new_n), what, flag in ((ground, "ground decoder", "--ground-channels"),
                                       (onboard, "on-board encoder", "--onboard-channels")):
        if old_n is not None and new_n is not None and new_n < old_n:
            raise InputError(f"--init-from {source}: its {what} has {old_n} channels; {flag} {new_n} "
                             f"would narrow it (a model only widens)")
    if ground[0] != ground[1]:
        state = widen_ground_state(model, state, *ground)
    if onboard[0] != onboard[1]:
        state = widen_onboard_state(model, state, *onboard)
    return state


def learning_rate(cfg: Stage1Config, step: int) -> float:
    """Linear warm-up from lr/100 over ``warmup_steps``, constant, then from ``lr_drop_at`` of the
    run either one 10x drop ("step", the first recipe) or a cosine to ``final_lr`` ("cosine")."""
    if step < cfg.warmup_steps:
        return cfg.lr * (0.01 + 0.99 * step / cfg.warmup_steps)
    start = cfg.lr_drop_at * cfg.steps
    if step < start:
        return cfg.lr
    if cfg.lr_schedule == "step":
        return cfg.lr * 0.1
    t = (step - start) / max(cfg.steps - start, 1.0)
    return cfg.lr * (cfg.final_lr + (1 - cfg.final_lr) * 0.5 * (1 + math.cos(math.pi * t)))


def sample_rates(cfg: Stage1Config, step: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(qualities, λs) of the batch at ``step`` for a variable-rate run, a pure function of
    (seed, step): quality ~ U[1, K] per sample, λ interpolated log-linearly between the levels'
    λs as the gains are (see :class:`~cosmic.onboard.rate.GainUnits`). (None, None) otherwise."""
    if not cfg.rate_lambdas:
        return None, None
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    quality = 1.0 + (len(cfg.rate_lambdas) - 1) * torch.rand(cfg.batch_size, generator=gen)
    log_lmbda = torch.log(torch.tensor(cfg.rate_lambdas, dtype=torch.float64))
    return quality, interpolate_levels(log_lmbda, quality).exp().float()


def model_overrides(cfg: Stage1Config) -> dict:
    """Constructor arguments the run sets beyond its preset."""
    overrides: dict = {"name": cfg.name} if cfg.name else {}
    cosmic_only = {"colour_shortcut": cfg.colour_shortcut, "cam_positions": () if not cfg.cams else None,
                   "colour_space": None if cfg.colour_space == "rgb" else cfg.colour_space,
                   "ground_channels": cfg.ground_channels, "in_channels": 1 if cfg.bands == 1 else None,
                   "onboard_channels": _onboard_width(cfg), "context": cfg.context}
    if cfg.rate_lambdas:
        lambdas = sorted(cfg.rate_lambdas)
        cosmic_only["rate_levels"] = len(lambdas)
        cosmic_only["gain_span"] = 0.5 * math.log(lambdas[-1] / lambdas[0])
    chosen = {k: v for k, v in cosmic_only.items() if v not in (None, False)}
    if chosen and cfg.arch != "cosmic":
        raise InputError(f"{', '.join(chosen)}: only the cosmic architecture has these, not {cfg.arch}")
    return {**overrides, **chosen}


def _onboard_width(cfg: Stage1Config) -> int | None:
    """E's width for the run: ``--onboard-channels``, or with ``--ground-only`` the init model's
    own (the on-board codec is kept as it is, so its width is the source's, whatever the preset's
    N; an ``--onboard-channels`` that differs from it is refused)."""
    if not (cfg.ground_only and cfg.init_from and cfg.arch == "cosmic"):
        return cfg.onboard_channels
    from cosmic.zoo import model_path, read_model_config

    source = read_model_config(model_path(cfg.init_from))
    width = source.get("onboard_channels") or source.get("N")
    if cfg.onboard_channels not in (None, width):
        raise InputError(f"--ground-only keeps the on-board codec of {cfg.init_from} (E {width} wide); "
                         f"it cannot change it (--onboard-channels {cfg.onboard_channels})")
    return width


def _freeze_onboard(model) -> None:
    """``--ground-only``: the on-board codec (E, the hyperprior, the entropy models, the gains)
    keeps the init model's weights, so every bitstream stays byte-identical, and runs in eval
    mode, so the ground decoder trains on truly rounded y_hat, what it decodes in use (the
    paper's noise proxy is only needed where the encoder learns). The rate term is then a
    constant; only the distortion and Ẽ's KL train."""
    model.onboard.requires_grad_(False)
    model.onboard.eval()


def _check(cfg: Stage1Config) -> Stage1Config:
    """``cfg`` checked (one-line InputErrors), as the run uses it (``bf16`` as ``precision``); not modified."""
    refuse_val_split(cfg.split)
    if not cfg.cams and cfg.arch != "cosmic":
        raise InputError(f"--no-cams: only the cosmic architecture has CAMs, not {cfg.arch}")
    if cfg.rate_lambdas is not None:
        if len(cfg.rate_lambdas) < 2 or list(cfg.rate_lambdas) != sorted(cfg.rate_lambdas) \
                or min(cfg.rate_lambdas) <= 0:
            raise InputError("--rate-lambdas: at least two positive λs in ascending order")
    if cfg.ground_only and not (cfg.init_from and cfg.arch == "cosmic"):
        raise InputError("--ground-only: needs --init-from, a cosmic model whose on-board codec it keeps")
    if cfg.onboard_channels is not None and (cfg.onboard_channels <= 0 or cfg.onboard_channels % 2):
        raise InputError(f"--onboard-channels {cfg.onboard_channels}: a positive even number (E's LCBs "
                         "make their outputs in two halves)")
    if cfg.context is not None and cfg.context not in CONTEXTS:
        raise InputError(f"--context {cfg.context}: choose one of {', '.join(CONTEXTS)}")
    if cfg.lr_schedule not in ("step", "cosine"):
        raise InputError(f"--lr-schedule {cfg.lr_schedule}: choose step or cosine")
    if cfg.bands not in (1, 3):
        raise InputError(f"--bands {cfg.bands}: a model codes 1 band or 3 (RGB)")
    if cfg.bands == 1 and (cfg.colour_space != "rgb" or cfg.chroma_weight or cfg.stream):
        raise InputError("--bands 1: a single-band model has no colour (no --colour-space ycbcr, "
                         "--chroma-weight) and reads images held in memory (no --stream)")
    model_overrides(cfg)
    if cfg.bf16 and cfg.precision == "fp32":
        return dataclasses.replace(cfg, precision="bf16")  # the older flag
    return cfg


def crop_to_stride(img):
    """An (H, W, C) array cut to whole multiples of the codec's stride (64 px): what validation codes."""
    return img[: img.shape[0] // 64 * 64, : img.shape[1] // 64 * 64]


def _val_images(cfg: Stage1Config) -> list:
    val_set = ImageFolder(cfg.data, "val", crop=None, limit=None, bands=cfg.bands)
    if len(val_set.images) > cfg.val_images:  # a spread-out, fixed subset
        stride = len(val_set.images) / cfg.val_images
        val_set.images = [val_set.images[int(i * stride)] for i in range(cfg.val_images)]
    return val_set


def _validate(cfg: Stage1Config, model, val_set, loss_fn, step: int) -> dict:
    """Validation at ``step``: real bitstreams at the validation qualities (variable rate) or the
    forward-pass estimate (fixed rate); the model is in eval mode afterwards."""
    if next(model.parameters()).device.type != "cpu":  # the rANS coder and the metrics run on the CPU
        model = copy.deepcopy(model).cpu()
    if cfg.rate_lambdas:
        k = len(cfg.rate_lambdas)
        qualities = cfg.val_qualities or [1.0, (1.0 + k) / 2, float(k)]
        images = [img if cfg.bands == 3 else single_band(img, LUMINANCE) for img in val_set.images]
        val = {"rates": validate_bitstreams(model, [crop_to_stride(img) for img in images], qualities)}
        line = "  ".join(f"q{r['quality']:g}: {r['bpp']:.4f} bpp {r['psnr']:.2f} dB MS-SSIM {r['ms_ssim']}"
                         for r in val["rates"])
    else:
        val = evaluate(model, val_set, loss_fn, cfg.channels_last)
        line = f"bpp {val['bpp']:.4f}  psnr(ẑ0) {val['psnr_est']:.2f}  psnr(Ẽ) {val['psnr']:.2f}"
    tqdm.write(f"val @ {step}: {line}")
    return val


class Stage1Task(Task):
    """Stage 1 for the :class:`~cosmic.training.loop.TrainLoop`: the model (and ``net``, the same
    model DDP-wrapped under torchrun, set by :func:`_train`), the main and aux Adam optimizers, the
    EMA, the loss; one step at a time (:meth:`step`)."""

    def __init__(self, cfg: Stage1Config, loop: TrainLoop):
        self.cfg, self.loop, self.val_set = cfg, loop, None
        model = build_model(cfg.arch, cfg.preset, **model_overrides(cfg)).to(loop.device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if cfg.ground_only:
            _freeze_onboard(model)
        main_params, aux_params = _parameter_groups(model, cfg.gain_lr_scale)
        self.optimizers = {"main": torch.optim.Adam(main_params, lr=cfg.lr)}
        if aux_params:  # the entropy models' quantiles (none to train with --ground-only)
            self.optimizers["aux"] = torch.optim.Adam(aux_params, lr=cfg.aux_lr)
        self.model, self.net = model, model
        self.ema = make_ema(model, cfg.ema_decay) if cfg.ema_decay else None
        self.loss_fn = Stage1Loss(cfg.lmbda, cfg.kl_weight, cfg.est_weight, cfg.chroma_weight)

    def step(self, x: torch.Tensor, step: int) -> dict:
        cfg, info = self.cfg, self.loop.info
        x = x.to(info.device, non_blocking=True)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        quality, lmbda = sample_rates(cfg, step)
        if quality is not None:  # this rank's samples of the global batch
            pos = ddp.shard_positions(cfg.batch_size, info.rank, info.world)
            quality, lmbda = quality[pos].to(x.device), lmbda[pos]
        optimizer, aux_optimizer = self.optimizers["main"], self.optimizers.get("aux")
        set_lr(optimizer, learning_rate(cfg, step))
        optimizer.zero_grad(set_to_none=True)
        if aux_optimizer is not None:
            aux_optimizer.zero_grad(set_to_none=True)
        with self.loop.autocast():  # the network parts; the loss is computed in float32
            out = self.net(x) if quality is None else self.net(x, quality)
        terms = loss_fn_terms(self.loss_fn, out, x, lmbda, step)
        self.loop.optimise(terms["loss"], optimizer)  # gradients all-reduced here under DDP
        aux_loss = self.model.aux_loss()  # identical on every rank: not synchronised
        if aux_optimizer is not None:  # none with --ground-only: the entropy models are frozen
            aux_loss.backward()
            aux_optimizer.step()
        terms["aux"] = aux_loss
        return {k: float(v.detach()) for k, v in terms.items()}

    def train_mode(self) -> None:
        """Training mode; ``--ground-only`` keeps the on-board codec in eval mode (see :func:`_freeze_onboard`)."""
        self.net.train()
        if self.cfg.ground_only:
            self.model.onboard.eval()

    def shipped(self):
        """The weights a run ships: the EMA's, if kept."""
        return self.ema.module if self.ema is not None else self.model

    def validate(self, step: int) -> dict:
        return _validate(self.cfg, self.shipped(), self.val_set, self.loss_fn, step)

    def postfix(self, t: dict) -> dict:
        return {"bpp": f"{t['bpp']:.3f}", "psnr0": f"{psnr(t['mse_est']):.2f}", "kl": f"{t['kl_bpp']:.3f}",
                "aux": f"{t['aux']:.0f}"}

    def save(self, directory: Path, state: dict) -> None:
        self.model.update(force=True)  # any checkpoint can code real bitstreams
        super().save(directory, state)


def loss_fn_terms(loss_fn, out: dict, x: torch.Tensor, lmbda, step: int) -> dict:
    """The loss terms, refusing a non-finite loss (a diverged run stops with its step)."""
    terms = loss_fn(out, x, lmbda)
    if not math.isfinite(float(terms["loss"].detach())):
        raise FloatingPointError(f"non-finite loss at step {step}: {terms}")
    return terms


def stage1_loop(cfg: Stage1Config, info: ddp.DistInfo, progress: bool = True) -> TrainLoop:
    """The loop of a stage-1 run (checkpoints in ``out/last``; ``max_minutes`` 0 or None: no limit)."""
    return TrainLoop(Cadence.of(cfg, max_minutes=cfg.max_minutes or None), Path(cfg.out) / "last", info,
                     cfg.precision, progress, "stage1")


def initial_state(cfg: Stage1Config, task: Stage1Task, loop: TrainLoop, resume: bool) -> dict:
    """The trainer state: resumed from ``out/last`` if present (with any number of processes: the
    checkpoint is the model's, not a rank's), else fresh, from ``init_from``'s weights if given."""
    fresh = {"step": 0, "history": [], "config": asdict(cfg)}
    state = loop.resume(task, fresh, cfg.seed) if resume else fresh
    if state is fresh and cfg.init_from:
        _init_from(task.model, cfg.init_from)
        if task.ema is not None:
            task.ema.update_parameters(task.model)  # n = 0: the average starts at the loaded weights
        state["step"] = cfg.start_step
    return state


def train_stage1(cfg: Stage1Config, resume: bool = True, progress: bool = True) -> Path:
    """Train until ``cfg.steps`` (or ``pause_at`` / ``max_minutes``); checkpoints in ``out/last``
    resume exactly (weights, Adam moments, EMA, the torch RNG; crops and rates are functions of
    (seed, step)). Returns ``out/final``, the model (its EMA, if kept) as it stands at the end.
    Under torchrun each process trains its share of every batch (see
    :mod:`cosmic.training.distributed`); rank 0 alone validates and writes."""
    cfg = _check(cfg)
    if resume:
        check_resume(Path(cfg.out) / "last", asdict(cfg))  # before any weights are loaded
    say_held_out(cfg.data)
    return ddp.launch(_train, cfg, resume, progress)


def _train(cfg: Stage1Config, info: ddp.DistInfo, resume: bool, progress: bool) -> Path:
    out = prepare_run(cfg.out, cfg.threads, ddp.rank_seed(cfg.seed, info))
    loop = stage1_loop(cfg, info, progress)
    task = Stage1Task(cfg, loop)
    state = initial_state(cfg, task, loop, resume)
    if info.main:
        write_config(out / "stage1_config.json", asdict(cfg))
        task.val_set = _val_images(cfg)
    task.net = loop.wrap(task.model)
    step = int(state["step"])
    batches = iter(crop_loader(cfg, step, info))
    loop.run(task, batches, state, MetricsLog(out, step, enabled=info.main))
    final = _save_final(cfg, out, task.shipped(), state) if info.main else out / "final"
    ddp.barrier(info)
    return final


def _save_final(cfg: Stage1Config, out: Path, model, state: dict) -> Path:
    model.update(force=True)
    final = out / "final"
    model.save_pretrained(final, extra={"stage1": asdict(cfg), "history": state["history"][-1:]})
    return final
