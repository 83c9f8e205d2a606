"""Shipped models (CompressAI's ``zoo`` idea): trained weights inside the package, no download.

``load_model("cosmic-small-vr")`` loads ``weights/cosmic-small-vr/`` (config.json + model.safetensors)
from this package; ``load_model(path)`` loads any model directory written by ``save_pretrained``.

Shipped: ``cosmic-small-vr``, the variable-rate default (quality 1..6, any value between), and
``cosmic-small-q3``, the fixed-rate model of the first campaign that carries the stage-2
(diffusion) network, kept for compensated decodes until the variable-rate model has its own.
"""

from __future__ import annotations

import inspect
import os
from importlib import resources
from pathlib import Path

from cosmic.errors import ModelError, first_line
from cosmic.utils.pretrained import CONFIG_NAME

__all__ = ["DEFAULT_MODEL", "COMPENSATION_MODEL", "shipped_models", "model_path", "load_model", "load_onboard", "load_compensator"]

#: the default: one variable-rate model (``cosmic compress --quality Q``, Q in 1..6, a float)
DEFAULT_MODEL = "cosmic-small-vr"
#: the shipped model with a stage-2 network (fixed rate): ``-m cosmic-small-q3 --steps N``
COMPENSATION_MODEL = "cosmic-small-q3"


def _weights_root() -> Path:
    return Path(str(resources.files("cosmic.zoo") / "weights"))


def shipped_models() -> list[str]:
    root = _weights_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CONFIG_NAME).is_file())


def model_path(name_or_dir: str | os.PathLike) -> Path:
    """Resolve a shipped model name or a model directory."""
    p = Path(name_or_dir)
    if (p / CONFIG_NAME).is_file():
        return p
    shipped = _weights_root() / str(name_or_dir)
    if (shipped / CONFIG_NAME).is_file():
        return shipped
    names = ", ".join(shipped_models()) or "none"
    raise ModelError(f"model '{name_or_dir}': neither a model directory nor a shipped model ({names})")


def load_model(name_or_dir: str | os.PathLike = DEFAULT_MODEL):
    """Load a stage-1 :class:`~cosmic.models.cosmic.Cosmic`, or a
    :class:`~cosmic.models.baselines.LearnedBaseline` (weights via safetensors, no pickle)."""
    from cosmic.models.baselines import LearnedBaseline
    from cosmic.models.cosmic import Cosmic
    from cosmic.utils.pretrained import ConfigMixin

    path = model_path(name_or_dir)
    try:
        kind = ConfigMixin.read_config(path).get("_class_name")
        model = (LearnedBaseline if kind == LearnedBaseline.__name__ else Cosmic).from_pretrained(path)
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as exc:
        raise ModelError(f"{path}: cannot load model ({first_line(exc)})") from None
    return model


def load_onboard(name_or_dir: str | os.PathLike = DEFAULT_MODEL):
    """Load only the on-board part (E, h_a, h_s, entropy models) of a model directory.

    This is what a satellite loads: it builds an :class:`~cosmic.onboard.codec.OnboardCodec` from
    the config and the ``onboard.*`` tensors and never imports the ground-side code.
    Returns ``(codec, model_name)``.
    """
    from safetensors.torch import load_file

    from cosmic.onboard.baselines import BaselineCodec
    from cosmic.onboard.codec import OnboardCodec
    from cosmic.utils.pretrained import WEIGHTS_NAME, ConfigMixin

    path = model_path(name_or_dir)
    try:
        cfg = ConfigMixin.read_config(path)
        cls = BaselineCodec if cfg.get("_class_name") == "LearnedBaseline" else OnboardCodec
        accepted = inspect.signature(cls.__init__).parameters  # the codec's share of the model config
        codec = cls(**{k: v for k, v in cfg.items() if k in accepted and k != "self"})
        prefix = "onboard."
        state = {k[len(prefix):]: v for k, v in load_file(str(path / WEIGHTS_NAME)).items() if k.startswith(prefix)}
        codec.load_state_dict(state)
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as exc:
        raise ModelError(f"{path}: cannot load the on-board model ({first_line(exc)})") from None
    return codec.eval(), str(cfg.get("name", path.name))


DIFFUSION_DIR = "diffusion"


def load_compensator(name_or_dir: str | os.PathLike = DEFAULT_MODEL):
    """The stage-2 diffusion compensator stored in ``MODEL/diffusion/``, or ``None`` if the model
    has none (it then decodes without compensation only)."""
    path = model_path(name_or_dir) / DIFFUSION_DIR
    if not (path / CONFIG_NAME).is_file():
        return None
    from cosmic.ground.diffusion.sampler import DiffusionCompensator

    try:
        return DiffusionCompensator.from_pretrained(path)
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as exc:
        raise ModelError(f"{path}: cannot load the diffusion model ({first_line(exc)})") from None
