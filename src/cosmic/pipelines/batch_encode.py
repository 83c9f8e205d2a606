"""The encode task of a batch (``cosmic compress DIR_OR_GLOB -o OUTDIR``): image -> ``.cosmic``,
run by :func:`cosmic.pipelines.batch.run_batch` with :func:`encode_file`.

This is the satellite's side: it imports the encode pipeline and nothing of the ground's
(:mod:`cosmic.ground`, diffusers, the decode pipeline), like :mod:`cosmic.onboard`; a test runs a
batch and checks ``sys.modules``. Each worker process keeps the encode pipelines it has loaded
(:meth:`EncodePipeline.select`'s ``loaded``: one per model and band-group sizes, with the
exported ONNX graph cached per model and tile) and codes every file through the same calls as a
one-file ``cosmic compress`` (:func:`open_scene`, :meth:`EncodePipeline.to_file`), so each
``.cosmic`` file is byte for byte the one-file command's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["EncodeOptions", "encode_image", "encode_file", "IMAGE_INPUTS"]

#: the files a folder of images contributes (a glob's matches are filtered the same way)
IMAGE_INPUTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


@dataclass(frozen=True)
class EncodeOptions:
    """What every file is coded with (picklable: it travels to the workers); as ``cosmic
    compress``'s options, each image's sensor metadata from its own ``NAME.json`` sidecar."""

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


    @classmethod
    def parse(cls, model=None, quality=None, bpp=None, max_bytes=None, tile=256, bands=None, scale=None,
              band_groups=None, mask=True, derive=True) -> "EncodeOptions":
        """From ``cosmic compress``'s option strings (``--bands 4,3,2``, ``--scale p2,p98``,
        ``--band-groups 1,2,3+4``), parsed once for one file or many."""
        from cosmic.io.limits import check_tile
        from cosmic.io.raster import parse_band_groups, parse_bands, parse_scale

        check_tile(tile)  # before any image is read or model loaded
        bands, groups = parse_bands(bands), parse_band_groups(band_groups)
        return cls(model, quality, bpp, max_bytes, tile, None if bands is None else tuple(bands), parse_scale(scale),
                   None if groups is None else tuple(map(tuple, groups)), mask, derive)


#: the encode pipelines this process has loaded, by (model, band-group sizes)
_PIPELINES: dict = {}


def encode_image(source, output: Path, options: EncodeOptions, meta: Path | None = None,
                 progress: bool = False, loaded: dict | None = None, metadata=None) -> tuple:
    """Code one image (a path, or for :func:`cosmic.compress` an array) into ``output``
    (atomically), the one way ``cosmic compress``, every batch worker and :func:`cosmic.compress`
    do: (the coded file's summary, the scene's notes, a "derived ... from the GeoTIFF" line among
    them). ``metadata``: a :class:`~cosmic.metadata.SensorMetadata`, else ``meta``, a sensor-metadata
    JSON, else the image's ``NAME.json`` sidecar; ``loaded``: the pipelines already loaded
    (:meth:`EncodePipeline.select`)."""
    from cosmic.pipelines.encode import EncodePipeline
    from cosmic.pipelines.scene import open_scene

    o = options
    groups = None if o.band_groups is None else [list(g) for g in o.band_groups]
    with open_scene(source, metadata=metadata, meta=meta, bands=None if o.bands is None else list(o.bands),
                    scale=o.scale, derive=o.derive, groups=groups, mask=o.mask) as scene:
        rate_target = o.bpp is not None or o.max_bytes is not None
        pipe, quality = EncodePipeline.select(o.model, o.quality, rate_target, scene.group_sizes, loaded)
        coded = pipe.to_file(scene, output, o.tile, quality, o.bpp, o.max_bytes, progress=progress)
        derived = [f"derived {', '.join(scene.derived)} from the GeoTIFF"] if scene.derived else []
        return coded, list(scene.notes) + derived


def encode_file(source: Path, output: Path, options: EncodeOptions) -> str:
    """A batch worker's job: :func:`encode_image`, pipelines kept per process; the result line."""
    coded, notes = encode_image(source, output, options, loaded=_PIPELINES)
    h = coded.header
    q = f", quality {h.quality:g}" if h.quality is not None else ""
    return f"{coded.size} bytes, {coded.bpp:.4f} bpp{q}, {h.width}x{h.height} px" + "".join(
        f"; note: {n}" for n in notes)
