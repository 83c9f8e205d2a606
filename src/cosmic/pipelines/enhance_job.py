"""One file's enhancement as a typed job (issue 32 item 2): :class:`EnhanceRequest` ->
:func:`enhance_file` -> :class:`EnhanceResult`, the one way ``cosmic enhance`` (one file) and
every batch worker (:mod:`cosmic.pipelines.batch`: local processes or Dask) refine a JPEG2000
decode, so their outputs are the same.

The input is a JPEG2000 file (``.jp2``/``.j2k``/...) or a JPEG2000 GeoTIFF product, read one
tile row at a time; the post-processor (:mod:`cosmic.ground.postprocess`: the LDM-RSIC enhancer
trained on JPEG2000 decodes by default, ``model`` another, or a decoder-side ``prior`` in its
place) refines it, and the output is a PNG or a GeoTIFF written row by row with the input's
georeferencing. The rate the enhancer is conditioned on is the codestream's
(:func:`cosmic.io.jpeg2000.input_rate`), or ``bpp`` when given (required for a TIFF). A batch
worker passes the post-processors it has loaded (``loaded``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from cosmic.errors import BitstreamError, InputError

__all__ = ["EnhanceRequest", "EnhanceResult", "enhance_file", "enhance_inputs", "write_rows"]


@dataclass(frozen=True)
class EnhanceRequest:
    """What to enhance and how (picklable: a batch sends it to the workers, with ``source`` and
    ``output`` set per file)."""

    source: Path | None = None
    output: Path | None = None
    model: str | None = None  # the post-processor (default: the shipped JPEG2000 enhancer)
    steps: int = 0
    seed: int = 0
    bpp: float | None = None  # the rate of the file (default: its codestream's)
    bands: tuple[int, ...] | None = None
    scale: str | tuple[float, float] | None = None
    prior: str | None = None  # a decoder-side prior in the enhancer's place (shipped name or directory)
    fidelity: float | None = None  # its fidelity (None: the prior's default)


@dataclass(frozen=True)
class EnhanceResult:
    """An enhanced file: its size, the input's rate (None: a GeoTIFF product through a
    post-processor that needs none), seconds, georeferencing and notes; ``enhanced`` False when
    the rate was outside the enhancer's range and the decode passed through."""

    width: int
    height: int
    bpp: float | None
    seconds: float
    georef: dict | None
    notes: tuple[str, ...]
    enhanced: bool = True
    how: str = ""  # "prior NAME" or "steps N"

    def summary(self) -> str:
        """A batch's result line."""
        rate = "" if self.bpp is None else f", {self.bpp:.4f} bpp input"
        return f"{self.width}x{self.height} px{rate}, {self.how}" + "".join(f"; note: {n}" for n in self.notes)


def enhance_inputs(bpp: float | None, prior: str | None = None) -> tuple[str, ...]:
    """The suffixes a folder or glob of JPEG2000 files contributes: the JPEG2000 files, and
    GeoTIFF products too when ``bpp`` gives their rate (their size does not) or a ``prior``, which
    needs no rate, enhances them."""
    from cosmic.io.jpeg2000 import JPEG2000_SUFFIXES

    return JPEG2000_SUFFIXES + ((".tif", ".tiff") if bpp is not None or prior else ())


def enhance_file(request: EnhanceRequest, loaded: dict | None = None) -> EnhanceResult:
    """Enhance ``request.source`` into ``request.output`` (PNG, or ``.tif``: a GeoTIFF written row
    by row, georeferencing kept). Nothing is left at ``output`` if anything fails."""
    from cosmic.ground.postprocess import PostContext
    from cosmic.io.jpeg2000 import input_rate, is_tiff
    from cosmic.io.raster import RasterSource

    r = request
    source, output = Path(r.source), Path(r.output)
    post = _post(r, loaded)
    context = PostContext(seed=r.seed, steps=r.steps, fidelity=r.fidelity)
    post.check(context)
    if not source.is_file():
        raise InputError(f"{source}: no such file")
    rate = input_rate(source, r.bpp) if post.needs_rate or not is_tiff(source) or r.bpp is not None else None
    context = dataclasses.replace(context, bpp=rate)
    passed = post.skip_reason(context)
    t0 = time.perf_counter()
    with RasterSource.open(source, None if r.bands is None else list(r.bands), r.scale) as src:
        rows = post.rows(_checked_reader(src), src.width, src.height, context)
        write_rows(rows, output, src.width, src.height, src.georef, src.channels)
        notes = tuple(src.notes) + ((f"{source.name}: {passed}",) if passed else ())
        how = f"prior {r.prior}" if r.prior else f"steps {r.steps}"
        return EnhanceResult(src.width, src.height, rate, time.perf_counter() - t0, src.georef, notes,
                             passed is None, how)


def _post(r: EnhanceRequest, loaded: dict | None):
    """The post-processor of ``r``: its ``prior``, else ``model`` or the shipped JPEG2000 enhancer."""
    from cosmic.pipelines.batch import kept
    from cosmic.zoo import load_postprocessor, postprocessor_for

    return kept(loaded, ("post", r.model, r.prior),
                lambda: load_postprocessor(r.prior) if r.prior else postprocessor_for("jpeg2000", r.model))


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
