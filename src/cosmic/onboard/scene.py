"""Scene encoding on the satellite: pad, cut into tiles, code each tile independently (docs/DESIGN.md §4).

Tiles are independent so that a lost or corrupt tile costs only itself, and so that the on-board
memory needed is one batch of tiles whatever the scene size.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from cosmic.utils.progress import progress_bar as tqdm

from cosmic.io.container import Header, join_payload
from cosmic.onboard.codec import OnboardCodec

__all__ = ["iter_tiles", "iter_windows", "pad_tile", "scene_header", "encode_tiles", "DEFAULT_TILE"]

DEFAULT_TILE = 256


def pad_tile(block: np.ndarray, tile: int) -> np.ndarray:
    """Pad an edge tile to ``tile`` x ``tile`` by replicating its last row / column (cheaper to
    code than a black border)."""
    bh, bw = block.shape[:2]
    if (bh, bw) == (tile, tile):
        return block
    return np.pad(block, ((0, tile - bh), (0, tile - bw), (0, 0)), mode="edge")


def iter_tiles(pixels: np.ndarray, tile: int) -> Iterator[np.ndarray]:
    """Row-major ``tile`` x ``tile`` tiles of an (H, W, 3) array, edge tiles padded."""
    h, w = pixels.shape[:2]
    return iter_windows(lambda top, left, th, tw: pixels[top : top + th, left : left + tw], w, h, tile)


def iter_windows(read: Callable[[int, int, int, int], np.ndarray], width: int, height: int,
                 tile: int) -> Iterator[np.ndarray]:
    """Row-major tiles from ``read(top, left, height, width)`` (e.g. a GeoTIFF window reader):
    one tile in memory at a time, whatever the scene size."""
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            yield pad_tile(read(top, left, tile, tile), tile)


def _to_tensor(blocks: list[np.ndarray]) -> torch.Tensor:
    arr = np.stack(blocks).astype(np.float32) / 255.0
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def scene_header(codec: OnboardCodec, model_name: str, width: int, height: int, tile: int = DEFAULT_TILE,
                 channels: int = 3, metadata: dict[str, Any] | None = None,
                 georef: dict[str, Any] | None = None, quality: float | None = None) -> Header:
    """The container header for a ``width`` x ``height`` scene coded by ``codec`` (at ``quality``,
    already quantised by :func:`~cosmic.io.container.quantize_quality`, for a variable-rate one)."""
    if tile % codec.downsampling_factor:
        raise ValueError(f"tile size must be a multiple of {codec.downsampling_factor}")
    latent = tile // codec.downsampling_factor
    return Header(
        model=model_name, model_sha256=codec.bitstream_id(), width=width, height=height, tile=tile,
        latent=(latent, latent), channels=channels, metadata=metadata or {}, georef=georef, quality=quality,
    )


@torch.no_grad()
def encode_tiles(codec: OnboardCodec, tiles: Iterable[np.ndarray], batch_size: int = 4,
                 bar: tqdm | None = None, quality: float | None = None) -> Iterator[bytes]:
    """One payload per (tile, tile, 3) uint8 tile, in order; ``batch_size`` tiles per forward. A
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
        batch.append(block)
        if len(batch) == batch_size:
            yield from flush()
    if batch:
        yield from flush()
