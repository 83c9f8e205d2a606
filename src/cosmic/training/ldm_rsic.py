"""LDM-RSIC training (``cosmic train enhance``): stage I, the prior regressor, stage II.

Data: the ``split`` lists of a folder (UC Merced ``train+train_extra``; never ``val``) and
overlapping squares of the ``extra_data`` scenes (:func:`training_squares`), every
256 x 256 image coded by the source codec at ``rates_per_image`` rates. JPEG2000: Pillow/OpenJPEG
as :mod:`cosmic.evaluation.classical` configures it, the knob being the compression ratio 24/bpp,
bpp drawn log-uniformly over ``bpp_range``. A COSMIC model (``source`` = its shipped name or
directory, e.g. ``cosmic-small-vr``): real ``.cosmic`` files through the encode and decode
pipelines (steps 0), the knob being the quality, drawn uniformly over the model's range. Either
way the rate fed to the network is the *measured* bpp of the real file. Originals and decodes are
held in memory as uint8 and cached in ``out/pairs.npz``. ``init_from`` starts every component
from a trained enhancer of the same preset (ours: a warm start, e.g. COSMIC from JPEG2000).

Phases, run in order and each resumable exactly (checkpoints in ``out/<phase>/last``, crops a
pure function of (seed, step), Adam moments, EMA and RNG state via :mod:`cosmic.training.checkpoint`):

1. ``stage1``: self-encoder + MEN, MSE(MEN(x̃, SE(x, x̃), rate), x) (paper stage I).
2. ``regressor``: the prior regressor, MEN frozen: MSE(MEN(x̃, R(x̃, rate)), x) plus
   ``prior_weight``·MSE(R, F) (ours: the paper has no deterministic estimate; this is the
   "w/o LDM" path, and the anchor of the residual LDM).
3. ``ldm``: the diffusion UNet, ε-prediction MSE on (F - R) scaled to unit variance (paper stage
   II trains on F itself and fine-tunes MEN jointly; we keep MEN frozen, see
   :mod:`cosmic.enhance.diffusion`).

Each phase uses a warm-up + cosine learning rate (:func:`cosmic.training.stage1.learning_rate`)
and an EMA of the weights; ``max_minutes`` caps each phase's wall time (checkpoint and go on).
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from torch import nn
from torch.utils.data import DataLoader, Dataset

from cosmic.enhance.model import Enhancer, build_enhancer
from cosmic.errors import InputError, first_line
from cosmic.ground.diffusion.sampler import SCHEDULE
from cosmic.io.images import load_rgb
from cosmic.training.checkpoint import make_ema, prepare_run
from cosmic.training.config import ENHANCE_HELP, EnhanceConfig  # noqa: F401  (re-exported)
from cosmic.training.data import extra_files, mostly_fill, refuse_val_split, split_files
from cosmic.training.loop import Cadence, Task, TrainLoop, set_lr
from cosmic.training.losses import psnr
from cosmic.training.metrics_log import MetricsLog
from cosmic.training.stage1 import learning_rate
from cosmic.utils.pretrained import ConfigMixin

__all__ = ["EnhanceConfig", "ENHANCE_HELP", "CodedPairs", "train_enhancer", "PHASES"]

PHASES = ("stage1", "regressor", "ldm")


def code_image(source: str, pixels: np.ndarray, knob: float | None) -> tuple[np.ndarray, float]:
    """(decoded image, measured bpp) of ``pixels`` coded by the source codec at ``knob``.

    ``jpeg2000``: ``knob`` is the target bpp (compression ratio 24/bpp). Any other source is a
    COSMIC model (shipped name or directory, loaded once per process): ``knob`` is its quality
    (None for a fixed-rate model), and the image goes through the real encode and decode
    pipelines (:class:`~cosmic.pipelines.EncodePipeline`, :class:`~cosmic.pipelines.DecodePipeline`
    at steps 0, as ``cosmic compress`` / ``decompress`` run them). Either way the bpp returned is
    the real file's (bytes x 8 / pixels), which is what the enhancer gets as its rate input."""
    if source == "jpeg2000":
        from cosmic.evaluation.classical import jpeg2000_encode

        enc = jpeg2000_encode(pixels, 24.0 / knob)
        return enc.decoded, enc.bpp
    from cosmic.training.validation import code_with_model

    bpp, decoded = code_with_model(source_model(source), pixels, knob)
    return decoded, bpp


@functools.lru_cache(maxsize=2)
def source_model(source: str):
    """The COSMIC model of a non-JPEG2000 ``source``, loaded once (InputError if it is none)."""
    from cosmic.errors import ModelError
    from cosmic.zoo import load_model

    try:
        return load_model(source).eval()
    except ModelError as exc:
        raise InputError(f"source '{source}': neither jpeg2000 nor a COSMIC model ({first_line(exc)})") from None


def source_name(source: str) -> str:
    """The enhancer's ``source``: ``jpeg2000``, or the model name COSMIC files carry."""
    return source if source == "jpeg2000" else source_model(source).name


def knob_sampler(cfg: EnhanceConfig, rng: np.random.Generator) -> Callable[[], float | None]:
    """Draws the source codec's rate knob per coded image: JPEG2000's bpp log-uniformly over
    ``bpp_range``; a variable-rate COSMIC model's quality uniformly over its whole range (the
    rate knob is the quality, ``bpp_range`` does not apply; a fixed-rate model: None)."""
    if cfg.source == "jpeg2000":
        lo, hi = np.log(cfg.bpp_range[0]), np.log(cfg.bpp_range[1])
        return lambda: float(np.exp(rng.uniform(lo, hi)))
    qualities = source_model(cfg.source).onboard.quality_range
    if qualities is None:
        return lambda: None
    return lambda: float(rng.uniform(*qualities))


def training_squares(cfg: EnhanceConfig) -> Iterator[np.ndarray]:
    """The ``image_size`` squares the enhancer trains on: the top-left square of each image of the
    split (smaller images skipped), then the squares of every ``extra_data`` scene on a grid of
    stride ``image_size // 4`` (ours: overlapping, so that a few scenes weigh in beside a thousand
    small images; squares whose pixels are half or more fill, value 0 in every band, left out).
    The split and the scene paths are checked here, before any image is read."""
    refuse_val_split(cfg.split)
    files = split_files(cfg.data, cfg.split)
    if cfg.limit is not None and cfg.limit < len(files):  # evenly spaced: the split is class-ordered
        files = [files[i] for i in np.linspace(0, len(files) - 1, max(cfg.limit, 1)).round().astype(int)]
    return _squares(files, extra_files(cfg.extra_data or [], cfg.data), cfg.image_size)


def _squares(files: list[Path], scenes: list[Path], s: int) -> Iterator[np.ndarray]:
    for f in files:
        img = load_rgb(f).pixels
        if min(img.shape[:2]) >= s:
            yield np.ascontiguousarray(img[:s, :s])
    for f in scenes:
        img, kept = load_rgb(f).pixels, 0
        for top in range(0, img.shape[0] - s + 1, s // 4):
            for left in range(0, img.shape[1] - s + 1, s // 4):
                square = img[top : top + s, left : left + s]
                if not mostly_fill(square):
                    kept += 1
                    yield np.ascontiguousarray(square)
        print(f"{f.name}: {kept} squares of {s} px")


def pairs_fingerprint(cfg: EnhanceConfig) -> str:
    """What the coded pairs depend on: a cached ``pairs.npz`` is reused only when this matches."""
    keys = ("data", "split", "extra_data", "limit", "image_size", "source", "rates_per_image", "bpp_range", "seed")
    what = {k: getattr(cfg, k) for k in keys}
    if cfg.source != "jpeg2000":  # a COSMIC model: new weights can be shipped under its name
        from cosmic.zoo import weights_identity

        what["source_weights"] = weights_identity(cfg.source)
    return json.dumps(what, sort_keys=True)


def make_pairs(cfg: EnhanceConfig) -> dict[str, np.ndarray]:
    """Originals (N, S, S, 3), decodes (N, R, S, S, 3) and measured bpp (N, R); S = image_size."""
    knob = knob_sampler(cfg, np.random.default_rng([cfg.seed, 7]))
    originals, decoded, bpps = [], [], []
    for img in training_squares(cfg):
        coded = [code_image(cfg.source, img, knob()) for _ in range(cfg.rates_per_image)]
        originals.append(img)
        decoded.append(np.stack([d for d, _ in coded]))
        bpps.append([b for _, b in coded])
    if not originals:
        raise InputError(f"{cfg.data}: no image of at least {cfg.image_size} px a side in '{cfg.split}'")
    return {"originals": np.stack(originals), "decoded": np.stack(decoded), "bpp": np.asarray(bpps, np.float32)}


class CodedPairs(Dataset):
    """Random (original, decoded, bpp) crops; sample ``index`` is a pure function of (seed, index)."""

    def __init__(self, pairs: dict[str, np.ndarray], crop: int, seed: int):
        self.pairs, self.crop, self.seed = pairs, crop, seed

    def __len__(self) -> int:
        return 10**12

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, index])
        n, r = self.pairs["bpp"].shape
        i, j = int(rng.integers(n)), int(rng.integers(r))
        side = self.pairs["originals"].shape[1]
        top, left = (int(v) for v in rng.integers(0, side - self.crop + 1, size=2))
        window = (slice(top, top + self.crop), slice(left, left + self.crop))
        pair = np.stack([self.pairs["originals"][i][window], self.pairs["decoded"][i, j][window]])
        if rng.random() < 0.5:
            pair = pair[:, :, ::-1]
        if rng.random() < 0.5:
            pair = pair[:, ::-1]
        t = torch.from_numpy(np.ascontiguousarray(pair)).permute(0, 3, 1, 2).float().div_(255.0)
        return t[0], t[1], torch.tensor(self.pairs["bpp"][i, j])


class EnhancerState(nn.Module, ConfigMixin):
    """All the enhancer's components in one module, so one checkpoint holds the whole run."""

    def __init__(self, enhancer: Enhancer):
        super().__init__()
        self.enhancer = enhancer
        self.register_config(preset=enhancer.preset, source=enhancer.source)

    def update(self, force: bool = False) -> None:
        """Nothing to rebuild (save_checkpoint's hook for entropy tables)."""

    @staticmethod
    def from_state(directory: Path) -> dict:
        from safetensors.torch import load_file

        return load_file(str(Path(directory) / "model.safetensors"))


def _true_prior(e: Enhancer, x: torch.Tensor, dec: torch.Tensor) -> torch.Tensor:
    return e.self_encoder(torch.cat([x, dec], 1))


def _stage1_loss(e: Enhancer, x, dec, bpp, ctx) -> dict:
    y = e.men(dec, _true_prior(e, x, dec), bpp)
    mse = F.mse_loss(y, x)
    return {"loss": mse, "mse": mse, "mse_in": F.mse_loss(dec, x)}


def _regressor_loss(e: Enhancer, x, dec, bpp, ctx) -> dict:
    with torch.no_grad():
        target = _true_prior(e, x, dec)
    est = e.estimate_prior(dec, bpp)
    mse = F.mse_loss(e.men(dec, est, bpp), x)
    prior = F.mse_loss(est, target)
    return {"loss": mse + ctx.prior_weight * prior, "mse": mse, "prior_mse": prior, "mse_in": F.mse_loss(dec, x)}


@torch.no_grad()
def _residual(e: Enhancer, x, dec, bpp) -> tuple[torch.Tensor, torch.Tensor]:
    """(F_reg, F - F_reg): the LDM's anchor and its (unscaled) target."""
    est = e.estimate_prior(dec, bpp)
    return est, _true_prior(e, x, dec) - est


def _ldm_loss(e: Enhancer, x, dec, bpp, ctx) -> dict:
    est, r = _residual(e, x, dec, bpp)
    r = r * e.ldm.latent_scale
    noise = torch.randn_like(r)
    t = torch.randint(0, ctx.scheduler.config.num_train_timesteps, (x.shape[0],))
    pred = e.ldm(ctx.scheduler.add_noise(r, noise, t), t, est, e.ldm.cond(dec), bpp)
    loss = F.mse_loss(pred, noise)
    return {"loss": loss, "eps_mse": loss}


LOSSES = {"stage1": (_stage1_loss, ("self_encoder", "men")), "regressor": (_regressor_loss, ("prior_regressor",)),
          "ldm": (_ldm_loss, ("ldm",))}


def _loader(pairs, cfg: EnhanceConfig, phase: str, first_step: int):
    data = CodedPairs(pairs, cfg.crop, cfg.seed * 10 + PHASES.index(phase))
    indices = range(first_step * cfg.batch_size, 10**12)
    return iter(DataLoader(data, batch_size=cfg.batch_size, sampler=indices, drop_last=True,
                           generator=torch.Generator().manual_seed(cfg.seed)))


def _measure_scale(e: Enhancer, pairs, cfg: EnhanceConfig, batches: int = 8) -> float:
    """1 / RMS of the LDM target F - F_reg (unit variance for the DDPM schedule)."""
    it, sq, n = _loader(pairs, cfg, "ldm", 10**9), 0.0, 0
    for _ in range(batches):
        r = _residual(e, *next(it))[1]
        sq, n = sq + float(r.pow(2).sum()), n + r.numel()
    return 1.0 / max(math.sqrt(sq / n), 1e-6)


class _PhaseTask(Task):
    """One phase for the :class:`~cosmic.training.loop.TrainLoop`: the phase's components trained
    (the others frozen), Adam, an EMA of the whole state, the phase's loss."""

    def __init__(self, model: EnhancerState, phase: str, cfg: EnhanceConfig, loop: TrainLoop):
        self.model, self.phase, self.cfg, self.loop = model, phase, cfg, loop
        names = LOSSES[phase][1] + (("men",) if phase == "regressor" and cfg.tune_men else ())
        for key, module in model.enhancer.components().items():
            module.requires_grad_(key in names)
        self.optimizers = {"main": torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)}
        self.ema = make_ema(model, cfg.ema_decay)
        self.loss_fn = LOSSES[phase][0]
        self.ctx = SimpleNamespace(prior_weight=cfg.prior_weight, scheduler=DDPMScheduler(**SCHEDULE))
        self.schedule = SimpleNamespace(lr=cfg.lr, warmup_steps=cfg.warmup_steps, lr_drop_at=0.0,
                                        steps=cfg.steps[phase], lr_schedule="cosine", final_lr=cfg.final_lr)

    def step(self, batch, step: int) -> dict:
        optimizer = self.optimizers["main"]
        set_lr(optimizer, learning_rate(self.schedule, step))
        terms = self.loss_fn(self.model.enhancer, *batch, self.ctx)
        optimizer.zero_grad(set_to_none=True)
        self.loop.optimise(terms["loss"], optimizer)
        return {k: float(v.detach()) for k, v in terms.items()}

    def on_checkpoint(self, state: dict, step: int, window: list[dict], seconds: float) -> None:
        state["history"].append(_log(window, step, self.phase, self.loop.started))

    def load(self, directory: Path) -> dict:
        """The checkpoint's trained components; the frozen ones stay the earlier phases' results
        as they stand now, not as saved."""
        trained = {n for n, p in self.model.named_parameters() if p.requires_grad}
        frozen = {k: v.clone() for k, v in self.model.state_dict().items() if k not in trained}
        state = {**super().load(directory), "config": asdict(self.cfg)}
        self.model.load_state_dict(frozen, strict=False)
        self.ema.module.load_state_dict(frozen, strict=False)
        return state


def _log(window: list[dict], step: int, phase: str, started: float) -> dict:
    mean = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
    if "mse" in mean:
        mean["psnr_gain_db"] = psnr(mean["mse"]) - psnr(mean["mse_in"])
    mean.update(step=step, wall_s=time.time() - started)
    print(f"{phase} @ {step}: " + "  ".join(f"{k} {v:.5g}" for k, v in mean.items()), flush=True)
    return mean


def _run_phase(model: EnhancerState, pairs, cfg: EnhanceConfig, phase: str, out: Path) -> None:
    """Train one phase to its step count (or ``max_minutes``); leave its EMA weights in ``model``
    and in ``out/<phase>/final``."""
    final = out / phase / "final"
    if (final / "model.safetensors").is_file():
        model.load_state_dict(EnhancerState.from_state(final))
        print(f"{phase}: done before, loaded {final}")
        return
    loop = TrainLoop(Cadence(cfg.steps[phase], cfg.checkpoint_every, max_minutes=cfg.max_minutes),
                     out / phase / "last", progress=False, desc=phase)
    task = _PhaseTask(model, phase, cfg, loop)
    fresh = {"step": 0, "history": [], "config": asdict(cfg)}
    state = loop.resume(task, fresh, cfg.seed)
    if state is fresh and phase == "ldm":
        state["latent_scale"] = _measure_scale(model.enhancer, pairs, cfg)
    if phase == "ldm":
        model.enhancer.ldm.set_latent_scale(state["latent_scale"])
    step = int(state["step"])
    (out / phase).mkdir(parents=True, exist_ok=True)
    loop.run(task, _loader(pairs, cfg, phase, step), state, MetricsLog(out / phase, step))
    model.load_state_dict(task.ema.module.state_dict())
    model.save_pretrained(final, extra={"phase": phase, "history": state["history"],
                                        "latent_scale": state.get("latent_scale")})


def train_enhancer(cfg: EnhanceConfig) -> Path:
    """Run the phases; returns ``out/final``, the enhancer saved diffusers-style (float32)."""
    out = prepare_run(cfg.out, cfg.threads, cfg.seed)
    from cosmic.training.config import write_config

    write_config(out / "enhance_config.json", asdict(cfg))  # atomically: a resumed run rewrites it
    cache, fingerprint = out / "pairs.npz", pairs_fingerprint(cfg)
    if cache.is_file():
        pairs = dict(np.load(cache))
        if str(pairs.pop("fingerprint", "")) != fingerprint:
            raise InputError(f"{cache}: coded for other data or rates than these options; use a new --out")
    else:
        started = time.time()
        pairs = make_pairs(cfg)
        np.savez(cache, **pairs, fingerprint=np.asarray(fingerprint))
        print(f"coded {pairs['bpp'].size} training images in {time.time() - started:.0f} s; "
              f"bpp {pairs['bpp'].min():.3f}..{pairs['bpp'].max():.3f}")
    model = EnhancerState(_initial_enhancer(cfg))
    for phase in PHASES:
        if cfg.steps.get(phase, 0) > 0:
            _run_phase(model, pairs, cfg, phase, out)
    history = {p: json.loads((out / p / "final" / "config.json").read_text()).get("_extra", {}).get("history")
               for p in PHASES if (out / p / "final" / "config.json").is_file()}
    enhancer = model.enhancer if cfg.steps.get("ldm", 0) > 0 else _without_ldm(model.enhancer)
    # folder names only: a shipped config names no absolute path
    names = {"data": Path(cfg.data).name, "out": Path(cfg.out).name,
             "extra_data": [Path(p).name for p in cfg.extra_data] if cfg.extra_data else None}
    enhancer.extra = {"training": {**asdict(cfg), **names},
                      "history": history}
    return enhancer.save_pretrained(out / "final")


def _without_ldm(e: Enhancer) -> Enhancer:
    return Enhancer(e.self_encoder, e.men, e.prior_regressor, None, e.source, e.preset)


def _initial_enhancer(cfg: EnhanceConfig) -> Enhancer:
    """A fresh enhancer for ``cfg.source``, with ``cfg.init_from``'s weights when given (ours: a
    warm start, e.g. a COSMIC enhancer from the JPEG2000 one; all four components are copied,
    the LDM's latent scale is re-measured when its phase starts)."""
    enhancer = build_enhancer(cfg.preset, source_name(cfg.source))
    if cfg.init_from is None:
        return enhancer
    from cosmic.zoo import model_path

    start = Enhancer.from_pretrained(model_path(cfg.init_from))
    if start.preset != cfg.preset:
        raise InputError(f"--init-from {cfg.init_from}: a '{start.preset}' enhancer, not '{cfg.preset}'")
    for key, module in start.components().items():
        enhancer.components()[key].load_state_dict(module.float().state_dict())
    print(f"started from {cfg.init_from} ({', '.join(start.components())})")
    return enhancer
