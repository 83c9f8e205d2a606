"""Scene decoding on the ground: read tiles, decode each independently, stitch, crop (DESIGN §4).

Tiles are decoded one tile row at a time (bounded memory; see :func:`decode_rows`). A tile whose CRC fails or whose rANS string does not decode is either fatal (the default: the
error names the tile) or, with ``conceal=True``, filled with the mean colour of its decoded
neighbours so that the rest of the scene survives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from tqdm import tqdm

from cosmic.errors import BitstreamError
from cosmic.ground.deblock import DEFAULT_WIDTH, smooth_border
from cosmic.io.container import Container, TileError, split_payload
from cosmic.io.limits import MAX_MEMORY_PIXELS, check_row

__all__ = ["DecodedScene", "decode_scene", "decode_rows", "check_model", "MAX_DECODE_PIXELS"]

#: in-memory decoding limit (the size policy of cosmic.io.limits); larger scenes need windowed output
MAX_DECODE_PIXELS = MAX_MEMORY_PIXELS


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
    span = model.onboard.quality_range
    if (h.quality is None) != (span is None) or (span and not span[0] <= h.quality <= span[1]):
        raise BitstreamError(f"{container.path.name}: header field 'quality' = {h.quality} does not fit "
                             f"model '{model.name}' (qualities {span or 'none: one rate'})")


def _decode_batch(model, payloads: list[bytes], shape, z0_fn, indices: list[int],
                  quality: float | None = None) -> np.ndarray:
    split = [split_payload(p) for p in payloads]
    strings = [[y for y, _ in split], [z for _, z in split]]
    y_hat = model.onboard.decompress(strings, shape)["y_hat"]
    z0 = z0_fn(y_hat, indices) if z0_fn is not None else None
    x_hat = model.ground(y_hat, z0, model.onboard.quality_tensor(quality, y_hat.shape[0]))
    if not torch.isfinite(x_hat).all():  # only corrupt symbols get here: treat as undecodable
        raise ValueError("non-finite reconstruction")
    x_hat = x_hat.clamp_(0, 1)
    return (x_hat.permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).astype(np.uint8)


@torch.no_grad()
def decode_rows(model, container: Container, conceal: bool = False, batch_size: int = 4, z0_fn=None,
                deblock: bool = False, bad: list[TileError] | None = None,
                progress: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """Decode ``container`` one row of tiles at a time: yields ``(row, pixels)`` in order, each a
    (tile, cols * tile, 3) uint8 strip (padding included). At most three tile rows are held, so
    memory does not grow with the scene's height.

    ``z0_fn(y_hat, tile_indices) -> z0`` supplies the compensation latent (diffusion); ``None``
    decodes with the deterministic estimate (no compensation, the paper's "w/o DC"). Bad tiles
    are raised, or with ``conceal`` appended to ``bad`` and filled from their decoded
    4-neighbours. ``deblock`` runs the post-stitch border filter (:mod:`cosmic.ground.deblock`).
    """
    check_model(model, container)
    check_row(container.header.width, container.header.tile, container.path.name)
    model.eval()
    h = container.header
    t, cols = h.tile, h.cols
    bad = [] if bad is None else bad
    bar = tqdm(total=h.num_tiles, desc="decode", unit="tile", disable=not progress, leave=False)

    def decode_row(r: int) -> tuple[np.ndarray, np.ndarray]:
        pixels = np.zeros((t, cols * t, 3), dtype=np.uint8)
        ok = np.zeros(cols, dtype=bool)
        pending: list[tuple[int, bytes]] = []

        def place(index: int, tile_pixels: np.ndarray) -> None:
            c = index - r * cols
            pixels[:, c * t : (c + 1) * t] = tile_pixels
            ok[c] = True

        def flush() -> None:
            try:
                tiles = _decode_batch(model, [p for _, p in pending], h.latent, z0_fn,
                                      [i for i, _ in pending], h.quality)
                for (index, _), px in zip(pending, tiles):
                    place(index, px)
            except (ValueError, RuntimeError, IndexError):
                for index, payload in pending:  # find the culprit(s) one tile at a time
                    try:
                        place(index, _decode_batch(model, [payload], h.latent, z0_fn, [index], h.quality)[0])
                    except (ValueError, RuntimeError, IndexError) as exc:
                        _, c = container.tile_position(index)
                        err = TileError(index, r, c, f"undecodable ({type(exc).__name__})")
                        if not conceal:
                            raise err from None
                        bad.append(err)
            bar.update(len(pending))
            pending.clear()

        for index in range(r * cols, (r + 1) * cols):
            try:
                pending.append((index, container.tile_payload(index)))
            except TileError as err:
                if not conceal:
                    raise
                bad.append(err)
                bar.update(1)
            if len(pending) == batch_size:
                flush()
        if pending:
            flush()
        return pixels, ok

    rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    try:
        for r in range(h.rows + 1):
            if r < h.rows:
                rows[r] = decode_row(r)
            k = r - 1  # row k now has both vertical neighbours decoded: finish it
            if k >= 0:
                _conceal_row(k, rows, t)
                if deblock:
                    _deblock_row(rows[k][0], t, cols)
                    if k - 1 in rows:
                        _deblock_between(rows[k - 1][0], rows[k][0])
                if k - 1 in rows:  # row k-1 is final once its border with row k is filtered
                    yield k - 1, rows.pop(k - 1)[0]
        if h.rows - 1 in rows:
            yield h.rows - 1, rows.pop(h.rows - 1)[0]
    finally:
        bar.close()


def _conceal_row(k: int, rows: dict, t: int) -> None:
    """Fill each undecoded tile of row ``k`` with the mean colour of its decoded 4-neighbours
    (grey if none)."""
    pixels, ok = rows[k]
    cols = ok.size
    for c in np.flatnonzero(~ok):
        colours = []
        for rr, cc in ((k - 1, c), (k + 1, c), (k, c - 1), (k, c + 1)):
            if rr in rows and 0 <= cc < cols and rows[rr][1][cc]:
                colours.append(rows[rr][0][:, cc * t : (cc + 1) * t].reshape(-1, 3).mean(0))
        fill = np.mean(colours, axis=0) if colours else np.full(3, 128.0)
        pixels[:, c * t : (c + 1) * t] = fill.round().astype(np.uint8)


def _deblock_row(pixels: np.ndarray, t: int, cols: int, width: int = DEFAULT_WIDTH) -> None:
    for c in range(1, cols):
        x = c * t
        pixels[:, x - width : x + width] = smooth_border(pixels[:, x - width : x + width], axis=1, width=width)


def _deblock_between(upper: np.ndarray, lower: np.ndarray, width: int = DEFAULT_WIDTH) -> None:
    strip = smooth_border(np.concatenate([upper[-width:], lower[:width]]), axis=0, width=width)
    upper[-width:], lower[:width] = strip[:width], strip[width:]


def decode_scene(model, container: Container, conceal: bool = False, batch_size: int = 4,
                 z0_fn=None, deblock: bool = False, progress: bool = False) -> DecodedScene:
    """Decode a whole scene into memory (see :func:`decode_rows`; for scenes too large for that,
    write the rows to a GeoTIFF as they come, as ``cosmic decompress -o out.tif`` does)."""
    h = container.header
    t = h.tile
    if h.rows * t * h.cols * t > MAX_DECODE_PIXELS:
        raise BitstreamError(
            f"{container.path.name}: a {h.width}x{h.height} scene is larger than this decoder holds in "
            f"memory ({MAX_DECODE_PIXELS // 10**6} Mpx); decode it to a GeoTIFF (-o out.tif)"
        )
    out = np.zeros((h.rows * t, h.cols * t, 3), dtype=np.uint8)
    bad: list[TileError] = []
    for r, strip in decode_rows(model, container, conceal, batch_size, z0_fn, deblock, bad, progress):
        out[r * t : (r + 1) * t] = strip
    return DecodedScene(out[: h.height, : h.width], sorted(bad, key=lambda e: e.index))
