"""Shipped models (CompressAI's ``zoo`` idea): trained weights inside the package, no download.

``load_model("cosmic-small-vr")`` loads ``weights/cosmic-small-vr/`` from this package;
``load_model(path)`` loads any model directory written by ``save_pretrained``. Every shipped
model is in the one save format (:mod:`cosmic.utils.pretrained`): a composite (a COSMIC model, a
codebook prior, an enhancer) is ``model_index.json`` + one subfolder per component (a COSMIC
model: ``onboard/``, ``ground/``, optional ``diffusion/``; see :mod:`cosmic.models.base`), a
component saved alone (the scene classifier) ``config.json`` + ``model.safetensors``. Every
loader here goes through :func:`~cosmic.utils.pretrained.load_pretrained` and the classes'
``from_pretrained`` on its helpers; classes come from the component registry
(:data:`cosmic.utils.pretrained.COMPONENTS`).

Shipped: ``cosmic-small-vr``, the variable-rate default (quality 1..6, any value between) with
its stage-2 (diffusion) network, conditioned on the quality, for compensated decodes
(``--steps N``), and ``cosmic-small-vr-gray``, its single-band counterpart (the default for a
one-band source; no stage 2).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from cosmic.errors import ModelError, first_line
from cosmic.utils.pretrained import (
    is_model_dir,
    load_component,
    load_pretrained,
    read_composite,
    read_model_index,
)

__all__ = ["DEFAULT_MODEL", "SINGLE_BAND_MODEL", "default_model", "COMPENSATION_MODEL", "shipped_models", "model_path", "read_model_config",
           "has_compensator", "load_model", "load_onboard", "load_compensator", "load_postprocessor",
           "shipped_postprocessor", "postprocessor_for"]

#: the default: one variable-rate model (``cosmic compress --quality Q``, Q in 1..6, a float)
DEFAULT_MODEL = "cosmic-small-vr"
#: the default for a one-band source (panchromatic or any single band): the variable-rate model
#: converted to one channel and fine-tuned on single bands (same qualities 1..6)
SINGLE_BAND_MODEL = "cosmic-small-vr-gray"
#: the shipped model with a stage-2 network: the default (``decompress --steps N`` at any quality)
COMPENSATION_MODEL = DEFAULT_MODEL
#: the subfolder of a model directory that holds its stage-2 diffusion compensator
DIFFUSION_DIR = "diffusion"
#: what a model cannot be loaded for (a missing or broken file, a config that does not fit)
_LOAD_ERRORS = (OSError, ValueError, RuntimeError, TypeError, KeyError)


def _weights_root() -> Path:
    return Path(str(resources.files("cosmic.zoo") / "weights"))


def shipped_models() -> list[str]:
    root = _weights_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if is_model_dir(p))


def default_model(bands: int = 3) -> str:
    """The model a source of ``bands`` coded bands gets when none is named: the single-band model
    for one band when it is shipped, else the RGB default (which codes a band as R = G = B)."""
    if bands == 1 and SINGLE_BAND_MODEL in shipped_models():
        return SINGLE_BAND_MODEL
    return DEFAULT_MODEL


def model_path(name_or_dir: str | os.PathLike) -> Path:
    """Resolve a shipped model name or a model directory."""
    p = Path(name_or_dir)
    if is_model_dir(p):
        return p
    shipped = _weights_root() / str(name_or_dir)
    if is_model_dir(shipped):
        return shipped
    names = ", ".join(shipped_models()) or "none"
    raise ModelError(f"model '{name_or_dir}': neither a model directory nor a shipped model ({names})")


def weights_identity(name_or_dir: str | os.PathLike) -> str:
    """A short digest of a model's weights (its components' configs, which carry each one's
    ``_weights_sha256``): what a cache of its decodes is keyed by, since new weights can be shipped
    under an old name."""
    import hashlib

    root = model_path(name_or_dir)
    configs = sorted(root.glob("*/config.json")) or [root / "config.json"]
    return hashlib.sha256(b"".join(p.read_bytes() for p in configs if p.is_file())).hexdigest()[:16]


def read_model_config(name_or_dir: str | os.PathLike) -> dict:
    """The model's ``model_index.json`` (or, an older or single-component model, its
    ``config.json``): ``_class_name``, its own config, its components, ``_extra``."""
    path = model_path(name_or_dir)
    try:
        return read_model_index(path)
    except _LOAD_ERRORS as exc:
        raise ModelError(f"{path}: cannot read the model's config ({first_line(exc)})") from None


def has_compensator(name_or_dir: str | os.PathLike) -> bool:
    """True when the model directory has a stage-2 network (``diffusion/``)."""
    return is_model_dir(model_path(name_or_dir) / DIFFUSION_DIR)


def load_model(name_or_dir: str | os.PathLike = DEFAULT_MODEL):
    """Load a stage-1 :class:`~cosmic.models.cosmic.Cosmic`, or a
    :class:`~cosmic.models.baselines.LearnedBaseline` (weights via safetensors, no pickle)."""
    import cosmic.models  # noqa: F401  (registers every model class)
    from cosmic.models.base import TwoSidedCodec

    path = model_path(name_or_dir)
    try:
        return load_pretrained(path, TwoSidedCodec)
    except _LOAD_ERRORS as exc:
        raise ModelError(f"{path}: cannot load model ({first_line(exc)})") from None


def load_onboard(name_or_dir: str | os.PathLike = DEFAULT_MODEL):
    """Load only the on-board part (E, h_a, h_s, entropy models) of a model directory.

    This is what a satellite loads: its ``onboard/`` component (an
    :class:`~cosmic.onboard.codec.OnboardCodec` or a baseline's
    :class:`~cosmic.onboard.baselines.BaselineCodec`), built from its own config, without
    importing the ground-side code. Returns ``(codec, model_name)``.
    """
    import cosmic.onboard.baselines  # noqa: F401  (registers the on-board codecs)
    import cosmic.onboard.codec  # noqa: F401
    from cosmic.onboard.coding import HyperpriorCodec

    path = model_path(name_or_dir)
    try:
        index = read_composite(path)
        codec = load_component(path, index, "onboard", HyperpriorCodec)
    except _LOAD_ERRORS as exc:
        raise ModelError(f"{path}: cannot load the on-board model ({first_line(exc)})") from None
    return codec.eval(), str(index.get("name", path.name))


def load_compensator(name_or_dir: str | os.PathLike = DEFAULT_MODEL):
    """The stage-2 diffusion compensator stored in ``MODEL/diffusion/``, or ``None`` if the model
    has none (it then decodes without compensation only)."""
    path = model_path(name_or_dir) / DIFFUSION_DIR
    if not is_model_dir(path):
        return None
    from cosmic.ground.diffusion.sampler import DiffusionCompensator

    try:
        return DiffusionCompensator.from_pretrained(path)
    except _LOAD_ERRORS as exc:
        raise ModelError(f"{path}: cannot load the diffusion model ({first_line(exc)})") from None


def load_postprocessor(name_or_dir: str | os.PathLike):
    """A ground post-processor (:mod:`cosmic.ground.postprocess`: the LDM-RSIC enhancer, the
    codebook prior), shipped name or directory, built by the post-processor class its
    ``model_index.json`` names (:func:`cosmic.ground.postprocess.postprocessor_class`)."""
    from cosmic.ground.postprocess import postprocessor_class

    path = model_path(name_or_dir)
    try:
        cls = postprocessor_class(read_model_index(path).get("_class_name"))
        return cls.from_pretrained(path)
    except _LOAD_ERRORS as exc:
        raise ModelError(f"{path}: cannot load the post-processor ({first_line(exc)})") from None


def shipped_postprocessor(source: str, class_name: str | None = None) -> str | None:
    """The shipped post-processor (of class ``class_name``, e.g. ``Enhancer``, when given) whose
    config names ``source`` as the codec whose decodes it refines, or None."""
    for name in shipped_models():
        cfg = read_model_config(name)
        if cfg.get("source") == source and class_name in (None, cfg.get("_class_name")):
            return name
    return None


def postprocessor_for(source: str, name_or_dir: str | os.PathLike | None = None, class_name: str | None = None):
    """The post-processor ``name_or_dir``, or the shipped one (of ``class_name``) trained on
    ``source`` decodes (``jpeg2000``, or the COSMIC model name a ``.cosmic`` file carries);
    InputError when none is shipped, or when it refines another codec's decodes."""
    from cosmic.errors import InputError
    from cosmic.ground.postprocess import made_for

    name = name_or_dir if name_or_dir is not None else shipped_postprocessor(source, class_name)
    if name is None:
        raise InputError(f"no enhancer is trained for {source} decodes (none shipped); "
                         f"train one with cosmic train enhance --source {source}")
    post = load_postprocessor(name)
    if not made_for(post, source):
        raise InputError(f"{post.name} enhances {post.source} decodes, not {source}")
    return post
