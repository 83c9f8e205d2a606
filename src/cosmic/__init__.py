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

import builtins
import os
from typing import IO, Any

from cosmic.errors import CosmicWarning, InputError
from cosmic.utils.compressai_import import install as _install_compressai_import

__version__ = "0.1.0"

_install_compressai_import()  # the first `import compressai` skips its point-cloud (PyG) imports

__all__ = ["compress", "decompress", "open", "CosmicWarning", "__version__"]


def compress(image, quality: float | None = None, bpp: float | None = None, max_bytes: int | None = None,
             metadata=None, model: str | os.PathLike | None = None, tile: int = 256, *,
             bands: list[int] | None = None, band_groups: list[list[int]] | None = None,
             scale: str | tuple[float, float] | None = None, mask: bool = True, derive: bool = True,
             nodata: float | None = None) -> bytes:
    """Compress an image to the bytes of a ``.cosmic`` file, exactly the file ``cosmic compress``
    writes with the same settings (the keywords are its options).

    Args:
        image: the path of a PNG / JPEG / TIFF / GeoTIFF (a GeoTIFF's georeferencing travels in
            the file; a path's sidecar ``NAME.json`` is read for sensor metadata when ``metadata``
            is None), or an array: (H, W, 3) or (H, W) uint8 is a picture; any other (H, W, bands)
            array of numbers (16-bit, float, 4 bands, ...) is coded as a TIFF of it would be.
        quality: the quality of a variable-rate model, any value over its range (the shipped
            default ``cosmic-small-vr``: 1..6, default 3); None for a fixed-rate ``model``.
        bpp, max_bytes: rate control instead of ``quality`` (variable-rate models): the highest
            quality whose whole file fits, landing within 3 % under the target.
        metadata: sensor metadata, a :class:`~cosmic.metadata.SensorMetadata` or a dict of its fields.
        model: a shipped model name or a model directory (default: ``cosmic-small-vr``, or for
            an (H, W) array or a one-band file the single-band ``cosmic-small-vr-gray``).
        tile: tile size in pixels (a multiple of 64).
        bands: a TIFF's bands to code, 1-based (three as R, G, B, one as grey, others as band
            groups; default: all but alpha), e.g. ``[4, 3, 2]``.
        band_groups: a TIFF's band groups of one or three bands, e.g. ``[[1, 2, 3], [4]]``.
        scale: for non-8-bit TIFFs, ``(low, high)`` mapped to 0..255, or ``"auto"`` (a 2-98 %
            stretch per band); recorded in the file and inverted on decode.
        mask: code the fill (nodata / alpha / internal mask; 0 in every band of a non-8-bit file
            without nodata) as a lossless mask.
        derive: fill the sensor metadata a GeoTIFF implies (UTM zone, GSD, time, sun angles).
        nodata: an array's fill value (pixels equal to it in every band; NaN for floats), coded as
            the mask and restored on decode (a file's own nodata is used for a path).

    Raises :class:`~cosmic.errors.InputError` for unusable input or an unreachable target. What
    the command line prints as notes (an RGBA PNG's alpha dropped, a stretch chosen) is issued as
    a :class:`CosmicWarning`.
    """
    import dataclasses
    import tempfile
    import warnings

    from cosmic.api_args import array_terms, check_image, encode_request, raster_array, sensor_metadata
    from cosmic.pipelines.encode_job import encode_file

    check_image(image)
    request = encode_request(model, quality, bpp, max_bytes, tile, bands, band_groups, scale, mask, derive)
    with tempfile.TemporaryDirectory(prefix="cosmic-") as tmp, array_terms(image, tmp) as say:
        source, request = raster_array(image, request, nodata, tmp)
        out = os.path.join(tmp, "out.cosmic")
        result = encode_file(dataclasses.replace(request, source=source, output=out,
                                                 metadata=sensor_metadata(metadata)))
        with builtins.open(out, "rb") as fh:
            data = fh.read()
    for note in result.notes:
        warnings.warn(say(note), CosmicWarning, stacklevel=2)
    return data


def decompress(source: bytes | str | os.PathLike | IO[bytes], steps: int = 0, seed: int = 0,
               model: str | os.PathLike | None = None, return_georef: bool = False, *, dtype: str | None = None,
               window: tuple[int, int, int, int] | None = None, reduce: int = 0, deblock: bool = True):
    """Decode a ``.cosmic`` file (bytes, a path or a binary file object) to the array its GeoTIFF
    product holds (``cosmic decompress F -o F.tif``): (H, W, bands), or (H, W) for one band, every
    coded band in order, in the source's sample type with the coding stretch inverted (``dtype``:
    another, e.g. ``"uint8"`` for the coded 8-bit picture), the fill restored (the nodata value
    where the type holds it).

    ``steps`` > 0 adds diffusion compensation with that many DDIM steps (models with a stage-2
    network; ``seed`` fixes the result); the default, 0, decodes without it. ``model``: the
    model directory, for a file not coded by a shipped model. With ``return_georef`` the result
    is ``(pixels, georef)``: georef the dict of ``crs``, ``transform``, ``nodata``, ``scale`` (the
    per-band ``(low, high)`` stretch, or None) and ``mask`` (the (H, W) bool validity, True =
    valid, or None without fill), or None when the file has none of them.

    ``window=(col, row, width, height)`` decodes only the tiles that pixel window needs and
    returns that crop of the full decode, exactly (its georef's transform moved to the window);
    ``reduce=K`` a 2^K times smaller image (2^K x 2^K block means of the decode, computed tile row
    by tile row; every tile is still decoded). A window outside the image, empty or negative, or
    a ``reduce`` outside 0..6, is an :class:`~cosmic.errors.InputError`.

    ``deblock`` (default True, as ``cosmic decompress``): tile borders are smoothed after
    stitching (no bits; ``--no-deblock`` / ``deblock=False``: the plain stitched tiles).
    """
    from cosmic.api_args import check_decode_args, check_source
    from cosmic.pipelines.decode_job import DecodeRequest, decode_file

    check_source(source)
    steps, seed, dtype = check_decode_args(steps, seed, dtype)
    if not isinstance(deblock, bool):
        raise InputError(f"deblock={deblock!r}: expected True or False")
    result = decode_file(DecodeRequest(source, None, None if model is None else str(model), steps, seed,
                                       deblock=deblock, dtype=dtype, window=window, reduce=reduce))
    decoded = result.product
    if not return_georef:
        return decoded.pixels
    return decoded.pixels, _georef(result.container.header, decoded)


def _georef(header, decoded) -> dict | None:
    """``return_georef``'s dict (see :func:`decompress`), None when the file carries nothing of it."""
    georef = {k: v for k, v in (header.georef or {}).items() if k != "source"}
    scale = ((header.georef or {}).get("source") or {}).get("scale")
    if not georef and scale is None and decoded.valid is None:
        return None
    georef = {"crs": None, "transform": None, "nodata": None, **georef}
    return dict(georef, scale=scale and [tuple(s) for s in scale], mask=decoded.valid)


def open(source: bytes | str | os.PathLike | IO[bytes]) -> Any:  # noqa: A001 - cosmic.open, like PIL.Image.open
    """The validated :class:`~cosmic.io.container.Header` of a ``.cosmic`` file (bytes, a path or a
    binary file object): size, tile grid, model, quality, sensor metadata, georeferencing."""
    from cosmic.io.container import read_container

    return read_container(source).header
