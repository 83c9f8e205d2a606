"""COSMIC: satellite image compression with a lightweight on-board encoder and ground-side
diffusion compensation (Zhang et al., NeurIPS 2024).

The Python API is three functions that work in memory, over the same pipelines as the
``cosmic`` command (:mod:`cosmic.pipelines`):

>>> import numpy as np, cosmic
>>> image = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
>>> data = cosmic.compress(image, quality=2.5)       # bytes of a .cosmic file
>>> data[:8]
b'\\x89COSMIC\\n'
>>> header = cosmic.open(data)                       # the header, without decoding
>>> (header.width, header.height, header.model)
(300, 200, 'cosmic-small-vr')
>>> header.quality                                  # any value in 1..6
2.5
>>> cosmic.decompress(data).shape                    # (H, W, 3) uint8, no compensation
(200, 300, 3)
"""

from __future__ import annotations

import os
from typing import IO, Any

from cosmic.utils.compressai_import import install as _install_compressai_import

__version__ = "0.1.0"

_install_compressai_import()  # the first `import compressai` skips its point-cloud (PyG) imports

__all__ = ["compress", "decompress", "open", "__version__"]


def compress(image, quality: float | None = None, bpp: float | None = None, max_bytes: int | None = None,
             metadata=None, model: str | os.PathLike | None = None, tile: int = 256) -> bytes:
    """Compress an image to the bytes of a ``.cosmic`` file.

    Args:
        image: an (H, W, 3) or (H, W) uint8 array, or the path of a PNG / JPEG / TIFF / GeoTIFF
            (a GeoTIFF's georeferencing travels in the file; a path's sidecar ``NAME.json`` is
            read for sensor metadata when ``metadata`` is None).
        quality: the quality of a variable-rate model, any value over its range (the shipped
            default ``cosmic-small-vr``: 1..6, default 3); None for a fixed-rate ``model``.
        bpp, max_bytes: rate control instead of ``quality`` (variable-rate models): the highest
            quality whose whole file fits, landing within 3 % under the target.
        metadata: sensor metadata, a :class:`~cosmic.metadata.SensorMetadata` or a dict of its fields.
        model: a shipped model name or a model directory (default: ``cosmic-small-vr``, or for
            an (H, W) array or a one-band file the single-band ``cosmic-small-vr-gray``).
        tile: tile size in pixels (a multiple of 64).

    Raises :class:`~cosmic.errors.InputError` for unusable input or an unreachable target.
    """
    from cosmic.metadata import SensorMetadata
    from cosmic.pipelines.encode import EncodePipeline
    from cosmic.pipelines.scene import open_scene

    if isinstance(metadata, dict):
        metadata = SensorMetadata.from_dict(metadata)
    rate_target = bpp is not None or max_bytes is not None
    with open_scene(image, metadata=metadata) as scene:
        pipe, quality = EncodePipeline.select(model, quality, rate_target, scene.group_sizes)
        if rate_target:
            coded = pipe.encode_to_size(scene, pipe.budget(scene, bpp, max_bytes), tile)
        else:
            coded = pipe.encode(scene, tile, quality)
    return coded.to_bytes()


def decompress(source: bytes | str | os.PathLike | IO[bytes], steps: int = 0, seed: int = 0,
               model: str | os.PathLike | None = None, return_georef: bool = False):
    """Decode a ``.cosmic`` file (bytes, a path or a binary file object) to a uint8 array: (H, W, 3),
    or (H, W) for a grayscale source.

    ``steps`` > 0 adds diffusion compensation with that many DDIM steps (models with a stage-2
    network; ``seed`` fixes the result); the default, 0, decodes without it. ``model``: the
    model directory, for a file not coded by a shipped model. With ``return_georef`` the result
    is ``(pixels, georef)``, georef being the file's CRS / transform / nodata dict or None.
    """
    import numpy as np

    from cosmic.pipelines.decode import DecodePipeline, open_container

    container = open_container(source)
    pixels = DecodePipeline.for_container(container, model)(container, steps=steps, seed=seed).pixels
    if container.header.channels == 1:  # restored as grayscale, as `cosmic decompress` writes it
        from PIL import Image

        pixels = np.asarray(Image.fromarray(pixels).convert("L"))
    if not return_georef:
        return pixels
    georef = {k: v for k, v in (container.header.georef or {}).items() if k != "source"}
    return pixels, georef or None


def open(source: bytes | str | os.PathLike | IO[bytes]) -> Any:  # noqa: A001 - cosmic.open, like PIL.Image.open
    """The validated :class:`~cosmic.io.container.Header` of a ``.cosmic`` file (bytes, a path or a
    binary file object): size, tile grid, model, quality, sensor metadata, georeferencing."""
    from cosmic.io.container import read_container

    return read_container(source).header
