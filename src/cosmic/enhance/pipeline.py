"""The LDM-RSIC enhancer as a ground post-processor (:class:`cosmic.ground.postprocess.PostProcessor`):
a decoded picture -> overlapping tiles -> :class:`~cosmic.enhance.model.Enhancer` -> the enhanced picture.

``cosmic enhance`` (a JPEG2000 file or product: :mod:`cosmic.pipelines.enhance_job`),
``cosmic decompress --enhance`` (a COSMIC decode: :class:`~cosmic.pipelines.decode.DecodePipeline`
with ``post=``) and ``cosmic eval``'s ``jpeg2000+enhance`` take :class:`EnhancePipeline`. Tiles of
``tile`` px are enhanced with ``overlap`` px of context on each side (mirrored at the image border)
and only their centres are kept, so a picture is processed one tile row at a time (:meth:`rows`).
Tile i of a picture gets the seed ``seed * 1_000_003 + i`` (as COSMIC's compensation does), so
the same seed gives the same image whatever the batching.

The context's ``bpp`` is the rate the enhancer is conditioned on (read from the file by the
caller: a JPEG2000 codestream's, a ``.cosmic`` container's); ``steps`` > 0 samples the prior with
the LDM, ``seed`` seeds it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from cosmic.enhance.model import TILE_MULTIPLE, Enhancer
from cosmic.errors import InputError, ModelError, first_line
from cosmic.ground.postprocess import PostContext, Reader, check_steps, register_postprocessor

__all__ = ["EnhancePipeline", "DEFAULT_ENHANCER", "shipped_enhancer"]

#: the shipped JPEG2000 enhancer (``cosmic enhance``'s default)
DEFAULT_ENHANCER = "ldm-rsic-jpeg2000-small"


def shipped_enhancer(source: str) -> str | None:
    """The shipped enhancer whose config names ``source`` as its source codec, or None."""
    from cosmic.zoo import shipped_postprocessor

    return shipped_postprocessor(source, "Enhancer")


def _pad_to(pixels: np.ndarray, multiple: int) -> np.ndarray:
    h, w = pixels.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    return np.pad(pixels, ((0, ph), (0, pw), (0, 0)), mode="symmetric") if ph or pw else pixels


@register_postprocessor("Enhancer")
class EnhancePipeline:
    """An :class:`~cosmic.enhance.model.Enhancer` and the tiling around it: a post-processor
    (``pipe(image, context)``, :meth:`rows`, :meth:`check`, :meth:`skip_reason`, saved as the
    enhancer's folder)."""

    needs_rate = True  # the enhancer is conditioned on the input's bpp

    def __init__(self, enhancer: Enhancer, tile: int = 256, overlap: int = 16):
        if tile % TILE_MULTIPLE:
            raise InputError(f"tile {tile}: must be a multiple of {TILE_MULTIPLE}")
        self.enhancer, self.tile, self.overlap = enhancer.eval(), tile, overlap

    @property
    def name(self) -> str:
        return self.enhancer.name

    @property
    def source(self) -> str:
        """The codec whose decodes it enhances (``jpeg2000``, a COSMIC model name, or ``cosmic``)."""
        return self.enhancer.source

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """The enhancer's folder (:meth:`Enhancer.save_pretrained`); tiling is not saved."""
        return self.enhancer.save_pretrained(directory)

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike = DEFAULT_ENHANCER, **kwargs) -> "EnhancePipeline":
        from cosmic.zoo import model_path

        path = model_path(name_or_dir)
        try:
            return cls(Enhancer.from_pretrained(path), **kwargs)
        except (OSError, ValueError, RuntimeError, TypeError, KeyError) as exc:
            raise ModelError(f"{path}: cannot load the enhancer ({first_line(exc)})") from None

    @classmethod
    def for_source(cls, source: str, model: str | os.PathLike | None = None) -> "EnhancePipeline":
        """The enhancer trained for ``source`` decodes (``jpeg2000``, or the COSMIC model name a
        ``.cosmic`` file carries): ``model``, or the shipped enhancer whose ``source`` is it
        (:func:`cosmic.zoo.postprocessor_for`). An enhancer of the generic source ``cosmic`` is
        accepted for any COSMIC model's decodes."""
        from cosmic.zoo import postprocessor_for

        return postprocessor_for(source, model, "Enhancer")

    def check(self, context: PostContext) -> None:
        """``steps``: 0 or more, and > 0 only with an LDM (stage II)."""
        check_steps(context.steps)
        if context.steps and self.enhancer.ldm is None:
            raise InputError(f"{self.enhancer.name} has no latent diffusion model (stage II); use --steps 0")

    @property
    def rate_range(self) -> tuple[float, float] | None:
        """The rates (bpp) this enhancer enhances: its config's ``rate_range`` (where it was
        measured to help: the shipped JPEG2000 one's), else the ``bpp_range`` a JPEG2000 enhancer
        was trained on; None when neither is known (a COSMIC enhancer: its rate is the model's
        quality range, which every file of that model is in)."""
        extra = self.enhancer.extra
        span = extra.get("rate_range") or (
            (extra.get("training") or {}).get("bpp_range") if self.enhancer.source == "jpeg2000" else None)
        return None if span is None else (float(span[0]), float(span[1]))

    def skip_reason(self, context: PostContext) -> str | None:
        """A picture at a rate outside :attr:`rate_range` passes through (:meth:`outside_range`)."""
        return self.outside_range(context.bpp)

    def outside_range(self, bpp: float | None) -> str | None:
        """Why a decode at ``bpp`` passes through unenhanced (outside :attr:`rate_range`), or None."""
        span = self.rate_range
        if span is None or bpp is None or span[0] <= bpp <= span[1]:
            return None
        return (f"{bpp:.4g} bpp is outside the {span[0]:g}..{span[1]:g} bpp that {self.enhancer.name} "
                "enhances (it lowers PSNR there); written as decoded, not enhanced")

    def rows(self, read: Reader, width: int, height: int, context: PostContext) -> Iterator[tuple[int, np.ndarray]]:
        """(top, enhanced strip) for each tile row; ``read(top, left, h, w)`` gives uint8 pixels
        of a window inside the image. A ``bpp`` outside :attr:`rate_range` gives the strips as read."""
        self.check(context)
        bpp, steps, seed = context.bpp, context.steps, context.seed
        if self.outside_range(bpp):
            yield from ((top, read(top, 0, min(self.tile, height - top), width)) for top in range(0, height, self.tile))
            return
        t, m = self.tile, self.overlap
        cols = -(-width // t)
        rate = torch.tensor([float(bpp)])
        for r in range(-(-height // t)):
            top, h = r * t, min(t, height - r * t)
            strip = np.empty((h, width, 3), np.uint8)
            for c in range(cols):
                left, w = c * t, min(t, width - c * t)
                y0, x0 = max(0, top - m), max(0, left - m)
                window = read(y0, x0, min(height, top + h + m) - y0, min(width, left + w + m) - x0)
                x = torch.from_numpy(np.array(_pad_to(window, TILE_MULTIPLE))).permute(2, 0, 1)[None].float() / 255.0
                y = self.enhancer.enhance(x, rate, steps, [seed * 1_000_003 + r * cols + c])
                out = (y[0].permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
                strip[:, left : left + w] = out[top - y0 : top - y0 + h, left - x0 : left - x0 + w]
            yield top, strip

    def __call__(self, image: np.ndarray, context: PostContext) -> np.ndarray:
        """:meth:`enhance_array` at the context's ``bpp``, ``steps`` and ``seed``."""
        return self.enhance_array(image, context.bpp, context.steps, context.seed)

    def enhance_array(self, decoded: np.ndarray, bpp: float, steps: int = 0, seed: int = 0) -> np.ndarray:
        """Enhance an (H, W, 3) uint8 decoded image coded at ``bpp``."""
        if decoded.ndim != 3 or decoded.shape[2] != 3 or decoded.dtype != np.uint8:
            raise InputError(f"expected (H, W, 3) uint8 pixels, got {decoded.shape} {decoded.dtype}")
        h, w = decoded.shape[:2]
        out = np.empty_like(decoded)
        read = lambda top, left, hh, ww: decoded[top : top + hh, left : left + ww]  # noqa: E731
        for top, strip in self.rows(read, w, h, PostContext(bpp=bpp, seed=seed, steps=steps)):
            out[top : top + strip.shape[0]] = strip
        return out
