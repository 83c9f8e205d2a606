"""Scene encoding on the satellite: pad, cut into tiles, code each tile independently (docs/DESIGN.md §4).

Tiles are independent so that a lost or corrupt tile costs only itself, and so that the on-board
memory needed is one batch of tiles whatever the scene size.

An edge tile (the image's right column and bottom row when its sides are not multiples of the
tile) is padded only up to the codec's stride, 64 px (format version 4, issue 33 item 10): a
260x260 image is then coded as 256x256 + 256x64 + 64x256 + 64x64 px, not as four 256x256 tiles.
Files whose sides are multiples of the tile keep their version 1-3 bytes exactly.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from cosmic.utils.progress import progress_bar as tqdm

from cosmic.io.container import Header, join_payload
from cosmic.onboard.codec import OnboardCodec

__all__ = ["iter_tiles", "iter_windows", "pad_tile", "edge_stride", "scene_header", "encode_tiles", "DEFAULT_TILE"]

DEFAULT_TILE = 256


def pad_tile(block: np.ndarray, tile: int, stride: int = 0) -> np.ndarray:
    """Pad an edge tile by replicating its last row / column (cheaper to code than a black
    border): to ``tile`` x ``tile``, or with ``stride`` each side only up to a multiple of it."""
    bh, bw = block.shape[:2]
    th, tw = (-(-bh // stride) * stride, -(-bw // stride) * stride) if stride else (tile, tile)
    if (bh, bw) == (th, tw):
        return block
    return np.pad(block, ((0, th - bh), (0, tw - bw), (0, 0)), mode="edge")


def edge_stride(codec: OnboardCodec, width: int, height: int, tile: int) -> int:
    """The edge stride a scene's header records: the codec's stride when an edge tile would be
    coded smaller with it (format version 4), else 0 (every tile ``tile`` x ``tile``: the
    version 1-3 bytes, unchanged)."""
    s = codec.downsampling_factor
    shrinks = any(-(-(side % tile) // s) * s < tile for side in (width, height) if side % tile)
    return s if shrinks else 0


def iter_tiles(pixels: np.ndarray, tile: int, stride: int = 0) -> Iterator[np.ndarray]:
    """Row-major ``tile`` x ``tile`` tiles of an (H, W, 3) array, edge tiles padded (to
    ``stride`` when given, see :func:`pad_tile`)."""
    h, w = pixels.shape[:2]
    return iter_windows(lambda top, left, th, tw: pixels[top : top + th, left : left + tw], w, h, tile, stride)


def iter_windows(read: Callable[[int, int, int, int], np.ndarray], width: int, height: int,
                 tile: int, stride: int = 0) -> Iterator[np.ndarray]:
    """Row-major tiles from ``read(top, left, height, width)`` (e.g. a GeoTIFF window reader):
    one tile in memory at a time, whatever the scene size; edge tiles padded by :func:`pad_tile`."""
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            yield pad_tile(read(top, left, tile, tile), tile, stride)


def _to_tensor(blocks: list[np.ndarray]) -> torch.Tensor:
    arr = np.stack(blocks).astype(np.float32) / 255.0
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def scene_header(codec: OnboardCodec, model_name: str, width: int, height: int, tile: int = DEFAULT_TILE,
                 channels: int = 3, metadata: dict[str, Any] | None = None,
                 georef: dict[str, Any] | None = None, quality: float | None = None,
                 pad_edges: bool = True) -> Header:
    """The container header for a ``width`` x ``height`` scene coded by ``codec`` (at ``quality``,
    already quantised by :func:`~cosmic.io.container.quantize_quality`, for a variable-rate one);
    ``pad_edges``: edge tiles padded to the codec's stride (:func:`edge_stride`), else to ``tile``
    (what an encoder with one fixed-shape graph writes)."""
    if tile % codec.downsampling_factor:
        raise ValueError(f"tile size must be a multiple of {codec.downsampling_factor}")
    latent = tile // codec.downsampling_factor
    return Header(
        model=model_name, model_sha256=codec.bitstream_id(), width=width, height=height, tile=tile,
        latent=(latent, latent), channels=channels, metadata=metadata or {}, georef=georef, quality=quality,
        edge_stride=edge_stride(codec, width, height, tile) if pad_edges else 0,
    )


@torch.no_grad()
def encode_tiles(codec: OnboardCodec, tiles: Iterable[np.ndarray], batch_size: int = 4,
                 bar: tqdm | None = None, quality: float | None = None) -> Iterator[bytes]:
    """One payload per (h, w, 3) uint8 tile, in order; up to ``batch_size`` tiles of one shape
    per forward (an edge tile padded to the stride starts a batch of its own shape). A
    single-band codec (``in_channels`` 1) codes the first channel (a grey tile is R = G = B)."""
    codec.eval()
    batch: list[np.ndarray] = []
    channels = getattr(codec, "in_channels", 3)

    def flush() -> list[bytes]:
        out = codec.compress(_to_tensor(batch)[:, :channels], quality)
        y_strings, z_strings = out["strings"]
        if bar is not None:
            bar.update(len(batch))
        batch.clear()
        return [join_payload(y, z) for y, z in zip(y_strings, z_strings)]

    for block in tiles:
        if batch and block.shape != batch[0].shape:
            yield from flush()
        batch.append(block)
        if len(batch) == batch_size:
            yield from flush()
    if batch:
        yield from flush()
