"""Resumable training checkpoints without pickle: model + Adam state as safetensors, the rest JSON.

Layout of a checkpoint directory::

    model_index.json, onboard/, ground/ - the model (its ``save_pretrained``: one subfolder per
                                       component; a stage-2 network: config.json, model.safetensors)
    optimizer.safetensors            - Adam moments per parameter name, for each optimizer, and
                                       the torch RNG state (``rng/torch``)
    ema/                             - the EMA of the weights, when the run keeps one
    trainer.json                     - step, hyper-parameters, optimizer step counts, EMA count,
                                       history

With these a resumed run continues bit-identically (the data order and the rates are functions of
the seed and the step, see :mod:`cosmic.training.stage1`).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from cosmic.training.config import RUN_CONTROL  # re-exported: defined here before
from cosmic.utils.pretrained import is_model_dir, read_weights

__all__ = ["prepare_run", "save_checkpoint", "load_checkpoint", "make_ema", "check_resume", "RUN_CONTROL"]

EMA_DIR = "ema"


class WeightEMA:
    """An exponential moving average of a model's parameters, held in a copy of the model
    (``module``) that can be evaluated and saved like the model itself.

    Not torch's ``AveragedModel``: that keeps the copy's buffers in sync with the model's, and our
    buffers are the entropy coder's CDF tables, whose sizes follow each copy's own parameters
    (``update()``); here the copy rebuilds its own tables from its averaged parameters."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        self.n_averaged = torch.zeros((), dtype=torch.long)
        for p in self.module.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        """``decay``, warmed up as (1 + n) / (10 + n) over the first updates (TensorFlow's
        ExponentialMovingAverage ``num_updates``): with a fixed 0.999 the average still holds 60 %
        of the random initial weights after 500 steps."""
        n = int(self.n_averaged)
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update_parameters(self, model: torch.nn.Module) -> None:
        """Move the average towards ``model``'s parameters; a frozen parameter (``requires_grad``
        False, e.g. the on-board codec of a ``--ground-only`` run) is copied exactly: its average
        is itself, and a lerp would change its bits (and with them the bitstream's digest)."""
        pairs = list(zip(self.module.parameters(), model.parameters()))
        moving = [(mine, theirs.detach()) for mine, theirs in pairs if theirs.requires_grad]
        if moving:
            torch._foreach_lerp_([m for m, _ in moving], [t for _, t in moving], 1.0 - self.current_decay())
        for mine, theirs in pairs:
            if not theirs.requires_grad:
                mine.copy_(theirs)
        self.n_averaged += 1


def make_ema(model: torch.nn.Module, decay: float) -> WeightEMA:
    return WeightEMA(model, decay)


def prepare_run(out, threads: int, seed: int) -> Path:
    """Create the run directory and fix torch's thread count (0: its default) and seed."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    return out


def _optimizer_tensors(prefix: str, optimizer: torch.optim.Optimizer, names: dict) -> tuple[dict, dict]:
    tensors, steps = {}, {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p)
            if not state:
                continue
            name = names[p]
            for key in ("exp_avg", "exp_avg_sq"):
                tensors[f"{prefix}/{name}/{key}"] = state[key].detach().cpu().contiguous()
            steps[name] = float(state["step"])
    return tensors, steps


def save_checkpoint(directory, model, optimizers: dict, trainer_state: dict, ema=None) -> None:
    directory = Path(directory)
    model.save_pretrained(directory)
    if ema is not None:
        ema.module.update(force=True)
        ema.module.save_pretrained(directory / EMA_DIR)
        trainer_state = {**trainer_state, "ema_n_averaged": int(ema.n_averaged)}
    names = {p: n for n, p in model.named_parameters()}
    tensors, steps = {}, {}
    for key, opt in optimizers.items():
        t, s = _optimizer_tensors(key, opt, names)
        tensors.update(t)
        steps[key] = s
    tensors["rng/torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng/cuda"] = torch.cuda.get_rng_state()
    tmp = directory / "optimizer.safetensors.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, directory / "optimizer.safetensors")
    state = {**trainer_state, "optimizer_steps": steps}
    tmp = directory / "trainer.json.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, directory / "trainer.json")


def load_checkpoint(directory, model, optimizers: dict, ema=None) -> dict:
    """Load weights, optimizer moments, the EMA and the RNG state into existing objects; return
    the trainer state."""
    directory = Path(directory)
    model.load_state_dict(read_weights(directory))  # either layout (checkpoints of older runs)
    state = json.loads((directory / "trainer.json").read_text())
    if ema is not None and is_model_dir(directory / EMA_DIR):
        ema.module.load_state_dict(read_weights(directory / EMA_DIR))
        ema.n_averaged.fill_(int(state.get("ema_n_averaged", 1)))
    opt_path = directory / "optimizer.safetensors"
    tensors = load_file(str(opt_path)) if opt_path.is_file() else {}
    if "rng/torch" in tensors:
        torch.set_rng_state(tensors["rng/torch"])
    if "rng/cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng/cuda"])
    names = {p: n for n, p in model.named_parameters()}
    for key, opt in optimizers.items():
        steps = state.get("optimizer_steps", {}).get(key, {})
        for group in opt.param_groups:
            for p in group["params"]:
                name = names[p]
                if f"{key}/{name}/exp_avg" not in tensors:
                    continue
                opt.state[p] = {
                    "step": torch.tensor(steps.get(name, 0.0)),
                    "exp_avg": tensors[f"{key}/{name}/exp_avg"].to(p.device),  # step stays on the CPU
                    "exp_avg_sq": tensors[f"{key}/{name}/exp_avg_sq"].to(p.device),
                }
    return state


def _as_json(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def check_resume(directory, config: dict) -> None:
    """Refuse, in one line (InputError), to resume the checkpoint in ``directory`` with options
    that change what the run trains (anything outside :data:`RUN_CONTROL`): another ``--preset``
    failed inside the weights' loading (exit 70), another ``--lmbda`` resumed silently under the
    old run's state. Nothing to check without a checkpoint, or for options it does not record."""
    path = Path(directory) / "trainer.json"
    if not path.is_file():
        return
    from cosmic.errors import InputError

    try:
        saved = json.loads(path.read_text()).get("config") or {}
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: not a readable checkpoint state ({exc}); choose a new --out") from None
    now = _as_json(config)
    changed = [k for k in sorted(now) if k in saved and k not in RUN_CONTROL and saved[k] != now[k]]
    if changed:
        shown = ", ".join(f"--{k.replace('_', '-')} {saved[k]} (now {now[k]})" for k in changed[:4])
        more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        raise InputError(f"{Path(directory).parent}: its checkpoint was trained with {shown}{more}; resume "
                         "with the same options, or choose a new --out (or --no-resume to start over there)")
