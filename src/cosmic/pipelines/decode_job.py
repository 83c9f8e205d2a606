"""One file's decode as a typed job (issue 32 item 2): :class:`DecodeRequest` ->
:func:`decode_file` -> :class:`DecodeResult`, the one way a ``.cosmic`` file is decoded for
``cosmic decompress`` (one file), every batch worker (:mod:`cosmic.pipelines.batch`: local
processes or Dask) and :func:`cosmic.decompress` (``output`` None: the product in memory), so
their outputs are the same.

The file (or the region of it a window, bounding box or reduction asks for:
:mod:`cosmic.pipelines.region`) goes through :class:`~cosmic.pipelines.decode.DecodePipeline`
(the model the file names, or ``model``), optionally followed by a ground post-processor
(:mod:`cosmic.ground.postprocess`: ``post`` names it; :data:`FOR_MODEL`, what ``--enhance``
asks for, is the shipped enhancer of the file's model). A batch worker passes the models it
has loaded (``loaded``, :func:`cosmic.pipelines.batch.kept`: each pipeline and post-processor is loaded
once per process).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosmic.ground.deblock import DEFAULT_DEBLOCK

__all__ = ["DecodeRequest", "DecodeResult", "decode_file", "FOR_MODEL"]

#: ``post``: the shipped post-processor trained on the decodes of the file's model (``--enhance``)
FOR_MODEL = "for-model"


@dataclass(frozen=True)
class DecodeRequest:
    """What to decode and how (picklable: a batch sends it to the workers, with ``source`` and
    ``output`` set per file). ``source``: a path, bytes, a binary file object or a container;
    ``output``: an image file (PNG, TIFF / GeoTIFF, JPEG), or None for the product in memory."""

    source: Any = None
    output: Path | None = None
    model: str | None = None  # None: the shipped model the file names
    steps: int = 0  # diffusion compensation (stage 2)
    seed: int = 0
    conceal: bool = False
    deblock: bool = DEFAULT_DEBLOCK
    fmt: str | None = None  # None: by the output's suffix
    jpeg_quality: int | None = None
    device: str | None = None  # None: the process's defaults (cosmic.utils.device)
    precision: str | None = None
    dtype: str | None = None  # the product's sample type (None: the source's)
    creation_options: tuple[tuple[str, str], ...] = ()  # GeoTIFF outputs: GDAL COG options (--co)
    post: str | None = None  # a post-processor: shipped name or directory, or FOR_MODEL
    fidelity: float | None = None  # the post-processor's context (None: its default)
    post_steps: int = 0  # DDIM steps of a post-processor's sampled prior (--enhance-steps)
    window: tuple[int, int, int, int] | None = None  # (col, row, width, height)
    bbox: tuple[float, float, float, float] | None = None  # in the file's CRS
    reduce: int = 0
    progress: bool = False


@dataclass(frozen=True)
class DecodeResult:
    """A decoded file: the container (or region) decoded, the concealed tiles, the product in
    memory (``output`` None) and the seconds the decode took."""

    output: Path | None
    container: Any
    bad_tiles: tuple
    product: Any
    seconds: float
    post: str | None = None  # the post-processor's name, if one ran

    def summary(self) -> str:
        """A batch's result line."""
        h = self.container.header
        note = f", {len(self.bad_tiles)} tile(s) concealed" if self.bad_tiles else ""
        return f"{h.width}x{h.height} px, {self.container.bpp:.4f} bpp{', enhanced' if self.post else ''}{note}"


def decode_file(request: DecodeRequest, loaded: dict | None = None) -> DecodeResult:
    """Decode ``request.source`` into ``request.output`` (atomically) or, without one, into memory."""
    from cosmic.ground.postprocess import PostContext
    from cosmic.io.container import Container, read_container
    from cosmic.pipelines.decode import output_format

    r = request
    fmt = None if r.output is None else output_format(Path(r.output), r.fmt, r.jpeg_quality)
    container = r.source if isinstance(r.source, Container) else read_container(r.source, partial=r.conceal)
    container = _region(container, r)  # --conceal: a cut-off file keeps its whole tiles
    pipe = _pipeline(container, r, loaded)
    post = _post(pipe, r, loaded)
    decode = dict(steps=r.steps, seed=r.seed, conceal=r.conceal, deblock=r.deblock, progress=r.progress, post=post,
                  context=PostContext(seed=r.seed, steps=r.post_steps, fidelity=r.fidelity))
    t0 = time.perf_counter()
    if r.output is None:
        product = pipe.product(container, r.dtype, **decode)
        bad = product.bad_tiles
    else:
        product, bad = None, pipe.write(container, r.output, fmt, r.jpeg_quality, r.dtype,
                                         dict(r.creation_options), **decode)
    return DecodeResult(r.output, container, tuple(bad), product, time.perf_counter() - t0,
                        None if post is None else post.name)


def _region(container, r: DecodeRequest):
    """The region of the file a window, bounding box or reduction asks for (the file itself without)."""
    from cosmic.pipelines.region import open_region, window_from_bbox

    window = window_from_bbox(container.header, r.bbox) if r.bbox is not None else r.window
    return open_region(container, window, r.reduce, deblock=r.deblock)


def _pipeline(container, r: DecodeRequest, loaded: dict | None):
    from cosmic.pipelines.batch import kept
    from cosmic.pipelines.decode import DecodePipeline, shipped_model_for

    ref = r.model or shipped_model_for(container)
    return kept(loaded, ("decode", str(ref), r.device, r.precision),
                   lambda: DecodePipeline.from_pretrained(ref, device=r.device, precision=r.precision))


def _post(pipe, r: DecodeRequest, loaded: dict | None):
    """The post-processor ``r.post`` names (checked to refine the decodes of ``pipe``'s model), or None."""
    from cosmic.pipelines.batch import kept
    from cosmic.zoo import postprocessor_for

    if r.post is None:
        return None
    source = pipe.model.name
    name = None if r.post == FOR_MODEL else r.post
    return kept(loaded, ("post", source, name), lambda: postprocessor_for(source, name))
