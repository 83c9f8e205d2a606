"""Scene encoding on the satellite: pad, cut into tiles, code each tile independently (DESIGN §4).

Tiles are independent so that a lost or corrupt tile costs only itself, and so that the on-board
memory needed is one batch of tiles whatever the scene size.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from tqdm import tqdm

from cosmic.io.container import Header, join_payload
from cosmic.onboard.codec import OnboardCodec

__all__ = ["iter_tiles", "encode_scene", "DEFAULT_TILE"]

DEFAULT_TILE = 256


def iter_tiles(pixels: np.ndarray, tile: int) -> Iterator[np.ndarray]:
    """Row-major ``tile`` x ``tile`` tiles of an (H, W, 3) array; edge tiles are padded by
    replicating the last row / column (cheaper to code than a black border)."""
    h, w = pixels.shape[:2]
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            block = pixels[top : top + tile, left : left + tile]
            bh, bw = block.shape[:2]
            if (bh, bw) != (tile, tile):
                block = np.pad(block, ((0, tile - bh), (0, tile - bw), (0, 0)), mode="edge")
            yield block


def _to_tensor(blocks: list[np.ndarray]) -> torch.Tensor:
    arr = np.stack(blocks).astype(np.float32) / 255.0
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def encode_scene(
    codec: OnboardCodec,
    pixels: np.ndarray,
    model_name: str,
    tile: int = DEFAULT_TILE,
    channels: int = 3,
    metadata: dict[str, Any] | None = None,
    georef: dict[str, Any] | None = None,
    batch_size: int = 4,
    progress: bool = False,
) -> tuple[Header, list[bytes]]:
    """Code an (H, W, 3) uint8 scene; returns the container header and one payload per tile."""
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 pixels, got {pixels.shape} {pixels.dtype}")
    if tile % codec.downsampling_factor:
        raise ValueError(f"tile size must be a multiple of {codec.downsampling_factor}")
    codec.eval()
    h, w = pixels.shape[:2]
    header = Header(
        model=model_name, model_sha256=codec.bitstream_id(), width=w, height=h, tile=tile,
        latent=(tile // codec.downsampling_factor, tile // codec.downsampling_factor),
        channels=channels, metadata=metadata or {}, georef=georef,
    )
    payloads: list[bytes] = []
    batch: list[np.ndarray] = []
    bar = tqdm(total=header.num_tiles, desc="encode", unit="tile", disable=not progress, leave=False)

    def flush() -> None:
        out = codec.compress(_to_tensor(batch))
        y_strings, z_strings = out["strings"]
        payloads.extend(join_payload(y, z) for y, z in zip(y_strings, z_strings))
        bar.update(len(batch))
        batch.clear()

    for block in iter_tiles(pixels, tile):
        batch.append(block)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    bar.close()
    return header, payloads
