"""Components serialised the diffusers way: constructor arguments as config, safetensors weights.

A *component* (an on-board codec, a ground decoder, a noise predictor, a metadata encoder) is a
:class:`ConfigMixin`: its ``__init__`` is decorated with :func:`register_to_config`, so every
constructor argument becomes ``self.config``, and a component directory holds ``config.json``
(the class name and those arguments) and ``model.safetensors``. A *model* made of components
(:class:`~cosmic.models.base.TwoSidedCodec`,
:class:`~cosmic.ground.diffusion.sampler.DiffusionCompensator`) is saved as diffusers saves a
``DiffusionPipeline``: one subfolder per component and a ``model_index.json`` naming each
component's ``[library, class]`` plus the model's own config. Loading builds every component from
its own config; classes are found in :data:`COMPONENTS` (filled by :func:`register_component`),
never imported by a name read from a file.

Why not diffusers' own ``ConfigMixin``: this module is shared by the satellite and the ground
side, and the on-board code must not import diffusers (tests/models/test_cosmic.py checks it); the API
mirrors diffusers' (``register_to_config``, ``ignore_for_config``, ``config_name``,
``from_config``, ``save_config``; ``read_config`` is its ``load_config``; ``register_to_config`` records the arguments
before ``__init__`` runs, so ``__init__`` may refine them with :meth:`ConfigMixin.register_config`).
Departure: weights are ``model.safetensors`` (diffusers: ``diffusion_pytorch_model.safetensors``).

Old single-directory models (one ``config.json`` + one ``model.safetensors`` for the whole model,
the layout before components) still load: see :func:`read_weights` and the ``from_pretrained``
of each model. Nothing is ever unpickled: safetensors stores raw tensors only.

This module imports neither the satellite nor the ground side.
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
MODEL_INDEX_NAME = "model_index.json"

__all__ = ["ConfigMixin", "register_to_config", "register_component", "COMPONENTS", "weights_digest",
           "round_parameters", "write_model_index", "read_model_index", "model_components",
           "component_class", "read_weights", "is_model_dir", "CONFIG_NAME", "WEIGHTS_NAME", "MODEL_INDEX_NAME"]

#: class name -> class of everything that may be named in a ``model_index.json``
COMPONENTS: dict[str, type] = {}


def register_component(cls: type) -> type:
    """Class decorator: ``cls`` may be built from a ``model_index.json`` entry naming it."""
    COMPONENTS[cls.__name__] = cls
    return cls


def component_class(entry, kind: type | None = None) -> type:
    """The registered class of a ``[library, class]`` entry (a ``_class_name`` string is taken as
    ``class``); ValueError when it is not registered (or not a ``kind``)."""
    library, name = entry if isinstance(entry, (list, tuple)) else (None, entry)
    cls = COMPONENTS.get(name)
    if cls is None or (library is not None and cls.__module__.split(".")[0] != library):
        raise ValueError(f"unknown component class {name!r}")
    if kind is not None and not issubclass(cls, kind):
        raise ValueError(f"{name} is not a {kind.__name__}")
    return cls


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
    """Decorator for a :class:`ConfigMixin`'s ``__init__`` (diffusers' ``register_to_config``): every
    constructor argument, defaults included, except those in the class's ``ignore_for_config``
    (e.g. sub-components passed in already built), becomes ``self.config`` before ``__init__``
    runs, so that ``cls(**config)`` rebuilds the model and nothing is retyped by hand."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        ignore = set(getattr(self, "ignore_for_config", ()))
        self.config = {}
        self.register_config(**{k: _jsonable(v) for k, v in list(bound.arguments.items())[1:] if k not in ignore})
        init(self, *args, **kwargs)

    return wrapper


class ConfigMixin:
    """A component: records its constructor arguments as ``self.config`` and (de)serialises itself
    as ``config.json`` + ``model.safetensors`` (diffusers' ``ConfigMixin`` + ``save_pretrained``).

    Subclasses decorate ``__init__`` with :func:`register_to_config`; an ``__init__`` that
    resolves an argument (a preset into widths, a default name) records the resolved value with
    :meth:`register_config`. Values must be JSON-serialisable and enough to rebuild the
    component with :meth:`from_config`.
    """

    config: dict[str, Any]
    config_name = CONFIG_NAME
    #: constructor arguments that are not config (diffusers' ``ignore_for_config``)
    ignore_for_config: tuple[str, ...] = ()

    def register_config(self, **kwargs: Any) -> None:
        """Add (or overwrite) config entries (diffusers' ``register_to_config`` method)."""
        json.dumps(kwargs)  # fail early on anything not JSON-serialisable
        self.config = {**getattr(self, "config", {}), **kwargs}

    # -- saving -------------------------------------------------------------------------------
    def save_config(self, directory: str | os.PathLike, extra: dict | None = None,
                    weights_sha256: str | None = None) -> Path:
        """Write ``config.json`` (atomically): the class name, the config, and optionally the
        weights' digest and free-form ``_extra`` (training history, provenance)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"_class_name": type(self).__name__, **self.config}
        if weights_sha256:
            config["_weights_sha256"] = weights_sha256
        if extra:
            config["_extra"] = extra
        _write_json(directory / self.config_name, config)
        return directory

    def save_pretrained(self, directory: str | os.PathLike, extra: dict | None = None,
                        dtype: torch.dtype | None = None, exclude: tuple[str, ...] = (),
                        stored: dict[str, torch.Tensor] | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (atomically, via temporary names).

        ``dtype`` (e.g. ``torch.float16``; ``torch.int8``: per-channel int8 kernels, see
        :func:`round_parameters`) stores the floating-point *parameters* at that
        precision to halve the file (buffers such as entropy-coder tables keep theirs); loading
        casts them back to the model's parameter dtype. Round the model first (see
        :func:`round_parameters`) so that what was measured is what is stored.
        ``exclude``: name prefixes of tensors saved elsewhere (a sub-component of their own).
        ``stored``: tensors already in storage form (a shipped file's), written byte for byte
        instead of the model's own."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if stored is None:
            stored = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
            if dtype is not None:
                stored = _store(stored, {k for k, _ in self.named_parameters()}, dtype)
        stored = {k: v for k, v in stored.items() if not k.startswith(exclude)} if exclude else stored
        tmp_w = directory / (WEIGHTS_NAME + ".tmp")
        save_file(stored, str(tmp_w))
        self.save_config(directory, extra, weights_digest(stored))
        os.replace(tmp_w, directory / WEIGHTS_NAME)
        return directory

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def read_config(cls, directory: str | os.PathLike) -> dict[str, Any]:
        path = Path(directory) / cls.config_name
        if not path.is_file():
            raise FileNotFoundError(f"no {cls.config_name} in model directory {directory}")
        return read_json(path, ValueError)

    @classmethod
    def from_config(cls, config: dict[str, Any], **components):
        """Build from a config (its ``_``-prefixed entries are bookkeeping and are skipped);
        ``components``: constructor arguments that are not config (already built parts)."""
        name = config.get("_class_name", cls.__name__)
        if name != cls.__name__:
            raise ValueError(f"the config is a {name}'s, not a {cls.__name__}'s")
        return cls(**{k: v for k, v in config.items() if not k.startswith("_")}, **components)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **components):
        """Rebuild the component from its config and load its safetensors weights;
        ``components``: sub-components already loaded (their tensors are not in this file)."""
        try:
            model = cls.from_config(cls.read_config(directory), **components)
        except ValueError as exc:
            raise ValueError(f"{directory}: {exc}") from None
        weights = Path(directory) / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"no {WEIGHTS_NAME} in model directory {directory}")
        state = _restore(load_file(str(weights)))
        for name, part in components.items():  # parts passed in built keep their own weights
            if isinstance(part, torch.nn.Module):
                state.update({f"{name}.{k}": v for k, v in part.state_dict().items()})
        model.load_state_dict(state)
        model.eval()
        return model


def _write_json(path: Path, document: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


# -- models made of components (diffusers' DiffusionPipeline layout) ------------------------------
def _is_entry(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)


def write_model_index(directory: str | os.PathLike, class_name: str, config: dict,
                      components: dict[str, Any], extra: dict | None = None) -> Path:
    """Write ``model_index.json``: ``_class_name``, the model's own ``config`` and one
    ``[library, class]`` entry per component (saved in the subfolder of that name). Written last,
    so a directory with an index has all its components."""
    directory = Path(directory)
    index = {"_class_name": class_name, **config}
    for name, component in components.items():
        index[name] = [type(component).__module__.split(".")[0], type(component).__name__]
    if extra:
        index["_extra"] = extra
    _write_json(directory / MODEL_INDEX_NAME, index)
    for legacy in (CONFIG_NAME, WEIGHTS_NAME):  # a directory saved before in the one-file layout
        (directory / legacy).unlink(missing_ok=True)
    return directory / MODEL_INDEX_NAME


def is_model_dir(directory: str | os.PathLike) -> bool:
    """True for a directory with a ``model_index.json`` (components) or a ``config.json``."""
    return any((Path(directory) / n).is_file() for n in (MODEL_INDEX_NAME, CONFIG_NAME))


def read_model_index(directory: str | os.PathLike) -> dict[str, Any]:
    """The ``model_index.json`` of a model made of components, else (an old one-directory model,
    or a single component) its ``config.json``."""
    directory = Path(directory)
    for name in (MODEL_INDEX_NAME, CONFIG_NAME):
        if (directory / name).is_file():
            return read_json(directory / name, ValueError)
    raise FileNotFoundError(f"no {MODEL_INDEX_NAME} or {CONFIG_NAME} in model directory {directory}")


def model_components(index: dict[str, Any]) -> dict[str, list[str]]:
    """The ``{name: [library, class]}`` component entries of a ``model_index.json``."""
    return {k: v for k, v in index.items() if not k.startswith("_") and _is_entry(v)}


def model_config(index: dict[str, Any]) -> dict[str, Any]:
    """The model's own config in a ``model_index.json``: neither components nor bookkeeping."""
    return {k: v for k, v in index.items() if not k.startswith("_") and not _is_entry(v)}


def read_weights(directory: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every tensor of a saved model as one state dict (float16 / int8 storage restored): a
    component model's under ``COMPONENT.name`` (the component is the model's attribute of that
    name), an old one-directory model's as stored."""
    directory = Path(directory)
    if not (directory / MODEL_INDEX_NAME).is_file():
        return _restore(load_file(str(directory / WEIGHTS_NAME)))
    state = {}
    for name in model_components(read_model_index(directory)):
        if (directory / name / WEIGHTS_NAME).is_file():
            state.update({f"{name}.{k}": v for k, v in read_weights(directory / name).items()})
    return state
