"""The Code-RSIC decoder-side prior as one object: VQGAN (codebook + D_H), code predictor (E_L +
Transformer) and HPIN, applied after any codec's decode (``cosmic decompress --prior codebook``,
``cosmic enhance --prior codebook``): a ground post-processor
(:class:`cosmic.ground.postprocess.PostProcessor`; its context's ``fidelity``, no rate, no steps).

A prior directory is a composite in the one save format (:mod:`cosmic.utils.pretrained`):
``model_index.json`` (class ``CodebookPrior``, its config: preset, default fidelity, training
notes; one entry per component) and one component folder (``config.json`` +
``model.safetensors``) each for ``vqgan/``, ``predictor/`` and, once stage 3 is trained,
``hpin/``. Without ``hpin/`` the prior can only give the pure prior image D_H(predicted codes)
blended with the decode. The trainer writes one component per stage, then
:func:`write_prior_index`.

Images are processed in independent tiles (``tile`` px, 256 by default: the codec's own tile),
so memory is bounded whatever the scene size.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cosmic.codebook.hpin import HPIN
from cosmic.codebook.predictor import CodePredictor
from cosmic.codebook.vqgan import VQGAN
from cosmic.errors import InputError, ModelError, first_line
from cosmic.ground.postprocess import PostContext, TiledPostProcessor, register_postprocessor
from cosmic.utils.pretrained import (
    CONFIG_NAME,
    MODEL_INDEX_NAME,
    component_entry,
    load_components,
    model_config,
    read_composite,
    read_json,
    register_component,
    save_composite,
    write_model_index,
)

__all__ = ["CodebookPrior", "check_fidelity", "load_prior", "write_prior_index", "DEFAULT_PRIOR"]

#: the shipped prior (trained on UC Merced train + train_extra, LQ = cosmic-small-vr steps-0 decodes)
DEFAULT_PRIOR = "codebook-ucm"
COMPONENTS = {"vqgan": VQGAN, "predictor": CodePredictor, "hpin": HPIN}


def check_fidelity(fidelity: float | None) -> float | None:
    """``fidelity`` as a float in [0, 1] (None, "the prior's default", passes through)."""
    if fidelity is None:
        return None
    if not 0.0 <= fidelity <= 1.0:
        raise InputError(f"--fidelity {fidelity}: must be in [0, 1] (1: the plain decode, 0: the full prior)")
    return float(fidelity)


@register_component
@register_postprocessor("CodebookPrior")
class CodebookPrior(TiledPostProcessor):
    """The prior as a post-processor: ``prior(image, context)`` is :meth:`enhance` at
    ``context.fidelity``; 256-px tiles, each on its own (docs/DESIGN.md §8)."""

    def __init__(self, vqgan: VQGAN, predictor: CodePredictor, hpin: HPIN | None = None,
                 info: dict | None = None, name: str = "codebook"):
        self.vqgan, self.predictor, self.hpin = vqgan.eval(), predictor.eval(), hpin
        if hpin is not None:
            hpin.eval()
        self.info = info or {}
        self.name = name

    def __call__(self, image: np.ndarray, context: PostContext) -> np.ndarray:
        """:meth:`enhance` at ``context.fidelity`` (None: :attr:`default_fidelity`)."""
        return self.enhance(image, context.fidelity, self.tile)

    def check(self, context: PostContext) -> None:
        """The prior has no diffusion: ``steps`` is refused; ``fidelity`` must be in [0, 1]."""
        if context.steps:
            raise InputError(f"--steps {context.steps}: the codebook prior has no diffusion; not with --prior")
        check_fidelity(context.fidelity)

    def save_pretrained(self, directory: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """Each component in its subfolder at ``dtype``, then ``model_index.json`` (config: :attr:`info`)."""
        parts = {name: getattr(self, name) for name in COMPONENTS if getattr(self, name) is not None}
        return save_composite(directory, type(self).__name__, self.info, parts, dtype=dtype)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "CodebookPrior":
        index = read_composite(directory, cls.__name__)
        parts = load_components(directory, index, COMPONENTS)
        return cls(parts["vqgan"], parts["predictor"], parts.get("hpin"), model_config(index), Path(directory).name)

    @property
    def default_fidelity(self) -> float:
        """The fidelity used when none is given: the prior's config ``default_fidelity`` (chosen
        where its measured trade-off is best, see docs/MODEL_CARD.md), 0 (full prior) without it."""
        return float(self.info.get("default_fidelity", 0.0))

    def _fidelity(self, fidelity: float | None) -> float:
        """``fidelity`` checked, or :attr:`default_fidelity` for None."""
        return self.default_fidelity if check_fidelity(fidelity) is None else fidelity

    @property
    def multiple(self) -> int:
        """Tile sides must be multiples of this (code stride)."""
        return self.vqgan.factor

    @torch.no_grad()
    def enhance_tensor(self, x: torch.Tensor, fidelity: float | None = None) -> torch.Tensor:
        """Decoded images (B, 3, H, W) in [0, 1], H and W multiples of :attr:`multiple` ->
        the prior-integrated images (clamped to [0, 1]); ``fidelity`` None: :attr:`default_fidelity`."""
        fidelity = self._fidelity(fidelity)
        logits, lq_feats, _ = self.predictor(x)
        prior_img, prior_feats = self.vqgan.decode_indices(logits.argmax(1))
        if self.hpin is None:
            out = fidelity * x + (1 - fidelity) * prior_img
        else:
            out = self.hpin(x, lq_feats, prior_feats, fidelity)
        return out.clamp(0, 1)

    def enhance(self, pixels: np.ndarray, fidelity: float | None = None, tile: int = 256) -> np.ndarray:
        """A decoded (H, W, 3) uint8 image -> the same with the prior, one ``tile`` at a time
        (edge tiles padded by replication to a multiple of the code stride, then cropped);
        ``fidelity`` None: :attr:`default_fidelity`."""
        fidelity = self._fidelity(fidelity)
        if fidelity == 1.0:
            return pixels.copy()
        out = np.empty_like(pixels)
        h, w = pixels.shape[:2]
        m = self.multiple
        for top in range(0, h, tile):
            for left in range(0, w, tile):
                block = pixels[top : top + tile, left : left + tile]
                x = torch.from_numpy(np.ascontiguousarray(block)).permute(2, 0, 1)[None].float() / 255
                bh, bw = x.shape[-2:]
                x = F.pad(x, (0, (-bw) % m, 0, (-bh) % m), mode="replicate")
                y = self.enhance_tensor(x, fidelity)[0, :, :bh, :bw]
                out[top : top + bh, left : left + bw] = (y * 255).round().byte().permute(1, 2, 0).numpy()
        return out


def load_prior(name_or_dir: str | os.PathLike = DEFAULT_PRIOR) -> CodebookPrior:
    """A shipped prior by name, or a prior directory (ModelError if it cannot be loaded)."""
    from cosmic.zoo import model_path

    path = model_path(name_or_dir)
    try:
        return CodebookPrior.from_pretrained(path)
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as exc:
        raise ModelError(f"{path}: cannot load the codebook prior ({first_line(exc)})") from None


def write_prior_index(directory: str | os.PathLike, **info) -> Path:
    """(Re)write a prior folder's ``model_index.json``, atomically: its config updated with
    ``info``, one entry per component saved in it (the trainer saves one per stage, then this)."""
    directory = Path(directory)
    index = read_json(directory / MODEL_INDEX_NAME) if (directory / MODEL_INDEX_NAME).is_file() else {}
    parts = {name: component_entry(directory / name) for name in COMPONENTS
             if (directory / name / CONFIG_NAME).is_file()}
    return write_model_index(directory, CodebookPrior.__name__, {**model_config(index), **info}, parts,
                             index.get("_extra"))
