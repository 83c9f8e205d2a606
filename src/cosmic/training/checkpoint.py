"""Resumable training checkpoints without pickle: model + Adam state as safetensors, the rest JSON.

Layout of a checkpoint directory::

    config.json, model.safetensors   - the model (ConfigMixin.save_pretrained)
    optimizer.safetensors            - Adam moments per parameter name, for each optimizer
    trainer.json                     - step, hyper-parameters, optimizer step counts, history
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

__all__ = ["prepare_run", "save_checkpoint", "load_checkpoint"]


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


def save_checkpoint(directory, model, optimizers: dict, trainer_state: dict) -> None:
    directory = Path(directory)
    model.save_pretrained(directory)
    names = {p: n for n, p in model.named_parameters()}
    tensors, steps = {}, {}
    for key, opt in optimizers.items():
        t, s = _optimizer_tensors(key, opt, names)
        tensors.update(t)
        steps[key] = s
    tmp = directory / "optimizer.safetensors.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, directory / "optimizer.safetensors")
    state = {**trainer_state, "optimizer_steps": steps}
    tmp = directory / "trainer.json.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, directory / "trainer.json")


def load_checkpoint(directory, model, optimizers: dict) -> dict:
    """Load weights and optimizer moments into existing objects; return the trainer state."""
    directory = Path(directory)
    model.load_state_dict(load_file(str(directory / "model.safetensors")))
    state = json.loads((directory / "trainer.json").read_text())
    opt_path = directory / "optimizer.safetensors"
    tensors = load_file(str(opt_path)) if opt_path.is_file() else {}
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
                    "exp_avg": tensors[f"{key}/{name}/exp_avg"].to(p.device),
                    "exp_avg_sq": tensors[f"{key}/{name}/exp_avg_sq"].to(p.device),
                }
    return state
