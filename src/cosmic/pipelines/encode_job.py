"""One file's encode as a typed job (issue 32 item 2): :class:`EncodeRequest` ->
:func:`encode_file` -> :class:`EncodeResult`, the one way an image becomes a ``.cosmic`` file for
``cosmic compress`` (one file), every batch worker (:mod:`cosmic.pipelines.batch`: local
processes or Dask) and :func:`cosmic.compress`, so each file is byte for byte the same.

This is the satellite's side: it imports the encode pipeline and nothing of the ground's
(:mod:`cosmic.ground`, diffusers, the decode pipeline), like :mod:`cosmic.onboard`; a test runs a
batch and checks ``sys.modules``. A batch worker passes the pipelines it has loaded (``loaded``:
:meth:`EncodePipeline.select`'s, one per model and band-group sizes, with the exported ONNX graph
cached per model and tile).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["EncodeRequest", "EncodeResult", "encode_file", "IMAGE_INPUTS"]

#: the files a folder of images contributes (a glob's matches are filtered the same way)
IMAGE_INPUTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


@dataclass(frozen=True)
class EncodeRequest:
    """What to code and how (picklable: a batch sends it to the workers, with ``source`` and
    ``output`` set per file). ``source``: an image path, or for :func:`cosmic.compress` an
    array; ``metadata``: a :class:`~cosmic.metadata.SensorMetadata`, else ``meta``, a
    sensor-metadata JSON, else the image's ``NAME.json`` sidecar."""

    source: Any = None
    output: Path | None = None
    model: str | None = None
    quality: float | None = None
    bpp: float | None = None
    max_bytes: int | None = None
    tile: int = 256
    bands: tuple[int, ...] | None = None
    scale: str | tuple[float, float] | None = None
    band_groups: tuple[tuple[int, ...], ...] | None = None
    mask: bool = True
    derive: bool = True
    meta: Path | None = None
    metadata: Any = None
    progress: bool = False

    @classmethod
    def parse(cls, source=None, output=None, model=None, quality=None, bpp=None, max_bytes=None, tile=256,
              bands=None, scale=None, band_groups=None, mask=True, derive=True, meta=None,
              progress=False) -> "EncodeRequest":
        """From ``cosmic compress``'s option strings (``--bands 4,3,2``, ``--scale p2,p98``,
        ``--band-groups 1,2,3+4``), parsed once for one file or many."""
        from cosmic.io.limits import check_tile
        from cosmic.io.raster import parse_band_groups, parse_bands, parse_scale

        check_tile(tile)  # before any image is read or model loaded
        bands, groups = parse_bands(bands), parse_band_groups(band_groups)
        return cls(source, output, model, quality, bpp, max_bytes, tile, None if bands is None else tuple(bands),
                   parse_scale(scale), None if groups is None else tuple(map(tuple, groups)), mask, derive, meta,
                   None, progress)


@dataclass(frozen=True)
class EncodeResult:
    """A coded file: where, its :class:`~cosmic.pipelines.encode.EncodedScene` (header, size,
    seconds) and the scene's notes (a "derived ... from the GeoTIFF" line among them)."""

    output: Path
    coded: Any
    notes: tuple[str, ...]

    def summary(self) -> str:
        """A batch's result line."""
        h = self.coded.header
        q = f", quality {h.quality:g}" if h.quality is not None else ""
        return f"{self.coded.size} bytes, {self.coded.bpp:.4f} bpp{q}, {h.width}x{h.height} px" + "".join(
            f"; note: {n}" for n in self.notes)


def encode_file(request: EncodeRequest, loaded: dict | None = None) -> EncodeResult:
    """Code ``request.source`` into ``request.output`` (atomically; at a quality, or under rate
    control for a ``bpp`` / ``max_bytes`` target: :meth:`EncodePipeline.to_file`). ``loaded``:
    the pipelines a batch worker keeps (:meth:`EncodePipeline.select`)."""
    from cosmic.pipelines.encode import EncodePipeline
    from cosmic.pipelines.scene import open_scene

    r = request
    groups = None if r.band_groups is None else [list(g) for g in r.band_groups]
    with open_scene(r.source, metadata=r.metadata, meta=r.meta, bands=None if r.bands is None else list(r.bands),
                    scale=r.scale, derive=r.derive, groups=groups, mask=r.mask) as scene:
        rate_target = r.bpp is not None or r.max_bytes is not None
        pipe, quality = EncodePipeline.select(r.model, r.quality, rate_target, scene.group_sizes, loaded)
        coded = pipe.to_file(scene, r.output, r.tile, quality, r.bpp, r.max_bytes, progress=r.progress)
        derived = [f"derived {', '.join(scene.derived)} from the GeoTIFF"] if scene.derived else []
        return EncodeResult(Path(r.output), coded, tuple(scene.notes) + tuple(derived))
