"""The decode pipeline: ``.cosmic`` container -> entropy decode -> optional diffusion
compensation -> ground decoder -> sink (array, PNG / TIFF / JPEG, or a GeoTIFF written row by row).

An optional post-decode step, any ground post-processor (``post=``, :mod:`cosmic.ground.postprocess`:
Code-RSIC's codebook prior, the LDM-RSIC enhancer), runs on the decoded pixels with a
:class:`~cosmic.ground.postprocess.PostContext` completed from the file (its bpp, quality and
metadata): strip by strip when its tile rows are independent (``overlap`` 0: the prior), else on
the whole scene in memory (the enhancer's overlapping tiles read across tile rows).

Every entry point that decodes (``cosmic decompress``, ``cosmic demo``, ``cosmic eval`` /
``compare``, :func:`cosmic.decompress`, the benchmarks) goes through :class:`DecodePipeline`.
Each batch of tiles is decoded by the model's own ``decompress`` (CompressAI's contract), which
computes transconv(y_hat) and ẑ0 once whether or not the decode is compensated.

The default is ``steps=0``: no diffusion compensation. The shipped stage-2 network is worse than
steps 0 by every measure we have (docs/RESULTS.md), so compensation is opt-in (``steps > 0``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from cosmic.errors import InputError
from cosmic.ground.deblock import DEFAULT_DEBLOCK
from cosmic.ground.postprocess import PostContext, PostProcessor
from cosmic.ground.scene import DecodedScene, check_model, decode_rows, decode_scene
from cosmic.io.container import Container, TileError, read_container, source_bits
from cosmic.metadata import SensorMetadata
from cosmic.pipelines.region import cut_rows, file_tile_indices, output_size

__all__ = ["DecodePipeline", "DecodedProduct", "open_container", "output_format", "OUTPUT_FORMATS"]

#: output formats of :meth:`DecodePipeline.write`, by file suffix
OUTPUT_FORMATS = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpeg", ".jpeg": "jpeg"}


def output_format(output: Path, fmt: str | None = None, jpeg_quality: int | None = None) -> str:
    """The format of a decoded image file: png or tiff by its suffix; jpeg (a second lossy step)
    only when asked for explicitly with a JPEG quality. InputError otherwise."""
    by_suffix = OUTPUT_FORMATS.get(output.suffix.lower())
    if fmt is None and by_suffix in ("png", "tiff"):
        return by_suffix
    if fmt is None and by_suffix is None:
        raise InputError(f"{output}: unknown output format '{output.suffix}'; use .png or .tif")
    if fmt is None:
        raise InputError(f"{output}: a JPEG output adds a second lossy step; write .png or .tif, "
                         "or ask for it with --format jpeg --jpeg-quality N")
    if fmt not in ("png", "tiff", "jpeg") or fmt != by_suffix:
        raise InputError(f"--format {fmt}: choose png, tiff or jpeg, matching the output's suffix ({output.name})")
    if (fmt == "jpeg") != (jpeg_quality is not None):
        raise InputError("--jpeg-quality goes with --format jpeg, and --format jpeg needs it")
    if jpeg_quality is not None and not 1 <= jpeg_quality <= 95:
        raise InputError(f"--jpeg-quality {jpeg_quality}: must be 1..95")
    return fmt


def open_container(source) -> Container:
    """A :class:`~cosmic.io.container.Container` from a path, bytes, a file object or itself."""
    return source if isinstance(source, Container) else read_container(source)


class DecodePipeline:
    """What the ground runs: a stage-1 model (:class:`~cosmic.models.cosmic.Cosmic` or a learned
    baseline) and, for compensated decodes, its stage-2 diffusion network (loaded on first use).
    ``single_band``: the pipeline of the groups coded by a single-band model (see
    :meth:`for_group`; by default the shipped model the file names)."""

    def __init__(self, model, model_ref: str | os.PathLike | None = None, compensator=None,
                 device=None, precision: str | None = None, single_band: "DecodePipeline | None" = None):
        from cosmic.utils.device import defaults, move_model, resolve_device

        default_device, default_precision = defaults()
        self.device = resolve_device(device) if device is not None else default_device
        self.precision = precision or default_precision
        self.model = _OnDevice(move_model(model.eval(), self.device), self.device, self.precision)
        self.model_ref = model_ref
        self._compensator = compensator
        self._group_pipes = {single_band.model.onboard.bitstream_id(): single_band} if single_band else {}

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike, **device) -> "DecodePipeline":
        """``device``: the ``device`` / ``precision`` arguments of the constructor."""
        from cosmic.zoo import load_model

        return cls(load_model(name_or_dir), name_or_dir, **device)

    @classmethod
    def for_container(cls, container: Container, model: str | os.PathLike | None = None,
                      **device) -> "DecodePipeline":
        """The pipeline of ``model``, or of the shipped model named in the file's header."""
        return cls.from_pretrained(model or shipped_model_for(container), **device)

    def for_group(self, container: Container, group: int) -> "DecodePipeline":
        """The pipeline that decodes band group ``group``: this one, or for a group coded by its
        own model (``layout.models``, e.g. the single-band model's groups of a multispectral
        file) that model's (``single_band``, else the shipped model of that name), loaded once.
        A loaded model whose on-board digest is not the one the group names is a
        :class:`BitstreamError` (it was loaded again and again before: issue 34)."""
        h = container.header
        own = ((h.layout or {}).get("models") or [None] * h.planes)[group]
        if own is None or own["sha256"] == self.model.onboard.bitstream_id():
            return self
        if own["sha256"] not in self._group_pipes:
            pipe = DecodePipeline.for_container(container.plane(group), device=self.device, precision=self.precision)
            check_model(pipe.model, container.plane(group))
            self._group_pipes[own["sha256"]] = pipe
        return self._group_pipes[own["sha256"]]

    @property
    def compensator(self):
        """The stage-2 :class:`~cosmic.ground.diffusion.sampler.DiffusionCompensator`, or None."""
        if self._compensator is None and self.model_ref is not None:
            from cosmic.zoo import load_compensator

            self._compensator = load_compensator(self.model_ref) or False
        if self._compensator:
            from cosmic.utils.device import move_model

            self._compensator = move_model(self._compensator, self.device)
        return self._compensator or None

    def compensation(self, container: Container, steps: int = 0, seed: int = 0):
        """``compensation(tile_indices) -> compensate`` for :func:`~cosmic.ground.scene.decode_rows`
        (``steps`` DDIM steps, the scene's metadata from the header), or None for ``steps=0``.

        The compensation (paper Algorithm 2) stays inside the decode rather than being a ground
        post-processor (:mod:`cosmic.ground.postprocess`, which says why): it generates each
        tile's z0 from its y_hat and ẑ0 before the image decoder D runs, so it has no picture to
        take; each tile is seeded from ``seed`` and its index in the file."""
        if steps < 0:
            raise InputError(f"steps={steps}: must be 0 or more")
        if steps == 0:
            return None
        comp = self.compensator
        if comp is None:
            raise InputError(f"model '{self.model.name}' has no diffusion compensation (stage 2); use steps=0")
        metadata = SensorMetadata.from_dict(container.header.metadata, source="bitstream metadata")
        return lambda indices: comp.for_tiles(metadata, steps, seed, file_tile_indices(container, indices))

    def __call__(self, source, steps: int = 0, seed: int = 0, conceal: bool = False,
                 deblock: bool = DEFAULT_DEBLOCK, progress: bool = False, group: int = 0,
                 post: PostProcessor | None = None, context: PostContext | None = None) -> DecodedScene:
        """Decode a whole scene into memory: ``DecodedScene(pixels, bad_tiles)``, the 8-bit coded
        picture of band group ``group`` (a file with several groups: see :meth:`write`); with a
        post-processor ``post``, its output instead of the plain decode (:meth:`post_context`)."""
        parent = open_container(source)
        container = parent.plane(group)
        own = self.for_group(parent, group)
        if own is not self:  # a group coded by its own model
            return own(parent, steps, seed, conceal, deblock, progress, group, post, context)
        context = self.post_context(container, seed, post, context)
        scene = decode_scene(self.model, container, conceal=conceal, deblock=deblock, progress=progress,
                             compensation=self.compensation(container, steps, seed))
        if post is not None:
            scene = DecodedScene(post(scene.pixels, context), scene.bad_tiles)
        return scene

    @staticmethod
    def post_context(container: Container, seed: int = 0, post: PostProcessor | None = None,
                     context: PostContext | None = None) -> PostContext:
        """The context a post-processor gets: ``context`` (default: the decode's ``seed``) with the
        file's bpp, quality and metadata filled in; checked by ``post`` before anything is decoded."""
        context = (context or PostContext(seed=seed)).of_file(container)
        if post is not None:
            post.check(context)
        return context

    def rows(self, container: Container, steps: int = 0, seed: int = 0, conceal: bool = False,
             deblock: bool = DEFAULT_DEBLOCK, bad: list[TileError] | None = None, progress: bool = False,
             post: PostProcessor | None = None, context: PostContext | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Decode one tile row at a time (see :func:`~cosmic.ground.scene.decode_rows`), each strip
        through ``post`` if one is given (a post-processor whose tile rows are independent)."""
        context = self.post_context(container, seed, post, context)
        rows = decode_rows(self.model, container, conceal, compensation=self.compensation(container, steps, seed),
                           deblock=deblock, bad=bad, progress=progress)
        return rows if post is None else ((r, post(strip, context)) for r, strip in rows)

    def write(self, container: Container, output: str | os.PathLike, fmt: str | None = None,
              jpeg_quality: int | None = None, dtype: str | None = None,
              creation_options: dict[str, str] | None = None, group_rows=None, **decode) -> list[TileError]:
        """Decode into the image file ``output`` (PNG, TIFF: a GeoTIFF product written row by row,
        see :meth:`_write_geotiff`, or JPEG at ``jpeg_quality``); returns the concealed tiles.
        PNG / JPEG hold the 8-bit coded picture of a one-group file only, a PNG the fill as its
        alpha channel; a file with fill is not written as JPEG (no alpha), rather than let the fill
        read as valid pixels. ``group_rows``: see :meth:`product_rows`."""
        output = Path(output)
        fmt = fmt or OUTPUT_FORMATS.get(output.suffix.lower())
        if fmt == "tiff":
            return self._write_geotiff(container, output, dtype, creation_options, group_rows, **decode)
        h = container.header
        if h.planes > 1 or dtype not in (None, "uint8") or creation_options:
            raise InputError(f"{output}: {h.channels} bands, dtype and creation options are written to a "
                             "GeoTIFF (.tif); a PNG / JPEG holds the 8-bit picture of one band group")
        if h.has_mask and fmt == "jpeg":
            raise InputError(f"{output}: this file has fill (a validity mask) and a JPEG has no alpha "
                             "channel to carry it; write .png (fill as alpha) or .tif")
        from cosmic.io.images import save_image
        from cosmic.io.limits import check_memory_image

        check_memory_image(*output_size(container), str(output), bitstream=True)  # the size the file declares
        decoded = self.product(container, "uint8", group_rows, **decode)
        save_image(decoded.pixels, output, channels=h.channels, quality=jpeg_quality, alpha=decoded.valid)
        return decoded.bad_tiles

    def _whole_scene_rows(self, container: Container, decode: dict):
        """(``group_rows``, concealed tiles) of a post-processor whose tiles read across tile rows
        (the LDM-RSIC enhancer's overlap; ``cosmic decompress --enhance``): the one band group
        decoded whole and post-processed in memory (:meth:`__call__`), then written as a plain
        decode is (:meth:`product_rows`: the source's units, the fill, band names and tags)."""
        h = container.header
        if h.planes > 1:
            raise InputError(f"{container.path.name}: --enhance enhances the picture of one band group and this "
                             f"file has {h.planes}; decode it without --enhance")
        scene = self(container, **decode)
        rows = lambda g: ((r, scene.pixels[r * h.tile : (r + 1) * h.tile]) for r in range(h.rows))  # noqa: E731
        return rows, scene.bad_tiles

    def product_rows(self, container: Container, product, bad: list[TileError], group_rows=None,
                     **decode) -> Iterator[tuple[int, int, list[int], np.ndarray, np.ndarray | None]]:
        """The decoded product one tile row of one band group at a time, as every output path
        writes it: ``(top, group, bands, pixels, valid)``, pixels (h, W, len(bands)) in
        ``product.dtype`` (the source's units), the fill restored from the mask (``valid``, (h, W)
        bool, None without a mask). ``group_rows(group)``: the 8-bit (row, strip) pairs of a group
        (default: decoded here, through ``decode["post"]`` if given: strip by strip, or for one
        that reads across tile rows the whole scene, :meth:`_whole_scene_rows`). Concealed tiles join ``bad``."""
        from cosmic.io.raster import apply_fill, to_source_units

        h = container.header
        scale = ((h.georef or {}).get("source") or {}).get("scale")
        post = decode.get("post")
        if group_rows is None and post is not None and post.overlap > 0:
            group_rows, concealed = self._whole_scene_rows(container, decode)
            bad.extend(concealed)
        elif group_rows is None:
            group_rows = lambda g: self.for_group(container, g).rows(container.plane(g), bad=bad, **decode)  # noqa: E731
        for g, bands in enumerate(h.groups):
            for r, strip in group_rows(g):
                top = r * h.tile
                px = strip[: min(h.tile, h.height - top), : h.width]
                px = px[..., :3] if len(bands) == 3 else np.rint(px.mean(axis=2, keepdims=True)).astype(np.uint8)
                valid = _row_mask(container, r, bad, decode.get("conceal", False)) if h.has_mask else None
                if (cut := cut_rows(container, top, px, valid)) is None:
                    continue  # a row of a region's margin, outside the window
                top, px, valid = cut
                px = to_source_units(px, scale and [scale[b - 1] for b in bands], product.dtype)
                yield top, g, bands, apply_fill(px, valid, product.nodata), valid

    def product(self, container: Container, dtype: str | None = None, group_rows=None,
                **decode) -> "DecodedProduct":
        """The whole decoded product in memory (what :func:`cosmic.decompress` returns): the
        GeoTIFF's pixels, band for band, with its fill and validity mask (:meth:`product_rows`)."""
        from cosmic.io.limits import check_memory_image

        h = container.header
        width, height = output_size(container)
        check_memory_image(width, height, container.path.name, bitstream=True)
        product = geotiff_product(container, dtype)
        pixels = np.empty((height, width, h.channels), product.dtype)
        valid = np.ones((height, width), bool) if h.has_mask else None
        bad: list[TileError] = []
        for top, g, bands, px, rows_valid in self.product_rows(container, product, bad, group_rows, **decode):
            pixels[top : top + px.shape[0], :, [b - 1 for b in bands]] = px
            if g == 0 and rows_valid is not None:
                valid[top : top + px.shape[0]] = rows_valid
        return DecodedProduct(pixels[..., 0] if h.channels == 1 else pixels, valid, product,
                              sorted(bad, key=lambda e: e.index))

    def _write_geotiff(self, container: Container, output: Path, dtype: str | None = None,
                       creation_options: dict[str, str] | None = None, group_rows=None,
                       **decode) -> list[TileError]:
        """A GeoTIFF product (:func:`geotiff_product`): every band group decoded one tile row at a
        time into its bands (:meth:`product_rows`), the fill as nodata or a mask band; then a COG."""
        from cosmic.io.raster import GeoTiffWriter

        h, bad = container.header, []
        georef = {k: v for k, v in (h.georef or {}).items() if k != "source"}
        product = geotiff_product(container, dtype, creation_options)
        with GeoTiffWriter(output, *output_size(container), h.channels, georef or None, h.tile, product) as out:
            for top, g, bands, px, valid in self.product_rows(container, product, bad, group_rows, **decode):
                out.write(top, 0, px, bands)
                if g == 0 and product.mask and valid is not None:
                    out.write_mask(top, 0, valid)
        return sorted(bad, key=lambda e: e.index)


@dataclass
class DecodedProduct:
    """A decoded scene as its GeoTIFF product holds it: ``pixels`` (H, W, bands), or (H, W) for
    one band, in ``product.dtype`` with the fill restored (the nodata value where the type holds
    it); ``valid`` the (H, W) validity mask (True: valid) of a file with fill, else None."""

    pixels: np.ndarray
    valid: np.ndarray | None
    product: Any
    bad_tiles: list[TileError] = field(default_factory=list)


def _row_mask(container: Container, r: int, bad: list[TileError], conceal: bool) -> np.ndarray:
    """The validity of tile row ``r`` (cut to the image). A bad mask is raised, or with
    ``conceal`` its tile is all fill (its pixels are made up) and it joins ``bad``."""
    h = container.header
    parts = []
    for c in range(h.cols):
        try:
            parts.append(container.tile_mask(r * h.cols + c))
        except TileError as err:
            if not conceal:
                raise
            if all((e.group, e.index) != (err.group, err.index) for e in bad):
                bad.append(err)
            parts.append(np.zeros((min(h.tile, h.height - r * h.tile), min(h.tile, h.width - c * h.tile)), bool))
    return np.concatenate(parts, axis=1)


#: sample types a GeoTIFF product may be written in (``--dtype``)
PRODUCT_DTYPES = ("uint8", "uint16", "int16", "uint32", "int32", "float32", "float64")


def geotiff_product(container: Container, dtype: str | None = None,
                    creation_options: dict[str, str] | None = None):
    """How a file's GeoTIFF is written (:class:`~cosmic.io.raster.Product`): in the source's
    sample type by default (``dtype="uint8"``: the coded, stretched picture), nodata from the
    header when the type holds it (else an internal mask band), band descriptions and colour
    interpretation of the source bands, the source's own GDAL tags (``AREA_OR_POINT``, dataset and
    per-band tags) under the sensor metadata and coding as GDAL tags. ``--co``
    options GDAL would ignore or fail on are refused here, before anything is decoded."""
    from cosmic.io.raster import Product, check_creation_options, nodata_for

    h = container.header
    src = (h.georef or {}).get("source") or {}
    if dtype is None and src.get("scale") and src.get("source_dtype") not in (None, *PRODUCT_DTYPES):
        raise InputError(f"{container.path.name}: the source's sample type {src['source_dtype']} (in the header) is "
                         f"not one a product is written in; choose one with dtype= ({', '.join(PRODUCT_DTYPES)})")
    dtype = dtype or (src.get("source_dtype") if src.get("scale") else None) or "uint8"
    if dtype not in PRODUCT_DTYPES:
        raise InputError(f"dtype={dtype!r}: choose one of {', '.join(PRODUCT_DTYPES)}")
    nodata = nodata_for(h.georef, dtype) if h.georef else None
    product = Product(dtype=dtype, nodata=nodata, mask=h.has_mask and nodata is None,
                      descriptions=src.get("descriptions"), colorinterp=src.get("colorinterp"),
                      tags={**(src.get("tags") or {}), **product_tags(container)}, band_tags=src.get("band_tags"),
                      creation_options=dict(creation_options or {}))
    if creation_options:
        check_creation_options(product, h.tile)
    return product


def product_tags(container: Container) -> dict[str, str]:
    """GDAL metadata tags: the sensor metadata (fMoW keys, upper case; the timestamp also as
    ``ACQUISITIONDATETIME``, which :mod:`cosmic.io.product_metadata` reads back) and the coding."""
    h = container.header
    tags = {str(k).upper(): str(v) for k, v in (h.metadata or {}).items() if v is not None}
    if "TIMESTAMP" in tags:
        tags["ACQUISITIONDATETIME"] = tags["TIMESTAMP"]
    src = (h.georef or {}).get("source") or {}
    tags.update(COSMIC_MODEL=h.model, COSMIC_BPP=f"{container.bpp:.5f}",
                COSMIC_SOURCE_BITS=str(source_bits(h)))
    if h.quality is not None:
        tags["COSMIC_QUALITY"] = f"{h.quality:g}"
    if src.get("scale"):
        tags["COSMIC_SCALE"] = " ".join(f"{lo:g},{hi:g}" for lo, hi in src["scale"])
    return tags


class _OnDevice:
    """The model as the decode loop sees it: ``decompress`` runs under the pipeline's autocast
    (the network parts; the entropy decode inside switches it off again, see
    :func:`~cosmic.utils.device.exact`) and hands back float32 pixels on the CPU. Every other
    attribute is the model's own."""

    def __init__(self, model, device, precision: str):
        self.__dict__.update(_model=model, _device=device, _precision=precision)

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def without_context(self) -> "_OnDevice":
        """The model's view without its context (:meth:`~cosmic.models.cosmic.Cosmic.without_context`), on the device."""
        return _OnDevice(self._model.without_context(), self._device, self._precision)

    def decompress(self, strings, shape, **kwargs) -> dict:
        from cosmic.utils.device import autocast

        with autocast(self._device, self._precision):
            out = self._model.decompress(strings, shape, **kwargs)
        return {**out, "x_hat": out["x_hat"].float().cpu()}


def shipped_model_for(container: Container) -> str:
    """The shipped model a file was coded with, from its header."""
    from cosmic.zoo import shipped_models

    name = container.header.model
    if name not in shipped_models():
        raise InputError(f"{container.path.name} was coded by '{name}', which is not a shipped model; "
                         "give its directory with model=")
    return name
