"""Constructor-arguments-as-config, safetensors weights (the diffusers ``save_pretrained`` idea).

A model directory holds ``config.json`` (the class name and its constructor arguments) and
``model.safetensors``. Nothing is ever unpickled: safetensors stores raw tensors only.

This module is shared by the satellite and the ground side and imports neither.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

__all__ = ["ConfigMixin", "register_to_config", "weights_digest", "round_parameters", "CONFIG_NAME", "WEIGHTS_NAME"]


def weights_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and raw bytes of a state dict, in sorted-name order."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().to("cpu").contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


INT8_SCALE = ".int8_scale"  # suffix of the per-output-channel scale of an int8-stored tensor


def _int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: ``w ≈ q * scale`` (scale float32, one per row)."""
    flat = w.detach().float().reshape(w.shape[0], -1)
    scale = (flat.abs().amax(dim=1) / 127.0).clamp_min(1e-12)
    q = torch.round(flat / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q.reshape(w.shape), scale


def _from_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return (q.float().reshape(q.shape[0], -1) * scale[:, None]).reshape(q.shape)


def _int8_eligible(t: torch.Tensor) -> bool:
    return t.is_floating_point() and t.dim() >= 2 and t.numel() >= 1024


@torch.no_grad()
def round_parameters(module: torch.nn.Module, dtype: torch.dtype = torch.float16) -> None:
    """Round every floating-point parameter to ``dtype`` precision in place (kept in its own
    dtype), so a model saved with ``save_pretrained(dtype=...)`` loads back bit-identical.
    ``torch.int8``: weight matrices and kernels (>= 1024 values) to per-output-channel int8,
    the small rest (biases, norms) to float16."""
    for p in module.parameters():
        if not p.is_floating_point():
            continue
        if dtype == torch.int8 and _int8_eligible(p):
            p.copy_(_from_int8(*_int8(p)).to(p.dtype))
        else:
            p.copy_(p.to(torch.float16 if dtype == torch.int8 else dtype).to(p.dtype))


def _store(state: dict, params: set, dtype: torch.dtype) -> dict:
    out = {}
    for k, v in state.items():
        if k not in params or not v.is_floating_point():
            out[k] = v
        elif dtype == torch.int8 and _int8_eligible(v):
            out[k], out[k + INT8_SCALE] = _int8(v)
        else:
            out[k] = v.to(torch.float16 if dtype == torch.int8 else dtype)
    return out


def _restore(state: dict) -> dict:
    """Undo :func:`_store`'s int8 packing (other dtypes are cast by ``load_state_dict``)."""
    scales = {k[: -len(INT8_SCALE)]: v for k, v in state.items() if k.endswith(INT8_SCALE)}
    return {k: _from_int8(v, scales[k]) if k in scales else v
            for k, v in state.items() if not k.endswith(INT8_SCALE)}


def read_json(path: Path, error: type[Exception] = ValueError) -> Any:
    """The JSON document in ``path``; ``error`` (one line, naming the file) if it is not JSON."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON ({exc.msg})") from None


def _jsonable(value: Any) -> Any:
    """Tuples as lists (what a JSON round trip gives back), recursively."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def register_to_config(init):
    """Decorator for a :class:`ConfigMixin`'s ``__init__`` (diffusers' idea): every constructor
    argument, defaults included, becomes ``self.config``, so that ``cls(**config)`` rebuilds the
    model and nothing is retyped by hand."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        init(self, *args, **kwargs)
        self.register_config(**{k: _jsonable(v) for k, v in list(bound.arguments.items())[1:]})

    return wrapper


class ConfigMixin:
    """Records constructor keyword arguments as ``self.config`` and (de)serialises models.

    Subclasses decorate ``__init__`` with :func:`register_to_config` (or call
    ``self.register_config(**kwargs)`` when the config is not the arguments as given) with
    JSON-serialisable values that are enough to rebuild the model with ``cls(**config)``.
    """

    config: dict[str, Any]

    def register_config(self, **kwargs: Any) -> None:
        json.dumps(kwargs)  # fail early on anything not JSON-serialisable
        self.config = dict(kwargs)

    # -- saving -------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, extra: dict | None = None,
                        dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (atomically, via temporary names).

        ``dtype`` (e.g. ``torch.float16``; ``torch.int8``: per-channel int8 kernels, see
        :func:`round_parameters`) stores the floating-point *parameters* at that
        precision to halve the file (buffers such as entropy-coder tables keep theirs); loading
        casts them back to the model's parameter dtype. Round the model first (see
        :func:`round_parameters`) so that what was measured is what is stored."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        if dtype is not None:
            state = _store(state, {k for k, _ in self.named_parameters()}, dtype)
        config = {"_class_name": type(self).__name__, **self.config}
        config["_weights_sha256"] = weights_digest(state)
        if extra:
            config["_extra"] = extra
        tmp_w = directory / (WEIGHTS_NAME + ".tmp")
        tmp_c = directory / (CONFIG_NAME + ".tmp")
        save_file(state, str(tmp_w))
        tmp_c.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        os.replace(tmp_w, directory / WEIGHTS_NAME)
        os.replace(tmp_c, directory / CONFIG_NAME)
        return directory

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def read_config(cls, directory: str | os.PathLike) -> dict[str, Any]:
        path = Path(directory) / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no {CONFIG_NAME} in model directory {directory}")
        return read_json(path, ValueError)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike):
        """Rebuild the model from its config and load its safetensors weights."""
        config = cls.read_config(directory)
        name = config.get("_class_name")
        if name != cls.__name__:
            raise ValueError(f"{directory} holds a {name}, not a {cls.__name__}")
        kwargs = {k: v for k, v in config.items() if not k.startswith("_")}
        model = cls(**kwargs)
        weights = Path(directory) / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"no {WEIGHTS_NAME} in model directory {directory}")
        state = _restore(load_file(str(weights)))
        model.load_state_dict(state)
        model.eval()
        return model
