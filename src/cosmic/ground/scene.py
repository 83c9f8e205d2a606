"""Scene decoding on the ground: read tiles, decode each independently, stitch, crop (DESIGN §4).

A tile whose CRC fails or whose rANS string does not decode is either fatal (the default: the
error names the tile) or, with ``conceal=True``, filled with the mean colour of its decoded
neighbours so that the rest of the scene survives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from cosmic.errors import BitstreamError
from cosmic.io.container import Container, TileError, split_payload

__all__ = ["DecodedScene", "decode_scene", "check_model", "MAX_DECODE_PIXELS"]

#: in-memory decoding limit (3 GiB of RGB); larger scenes need windowed output
MAX_DECODE_PIXELS = 1 << 30


@dataclass
class DecodedScene:
    pixels: np.ndarray  # (H, W, 3) uint8
    bad_tiles: list[TileError] = field(default_factory=list)


def check_model(model, container: Container) -> None:
    """Refuse a bitstream whose on-board model differs from the loaded model's on-board part."""
    h = container.header
    loaded = model.onboard.bitstream_id()
    if h.model_sha256 != loaded:
        raise BitstreamError(
            f"{container.path.name} was coded by model '{h.model}' (on-board sha256 "
            f"{h.model_sha256[:12]}), not by the loaded model '{model.name}' "
            f"({loaded[:12]}); decode it with the model that coded it"
        )
    expected = h.tile // model.onboard.downsampling_factor
    if tuple(h.latent) != (expected, expected):
        raise BitstreamError(f"{container.path.name}: latent shape {h.latent} does not fit tile {h.tile}")


def _decode_batch(model, payloads: list[bytes], shape, z0_fn, indices: list[int]) -> np.ndarray:
    split = [split_payload(p) for p in payloads]
    strings = [[y for y, _ in split], [z for _, z in split]]
    y_hat = model.onboard.decompress(strings, shape)["y_hat"]
    z0 = z0_fn(y_hat, indices) if z0_fn is not None else None
    x_hat = model.ground(y_hat, z0)
    if not torch.isfinite(x_hat).all():  # only corrupt symbols get here: treat as undecodable
        raise ValueError("non-finite reconstruction")
    x_hat = x_hat.clamp_(0, 1)
    return (x_hat.permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).astype(np.uint8)


@torch.no_grad()
def decode_scene(model, container: Container, conceal: bool = False, batch_size: int = 4,
                 z0_fn=None, progress: bool = False) -> DecodedScene:
    """Decode every tile of ``container`` with ``model`` (a :class:`cosmic.models.Cosmic`).

    ``z0_fn(y_hat, tile_indices) -> z0`` supplies the compensation latent (diffusion); ``None``
    decodes with the deterministic estimate (no compensation, the paper's "w/o DC").
    """
    check_model(model, container)
    model.eval()
    h = container.header
    t = h.tile
    if h.rows * t * h.cols * t > MAX_DECODE_PIXELS:
        raise BitstreamError(
            f"{container.path.name}: a {h.width}x{h.height} scene is larger than this decoder holds in "
            f"memory ({MAX_DECODE_PIXELS // 10**6} Mpx)"
        )
    out = np.zeros((h.rows * t, h.cols * t, 3), dtype=np.uint8)
    decoded = np.zeros(h.num_tiles, dtype=bool)
    bad: list[TileError] = []
    bar = tqdm(total=h.num_tiles, desc="decode", unit="tile", disable=not progress, leave=False)

    pending: list[tuple[int, bytes]] = []

    def place(index: int, tile_pixels: np.ndarray) -> None:
        r, c = container.tile_position(index)
        out[r * t : (r + 1) * t, c * t : (c + 1) * t] = tile_pixels
        decoded[index] = True

    def flush() -> None:
        if not pending:
            return
        try:
            tiles = _decode_batch(model, [p for _, p in pending], h.latent, z0_fn, [i for i, _ in pending])
            for (index, _), px in zip(pending, tiles):
                place(index, px)
        except (ValueError, RuntimeError, IndexError):
            for index, payload in pending:  # find the culprit(s) one tile at a time
                try:
                    place(index, _decode_batch(model, [payload], h.latent, z0_fn, [index])[0])
                except (ValueError, RuntimeError, IndexError) as exc:
                    r, c = container.tile_position(index)
                    err = TileError(index, r, c, f"undecodable ({type(exc).__name__})")
                    if not conceal:
                        raise err from None
                    bad.append(err)
        bar.update(len(pending))
        pending.clear()

    for index in range(h.num_tiles):
        try:
            pending.append((index, container.tile_payload(index)))
        except TileError as err:
            if not conceal:
                raise
            bad.append(err)
            bar.update(1)
        if len(pending) == batch_size:
            flush()
    flush()
    bar.close()
    if bad:
        _conceal(out, decoded, h.rows, h.cols, t)
    return DecodedScene(out[: h.height, : h.width], sorted(bad, key=lambda e: e.index))


def _conceal(out: np.ndarray, decoded: np.ndarray, rows: int, cols: int, t: int) -> None:
    """Fill each missing tile with the mean colour of its decoded 4-neighbours (grey if none)."""
    for index in np.flatnonzero(~decoded):
        r, c = divmod(int(index), cols)
        colours = [
            out[rr * t : (rr + 1) * t, cc * t : (cc + 1) * t].reshape(-1, 3).mean(0)
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
            if 0 <= rr < rows and 0 <= cc < cols and decoded[rr * cols + cc]
        ]
        fill = np.mean(colours, axis=0) if colours else np.full(3, 128.0)
        out[r * t : (r + 1) * t, c * t : (c + 1) * t] = fill.round().astype(np.uint8)
