"""Scene decoding on the ground: read tiles, decode each independently, stitch, crop (docs/DESIGN.md §4).

Tiles are decoded one tile row at a time (bounded memory; see :func:`decode_rows`), each tile
by default as its own batch through the model's own ``decompress``: a tile's pixels then depend on
its bytes, the model and the decode options only, not on which tiles it was batched with or on
a neighbour being lost (docs/DESIGN.md §3, "Determinism"; the synthesis also runs in float64).
A tile whose CRC fails or whose rANS string does not decode is either fatal (the default: the
error names the tile) or, with ``conceal=True``, filled with the mean colour of its decoded
neighbours so that the rest of the scene survives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from cosmic.utils.progress import progress_bar as tqdm

from cosmic.errors import BitstreamError, EntropyDecodeError
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


def check_model(model, container: Container):
    """The model that decodes ``container``: ``model``, or its view without its context model
    when the file was written by its weights before the context was added
    (:meth:`~cosmic.onboard.coding.HyperpriorCodec.without_context`); a bitstream whose on-board
    model is neither is refused."""
    h = container.header
    loaded = model.onboard.bitstream_id()
    if h.model_sha256 != loaded and model.onboard.context is not None \
            and h.model_sha256 == model.onboard.without_context().bitstream_id():
        model = model.without_context()
        loaded = h.model_sha256
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
    return model


def _decode_batch(model, payloads: list[bytes], header, indices: list[int], compensation=None) -> np.ndarray:
    """Decode one batch of tile payloads, all of one shape (:meth:`Header.tile_latent`), through
    ``model.decompress``: (B, h, w, 3) uint8, (h, w) the tiles' coded extent."""
    split = [split_payload(p) for p in payloads]
    strings = [[y for y, _ in split], [z for _, z in split]]
    compensate = compensation(indices) if compensation is not None else None
    latent = header.tile_latent(indices[0])
    x_hat = model.decompress(strings, latent, quality=header.quality, compensate=compensate)["x_hat"]
    if not torch.isfinite(x_hat).all():  # only corrupt symbols get here: treat as undecodable
        raise EntropyDecodeError("non-finite reconstruction")
    return (x_hat.permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).astype(np.uint8)


def _tile_error(container, index: int, reason: str) -> TileError:
    """The error of tile ``index``: the container's own (which names the band group of a file
    with several), or for a view without one, the tile's number and position."""
    if hasattr(container, "tile_error"):
        return container.tile_error(index, reason)
    return TileError(index, *container.tile_position(index), reason)


class _RowDecoder:
    """Decodes one tile row at a time in batches; a batch that fails with a bitstream error is
    retried tile by tile to name (or, with ``conceal``, skip) the culprit(s). Errors that are not
    the container's or the entropy decoder's (model bugs) propagate unchanged."""

    def __init__(self, model, container: Container, conceal: bool, batch_size: int, compensation,
                 bad: list[TileError], bar):
        self.model, self.container, self.h = model, container, container.header
        self.conceal, self.batch_size, self.compensation = conceal, batch_size, compensation
        self.bad, self.bar = bad, bar

    def _decode(self, pending: list[tuple[int, bytes]]) -> np.ndarray:
        return _decode_batch(self.model, [p for _, p in pending], self.h, [i for i, _ in pending],
                             self.compensation)

    def _fail(self, err: TileError) -> None:
        if not self.conceal:
            raise err from None
        self.bad.append(err)

    def _flush(self, pending: list[tuple[int, bytes]], place) -> None:
        try:
            for (index, _), px in zip(pending, self._decode(pending)):
                place(index, px)
        except BitstreamError:
            for item in pending:  # find the culprit(s) one tile at a time
                try:
                    place(item[0], self._decode([item])[0])
                except BitstreamError as exc:
                    self._fail(_tile_error(self.container, item[0], f"undecodable ({exc})"))
        self.bar.update(len(pending))
        pending.clear()

    def row(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """Tile row ``r``: its (tile, cols * tile, 3) pixels and which of its tiles decoded (a
        version 4 edge tile fills only its coded extent; the rest lies outside the image)."""
        t, cols = self.h.tile, self.h.cols
        pixels = np.zeros((t, cols * t, 3), dtype=np.uint8)
        ok = np.zeros(cols, dtype=bool)

        def place(index: int, tile_pixels: np.ndarray) -> None:
            c = index - r * cols
            pixels[: tile_pixels.shape[0], c * t : c * t + tile_pixels.shape[1]] = tile_pixels
            ok[c] = True

        pending: list[tuple[int, bytes]] = []
        for index in range(r * cols, (r + 1) * cols):
            if pending and self.h.tile_extent(index) != self.h.tile_extent(pending[0][0]):
                self._flush(pending, place)  # a batch holds tiles of one shape
            try:
                pending.append((index, self.container.tile_payload(index)))
            except TileError as err:
                self._fail(err)
                self.bar.update(1)
            if len(pending) == self.batch_size:
                self._flush(pending, place)
        if pending:
            self._flush(pending, place)
        return pixels, ok


@torch.no_grad()
def decode_rows(model, container: Container, conceal: bool = False, batch_size: int = 1,
                compensation=None, deblock: bool = False, bad: list[TileError] | None = None,
                progress: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """Decode ``container`` one row of tiles at a time: yields ``(row, pixels)`` in order, each a
    (tile, cols * tile, 3) uint8 strip (padding included). At most three tile rows are held, so
    memory does not grow with the scene's height.

    ``compensation(tile_indices) -> compensate`` supplies the diffusion compensation of a batch
    (see :mod:`cosmic.pipelines.decode`); ``None`` decodes with the deterministic estimate (no
    compensation, the paper's "w/o DC"). Bad tiles are raised, or with ``conceal`` appended to
    ``bad`` and filled from their decoded 4-neighbours. ``deblock`` runs the post-stitch border
    filter (:mod:`cosmic.ground.deblock`).
    """
    model = check_model(model, container)
    check_row(container.header.width, container.header.tile, container.path.name)
    model.eval()
    h = container.header
    bad = [] if bad is None else bad
    rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    with tqdm(total=h.num_tiles, desc="decode", unit="tile", disable=not progress, leave=False) as bar:
        decoder = _RowDecoder(model, container, conceal, batch_size, compensation, bad, bar)
        for r in range(h.rows + 1):
            if r < h.rows:
                rows[r] = decoder.row(r)
            k = r - 1  # row k now has both vertical neighbours decoded: finish it
            if k >= 0:
                _finish_row(k, rows, h, deblock)
                if k - 1 in rows:  # row k-1 is final once its border with row k is filtered
                    yield k - 1, rows.pop(k - 1)[0]
        if h.rows - 1 in rows:
            yield h.rows - 1, rows.pop(h.rows - 1)[0]


def _finish_row(k: int, rows: dict, header, deblock: bool) -> None:
    """Conceal row ``k``'s bad tiles, then (``deblock``) smooth its inner borders and its border
    with row ``k - 1``."""
    _conceal_row(k, rows, header)
    if deblock:
        _deblock_row(rows[k][0], header.tile, header.cols)
        if k - 1 in rows:
            _deblock_between(rows[k - 1][0], rows[k][0])


def _conceal_row(k: int, rows: dict, header) -> None:
    """Fill each undecoded tile of row ``k`` with the mean colour of its decoded 4-neighbours
    (grey if none), each neighbour's mean taken over its coded extent."""
    pixels, ok = rows[k]
    t, cols = header.tile, ok.size
    for c in np.flatnonzero(~ok):
        colours = []
        for rr, cc in ((k - 1, c), (k + 1, c), (k, c - 1), (k, c + 1)):
            if rr in rows and 0 <= cc < cols and rows[rr][1][cc]:
                eh, ew = header.tile_extent(rr * cols + cc)
                colours.append(rows[rr][0][:eh, cc * t : cc * t + ew].reshape(-1, 3).mean(0))
        fill = np.mean(colours, axis=0) if colours else np.full(3, 128.0)
        pixels[:, c * t : (c + 1) * t] = fill.round().astype(np.uint8)


def _deblock_row(pixels: np.ndarray, t: int, cols: int, width: int = DEFAULT_WIDTH) -> None:
    for c in range(1, cols):
        x = c * t
        pixels[:, x - width : x + width] = smooth_border(pixels[:, x - width : x + width], axis=1, width=width)


def _deblock_between(upper: np.ndarray, lower: np.ndarray, width: int = DEFAULT_WIDTH) -> None:
    strip = smooth_border(np.concatenate([upper[-width:], lower[:width]]), axis=0, width=width)
    upper[-width:], lower[:width] = strip[:width], strip[width:]


def decode_scene(model, container: Container, conceal: bool = False, batch_size: int = 1,
                 compensation=None, deblock: bool = False, progress: bool = False) -> DecodedScene:
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
    for r, strip in decode_rows(model, container, conceal, batch_size, compensation, deblock, bad, progress):
        out[r * t : (r + 1) * t] = strip
    return DecodedScene(out[: h.height, : h.width], sorted(bad, key=lambda e: e.index))
