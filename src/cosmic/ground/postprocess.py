"""Decoder-side post-processors: one interface for what refines a decoded image on the ground
(issue 32 item 1).

Two refiners work on a decoded picture, after any codec's decode, and nothing changes on board:

* the LDM-RSIC enhancer (:class:`cosmic.enhance.pipeline.EnhancePipeline`, Li et al.; docs/DESIGN.md
  "LDM-RSIC"), conditioned on the rate, optionally sampling its prior with DDIM;
* the Code-RSIC codebook prior (:class:`cosmic.codebook.prior.CodebookPrior`, Li & Hou;
  docs/DESIGN.md §8), blended with the decode at a fidelity.

Both implement :class:`PostProcessor`: ``post(image, context) -> image`` on an (H, W, 3) uint8
picture, ``post.rows(read, width, height, context)`` for a picture read one tile row at a time,
``check(context)`` (what it cannot do is refused before anything is decoded), and the diffusers
way of saving: ``save_pretrained(directory)`` / ``from_pretrained(directory)``, a composite in
the one save format (:mod:`cosmic.utils.pretrained`: ``model_index.json``, one subfolder per
component) whose ``_class_name`` names the class in :data:`POSTPROCESSORS`.
:func:`cosmic.zoo.load_postprocessor` loads any of them by shipped name or directory, and
:class:`~cosmic.pipelines.decode.DecodePipeline` (``post=``, ``context=``) and ``cosmic enhance``
take any of them.

What a post-processor may need to know travels in one :class:`PostContext`: the rate (bpp), the
coding quality and sensor metadata (a ``.cosmic`` file's header gives them, see
:meth:`PostContext.of_file`), the seed and DDIM steps of a sampled prior, and the fidelity.

The third ground-side refiner, COSMIC's diffusion compensation (stage 2, ``--steps N``,
:class:`cosmic.ground.diffusion.sampler.DiffusionCompensator`), is not a post-processor, and it
is kept in the decode on purpose: it generates the latent z0 between transconv and the image
decoder D, tile by tile, from each tile's y_hat and ẑ0 (``Cosmic.decompress``'s ``compensate``
hook, paper Algorithm 2), so there is no decoded image for it to take. Written as an image ->
image step it would have to decode every tile a second time (the float64 synthesis is most of a
decode's time, docs/DESIGN.md §3). It reads the same knobs (steps, seed, the file's metadata) from
the decode options (:meth:`DecodePipeline.compensation`).

The registry imports the built-in classes on first use (:data:`BUILTIN`), so that the ground
imports neither :mod:`cosmic.enhance` nor :mod:`cosmic.codebook` (both import the ground).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

import numpy as np

from cosmic.errors import InputError
from cosmic.metadata import SensorMetadata

__all__ = ["PostContext", "PostProcessor", "TiledPostProcessor", "POSTPROCESSORS", "BUILTIN",
           "register_postprocessor", "postprocessor_class", "made_for", "check_steps", "Reader"]

#: ``read(top, left, height, width)`` -> the uint8 pixels of that window of a picture
Reader = Callable[[int, int, int, int], np.ndarray]


@dataclass(frozen=True)
class PostContext:
    """What a post-processor is told about the picture it refines. Each reads what it needs:
    the LDM-RSIC enhancer ``bpp``, ``steps`` and ``seed``; the codebook prior ``fidelity`` (and
    refuses ``steps``)."""

    bpp: float | None = None  # the coded rate: a .cosmic file's bytes x 8 / pixels, a JPEG2000 codestream's
    quality: float | None = None  # a variable-rate COSMIC file's coding quality
    metadata: SensorMetadata | None = None  # the sensor metadata the file carries
    seed: int = 0  # tile i of a picture samples with seed * 1_000_003 + i (as the compensation does)
    steps: int = 0  # DDIM steps of a sampled prior (0: the deterministic one)
    fidelity: float | None = None  # the codebook prior's w (None: its config's default)

    def of_file(self, container) -> "PostContext":
        """This context with what a ``.cosmic`` file's header says filled in where it is None:
        its bpp, quality and sensor metadata."""
        h = container.header
        metadata = self.metadata
        if metadata is None and h.metadata:
            metadata = SensorMetadata.from_dict(h.metadata, source="bitstream metadata")
        return dataclasses.replace(self, bpp=container.bpp if self.bpp is None else self.bpp,
                                   quality=h.quality if self.quality is None else self.quality, metadata=metadata)


@runtime_checkable
class PostProcessor(Protocol):
    """A decoder-side refiner of decoded pictures (see the module docstring)."""

    name: str
    #: the source codec whose decodes it was trained on (``jpeg2000``, a COSMIC model name, or the
    #: generic ``cosmic``); None: any codec's
    source: str | None
    #: it reads ``context.bpp`` (a JPEG2000 GeoTIFF product then needs the rate given)
    needs_rate: bool
    #: pixels of context each tile reads beyond its own: > 0 and a picture's tile rows are not
    #: independent (the decode then post-processes the whole scene in memory)
    overlap: int

    def __call__(self, image: np.ndarray, context: PostContext) -> np.ndarray:
        """An (H, W, 3) uint8 picture -> the refined picture, same shape."""

    def rows(self, read: Reader, width: int, height: int, context: PostContext) -> Iterator[tuple[int, np.ndarray]]:
        """(top, refined strip) for each tile row of a ``width`` x ``height`` picture read by ``read``."""

    def check(self, context: PostContext) -> None:
        """InputError for what it cannot do with ``context`` (made before anything is decoded)."""

    def skip_reason(self, context: PostContext) -> str | None:
        """Why a picture passes through unchanged (e.g. a rate outside the trained range), or None."""

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """A folder in the one save format (``model_index.json`` naming ``_class_name``, its components)."""

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "PostProcessor":
        """What :meth:`save_pretrained` wrote."""


class TiledPostProcessor:
    """What a post-processor whose ``tile``-px tiles are independent shares: :meth:`rows` takes a
    picture one tile row at a time through ``__call__``; no rate, no overlap, nothing skipped."""

    source: str | None = None
    needs_rate = False
    overlap = 0
    tile = 256

    def check(self, context: PostContext) -> None:
        return None

    def skip_reason(self, context: PostContext) -> str | None:
        return None

    def rows(self, read: Reader, width: int, height: int, context: PostContext) -> Iterator[tuple[int, np.ndarray]]:
        """(top, strip through ``self``) for each row of ``tile``-px tiles (each on its own)."""
        self.check(context)
        for top in range(0, height, self.tile):
            yield top, self(read(top, 0, min(self.tile, height - top), width), context)


#: post-processor classes by the ``_class_name`` their ``model_index.json`` records
POSTPROCESSORS: dict[str, type] = {}
#: where the built-in ones are defined: imported when a name is first looked up
BUILTIN = {"Enhancer": "cosmic.enhance.pipeline", "CodebookPrior": "cosmic.codebook.prior"}


def register_postprocessor(class_name: str):
    """Class decorator: ``cls`` loads the folders whose ``model_index.json`` names ``class_name``."""
    def wrap(cls: type) -> type:
        POSTPROCESSORS[class_name] = cls
        return cls

    return wrap


def postprocessor_class(class_name: Any) -> type:
    """The registered class of a config's ``_class_name`` (ValueError when none is)."""
    if class_name not in POSTPROCESSORS and class_name in BUILTIN:
        import_module(BUILTIN[class_name])
    if class_name not in POSTPROCESSORS:
        raise ValueError(f"a {class_name} is not a post-processor ({', '.join(sorted(BUILTIN))} are)")
    return POSTPROCESSORS[class_name]


def made_for(post: PostProcessor, source: str) -> bool:
    """Whether ``post`` refines ``source`` decodes: its own source, any codec's (None), or the
    generic ``cosmic`` for any COSMIC model's."""
    return post.source in (None, source) or (post.source == "cosmic" and source != "jpeg2000")


def check_steps(steps: int) -> None:
    """``steps`` of a sampled prior: 0 or more."""
    if steps < 0:
        raise InputError(f"--steps {steps}: must be 0 or more")
