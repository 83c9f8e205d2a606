"""Constructor-arguments-as-config, safetensors weights (the diffusers ``save_pretrained`` idea).

A model directory holds ``config.json`` (the class name and its constructor arguments) and
``model.safetensors``. Nothing is ever unpickled: safetensors stores raw tensors only.

This module is shared by the satellite and the ground side and imports neither.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

__all__ = ["ConfigMixin", "weights_digest", "round_parameters", "CONFIG_NAME", "WEIGHTS_NAME"]


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


@torch.no_grad()
def round_parameters(module: torch.nn.Module, dtype: torch.dtype = torch.float16) -> None:
    """Round every floating-point parameter to ``dtype`` precision in place (kept in its own
    dtype), so a model saved with ``save_pretrained(dtype=...)`` loads back bit-identical."""
    for p in module.parameters():
        if p.is_floating_point():
            p.copy_(p.to(dtype).to(p.dtype))


class ConfigMixin:
    """Records constructor keyword arguments as ``self.config`` and (de)serialises models.

    Subclasses call ``self.register_config(**kwargs)`` in ``__init__`` with JSON-serialisable
    values that are enough to rebuild the model with ``cls(**config)``.
    """

    config: dict[str, Any]

    def register_config(self, **kwargs: Any) -> None:
        json.dumps(kwargs)  # fail early on anything not JSON-serialisable
        self.config = dict(kwargs)

    # -- saving -------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, extra: dict | None = None,
                        dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (atomically, via temporary names).

        ``dtype`` (e.g. ``torch.float16``) stores the floating-point *parameters* at that
        precision to halve the file (buffers such as entropy-coder tables keep theirs); loading
        casts them back to the model's parameter dtype. Round the model first (see
        :func:`round_parameters`) so that what was measured is what is stored."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        if dtype is not None:
            params = {k for k, _ in self.named_parameters()}
            state = {k: v.to(dtype) if k in params and v.is_floating_point() else v for k, v in state.items()}
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
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc.msg})") from None

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
        state = load_file(str(weights))
        model.load_state_dict(state)
        model.eval()
        return model
