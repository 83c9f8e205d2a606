"""The one save format of every model (issue 32 item 5), the diffusers way.

The rule:

* a **component** (one network: an on-board codec, a ground decoder, a noise predictor, a VQGAN,
  an enhancer's MEN, the scene classifier, ...) is a :class:`ConfigMixin`, saved as a folder with
  ``config.json`` (``_class_name``, every constructor argument, ``_weights_sha256`` of the
  weights, optional ``_extra``: provenance, training history) and ``model.safetensors``;
* a **composite** (a model made of components: the COSMIC model and the learned baselines, the
  stage-2 diffusion compensator, the Code-RSIC codebook prior, the LDM-RSIC enhancer) is saved
  as diffusers saves a ``DiffusionPipeline``: a folder with ``model_index.json``
  (``_class_name``, the composite's own config, one ``[library, class]`` entry per component,
  optional ``_extra``) and one subfolder per component, named as its entry, in the component
  layout (a diffusers scheduler in diffusers' own: ``scheduler_config.json``);
* something saved on its own (the scene classifier) is the component layout itself.

A COSMIC model's folder may hold its stage-2 compensator as ``diffusion/``, a composite of its
own written by stage-2 training (:func:`cosmic.zoo.load_compensator`), not one of the model's
components. Every file is written atomically (a temporary name, then ``os.replace``): a reader
sees the old file or the new one, never half a file; a composite writes its components first
and its ``model_index.json`` last, so a folder with an index has all its components.

Loading: :func:`load_pretrained` reads the folder's ``model_index.json`` (or, a component,
its ``config.json``), finds ``_class_name`` in :data:`COMPONENTS` (filled by
:func:`register_component`; classes are never imported by a name read from a file) and calls
that class's ``from_pretrained``, which builds every component from its own config
(:func:`read_composite`, :func:`load_components`; :func:`save_composite` writes them).
Older layouts (one ``config.json`` + ``model.safetensors`` for a whole model, a stage-2 model
with ``scheduler.json``, a composite with a root ``config.json``) do not load:
``scripts/migrate_models.py FOLDER...`` converts them, every stored tensor byte for byte.

Why not diffusers' own ``ConfigMixin``: this module is shared by the satellite and the ground
side, and the on-board code must not import diffusers (tests/models/test_cosmic.py checks it); the API
mirrors diffusers' (``register_to_config``, ``ignore_for_config``, ``config_name``,
``from_config``, ``save_config``; ``read_config`` is its ``load_config``; ``register_to_config`` records the arguments
before ``__init__`` runs, so ``__init__`` may refine them with :meth:`ConfigMixin.register_config`).
Departure: weights are ``model.safetensors`` (diffusers: ``diffusion_pytorch_model.safetensors``).
Nothing is ever unpickled: safetensors stores raw tensors only.

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
           "round_parameters", "write_model_index", "read_model_index", "model_components", "model_config",
           "component_class", "component_entry", "read_weights", "is_model_dir", "save_composite",
           "read_composite", "load_component", "load_components", "load_pretrained", "write_json",
           "write_text", "read_json", "CONFIG_NAME", "WEIGHTS_NAME", "MODEL_INDEX_NAME"]

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
        write_json(directory / self.config_name, config)
        return directory

    def save_pretrained(self, directory: str | os.PathLike, extra: dict | None = None,
                        dtype: torch.dtype | None = None, exclude: tuple[str, ...] = (),
                        stored: dict[str, torch.Tensor] | None = None) -> Path:
        """Write ``model.safetensors``, then ``config.json`` (each atomically, via a temporary name).

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
        os.replace(tmp_w, directory / WEIGHTS_NAME)
        self.save_config(directory, extra, weights_digest(stored))  # last: it names the weights' digest
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


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically: a temporary file beside it, then ``os.replace``
    (a reader sees the old file or the new one, never half a file)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json(path: str | os.PathLike, document: dict) -> Path:
    """``document`` as sorted, indented JSON in ``path``, atomically (:func:`write_text`)."""
    return write_text(path, json.dumps(document, indent=2, sort_keys=True) + "\n")



# -- models made of components (diffusers' DiffusionPipeline layout) ------------------------------
def _is_entry(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)


def _entry(component: Any) -> list[str]:
    """A component's ``[library, class]``: given as such, or of a built component."""
    if _is_entry(component):
        return list(component)
    return [type(component).__module__.split(".")[0], type(component).__name__]


def component_entry(directory: str | os.PathLike) -> list[str]:
    """The ``[library, class]`` entry of the component saved in ``directory`` (its
    ``config.json``'s ``_class_name``, which must be registered)."""
    cls = component_class(read_json(Path(directory) / CONFIG_NAME).get("_class_name"))
    return [cls.__module__.split(".")[0], cls.__name__]


def write_model_index(directory: str | os.PathLike, class_name: str, config: dict,
                      components: dict[str, Any], extra: dict | None = None) -> Path:
    """Write ``model_index.json`` (atomically): ``_class_name``, the model's own ``config`` and
    one ``[library, class]`` entry per component (saved in the subfolder of that name; a
    component is given built, or as its entry). Written last, so a directory with an index has
    all its components."""
    directory = Path(directory)
    index = {"_class_name": class_name, **config}
    for name, component in components.items():
        index[name] = _entry(component)
    if extra:
        index["_extra"] = extra
    return write_json(directory / MODEL_INDEX_NAME, index)


def save_composite(directory: str | os.PathLike, class_name: str, config: dict, components: dict[str, Any],
                   extra: dict | None = None, dtype: torch.dtype | None = None, dtypes: dict | None = None,
                   stored: dict[str, dict] | None = None) -> Path:
    """Save a composite: each component with its own ``save_pretrained`` in the subfolder of its
    name (at ``dtypes[name]``, else ``dtype``; ``stored[name]``: its tensors already in storage
    form, written byte for byte), then :func:`write_model_index`. Returns ``directory``."""
    directory = Path(directory)
    for name, part in components.items():
        part.save_pretrained(directory / name, dtype=(dtypes or {}).get(name, dtype),
                             stored=None if stored is None else stored[name])
    write_model_index(directory, class_name, config, components, extra)
    return directory


def is_model_dir(directory: str | os.PathLike) -> bool:
    """True for a directory with a ``model_index.json`` (a composite) or a ``config.json`` (a component)."""
    return any((Path(directory) / n).is_file() for n in (MODEL_INDEX_NAME, CONFIG_NAME))


def read_model_index(directory: str | os.PathLike) -> dict[str, Any]:
    """The root document of a saved model: a composite's ``model_index.json``, a component's
    ``config.json``."""
    directory = Path(directory)
    for name in (MODEL_INDEX_NAME, CONFIG_NAME):
        if (directory / name).is_file():
            return read_json(directory / name, ValueError)
    raise FileNotFoundError(f"no {MODEL_INDEX_NAME} or {CONFIG_NAME} in model directory {directory}")


def read_composite(directory: str | os.PathLike, class_name: str | None = None) -> dict[str, Any]:
    """The ``model_index.json`` of a composite (that must be a ``class_name`` when given);
    FileNotFoundError without one (an older layout names the converter), ValueError for another
    class."""
    path = Path(directory) / MODEL_INDEX_NAME
    if not path.is_file():
        hint = " (an older layout: scripts/migrate_models.py converts it)" if is_model_dir(directory) else ""
        raise FileNotFoundError(f"no {MODEL_INDEX_NAME} in model directory {directory}{hint}")
    index = read_json(path, ValueError)
    if class_name is not None and index.get("_class_name") != class_name:
        raise ValueError(f"{directory} holds a {index.get('_class_name')}, not a {class_name}")
    return index


def model_components(index: dict[str, Any]) -> dict[str, list[str]]:
    """The ``{name: [library, class]}`` component entries of a ``model_index.json``."""
    return {k: v for k, v in index.items() if not k.startswith("_") and _is_entry(v)}


def model_config(index: dict[str, Any]) -> dict[str, Any]:
    """The model's own config in a ``model_index.json``: neither components nor bookkeeping."""
    return {k: v for k, v in index.items() if not k.startswith("_") and not _is_entry(v)}


def load_component(directory: str | os.PathLike, index: dict[str, Any], name: str, kind: type | None = None,
                   **components):
    """The component ``name`` of a composite: the registered class its entry names (a ``kind``),
    built by its ``from_pretrained`` from ``directory/name`` (``components``: its own parts
    already built)."""
    entry = model_components(index).get(name)
    if entry is None:
        raise ValueError(f"{directory}: no component {name!r} in its {MODEL_INDEX_NAME}")
    return component_class(entry, kind).from_pretrained(Path(directory) / name, **components)


def load_components(directory: str | os.PathLike, index: dict[str, Any],
                    kinds: dict[str, type] | None = None) -> dict[str, Any]:
    """Every component of a composite, by name (:func:`load_component`; ``kinds``: the class
    each name must be, when given; a name not in ``kinds`` is refused)."""
    names = model_components(index)
    unknown = [n for n in names if kinds is not None and n not in kinds]
    if unknown:
        raise ValueError(f"{directory}: unknown component(s) {', '.join(unknown)}")
    return {name: load_component(directory, index, name, (kinds or {}).get(name)) for name in names}


def load_pretrained(directory: str | os.PathLike, kind: type | None = None):
    """Load any saved model: the registered class its ``_class_name`` names (ValueError when it
    is not registered, or not a ``kind``), by that class's ``from_pretrained``."""
    cls = component_class(read_model_index(directory).get("_class_name"), kind)
    return cls.from_pretrained(directory)


def read_weights(directory: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every tensor of a saved model as one state dict (float16 / int8 storage restored): a
    composite's under ``COMPONENT.name`` (the component is the model's attribute of that name),
    a component's as stored."""
    directory = Path(directory)
    if not (directory / MODEL_INDEX_NAME).is_file():
        return _restore(load_file(str(directory / WEIGHTS_NAME)))
    state = {}
    for name in model_components(read_model_index(directory)):
        if (directory / name / WEIGHTS_NAME).is_file():
            state.update({f"{name}.{k}": v for k, v in read_weights(directory / name).items()})
    return state
