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

__all__ = ["EncodeOptions", "encode_file", "IMAGE_INPUTS"]

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


#: the encode pipelines this process has loaded, by (model, band-group sizes)
_PIPELINES: dict = {}


def encode_file(source: Path, output: Path, options: EncodeOptions) -> str:
    """Code one image into ``output`` (atomically); the result line's message."""
    from cosmic.pipelines.encode import EncodePipeline
    from cosmic.pipelines.scene import open_scene

    o = options
    groups = None if o.band_groups is None else [list(g) for g in o.band_groups]
    with open_scene(source, bands=None if o.bands is None else list(o.bands), scale=o.scale, derive=o.derive,
                    groups=groups, mask=o.mask) as scene:
        rate_target = o.bpp is not None or o.max_bytes is not None
        pipe, quality = EncodePipeline.select(o.model, o.quality, rate_target, scene.group_sizes, _PIPELINES)
        coded = pipe.to_file(scene, output, o.tile, quality, o.bpp, o.max_bytes)
        notes = list(scene.notes) + ([f"derived {', '.join(scene.derived)} from the GeoTIFF"] if scene.derived else [])
    h = coded.header
    q = f", quality {h.quality:g}" if h.quality is not None else ""
    return f"{coded.size} bytes, {coded.bpp:.4f} bpp{q}, {h.width}x{h.height} px" + "".join(
        f"; note: {n}" for n in notes)
