"""The encode pipeline: scene -> tiles -> on-board codec -> ``.cosmic`` container.

Every entry point that codes an image (``cosmic compress``, ``cosmic demo``, ``cosmic eval`` /
``compare``, :func:`cosmic.compress`, the benchmarks) goes through :class:`EncodePipeline`, so
the same input and settings give the same bytes everywhere. y and z are computed by the exported
on-board graph in ONNX Runtime when it is installed (bit-identical for any thread count and batch
size, and to what the satellite's runtime writes; :mod:`cosmic.onboard.export`), else by PyTorch.

Rate control (:meth:`EncodePipeline.encode_to_size`, :mod:`cosmic.pipelines.rate`): for a
variable-rate model the quality is searched on a sample of tiles, then verified on the whole
scene's real container size, so that the file lands at most ``tolerance`` (3 %) under the byte
budget and never over it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from cosmic.errors import InputError
from cosmic.io.container import (
    ContainerWriter, Header, bits_per_pixel, container_bytes, container_size, quantize_quality,
)
from cosmic.onboard.scene import DEFAULT_TILE, encode_tiles, scene_header
from cosmic.pipelines.scene import Scene

__all__ = ["EncodePipeline", "EncodedScene", "RATE_TOLERANCE", "check_rate_target"]

#: rate control: the file lands within this fraction under the byte budget
RATE_TOLERANCE = 0.03


def check_rate_target(quality: float | None = None, bpp: float | None = None, max_bytes: int | None = None) -> None:
    """``--quality`` / ``--bpp`` / ``--max-bytes`` as given, before any image is read: at most one
    rate target, a positive one, and no quality beside it (InputError otherwise)."""
    if quality is not None and (bpp is not None or max_bytes is not None):
        raise InputError("quality= and a rate target (bpp= / max_bytes=) exclude each other")
    if bpp is not None and max_bytes is not None:
        raise InputError("give one rate target: bpp or max_bytes")
    if bpp is not None and not bpp > 0:
        raise InputError(f"bpp={bpp}: must be positive")
    if max_bytes is not None and max_bytes <= 0:
        raise InputError(f"max_bytes={max_bytes}: must be positive")


@dataclass
class EncodedScene:
    """A coded scene: its header and one payload per tile, with the file size and the seconds
    the on-board coding took (under rate control: the whole search's, and the write's)."""

    header: Header
    payloads: list[bytes]  # empty for a scene streamed into a file (EncodePipeline.write)
    size: int  # the container's size in bytes (header, tile table and payloads)
    seconds: float = 0.0
    trials: list[tuple[float, int]] = field(default_factory=list)  # rate control: (quality, bytes)

    @property
    def bpp(self) -> float:
        return bits_per_pixel(self.size, self.header.width, self.header.height)

    def to_bytes(self) -> bytes:
        return container_bytes(self.header, self.payloads)

    def write(self, path: str | os.PathLike) -> int:
        """Write the container atomically; return its size in bytes."""
        with ContainerWriter(path, self.header) as writer:
            for payload in self.payloads:
                writer.add(payload)
            return writer.close()


class EncodePipeline:
    """What the satellite runs: an on-board codec (:class:`~cosmic.onboard.codec.OnboardCodec` or
    a learned baseline's) and the model name written into every file. ``single_band``: the
    pipeline that codes the one-band groups of a multi-group scene (e.g. the NIR of
    ``--band-groups 1,2,3:4``), named per group in the file's ``layout.models``; None: this
    pipeline codes them too (a band as R = G = B). ``pad_edges``: edge tiles padded only to the
    codec's stride (format version 4, the default), or False: to the whole tile, as an encoder
    with one fixed-shape graph does (versions 1-3; :func:`~cosmic.onboard.scene.edge_stride`)."""

    def __init__(self, codec, name: str, batch_size: int = 4, runtime: str = "auto",
                 single_band: "EncodePipeline | None" = None, pad_edges: bool = True):
        self.codec, self.name, self.batch_size = codec.eval(), name, batch_size
        self.runtime, self.single_band, self.pad_edges = runtime, single_band, pad_edges

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike, **kwargs) -> "EncodePipeline":
        """The on-board part of a shipped model or model directory (no ground-side code)."""
        from cosmic.zoo import load_onboard

        codec, name = load_onboard(name_or_dir)
        return cls(codec, name, **kwargs)

    @classmethod
    def select(cls, model: str | os.PathLike | None = None, quality: float | None = None,
               rate_target: bool = False, groups: list[int] | None = None,
               loaded: dict | None = None) -> tuple["EncodePipeline", float | None]:
        """The pipeline and coding quality of ``--quality`` / ``--model`` (default:
        :meth:`default_for` the sizes of the scene's band ``groups``): a variable-rate model
        takes a float quality over its range (default: 3, or its top if lower); a fixed-rate model
        takes none. With ``rate_target`` the quality is left to rate control. ``loaded``: the
        pipelines already loaded, by (model, groups), which a new one joins (a batch's worker
        loads each once)."""
        if rate_target and quality is not None:
            raise InputError("quality= and a rate target (bpp= / max_bytes=) exclude each other")
        key = (None if model is None else str(model), tuple(groups or [3]))
        pipe = None if loaded is None else loaded.get(key)
        if pipe is None:
            pipe = cls.default_for(groups or [3]) if model is None else cls.from_pretrained(model)
            if loaded is not None:
                loaded[key] = pipe
        if rate_target:
            return pipe, None
        return pipe, pipe.check_quality(pipe.default_quality if quality is None else quality)

    @classmethod
    def default_for(cls, groups: list[int]) -> "EncodePipeline":
        """The shipped default for band groups of these sizes: the single-band model
        (:data:`cosmic.zoo.SINGLE_BAND_MODEL`, when shipped) for one-band groups, the RGB
        default for three-band ones (and for every group when the single-band model is not shipped)."""
        from cosmic.zoo import DEFAULT_MODEL, default_model

        single = default_model(1)
        if all(n == 1 for n in groups):
            return cls.from_pretrained(single)
        pipe = cls.from_pretrained(DEFAULT_MODEL)
        if 1 in groups and single != DEFAULT_MODEL:
            pipe.single_band = cls.from_pretrained(single)
        return pipe

    def for_group(self, bands: int) -> "EncodePipeline":
        """The pipeline that codes a band group of ``bands`` bands."""
        return self.single_band if bands == 1 and self.single_band is not None else self

    @property
    def default_quality(self) -> float | None:
        """The quality coded when none is asked for: 3, or a variable-rate model's top quality if
        that is lower; None for a fixed-rate model."""
        return None if self.quality_range is None else min(3.0, self.quality_range[1])

    def to_file(self, scene: Scene, path: str | os.PathLike, tile: int = DEFAULT_TILE,
                quality: float | None = None, bpp: float | None = None, max_bytes: int | None = None,
                progress: bool = False) -> EncodedScene:
        """Code ``scene`` into the file ``path``: streamed at ``quality``, or under rate control
        when ``bpp`` or ``max_bytes`` is given."""
        if bpp is None and max_bytes is None:
            return self.write(scene, path, tile, quality, progress)
        target = f"bpp={bpp}" if bpp is not None else f"max_bytes={max_bytes}"
        t0 = time.perf_counter()
        coded = self.encode_to_size(scene, self.budget(scene, bpp, max_bytes), tile, target=target,
                                    progress=progress)
        coded.write(path)
        coded.seconds = time.perf_counter() - t0  # the whole search and the write: what the user waited
        return coded

    @property
    def quality_range(self) -> tuple[float, float] | None:
        """(lowest, highest) quality of a variable-rate model; None for a fixed-rate one."""
        return self.codec.quality_range

    def check_quality(self, quality: float | None) -> float | None:
        """``quality`` quantised as the container stores it; InputError when it does not fit."""
        lo_hi = self.quality_range
        if lo_hi is None:
            if quality is not None:
                raise InputError(f"model '{self.name}' codes one rate; it takes no quality value")
            return None
        if quality is None or not lo_hi[0] <= float(quality) <= lo_hi[1]:
            raise InputError(f"quality={quality}: model '{self.name}' codes qualities {lo_hi[0]:g}..{lo_hi[1]:g}")
        return quantize_quality(quality)

    def header(self, scene: Scene, tile: int = DEFAULT_TILE, quality: float | None = None) -> Header:
        from cosmic.io.limits import check_row, check_tile

        check_tile(tile, "tile", self.codec.downsampling_factor)  # the memory policy of cosmic.io.limits
        check_row(scene.width, tile, scene.name, bitstream=False)  # what the decoder would refuse
        if getattr(self.codec, "in_channels", 3) == 1 and any(n != 1 for n in scene.group_sizes):
            raise InputError(f"{scene.name}: model '{self.name}' codes one band; this scene has "
                             f"{scene.channels} (choose one with bands=)")
        header = scene_header(self.codec, self.name, scene.width, scene.height, tile, scene.channels,
                              scene.metadata.to_dict(), scene.georef, self.check_quality(quality), self.pad_edges)
        header.layout = scene.layout
        own = [self.for_group(n) for n in scene.group_sizes]
        if any(p is not self for p in own):  # one-band groups coded by the single-band model
            header.layout = dict(scene.layout or {"groups": header.groups}, models=[None if p is self else {
                "model": p.name, "sha256": p.codec.bitstream_id()} for p in own])
            self.single_band.check_quality(quality)
        return header

    def encoder(self, tile: int = DEFAULT_TILE):
        """What computes y and z (``runtime``: "auto", "onnx" or "torch"): the exported graph in
        ONNX Runtime, so that the ground writes the satellite's bytes, or the PyTorch codec
        (:func:`cosmic.onboard.export.select_encoder` says when and why)."""
        from cosmic.onboard.export import select_encoder

        return select_encoder(self.codec, tile, self.runtime)

    def payloads(self, scene: Scene, header: Header, bar=None):
        """One payload per tile of ``scene``, in order (a generator: one batch in memory): every
        tile of band group 0, then of group 1, ...; with a mask, each tile of group 0 carries its
        validity mask in front (:mod:`cosmic.io.mask`; format version 3); each group coded by
        :meth:`for_group`."""
        from cosmic.io.limits import batch_tiles
        from cosmic.io.mask import pack_mask

        batch = batch_tiles(header.tile, self.batch_size)  # one forward's memory bounded
        for group, bands in enumerate(header.groups):
            encoder = self.for_group(len(bands)).encoder(header.tile)
            coded = encode_tiles(encoder, scene.tiles(header.tile, group, header.edge_stride), batch, bar, header.quality)
            if group == 0 and header.has_mask:
                coded = (pack_mask(m) + p for m, p in zip(scene.mask_tiles(header.tile), coded))
            yield from coded

    def encode(self, scene: Scene, tile: int = DEFAULT_TILE, quality: float | None = None,
               progress: bool = False) -> EncodedScene:
        """Code ``scene`` at ``quality`` (None for a fixed-rate model) into memory."""
        from cosmic.utils.progress import progress_bar as tqdm

        header = self.header(scene, tile, quality)
        t0 = time.perf_counter()
        with tqdm(total=header.num_tiles, desc="encode", unit="tile", disable=not progress, leave=False) as bar:
            payloads = list(self.payloads(scene, header, bar))
        size = container_size(header, map(len, payloads))
        return EncodedScene(header, payloads, size, time.perf_counter() - t0)

    def write(self, scene: Scene, path: str | os.PathLike, tile: int = DEFAULT_TILE,
              quality: float | None = None, progress: bool = False) -> EncodedScene:
        """Stream ``scene`` into the file ``path`` (payloads are not kept: memory does not grow
        with the scene); the returned scene has the header, no payloads."""
        from cosmic.utils.progress import progress_bar as tqdm

        header = self.header(scene, tile, quality)
        t0 = time.perf_counter()
        with ContainerWriter(path, header) as writer, tqdm(
            total=header.num_tiles, desc="encode", unit="tile", disable=not progress, leave=False
        ) as bar:
            for payload in self.payloads(scene, header, bar):
                writer.add(payload)
            size = writer.close()
        return EncodedScene(header, [], size, time.perf_counter() - t0)

    # -- rate control ----------------------------------------------------------------------------
    def budget(self, scene: Scene, bpp: float | None = None, max_bytes: int | None = None) -> int:
        """The byte budget of a ``bpp`` or ``max_bytes`` target (the whole file counts)."""
        if bpp is None and max_bytes is None:
            raise InputError("give one rate target: bpp or max_bytes")
        check_rate_target(None, bpp, max_bytes)
        return int(bpp * scene.width * scene.height / 8) if bpp is not None else int(max_bytes)

    def encode_to_size(self, scene: Scene, budget: int, tile: int = DEFAULT_TILE,
                       tolerance: float = RATE_TOLERANCE, target: str | None = None,
                       progress: bool = False) -> EncodedScene:
        """The highest quality whose file fits in ``budget`` bytes, landing within ``tolerance``
        under it and never over (:mod:`cosmic.pipelines.rate`: a search on a sample of tiles,
        verified on the whole scene; ``seconds`` is the whole search's). InputError (naming the
        reachable range) when the budget is out of the model's reach."""
        from cosmic.pipelines.rate import search_quality

        target = target or f"{budget} bytes"
        if self.quality_range is None:
            raise InputError(f"{target}: rate control needs a variable-rate model; '{self.name}' codes "
                             "one rate (the shipped rate points: quality=1..4)")
        return search_quality(self, scene, budget, tile, tolerance, target, progress)
