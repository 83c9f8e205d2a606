"""One training loop for every trainer (issue 32 item 3): device, precision, DDP, EMA, checkpoint
and exact resume, metrics, validation / checkpoint cadence and the wall-time stop, written once.

A trainer supplies a :class:`Task` (its model, optimizers, EMA and one optimisation step; hooks
for validation, records and its own checkpoint extras) and an iterator of batches; a
:class:`TrainLoop` runs it::

    loop = TrainLoop(Cadence(steps=..., checkpoint_every=...), out / "last", info, precision=...)
    state = loop.resume(task, {"step": 0, "history": [], "config": asdict(cfg)}, seed=cfg.seed)
    loop.run(task, batches_from(state["step"]), state, log=MetricsLog(out, state["step"]))

What the loop owns:

* **device and precision**: ``loop.device``, ``loop.autocast()`` (bf16 / fp16 autocast of the
  network parts, :mod:`cosmic.utils.device`) and ``loop.optimise(loss, optimizer)`` (backward
  through the fp16 gradient scaler, unscale, clip to norm 1, step);
* **DDP**: ``loop.wrap(model)`` (:func:`cosmic.training.distributed.wrap`); the loop averages the
  logged terms over ranks, takes the wall-time stop together, and lets rank 0 alone validate and
  write;
* **EMA**: :meth:`Task.update_ema` after every step (:class:`~cosmic.training.checkpoint.WeightEMA`
  by default);
* **checkpoint and exact resume**: :meth:`Task.save` / :meth:`Task.load` default to
  :mod:`cosmic.training.checkpoint` (model, Adam moments, EMA, the torch RNG, ``trainer.json``
  with the step and the history): the layout every earlier run wrote, so old runs resume; the data
  order and the rates are functions of (seed, step), so a resumed run is bit-identical;
* **cadence**: log every ``log_every`` steps (the window's mean to ``metrics.csv`` / TensorBoard
  and the progress bar), validate every ``val_every`` on rank 0, checkpoint every
  ``checkpoint_every``, at the last step and when stopping at ``pause_at`` or after
  ``max_minutes`` of this session.

Library decision (issue 32 asks to prefer Lightning Fabric or accelerate for the device / precision
/ DDP part if exact resume holds and the tests pass): **our own thin layer stays** (torch.amp
autocast and GradScaler, :mod:`cosmic.utils.device`; torch's DDP, :mod:`cosmic.training.distributed`).
Measured with lightning-fabric 2.6.6 (installed from PyPI into a side directory, not the venv),
torch 2.14.1, on this shared 2-core CPU host (load 3-4 from other jobs, so ±20 % noise), stage 1
small preset, batch 4, 64-px crops, 1 thread, 20 steps per run, 6 interleaved runs each:

* speed: ``Stage1Task.step`` 1.71 steps/s median (1.37-1.92), the same step through
  ``Fabric.setup`` / ``backward`` / ``clip_gradients`` 1.84 (1.35-1.98): no difference beyond the
  noise (an earlier 4-run measurement: 1.9 vs 1.9 median);
* results: bit-identical weights after 5 steps from the same seed, and exact resume holds with
  Fabric (4 steps straight == 2 steps, checkpoint, fresh process state, load, 2 steps), because
  the checkpoint stays ours either way.

So Fabric would be neither faster nor more exact, and it would replace only the ~20 lines of
autocast / scaler / DDP construction, while what the trainers need around them stays ours:
safetensors checkpoints without pickle (Fabric's ``save`` is ``torch.save``), the split-decoder
batch sharding (:func:`~cosmic.training.distributed.shard_positions` and the step sampler, where
``setup_dataloaders`` would insert a ``DistributedSampler``), DDP without per-forward buffer
broadcast and with the entropy models' quantiles left out of the all-reduce; and it would add two
wheels (lightning-fabric, lightning-utilities) to the offline GPU kit, which installs with
``--no-index``. Revisit if FSDP, multi-node launch or other accelerators are wanted. (accelerate
was not measured.)

The trainers on this loop: stage 1 (:class:`~cosmic.training.stage1.Stage1Task`), stage 2
(:class:`~cosmic.training.stage2.Stage2Task`), the codebook prior's three stages
(:mod:`cosmic.training.codebook`), the LDM-RSIC enhancer's three phases
(:mod:`cosmic.training.ldm_rsic`) and the scene classifier
(:class:`~cosmic.training.classifier.ClassifierTask`, without checkpoints). Their configs and the
help of their fields live in :mod:`cosmic.training.config`; ``cosmic train ...``'s options are
generated from them (:mod:`cosmic.cli.fields`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from cosmic.training import distributed as ddp
from cosmic.training.checkpoint import load_checkpoint, save_checkpoint
from cosmic.utils.device import autocast, grad_scaler
from cosmic.utils.progress import progress_bar as tqdm

__all__ = ["Cadence", "Task", "TrainLoop", "set_lr", "mean_terms"]


@dataclass
class Cadence:
    """When a loop logs, validates, checkpoints and stops (``val_every`` None: never validates;
    ``max_minutes`` counts this session's wall time, not the run's)."""

    steps: int
    checkpoint_every: int
    log_every: int = 10
    val_every: int | None = None
    max_minutes: float | None = None
    pause_at: int | None = None

    @classmethod
    def of(cls, cfg, **override) -> "Cadence":
        """The cadence fields a trainer's config has (``override`` over them)."""
        names = ("steps", "checkpoint_every", "log_every", "val_every", "max_minutes", "pause_at")
        return cls(**{**{k: getattr(cfg, k) for k in names if hasattr(cfg, k)}, **override})


class Task:
    """What a trainer gives the loop: ``model`` (the module its checkpoints hold, not a DDP
    wrapper), ``optimizers`` (name -> optimizer), ``ema`` (a
    :class:`~cosmic.training.checkpoint.WeightEMA` or None), and :meth:`step`. The other methods
    are hooks with defaults."""

    model: torch.nn.Module
    optimizers: dict
    ema = None

    def step(self, batch, step: int) -> dict[str, float]:
        """One optimisation step on ``batch`` at ``step`` (0-based); the loss terms as floats."""
        raise NotImplementedError

    def update_ema(self) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def train_mode(self) -> None:
        self.model.train()

    def validate(self, step: int) -> dict | None:
        """Validation figures at ``step`` (rank 0 only; appended to ``state["history"]``)."""
        return None

    def postfix(self, terms: dict[str, float]) -> dict:
        """What the progress bar shows of the logged terms."""
        return {k: f"{v:.3g}" for k, v in list(terms.items())[:4]}

    def on_log(self, state: dict, step: int, terms: dict[str, float]) -> None:
        """Called at every log step with the window's mean terms."""

    def on_checkpoint(self, state: dict, step: int, window: list[dict], seconds: float) -> None:
        """Called before every checkpoint with the steps' terms since the last one."""

    def save(self, directory: Path, state: dict) -> None:
        save_checkpoint(directory, self.model, self.optimizers, state, self.ema)

    def load(self, directory: Path) -> dict:
        return load_checkpoint(directory, self.model, self.optimizers, self.ema)


def mean_terms(window: list[dict]) -> dict[str, float]:
    """Each term's mean over the steps of ``window`` that have it (a GAN term starts mid-run)."""
    keys = list(dict.fromkeys(k for t in window for k in t))
    return {k: sum(t[k] for t in window if k in t) / sum(k in t for t in window) for k in keys}


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Every group's lr: ``lr`` times the group's ``lr_scale`` (1 when it has none)."""
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)


class TrainLoop:
    """Runs a :class:`Task` to ``cadence.steps`` with checkpoints in ``ckpt`` (None: none)."""

    def __init__(self, cadence: Cadence, ckpt: Path | None, info: ddp.DistInfo | None = None,
                 precision: str = "fp32", progress: bool = True, desc: str = "train"):
        self.cadence, self.ckpt, self.info = cadence, ckpt, info or ddp.DistInfo()
        self.precision, self.progress, self.desc = precision, progress, desc
        self.scaler = grad_scaler(self.info.device, precision)

    @property
    def device(self) -> torch.device:
        return self.info.device

    def autocast(self):
        """Autocast of the network parts at the loop's precision (a no-op for fp32)."""
        return autocast(self.device, self.precision)

    def wrap(self, model: torch.nn.Module, ignore_suffix: str | None = ".quantiles") -> torch.nn.Module:
        """``model`` DDP-wrapped under torchrun (itself in one process)."""
        return ddp.wrap(model, self.info, ignore_suffix)

    def optimise(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, clip: float | None = 1.0) -> None:
        """Backward (scaled for fp16; gradients all-reduced under DDP), unscale, clip, step."""
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(optimizer)
        if clip is not None:
            torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], clip)
        self.scaler.step(optimizer)
        self.scaler.update()

    def resume(self, task: Task, fresh: dict, seed: int = 0) -> dict:
        """The trainer state of the checkpoint in ``ckpt`` loaded into ``task`` (weights, moments,
        EMA, RNG), or ``fresh`` when there is none. Under torchrun each rank then reseeds from
        (seed, rank, step): the saved RNG state is rank 0's."""
        if self.ckpt is None or not (self.ckpt / "trainer.json").is_file():
            return fresh
        state = task.load(self.ckpt)
        if self.info.main:
            print(f"resumed from {self.ckpt} at step {state['step']}")
        if self.info.active:
            torch.manual_seed(ddp.rank_seed(seed, self.info, int(state["step"])))
        return state

    def run(self, task: Task, batches, state: dict, log=None) -> int:
        """Train from ``state["step"]`` to the cadence's end (or its pause); returns the step
        reached. ``batches`` yields the batch of each step from ``state["step"]`` on; ``log`` is a
        :class:`~cosmic.training.metrics_log.MetricsLog` (None: no metrics file)."""
        c, info = self.cadence, self.info
        step = int(state["step"])
        bar = tqdm(total=c.steps, initial=step, disable=not (self.progress and info.main), dynamic_ncols=True,
                   desc=self.desc)
        self.started, session = time.time() - float(state.get("wall_s", 0.0)), time.time()
        window, recent, since = [], [], time.time()
        task.train_mode()
        while step < c.steps:
            terms = task.step(next(batches), step)
            window.append(terms)
            recent.append(terms)
            task.update_ema()
            step += 1
            bar.update(1)
            if step % c.log_every == 0 or step == c.steps:
                self._log(task, state, step, recent, bar, log)
                recent = []
            if c.val_every and info.main and (step % c.val_every == 0 or step == c.steps):
                self._validate(task, state, step, log)
            stop = self._stop(step, session)
            if self.ckpt is not None and (step % c.checkpoint_every == 0 or step == c.steps or stop):
                task.on_checkpoint(state, step, window, time.time() - since)
                window, since = [], time.time()
                self.checkpoint(task, state, step)
            if stop:
                break
        bar.close()
        if log is not None:
            log.close()
        return step

    def _log(self, task: Task, state: dict, step: int, recent: list[dict], bar, log) -> None:
        mean = ddp.mean_terms(mean_terms(recent), self.info)
        if log is not None:
            log.log(step, mean)
        bar.set_postfix(task.postfix(mean))
        task.on_log(state, step, mean)

    def _validate(self, task: Task, state: dict, step: int, log) -> None:
        val = task.validate(step)
        if val is not None:
            val.update(step=step, wall_s=time.time() - self.started)
            state.setdefault("history", []).append(val)
            if log is not None:
                log.log(step, {k: v for k, v in val.items() if k not in ("step", "wall_s")}, prefix="val")
        task.train_mode()

    def _stop(self, step: int, session: float) -> bool:
        """Pause at ``pause_at``, or after ``max_minutes`` of this session (on every rank together)."""
        c = self.cadence
        if step == c.pause_at:
            return True
        if c.max_minutes is None:
            return False
        late = ddp.any_rank(time.time() - session > 60 * c.max_minutes, self.info)
        if late and self.info.main:
            tqdm.write(f"{self.desc}: stopped at step {step} of {c.steps} after {c.max_minutes} min")
        return late

    def checkpoint(self, task: Task, state: dict, step: int) -> None:
        """Rank 0 writes ``ckpt`` (the step and the run's wall time in its state); every rank waits."""
        if self.info.main:
            state.update(step=step, wall_s=time.time() - self.started)
            task.save(self.ckpt, state)
        ddp.barrier(self.info)
