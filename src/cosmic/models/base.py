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

and loaded by building each component from its own config (the one save format of every model:
:mod:`cosmic.utils.pretrained`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from compressai.models import CompressionModel

from cosmic.utils.pretrained import (
    ConfigMixin,
    load_components,
    model_config,
    read_composite,
    save_composite,
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
        parts = {name: getattr(self, name) for name in self.component_names}
        split = None if stored is None else {
            name: {k[len(name) + 1:]: v for k, v in stored.items() if k.startswith(name + ".")} for name in parts}
        return save_composite(directory, type(self).__name__, self.config, parts, extra, dtype=dtype, stored=split)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike):
        """Build each component from its subfolder's config and weights and assemble them."""
        index = read_composite(directory, cls.__name__)
        parts = load_components(directory, index, {name: ConfigMixin for name in cls.component_names})
        return cls(**model_config(index), **parts).eval()
