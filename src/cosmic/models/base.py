"""What every complete codec shares: an on-board half (``.onboard``, a
:class:`~cosmic.onboard.coding.HyperpriorCodec`) and a ground half (``.ground``), in CompressAI's
model contract. The rate side (``aux_loss``, ``update``, ``compress``) is the on-board codec's;
a subclass adds ``forward`` and ``decompress``.

Saved as diffusers saves a pipeline (:mod:`cosmic.utils.pretrained`)::

    MODEL/model_index.json      {"_class_name": "Cosmic", <the model's config>,
                                 "onboard": ["cosmic", "OnboardCodec"], "ground": ["cosmic", "GroundDecoder"]}
    MODEL/onboard/config.json, model.safetensors     - what a satellite loads (zoo.load_onboard)
    MODEL/ground/config.json, model.safetensors
    MODEL/diffusion/                                 - optional stage 2 (DiffusionCompensator)

and loaded by building each component from its own config. A directory in the layout before
components (one ``config.json`` + one ``model.safetensors``) still loads.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from compressai.models import CompressionModel

from cosmic.utils.pretrained import (
    MODEL_INDEX_NAME,
    ConfigMixin,
    component_class,
    model_components,
    model_config,
    read_model_index,
    write_model_index,
)

__all__ = ["TwoSidedCodec"]


class TwoSidedCodec(CompressionModel, ConfigMixin):
    """Base of :class:`~cosmic.models.cosmic.Cosmic` and the learned baselines. A subclass's
    constructor takes its components already built as ``onboard=`` / ``ground=`` (not config),
    which is how :meth:`from_pretrained` assembles a saved model."""

    #: the components, each saved in the subfolder of its name
    component_names = ("onboard", "ground")
    ignore_for_config = component_names

    def aux_loss(self) -> torch.Tensor:
        return self.onboard.aux_loss()

    def update(self, scale_table=None, force: bool = False) -> bool:
        """Rebuild the on-board entropy models' CDF tables (CompressAI contract)."""
        return self.onboard.update(scale_table=scale_table, force=force)

    def compress(self, x: torch.Tensor, quality=None) -> dict:
        """Tiles to rANS strings: the on-board codec's ``compress``."""
        return self.onboard.compress(x, quality)

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        # CompressionModel resizes the entropy tables' buffers of the nested entropy models.
        self.onboard._invalidate()
        return super().load_state_dict(state_dict, strict=strict)

    # -- persistence ----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, extra: dict | None = None,
                        dtype: torch.dtype | None = None, stored: dict | None = None) -> Path:
        """Each component in its subfolder (``save_pretrained`` of the component, at ``dtype``),
        then ``model_index.json`` with this model's config and ``extra``. ``stored``: the whole
        model's tensors already in storage form, split between the components byte for byte."""
        directory = Path(directory)
        for name in self.component_names:
            part = None if stored is None else {k[len(name) + 1:]: v for k, v in stored.items()
                                                if k.startswith(name + ".")}
            getattr(self, name).save_pretrained(directory / name, dtype=dtype, stored=part)
        components = {name: getattr(self, name) for name in self.component_names}
        write_model_index(directory, type(self).__name__, self.config, components, extra)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike):
        """Build each component from its subfolder's config and weights and assemble them; a
        directory in the one-file layout loads as before (the model built from its config)."""
        if not (Path(directory) / MODEL_INDEX_NAME).is_file():
            return super().from_pretrained(directory)
        index = read_model_index(directory)
        if index.get("_class_name") != cls.__name__:
            raise ValueError(f"{directory} holds a {index.get('_class_name')}, not a {cls.__name__}")
        parts = {name: component_class(entry, ConfigMixin).from_pretrained(Path(directory) / name)
                 for name, entry in model_components(index).items()}
        return cls(**model_config(index), **parts).eval()
