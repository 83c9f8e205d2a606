"""The decode pipeline: ``.cosmic`` container -> entropy decode -> optional diffusion
compensation -> ground decoder -> sink (array, PNG / TIFF / JPEG, or a GeoTIFF written row by row).

Every entry point that decodes (``cosmic decompress``, ``cosmic demo``, ``cosmic eval`` /
``compare``, :func:`cosmic.decompress`, the benchmarks) goes through :class:`DecodePipeline`.
Each batch of tiles is decoded by the model's own ``decompress`` (CompressAI's contract), which
computes transconv(y_hat) and ẑ0 once whether or not the decode is compensated.

The default is ``steps=0``: no diffusion compensation. The shipped stage-2 network is worse than
steps 0 by every measure we have (docs/RESULTS.md), so compensation is opt-in (``steps > 0``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from cosmic.errors import InputError
from cosmic.ground.scene import DecodedScene, decode_rows, decode_scene
from cosmic.io.container import Container, TileError, read_container
from cosmic.metadata import SensorMetadata

__all__ = ["DecodePipeline", "open_container", "output_format", "OUTPUT_FORMATS"]

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
    baseline) and, for compensated decodes, its stage-2 diffusion network (loaded on first use)."""

    def __init__(self, model, model_ref: str | os.PathLike | None = None, compensator=None,
                 device=None, precision: str | None = None):
        from cosmic.utils.device import defaults, move_model, resolve_device

        default_device, default_precision = defaults()
        self.device = resolve_device(device) if device is not None else default_device
        self.precision = precision or default_precision
        self.model = _OnDevice(move_model(model.eval(), self.device), self.device, self.precision)
        self.model_ref = model_ref
        self._compensator = compensator

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike, **device) -> "DecodePipeline":
        """``device``: the ``device`` / ``precision`` arguments of the constructor."""
        from cosmic.zoo import load_model

        return cls(load_model(name_or_dir), name_or_dir, **device)

    @classmethod
    def for_container(cls, container: Container, model: str | os.PathLike | None = None,
                      **device) -> "DecodePipeline":
        """The pipeline of ``model``, or of the shipped model named in the file's header."""
        return cls.from_pretrained(model or _shipped_model_for(container), **device)

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
        (``steps`` DDIM steps, the scene's metadata from the header), or None for ``steps=0``."""
        if steps < 0:
            raise InputError(f"--steps {steps}: must be 0 or more")
        if steps == 0:
            return None
        comp = self.compensator
        if comp is None:
            raise InputError(f"model '{self.model.name}' has no diffusion compensation (stage 2); use --steps 0")
        metadata = SensorMetadata.from_dict(container.header.metadata, source="bitstream metadata")
        return lambda indices: comp.for_tiles(metadata, steps, seed, indices)

    def __call__(self, source, steps: int = 0, seed: int = 0, conceal: bool = False,
                 deblock: bool = False, progress: bool = False) -> DecodedScene:
        """Decode a whole scene into memory: ``DecodedScene(pixels, bad_tiles)``."""
        container = open_container(source)
        return decode_scene(self.model, container, conceal=conceal, deblock=deblock, progress=progress,
                            compensation=self.compensation(container, steps, seed))

    def rows(self, container: Container, steps: int = 0, seed: int = 0, conceal: bool = False,
             deblock: bool = False, bad: list[TileError] | None = None,
             progress: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """Decode one tile row at a time (see :func:`~cosmic.ground.scene.decode_rows`)."""
        return decode_rows(self.model, container, conceal, compensation=self.compensation(container, steps, seed),
                           deblock=deblock, bad=bad, progress=progress)

    def write(self, container: Container, output: str | os.PathLike, fmt: str | None = None,
              jpeg_quality: int | None = None, **decode) -> list[TileError]:
        """Decode into the image file ``output`` (PNG, TIFF: a GeoTIFF written row by row with the
        file's georeferencing, or JPEG at ``jpeg_quality``); returns the concealed tiles."""
        output = Path(output)
        fmt = fmt or OUTPUT_FORMATS.get(output.suffix.lower())
        if fmt == "tiff":
            return self._write_geotiff(container, output, **decode)
        scene = self(container, **decode)
        from cosmic.io.images import save_image

        save_image(scene.pixels, output, channels=container.header.channels, quality=jpeg_quality)
        return scene.bad_tiles

    def _write_geotiff(self, container: Container, output: Path, **decode) -> list[TileError]:
        from cosmic.io.raster import GeoTiffWriter

        h, bad = container.header, []
        georef = {k: v for k, v in (h.georef or {}).items() if k != "source"}
        with GeoTiffWriter(output, h.width, h.height, h.channels, georef or None, block=h.tile) as out:
            for r, strip in self.rows(container, bad=bad, **decode):
                top = r * h.tile
                out.write(top, 0, strip[: min(h.tile, h.height - top), : h.width])
        return sorted(bad, key=lambda e: e.index)


class _OnDevice:
    """The model as the decode loop sees it: ``decompress`` runs under the pipeline's autocast
    (the network parts; the entropy decode inside switches it off again, see
    :func:`~cosmic.utils.device.exact`) and hands back float32 pixels on the CPU. Every other
    attribute is the model's own."""

    def __init__(self, model, device, precision: str):
        self.__dict__.update(_model=model, _device=device, _precision=precision)

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def decompress(self, strings, shape, **kwargs) -> dict:
        from cosmic.utils.device import autocast

        with autocast(self._device, self._precision):
            out = self._model.decompress(strings, shape, **kwargs)
        return {**out, "x_hat": out["x_hat"].float().cpu()}


def _shipped_model_for(container: Container) -> str:
    """The shipped model a file was coded with, from its header."""
    from cosmic.zoo import shipped_models

    name = container.header.model
    if name not in shipped_models():
        raise InputError(f"{container.path.name} was coded by '{name}', which is not a shipped model; "
                         "give its directory with -m")
    return name
