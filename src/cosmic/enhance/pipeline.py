"""The enhance pipeline: a decoded image (array, JPEG2000 file, JPEG2000 GeoTIFF product, or a
COSMIC decode) -> overlapping tiles -> LDM-RSIC enhancer -> array / PNG / GeoTIFF.

Every entry point that enhances (``cosmic enhance``, ``cosmic decompress --enhance``,
``cosmic eval``'s ``jpeg2000+enhance``) goes through :class:`EnhancePipeline`. Tiles of ``tile``
px are enhanced with ``overlap`` px of context on each side (mirrored at the image border) and
only their centres are kept, so a scene is processed one tile row at a time: a GeoTIFF output
is written row by row (memory does not grow with the scene) and keeps the input's CRS,
transform and nodata. Tile i of a scene gets the seed ``seed * 1_000_003 + i`` (as COSMIC's
compensation does), so the same seed gives the same image whatever the batching.

The rate the enhancer is conditioned on is read from the file: the JPEG2000 codestream's bytes
x 8 / pixels (a JP2's ``jp2c`` box, without its metadata boxes; a raw ``.j2k`` whole), the
container's bpp for a COSMIC decode, or ``bpp`` when given (required for a TIFF, whose size
says nothing reliable about the codestream inside it).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from cosmic.enhance.codestream import check_enhance_input, codestream_bytes  # noqa: F401 - re-exported
from cosmic.enhance.model import TILE_MULTIPLE, Enhancer
from cosmic.errors import BitstreamError, InputError, ModelError, first_line

__all__ = ["EnhancePipeline", "PriorPipeline", "Enhanced", "codestream_bytes", "DEFAULT_ENHANCER", "shipped_enhancer",
           "JPEG2000_SUFFIXES"]

#: the shipped JPEG2000 enhancer (``cosmic enhance``'s default)
DEFAULT_ENHANCER = "ldm-rsic-jpeg2000-small"
JPEG2000_SUFFIXES = (".jp2", ".j2k", ".j2c", ".jpx", ".jpf")


def shipped_enhancer(source: str) -> str | None:
    """The shipped enhancer whose config names ``source`` as its source codec, or None."""
    from cosmic.zoo import read_model_config, shipped_models

    for name in shipped_models():
        cfg = read_model_config(name)
        if cfg.get("_class_name") == "Enhancer" and cfg.get("source") == source:
            return name
    return None


@dataclass
class Enhanced:
    width: int
    height: int
    bpp: float | None  # the input's rate (None: a GeoTIFF product through a prior, which needs none)
    seconds: float
    georef: dict | None
    notes: list
    enhanced: bool = True  # False: the rate was outside the enhancer's range, the decode passed through


def _pad_to(pixels: np.ndarray, multiple: int) -> np.ndarray:
    h, w = pixels.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    return np.pad(pixels, ((0, ph), (0, pw), (0, 0)), mode="symmetric") if ph or pw else pixels


class EnhancePipeline:
    """An :class:`~cosmic.enhance.model.Enhancer` and the tiling around it."""

    needs_rate = True  # the enhancer is conditioned on the input's bpp

    def __init__(self, enhancer: Enhancer, tile: int = 256, overlap: int = 16):
        if tile % TILE_MULTIPLE:
            raise InputError(f"tile {tile}: must be a multiple of {TILE_MULTIPLE}")
        self.enhancer, self.tile, self.overlap = enhancer.eval(), tile, overlap

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
        ``.cosmic`` file carries): ``model``, or the shipped enhancer whose ``source`` is it. An
        enhancer of the generic source ``cosmic`` is accepted for any COSMIC model's decodes."""
        name = model if model is not None else shipped_enhancer(source)
        if name is None:
            raise InputError(f"no enhancer is trained for {source} decodes (none shipped); "
                             f"train one with cosmic train enhance --source {source}")
        pipe = cls.from_pretrained(name)
        made_for = pipe.enhancer.source
        if made_for != source and not (made_for == "cosmic" and source != "jpeg2000"):
            raise InputError(f"{pipe.enhancer.name} enhances {made_for} decodes, not {source}")
        return pipe

    def _check_steps(self, steps: int) -> None:
        if steps < 0:
            raise InputError(f"--steps {steps}: must be 0 or more")
        if steps and self.enhancer.ldm is None:
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

    def outside_range(self, bpp: float | None) -> str | None:
        """Why a decode at ``bpp`` passes through unenhanced (outside :attr:`rate_range`), or None."""
        span = self.rate_range
        if span is None or bpp is None or span[0] <= bpp <= span[1]:
            return None
        return (f"{bpp:.4g} bpp is outside the {span[0]:g}..{span[1]:g} bpp that {self.enhancer.name} "
                "enhances (it lowers PSNR there); written as decoded, not enhanced")

    def rows(self, read: Callable[[int, int, int, int], np.ndarray], width: int, height: int, bpp: float,
             steps: int = 0, seed: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        """(top, enhanced strip) for each tile row; ``read(top, left, h, w)`` gives uint8 pixels
        of a window inside the image. A ``bpp`` outside :attr:`rate_range` gives the strips as read."""
        self._check_steps(steps)
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

    def enhance_array(self, decoded: np.ndarray, bpp: float, steps: int = 0, seed: int = 0) -> np.ndarray:
        """Enhance an (H, W, 3) uint8 decoded image coded at ``bpp``."""
        if decoded.ndim != 3 or decoded.shape[2] != 3 or decoded.dtype != np.uint8:
            raise InputError(f"expected (H, W, 3) uint8 pixels, got {decoded.shape} {decoded.dtype}")
        h, w = decoded.shape[:2]
        out = np.empty_like(decoded)
        read = lambda top, left, hh, ww: decoded[top : top + hh, left : left + ww]  # noqa: E731
        for top, strip in self.rows(read, w, h, bpp, steps, seed):
            out[top : top + strip.shape[0]] = strip
        return out

    def enhance_file(self, source: str | os.PathLike, output: str | os.PathLike, steps: int = 0, seed: int = 0,
                     bpp: float | None = None, bands: list[int] | None = None, scale=None) -> Enhanced:
        """Enhance a JPEG2000 file (``.jp2``/``.j2k``/...) or a JPEG2000 GeoTIFF product into a PNG
        or a GeoTIFF (``.tif``: written row by row, georeferencing kept). Nothing is left at
        ``output`` if anything fails."""
        from cosmic.io.raster import RasterSource

        source, output = Path(source), Path(output)
        self._check_steps(steps)
        if not source.is_file():
            raise InputError(f"{source}: no such file")
        rate = _input_rate(source, bpp) if self.needs_rate or not _is_tiff(source) or bpp is not None else None
        passed = self.outside_range(rate)
        t0 = time.perf_counter()
        with RasterSource.open(source, bands, scale) as src:
            read = _checked_reader(src)
            rows = self.rows(read, src.width, src.height, rate, steps, seed)
            write_rows(rows, output, src.width, src.height, src.georef, src.channels)
            notes = list(src.notes) + ([f"{source.name}: {passed}"] if passed else [])
            return Enhanced(src.width, src.height, rate, time.perf_counter() - t0, src.georef, notes, passed is None)


class PriorPipeline:
    """A decoder-side prior (Code-RSIC's :class:`cosmic.codebook.CodebookPrior`, or anything with
    ``enhance(pixels, fidelity, tile)``) in the enhancer's place, for ``cosmic enhance IN.jp2
    --prior codebook``: the same inputs, tile rows, outputs and failure rules as
    :class:`EnhancePipeline`; the prior needs no rate (a GeoTIFF product without ``--bpp`` is
    fine) and has no diffusion steps."""

    needs_rate = False

    def __init__(self, prior, fidelity: float | None = None, tile: int = 256):
        self.prior, self.fidelity, self.tile = prior, fidelity, tile

    def outside_range(self, bpp: float | None) -> None:
        """The prior has no rate range (``fidelity`` bounds what it changes)."""
        return None

    def _check_steps(self, steps: int) -> None:
        if steps:
            raise InputError(f"--steps {steps}: the codebook prior has no diffusion; not with --prior")

    def rows(self, read: Callable[[int, int, int, int], np.ndarray], width: int, height: int,
             bpp: float | None = None, steps: int = 0, seed: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        """(top, strip through the prior) for each row of ``tile``-px tiles (each tile on its own,
        as the codec codes them)."""
        for top in range(0, height, self.tile):
            yield top, self.prior.enhance(read(top, 0, min(self.tile, height - top), width), self.fidelity, self.tile)

    enhance_file = EnhancePipeline.enhance_file


def _is_tiff(source: Path) -> bool:
    return source.suffix.lower() in (".tif", ".tiff")


def _input_rate(source: Path, bpp: float | None) -> float:
    """bpp given, or read from the JPEG2000 codestream (refused for a TIFF without ``bpp``)."""
    if bpp is not None:
        if not 0.0 < bpp <= 24.0:
            raise InputError(f"--bpp {bpp}: must be in (0, 24]")
        if not _is_tiff(source):
            codestream_bytes(source)  # still a JPEG2000 file
        return float(bpp)
    if _is_tiff(source):
        raise InputError(f"{source}: a TIFF's size does not give the rate of the JPEG2000 codestream "
                         "it was coded with; give it with --bpp")
    n = codestream_bytes(source)
    from PIL import Image

    try:
        with Image.open(source) as im:
            w, h = im.size
    except Exception as exc:
        raise BitstreamError(f"{source}: cannot read the JPEG2000 header ({first_line(exc)})") from None
    return n * 8.0 / (w * h)


def _checked_reader(src) -> Callable[[int, int, int, int], np.ndarray]:
    """``src.read`` with a failed JPEG2000 decode (a cut or corrupt codestream) as a bad bitstream."""
    def read(top: int, left: int, h: int, w: int) -> np.ndarray:
        try:
            return src.read(top, left, h, w)
        except InputError as exc:
            raise BitstreamError(str(exc)) from None

    return read


def write_rows(rows: Iterator[tuple[int, np.ndarray]], output: Path, width: int, height: int,
               georef: dict | None, channels: int = 3) -> None:
    """Write enhanced strips to ``output``: a GeoTIFF (``.tif``) row by row, or any other image
    format held whole (size-checked); atomically either way."""
    from cosmic.io.images import save_image
    from cosmic.io.limits import check_memory_image

    if output.suffix.lower() in (".tif", ".tiff"):
        from cosmic.io.raster import GeoTiffWriter

        out = GeoTiffWriter(output, width, height, channels, georef)
        try:
            for top, strip in rows:
                out.write(top, 0, strip)
        except BaseException:
            out.abort()
            raise
        out.close()
        return
    check_memory_image(width, height, str(output))
    pixels = np.empty((height, width, 3), np.uint8)
    for top, strip in rows:
        pixels[top : top + strip.shape[0]] = strip
    save_image(pixels, output, channels=channels)


def enhance_decode(decode_pipe, container, output: str | os.PathLike,
                   model: "str | os.PathLike | EnhancePipeline | None" = None, enhance_steps: int = 0,
                   seed: int = 0, **decode) -> list:
    """``cosmic decompress --enhance``: decode a ``.cosmic`` file with its decode pipeline, then
    enhance it with the enhancer trained on the decodes of the model that decodes it (the shipped
    one whose ``source`` is that model's name, unless ``model`` is given: a directory or name, or
    an :class:`EnhancePipeline` already loaded, as a batch keeps one per worker; the rate: the
    file's bpp). The enhancer is loaded (or refused) before anything is decoded. The enhanced
    picture is written as a plain decode is (:meth:`DecodePipeline.write`: a GeoTIFF product in the
    source's units with its fill, band names and tags, or a PNG with the fill as alpha), so nothing
    the file carries is lost. Returns the concealed tiles."""
    enh = model if isinstance(model, EnhancePipeline) else EnhancePipeline.for_source(decode_pipe.model.name, model)
    enh._check_steps(enhance_steps)
    h = container.header
    if h.planes > 1:
        raise InputError(f"{container.path.name}: --enhance enhances the picture of one band group and this "
                         f"file has {h.planes}; decode it without --enhance")
    scene = decode_pipe(container, seed=seed, **decode)
    pixels = scene.pixels[: h.height, : h.width]
    read = lambda top, left, hh, ww: pixels[top : top + hh, left : left + ww]  # noqa: E731
    enhanced = np.empty_like(pixels)
    for top, strip in enh.rows(read, h.width, h.height, container.bpp, enhance_steps, seed):
        enhanced[top : top + strip.shape[0]] = strip
    rows = lambda g: ((r, enhanced[r * h.tile : (r + 1) * h.tile]) for r in range(h.rows))  # noqa: E731
    bad = decode_pipe.write(container, output, group_rows=rows, conceal=decode.get("conceal", False))
    return sorted({e.index: e for e in scene.bad_tiles + bad}.values(), key=lambda e: e.index)
